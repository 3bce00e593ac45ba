//! MIX shapes that replies, events and archive results share: a participant item, the info
//! form, a channel message, a pubsub event. Events are written once per fact as a
//! [`Template`] and then addressed to each recipient.

use jid::BareJid;

use crate::core::iso_time;
use crate::core::{Info, Micros, NoticeKind, Participant, ParticipantId, Posted};
use crate::dialect::ids::Ids;
use crate::store::{Action, Archived};
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

/// `<participant xmlns='urn:xmpp:mix:core:1'><nick/><jid/></participant>`, without the
/// `<jid/>` when JIDs are not `shown` (XEP-0404: a JID-hidden channel's participants node).
pub fn participant(x: &mut Xml, p: &Participant, shown: bool) {
    x.open("participant", ns::MIX_CORE)
        .leaf("nick", "", &p.nick);
    if shown {
        x.leaf("jid", "", p.jid.as_str());
    }
    x.close();
}

/// A JID as a recipient may see it: the JID itself where JIDs are `shown`, nothing where
/// they are hidden from it (XEP-0404).
pub fn seen(jid: &BareJid, shown: bool) -> Option<&BareJid> {
    shown.then_some(jid)
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
/// by='…' [jid='…']/>`; without `by` and `jid` for a recipient from whom JIDs are hidden.
pub fn notice(x: &mut Xml, kind: NoticeKind, by: Option<&BareJid>, target: Option<&BareJid>) {
    x.open("notice", ns::MIXD_NOTICE)
        .attr("kind", kind.name())
        .attr("code", &(kind as i64).to_string())
        .attr_opt("by", by.map(|j| j.as_str()))
        .attr_opt("jid", target.map(|j| j.as_str()));
    x.close();
}

/// Where a participant's messages come from when the channel passes them on: the channel's
/// JID with the sender's stable participant id as resource (XEP-0369 §7.1.6), so that a
/// receiver tells senders apart by JID alone. Without a participant (one removed in the same
/// commit), the channel itself.
pub fn participant_jid(channel_jid: &str, sender: Option<ParticipantId>) -> String {
    let mut jid = String::with_capacity(channel_jid.len() + 17);
    jid.push_str(channel_jid);
    // The digits straight, not through the formatter: every reflection writes this.
    if let Some(id) = sender {
        jid.push('/');
        jid.push_str(&id.hex());
    }
    jid
}

/// A channel message as reflected live, from `<channel>/<participant id>`: the sender's
/// payload, then `<mix>` with nick and JID, then the XEP-0359 stanza-id (the archive id's
/// opaque form, which is also the stanza's id). The JID only where it is `shown` (XEP-0404).
pub fn channel_message(
    x: &mut Xml,
    ids: &Ids,
    channel_jid: &str,
    sender: Option<ParticipantId>,
    posted: &Posted,
    shown: bool,
) {
    let id = ids.encode(posted.id);
    let from = participant_jid(channel_jid, sender);
    open_groupchat(x, ns::COMPONENT, &from, Some(Template::TO), Some(&id));
    x.raw(&posted.submission.content);
    mix_sender(x, &posted.nick, seen(&posted.sender, shown));
    stanza_id(x, channel_jid, &id);
    x.close();
}

/// A message as the archive returns it, in `jabber:client` inside a MAM result, from the
/// channel as XEP-0369 §7.1.6 archives it: as last corrected (marked with XEP-0308
/// `<replace/>`), or its XEP-0424 tombstone naming the retraction, with its reactions
/// aggregated (see docs/protocol.md); or an archived retraction (XEP-0424 §6) or a member's
/// reactions (XEP-0444) as they were sent live. Moderation names the moderator by its JID,
/// as XEP-0425's tombstone does. JIDs (the sender's, a notice's, a moderator's, those who
/// reacted) only where they are `shown` to the requester (XEP-0404). `id` is the message's
/// opaque id, which the caller has already written into the result around it (an id is
/// eight SipHash rounds: encoded once a row, not twice).
pub fn archived_message(
    x: &mut Xml,
    ids: &Ids,
    channel_jid: &str,
    archived: &Archived,
    id: &str,
    shown: bool,
) {
    let posted = &archived.posted;
    open_groupchat(x, ns::CLIENT, channel_jid, None, Some(id));
    match (&archived.notice, &archived.action, &archived.retraction) {
        (Some((kind, target)), _, _) => notice(
            x,
            *kind,
            seen(&posted.sender, shown),
            target.as_ref().filter(|_| shown),
        ),
        (None, Some(Action::Retraction { target, moderated }), _) => {
            // Where JIDs are hidden, the channel stands for the moderator.
            let by = if shown {
                posted.sender.as_str()
            } else {
                channel_jid
            };
            retract(x, &ids.encode(*target), moderated.as_ref().map(|r| (by, r)));
        }
        (None, Some(Action::Reactions { target, reactions }), _) => {
            reactions_to(x, &ids.encode(*target), reactions)
        }
        (None, None, Some(tombstone)) => {
            x.open("retracted", ns::RETRACT)
                .attr_opt("id", tombstone.retraction.map(|r| ids.encode(r)).as_deref())
                .attr("stamp", &iso_time(tombstone.at));
            if tombstone.moderated.is_some() {
                x.open("moderated", ns::MODERATE)
                    .attr("by", tombstone.by.as_str())
                    .close();
            }
            x.close();
        }
        (None, None, None) => {
            x.raw(&posted.submission.content);
            if archived.edited_at.is_some() {
                x.open("replace", ns::CORRECT).attr("id", id).close();
            }
        }
    }
    mix_sender(x, &posted.nick, seen(&posted.sender, shown));
    stanza_id(x, channel_jid, id);
    if !archived.reactions.is_empty() {
        x.open("reactions", ns::MIXD_REACTIONS);
        for (reaction, members) in &archived.reactions {
            x.open("reaction", "")
                .attr("value", reaction)
                .attr("count", &members.len().to_string());
            for member in members.iter().filter(|_| shown) {
                x.leaf("jid", "", member.as_str());
            }
            x.close();
        }
        x.close();
    }
    x.close();
}

/// An XEP-0424 `<retract/>` of the message `target` (an opaque id); with `moderation`, the
/// moderator's JID and reason (XEP-0425).
pub fn retract(x: &mut Xml, target: &str, moderation: Option<(&str, &Option<String>)>) {
    x.open("retract", ns::RETRACT).attr("id", target);
    if let Some((by, reason)) = moderation {
        x.open("moderated", ns::MODERATE).attr("by", by).close();
        if let Some(reason) = reason {
            x.leaf("reason", "", reason);
        }
    }
    x.close();
}

/// A member's XEP-0444 `<reactions/>` to the message `target` (an opaque id).
pub fn reactions_to(x: &mut Xml, target: &str, reactions: &[String]) {
    x.open("reactions", ns::REACTIONS).attr("id", target);
    for reaction in reactions {
        x.leaf("reaction", "", reaction);
    }
    x.close();
}

/// Opens a `groupchat` message `from` the channel or one of its participants (close it after
/// the payload).
pub fn open_groupchat(
    x: &mut Xml,
    stanza_ns: &'static str,
    from: &str,
    to: Option<&str>,
    id: Option<&str>,
) {
    x.open("message", stanza_ns)
        .attr("from", from)
        .attr_opt("to", to)
        .attr_opt("id", id)
        .attr("type", "groupchat");
}

/// `<mix xmlns='urn:xmpp:mix:core:1'><nick/><jid/></mix>`: who did it; without `<jid/>`
/// where it is hidden (XEP-0369 §7.1.6 then requires the nick, which every participant has).
pub fn mix_sender(x: &mut Xml, nick: &str, jid: Option<&BareJid>) {
    x.open("mix", ns::MIX_CORE).leaf("nick", "", nick);
    if let Some(jid) = jid {
        x.leaf("jid", "", jid.as_str());
    }
    x.close();
}

/// XEP-0359's `<stanza-id/>`: the archive id (opaque) the channel gave the message.
pub fn stanza_id(x: &mut Xml, channel_jid: &str, id: &str) {
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
        let mut out = crate::xml::Stanzas::default();
        t.address("bob@x/r'1", &mut out);
        let one = out.iter().next().unwrap();
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
