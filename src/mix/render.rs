//! MIX shapes that replies, events and archive results share: a participant item, the info
//! form, a channel message, a pubsub event. Events are written once per fact as a
//! [`Template`] and then addressed to each recipient.

use jid::BareJid;

use crate::core::iso_time;
use crate::core::{Info, Micros, NoticeKind, Participant, Posted};
use crate::dialect::ids::Ids;
use crate::store::Archived;
use crate::xml::{ns, Template, Xml};

/// An XEP-0082 date-time given in `field`, or the refusal that says why it is not one.
pub fn parse_timestamp(field: &str, value: &str) -> crate::core::Outcome<Micros> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            crate::dialect::bad_request(format!(
                "{field}: '{value}' is not an XEP-0082 date-time ({e})"
            ))
        })
}

/// `<participant xmlns='urn:xmpp:mix:core:1'><nick/><jid/></participant>`
pub fn participant(x: &mut Xml, p: &Participant) {
    x.open("participant", ns::MIX_CORE)
        .leaf("nick", "", &p.nick)
        .leaf("jid", "", p.jid.as_str())
        .close();
}

/// The info node's form (XEP-0369 §7.2.2).
pub fn info_form(x: &mut Xml, info: &Info) {
    x.open("x", ns::DATA_FORMS).attr("type", "result");
    x.open("field", "")
        .attr("var", "FORM_TYPE")
        .attr("type", "hidden")
        .leaf("value", "", ns::MIX_CORE)
        .close();
    x.open("field", "")
        .attr("var", "Name")
        .leaf("value", "", &info.name)
        .close();
    x.open("field", "")
        .attr("var", "Description")
        .leaf("value", "", &info.description)
        .close();
    x.open("field", "").attr("var", "Contact");
    for contact in &info.contacts {
        x.leaf("value", "", contact.as_str());
    }
    x.close();
    // mixd's: the group's picture (a URL, an upload token or a `data:` URI) and its type.
    for (var, value) in [
        (AVATAR_FIELD, &info.avatar),
        (AVATAR_TYPE_FIELD, &info.avatar_type),
    ] {
        if !value.is_empty() {
            x.open("field", "")
                .attr("var", var)
                .leaf("value", "", value)
                .close();
        }
    }
    x.close();
}

pub const AVATAR_FIELD: &str = "mixd#avatar";
pub const AVATAR_TYPE_FIELD: &str = "mixd#avatar-type";

/// A group event as MIX clients see it, live (configuration-node subscribers) and in history
/// (with the `notices` filter): `<notice xmlns='urn:mixd:notice:0' kind='…' code='…'
/// by='…' [jid='…']/>`.
pub fn notice(x: &mut Xml, kind: NoticeKind, by: &BareJid, target: Option<&BareJid>) {
    x.open("notice", ns::MIXD_NOTICE)
        .attr("kind", kind.name())
        .attr("code", &(kind as i64).to_string())
        .attr("by", by.as_str());
    if let Some(target) = target {
        x.attr("jid", target.as_str());
    }
    x.close();
}

/// A channel message as reflected live: the sender's payload, then `<mix>` with nick and
/// JID, then the XEP-0359 stanza-id (the archive id's opaque form, which is also the
/// stanza's id).
pub fn channel_message(x: &mut Xml, ids: &Ids, channel_jid: &str, posted: &Posted) {
    let id = ids.encode(posted.id);
    open_groupchat(x, ns::COMPONENT, channel_jid, Some(Template::TO), Some(&id));
    x.raw(&posted.submission.content);
    mix_sender(x, &posted.nick, &posted.sender);
    stanza_id(x, channel_jid, &id);
    x.close();
}

/// A message as the archive returns it, in `jabber:client` inside a MAM result: as last
/// corrected (marked with XEP-0308 `<replace/>`), or its XEP-0424 tombstone, with its
/// reactions aggregated (see docs/protocol.md).
pub fn archived_message(x: &mut Xml, ids: &Ids, channel_jid: &str, archived: &Archived) {
    let posted = &archived.posted;
    let id = ids.encode(posted.id);
    open_groupchat(x, ns::CLIENT, channel_jid, None, Some(&id));
    match (&archived.notice, &archived.retraction) {
        (Some((kind, target)), _) => notice(x, *kind, &posted.sender, target.as_ref()),
        (None, Some(tombstone)) => {
            x.open("retracted", ns::RETRACT)
                .attr("stamp", &iso_time(tombstone.at));
            if tombstone.moderated.is_some() {
                x.open("moderated", ns::MODERATE)
                    .attr("by", channel_jid)
                    .close();
            }
            x.close();
        }
        (None, None) => {
            x.raw(&posted.submission.content);
            if archived.edited_at.is_some() {
                x.open("replace", ns::CORRECT).attr("id", &id).close();
            }
        }
    }
    mix_sender(x, &posted.nick, &posted.sender);
    stanza_id(x, channel_jid, &id);
    if !archived.reactions.is_empty() {
        x.open("reactions", ns::MIXD_REACTIONS);
        for (reaction, members) in &archived.reactions {
            x.open("reaction", "")
                .attr("value", reaction)
                .attr("count", &members.len().to_string());
            for member in members {
                x.leaf("jid", "", member.as_str());
            }
            x.close();
        }
        x.close();
    }
    x.close();
}

/// Opens a `groupchat` message from the channel (close it after the payload).
pub fn open_groupchat(
    x: &mut Xml,
    stanza_ns: &str,
    channel_jid: &str,
    to: Option<&str>,
    id: Option<&str>,
) {
    x.open("message", stanza_ns)
        .attr("from", channel_jid)
        .attr_opt("to", to)
        .attr_opt("id", id)
        .attr("type", "groupchat");
}

/// `<mix xmlns='urn:xmpp:mix:core:1'><nick/><jid/></mix>`: who did it.
pub fn mix_sender(x: &mut Xml, nick: &str, jid: &BareJid) {
    x.open("mix", ns::MIX_CORE)
        .leaf("nick", "", nick)
        .leaf("jid", "", jid.as_str())
        .close();
}

fn stanza_id(x: &mut Xml, channel_jid: &str, id: &str) {
    x.open("stanza-id", ns::SID)
        .attr("by", channel_jid)
        .attr("id", id)
        .close();
}

/// A pubsub event from the channel on `node`; `items` writes the children of `<items>`.
pub fn event(channel_jid: &str, node: &str, items: impl FnOnce(&mut Xml)) -> Template {
    Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", channel_jid)
            .attr("to", Template::TO)
            .attr("type", "headline")
            .open("event", ns::PUBSUB_EVENT)
            .open("items", "")
            .attr("node", node);
        items(x);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::node;

    #[test]
    fn template_addresses_each_recipient() {
        let t = event("c@mix.x", node::PARTICIPANTS, |x| {
            x.open("retract", "").attr("id", "p1").close();
        });
        let one = t.to("bob@x/r'1");
        assert!(one.contains("to='bob@x/r&apos;1'"), "{one}");
        assert!(
            one.ends_with("<retract id='p1'/></items></event></message>"),
            "{one}"
        );
    }

    #[test]
    fn timestamps_are_utc_with_micros() {
        assert_eq!(iso_time(1_000_000), "1970-01-01T00:00:01.000000Z");
    }
}
