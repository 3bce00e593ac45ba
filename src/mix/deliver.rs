//! What MIX clients are told of each fact. MIX clients follow a channel by nodes (XEP-0369):
//! each event goes to the participants subscribed to the node it concerns, addressed as each
//! is reached ([`Reach`]): a participant whose server joined for it (XEP-0405 MIX-PAM) at its
//! bare JID, once, and its server delivers to its clients, keeps it offline and archives it;
//! a participant whose client joined directly — because stock servers do not deliver a
//! component's `groupchat` to a bare JID — at every full JID that joined or announced itself
//! with presence (XEP-0403). A direct participant with no client online gets nothing live and
//! catches up from the archive. FlyChat participants are skipped here: their dialect tells
//! them (`flychat::deliver`).
//!
//! Each event is written once as a [`Template`] and copied per recipient. What one operation
//! did to many users (an add of K users) is one event per recipient, carrying K items
//! ([`joined`], [`noticed`]), so that its cost grows with the operation and the group, not with
//! their product.

use jid::BareJid;

use crate::core::iso_time;
use crate::core::model::Reach;
use crate::core::{
    AccessList, Channel, ChatState, Corrected, Dialect, Fact, Groups, Info, Nodes, Notice,
    Participant, Posted, Reacted, ReceiptKind, Retracted,
};
use crate::dialect::Service;
use crate::store::Completion;
use crate::xml::node;
use crate::xml::{ns, Stanzas, Template, Xml};

use super::config;
use super::render;

/// Appends to `out` what MIX clients are told of `fact`, which the core has already applied
/// to `groups`. Every fact is listed, so that a new one does not compile until MIX says what
/// its clients learn of it.
pub fn fact(groups: &Groups, service: &Service, fact: &Fact, out: &mut Stanzas) {
    match fact {
        // The messages node.
        Fact::Posted(posted) => reflect(groups, service, posted, out),
        Fact::ChatState {
            key,
            sender,
            nick,
            state,
        } => chat_state(groups, service, *key, sender, nick, *state, out),
        Fact::Retracted(retracted) => retraction(groups, service, retracted, out),
        Fact::Corrected(corrected) => correction(groups, service, corrected, out),
        Fact::Reacted(reacted) => reactions(groups, service, reacted, out),
        // The participants node. The joiner's own clients are not told: its join's result
        // carries the same participant.
        Fact::Joined {
            key, participant, ..
        } => joined_except(
            groups,
            service,
            *key,
            &[participant],
            Some(&participant.jid),
            out,
        ),
        Fact::NickChanged { key, jid, .. } => {
            let channel = groups.channel_by_key(*key);
            if let Some(p) = channel.and_then(|c| c.participant(jid)) {
                joined(groups, service, *key, &[p], out);
            }
        }
        Fact::Left {
            key, participant, ..
        } => participant_retracted(groups, service, *key, participant, out),
        // The information, configuration, allowed and banned nodes.
        Fact::InfoChanged { key, info, .. } => info_item(groups, service, *key, info, out),
        Fact::RoleChanged { key, by, .. }
        | Fact::SettingsChanged { key, by, .. }
        | Fact::Muted { key, by, .. } => configuration(groups, service, *key, by, out),
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            ..
        } => access(groups, service, *key, *list, entry, *present, out),
        Fact::Noticed(notice) => noticed(groups, service, &[notice], out),
        Fact::ChannelDestroyed { channel, .. } => destroyed(service, channel, out),
        // Told to nobody live: a new channel has no participant yet; a subscription, a
        // client's presence and cleared history change only what that participant gets (the
        // requester has its reply; mixd publishes no presence node); a receipt is told to the
        // author once every member has the message (`completion`); invitations and requests
        // go to bare JIDs, the same in both dialects (`delivery`), and configuration
        // followers see them as notices.
        Fact::ChannelCreated { .. }
        | Fact::SubscriptionChanged { .. }
        | Fact::PresenceChanged { .. }
        | Fact::HistoryCleared { .. }
        | Fact::Receipt(_)
        | Fact::PendingAdded { .. }
        | Fact::PendingResolved { .. } => {}
    }
}

/// Tells a MIX author that every member got (or saw) its message, from the channel, to each
/// of its online clients: an XEP-0184 `<received/>` naming the message by the id the author
/// gave it ("the 'id' attribute of the original message", §5; the archive id when it gave
/// none), or an XEP-0333 `<displayed/>` naming it by the channel's stanza-id (§6, markers in
/// group chats).
pub fn completion(
    service: &Service,
    channel: &Channel,
    author: &Participant,
    done: &Completion,
    out: &mut Stanzas,
) {
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", &jid)
            .attr("to", Template::TO);
        let stanza_id = service.ids.encode(done.message);
        match done.kind {
            ReceiptKind::Delivered => x
                .open("received", ns::RECEIPTS)
                .attr("id", done.client_id.as_deref().unwrap_or(&stanza_id)),
            ReceiptKind::Displayed => x.open("displayed", ns::MARKERS).attr("id", &stanza_id),
        };
        x.close();
    });
    address(&template, std::iter::once(author), out);
}

/// The reflection of a post, to every subscriber of the messages node — the sender's own
/// clients included: the reflection, carrying the archive id, is how they learn it was
/// accepted.
fn reflect(groups: &Groups, service: &Service, posted: &Posted, out: &mut Stanzas) {
    let Some(channel) = groups.channel_by_key(posted.channel) else {
        return;
    };
    let jid = service.channel_jid(&channel.name);
    let sender = channel.participant(&posted.sender).map(|p| p.id);
    let recipients = channel.subscribers(Nodes::MESSAGES);
    address_by_sight(channel, recipients, out, |shown| {
        // The payload and about 512 bytes of addresses, ids and `<mix/>` around it.
        let bytes = posted.submission.content.len() + 512;
        Template::with_capacity(bytes, |x| {
            render::channel_message(x, &service.ids, &jid, sender, posted, shown)
        })
    });
}

/// Typing and the like (XEP-0085), to everyone but the sender, whose clients know.
fn chat_state(
    groups: &Groups,
    service: &Service,
    key: i64,
    sender: &BareJid,
    nick: &str,
    state: ChatState,
    out: &mut Stanzas,
) {
    let from = From::Participant {
        jid: sender,
        told: false,
    };
    on_messages_node(groups, service, key, from, None, out, |x, _, shown| {
        x.open(state.name(), ns::CHATSTATES).close();
        render::mix_sender(x, nick, render::seen(sender, shown));
    });
}

/// An XEP-0424 retraction, from its author, naming the message by its (opaque) archive id;
/// or XEP-0425's moderation, from the channel itself, with `<moderated/>` naming the
/// moderator by its JID in the channel (`<channel>/<participant id>`), as a room names its
/// moderator by occupant JID. It is archived (XEP-0424 §6), so it carries its own archive id
/// as id and stanza-id, which the message's tombstone names.
fn retraction(groups: &Groups, service: &Service, r: &Retracted, out: &mut Stanzas) {
    let target = service.ids.encode(r.message);
    let stanza_id = service.ids.encode(r.id);
    let from = match r.moderated {
        Some(_) => From::Channel,
        None => From::Participant {
            jid: &r.by,
            told: true,
        },
    };
    let moderator = groups
        .channel_by_key(r.channel)
        .and_then(|c| c.participant(&r.by))
        .map(|p| p.id);
    on_messages_node(
        groups,
        service,
        r.channel,
        from,
        Some(&stanza_id),
        out,
        |x, channel_jid, shown| {
            let by = render::participant_jid(channel_jid, moderator);
            let moderation = r.moderated.as_ref().map(|reason| (by.as_str(), reason));
            render::retract(x, &target, moderation);
            render::mix_sender(x, &r.by_nick, render::seen(&r.by, shown));
            render::stanza_id(x, channel_jid, &stanza_id);
        },
    );
}

/// An XEP-0308 correction: the new payload with `<replace/>` naming the message. Its stanza
/// id names the message and the time, so that successive corrections differ.
fn correction(groups: &Groups, service: &Service, c: &Corrected, out: &mut Stanzas) {
    let id = service.ids.encode(c.message);
    let stanza_id = format!("{id}-edit-{}", c.at);
    on_messages_node(
        groups,
        service,
        c.channel,
        From::Participant {
            jid: &c.sender,
            told: true,
        },
        Some(&stanza_id),
        out,
        |x, _, shown| {
            x.raw(&c.submission.content);
            x.open("replace", ns::CORRECT).attr("id", &id).close();
            render::mix_sender(x, &c.nick, render::seen(&c.sender, shown));
        },
    );
}

/// A member's XEP-0444 reactions to a message, all of them (each update replaces the last);
/// archived like a message, so with its archive id as id and stanza-id.
fn reactions(groups: &Groups, service: &Service, r: &Reacted, out: &mut Stanzas) {
    let from = From::Participant {
        jid: &r.member,
        told: true,
    };
    let id = service.ids.encode(r.id);
    on_messages_node(
        groups,
        service,
        r.channel,
        from,
        Some(&id),
        out,
        |x, jid, shown| {
            render::reactions_to(x, &service.ids.encode(r.message), &r.reactions);
            render::mix_sender(x, &r.nick, render::seen(&r.member, shown));
            render::stanza_id(x, jid, &id);
        },
    );
}

/// Who a `groupchat` message on the messages node comes from.
enum From<'a> {
    /// The channel itself (a moderator's action).
    Channel,
    /// A participant, through the channel (`<channel>/<participant id>`, XEP-0369 §7.1.6);
    /// `told`: whether its own clients get the message too.
    Participant { jid: &'a BareJid, told: bool },
}

/// A `groupchat` message to the messages node's subscribers, `from` the channel or one of its
/// participants, with the payload `write` puts in (given the channel's JID and whether JIDs
/// are shown to the recipients, XEP-0404).
fn on_messages_node(
    groups: &Groups,
    service: &Service,
    key: i64,
    from: From,
    id: Option<&str>,
    out: &mut Stanzas,
    write: impl Fn(&mut Xml, &str, bool),
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let jid = service.channel_jid(&channel.name);
    let (sender, except) = match from {
        From::Channel => (None, None),
        From::Participant { jid, told } => (
            channel.participant(jid).map(|p| p.id),
            (!told).then_some(jid),
        ),
    };
    let recipients = channel
        .subscribers(Nodes::MESSAGES)
        .filter(|p| Some(&*p.jid) != except);
    let from = render::participant_jid(&jid, sender);
    address_by_sight(channel, recipients, out, |shown| {
        Template::new(|x| {
            render::open_groupchat(x, ns::COMPONENT, &from, Some(Template::TO), id);
            write(x, &jid, shown);
            x.close();
        })
    });
}

/// Participants as they now are (joined, added, or renamed), published on the participants
/// node: one event with an item each, so that an add of K users is one stanza per client of
/// each subscriber, not K.
pub fn joined(
    groups: &Groups,
    service: &Service,
    key: i64,
    participants: &[&Participant],
    out: &mut Stanzas,
) {
    joined_except(groups, service, key, participants, None, out);
}

/// [`joined`], told to all subscribers but `except`.
fn joined_except(
    groups: &Groups,
    service: &Service,
    key: i64,
    participants: &[&Participant],
    except: Option<&BareJid>,
    out: &mut Stanzas,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    if !channel
        .participants
        .any_reached(Nodes::PARTICIPANTS, except)
    {
        return;
    }
    let recipients = channel
        .subscribers(Nodes::PARTICIPANTS)
        .filter(move |p| Some(&*p.jid) != except);
    // XEP-0404: a JID-hidden channel's participants node holds no JID, for anyone; owners
    // and admins read JIDs from the JID map node.
    let shown = !channel.settings().jids_hidden;
    let template = render::event(
        &service.channel_jid(&channel.name),
        node::PARTICIPANTS,
        |x| {
            for participant in participants {
                x.open("item", "").attr("id", &participant.id.to_string());
                render::participant(x, participant, shown);
                x.close();
            }
        },
    );
    address(&template, recipients, out);
}

/// A participant gone (left or removed): its item retracted from the participants node. It
/// is no longer a participant, so it is not told.
fn participant_retracted(
    groups: &Groups,
    service: &Service,
    key: i64,
    participant: &Participant,
    out: &mut Stanzas,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let template = render::event(
        &service.channel_jid(&channel.name),
        node::PARTICIPANTS,
        |x| {
            x.open("retract", "")
                .attr("id", &participant.id.to_string())
                .close();
        },
    );
    address(&template, channel.subscribers(Nodes::PARTICIPANTS), out);
}

/// The information node's new item, named by the time of the change (XEP-0369 §7.2.2).
fn info_item(groups: &Groups, service: &Service, key: i64, info: &Info, out: &mut Stanzas) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let template = render::event(&service.channel_jid(&channel.name), node::INFO, |x| {
        x.open("item", "").attr("id", &iso_time(info.updated_at));
        render::info_form(x, info);
        x.close();
    });
    address(&template, channel.subscribers(Nodes::INFO), out);
}

/// A role, setting or mute changed: the configuration node's one item, the whole form as
/// it now is, naming who changed it last (XEP-0406). The form names owners, admins and
/// muted members by JID: in a JID-hidden channel only owners and admins are told.
fn configuration(groups: &Groups, service: &Service, key: i64, by: &BareJid, out: &mut Stanzas) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let template = render::event(&service.channel_jid(&channel.name), node::CONFIG, |x| {
        x.open("item", "").attr("id", &config::item_id(channel));
        config::form(x, channel, groups.rules.max_members, Some(by));
        x.close();
    });
    let recipients = channel
        .subscribers(Nodes::CONFIG)
        .filter(|p| channel.shows_jids_to_participant(p));
    address(&template, recipients, out);
}

/// An entry put on or taken off the allowed or banned node. Only owners and admins may read
/// those nodes, so only they are told, whatever they subscribed to.
fn access(
    groups: &Groups,
    service: &Service,
    key: i64,
    list: AccessList,
    entry: &BareJid,
    present: bool,
    out: &mut Stanzas,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let node = match list {
        AccessList::Allowed => node::ALLOWED,
        AccessList::Banned => node::BANNED,
    };
    let template = render::event(&service.channel_jid(&channel.name), node, |x| {
        x.open(if present { "item" } else { "retract" }, "")
            .attr("id", entry.as_str())
            .close();
    });
    address(&template, channel.admins(), out);
}

/// The configuration node's subscribers follow every change as it is noted in history: who
/// did what to whom, including what no other event shows (invitations, requests, refusals).
/// `notices` are of one channel; several (an add of K users notes K) go in one message, one
/// `<notice/>` each.
pub fn noticed(groups: &Groups, service: &Service, notices: &[&Notice], out: &mut Stanzas) {
    let Some(first) = notices.first() else {
        return;
    };
    let Some(channel) = groups.channel_by_key(first.channel) else {
        return;
    };
    // Few follow the configuration node: most notices are written for nobody.
    if !channel.participants.any_reached(Nodes::CONFIG, None) {
        return;
    }
    let jid = service.channel_jid(&channel.name);
    address_by_sight(channel, channel.subscribers(Nodes::CONFIG), out, |shown| {
        Template::new(|x| {
            x.open("message", ns::COMPONENT)
                .attr("from", &jid)
                .attr("to", Template::TO)
                .attr("type", "headline");
            for notice in notices {
                let target = notice.target.as_ref().filter(|_| shown);
                render::notice(x, notice.kind, render::seen(&notice.actor, shown), target);
            }
            x.close();
        })
    });
}

/// Every participant learns that the channel is gone, whatever it subscribed to: a pubsub
/// node deletion (which pubsub clients understand) together with MIX's `<destroy/>` naming
/// the channel. The channel is no longer in `Groups`; the fact carries it as it was.
fn destroyed(service: &Service, channel: &Channel, out: &mut Stanzas) {
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", &jid)
            .attr("to", Template::TO)
            .attr("type", "headline")
            .open("event", ns::PUBSUB_EVENT)
            .open("delete", "")
            .attr("node", node::PARTICIPANTS)
            .close()
            .close()
            .open("destroy", ns::MIX_CORE)
            .attr("channel", &channel.name)
            .close();
    });
    address(&template, channel.participants.iter(), out);
}

/// [`address`] for an event that names participants by JID: written with the JIDs for the
/// recipients who may see them, without for the others (XEP-0404: a JID-hidden channel's
/// participants who are not owners or admins). `render` writes the event, told whether the
/// JIDs are shown; a channel that shows JIDs writes it once.
fn address_by_sight<'a>(
    channel: &Channel,
    recipients: impl Iterator<Item = &'a Participant> + Clone,
    out: &mut Stanzas,
    render: impl Fn(bool) -> Template,
) {
    if !channel.settings().jids_hidden {
        return address(&render(true), recipients, out);
    }
    let (seeing, blind): (Vec<_>, Vec<_>) = recipients
        .filter(|p| p.dialect == Dialect::Mix)
        .partition(|p| channel.shows_jids_to_participant(p));
    for (shown, group) in [(true, seeing), (false, blind)] {
        if !group.is_empty() {
            address(&render(shown), group.into_iter(), out);
        }
    }
}

/// One copy of `template` per MIX participant among `recipients` as each is reached: its
/// bare JID when its server joined for it, else each of its clients online.
fn address<'a>(
    template: &Template,
    recipients: impl Iterator<Item = &'a Participant> + Clone,
    out: &mut Stanzas,
) {
    let recipients = recipients.filter(|p| p.dialect == Dialect::Mix);
    let copies = recipients.clone().map(|p| match p.reach {
        Reach::Server => 1,
        Reach::Direct => p.online.len(),
    });
    template.reserve_copies(copies.sum(), out);
    for participant in recipients {
        match participant.reach {
            Reach::Server => template.address(participant.jid.as_str(), out),
            Reach::Direct => {
                for client in &participant.online {
                    template.address(client.as_str(), out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Addressing: who gets a copy, by how each participant is reached.

    use jid::Jid;

    use super::*;
    use crate::core::testing::{coven, jid, text};

    /// The `to` of each stanza `facts` make, in order.
    fn recipients(g: &Groups, facts: &[Fact]) -> Vec<String> {
        let service = crate::dialect::testing::service_at("mix.localhost");
        let mut out = Stanzas::default();
        for f in facts {
            fact(g, &service, f, &mut out);
        }
        out.iter()
            .map(|s| {
                let start = s.find(" to='").expect("a to") + 5;
                s[start..start + s[start..].find('\'').unwrap()].to_string()
            })
            .collect()
    }

    fn join(g: &mut Groups, from: &str) -> Vec<Fact> {
        let from: Jid = from.parse().unwrap();
        g.join_from("coven", &from, None, Nodes::ALL, 9).unwrap().1
    }

    #[test]
    fn a_participant_whose_server_joined_gets_one_copy_at_its_bare_jid() {
        let mut g = coven();
        join(&mut g, "carol@localhost");
        join(&mut g, "dave@localhost/phone");
        join(&mut g, "dave@localhost/laptop");
        let facts = g
            .post("coven", &jid("bob@localhost"), text("hi"), 10)
            .unwrap();
        let mut to = recipients(&g, &facts);
        to.sort();
        // alice and bob joined without a client online: nothing for them.
        assert_eq!(
            to,
            [
                "carol@localhost",
                "dave@localhost/laptop",
                "dave@localhost/phone"
            ]
        );
    }

    #[test]
    fn a_direct_joiner_hears_at_once_and_is_not_told_of_its_own_join() {
        let mut g = coven();
        // The owner's client joins again directly: online from now on, with no presence.
        join(&mut g, "alice@localhost/laptop");
        let facts = join(&mut g, "carol@localhost/phone");
        let joined: Vec<Fact> = facts
            .into_iter()
            .filter(|f| matches!(f, Fact::Joined { .. }))
            .collect();
        assert_eq!(recipients(&g, &joined), ["alice@localhost/laptop"]);
        let facts = g
            .post("coven", &jid("bob@localhost"), text("hi"), 10)
            .unwrap();
        let mut to = recipients(&g, &facts);
        to.sort();
        assert_eq!(to, ["alice@localhost/laptop", "carol@localhost/phone"]);
    }

    #[test]
    fn in_a_hidden_channel_only_owners_and_admins_get_the_senders_jid() {
        let mut g = coven();
        let hide = crate::core::SettingsChange {
            jids_hidden: Some(true),
            ..Default::default()
        };
        g.change_settings("coven", &jid("alice@localhost"), hide, 5)
            .unwrap();
        join(&mut g, "alice@localhost/laptop");
        join(&mut g, "carol@localhost/phone");
        let facts = g
            .post("coven", &jid("bob@localhost"), text("hi"), 10)
            .unwrap();
        let service = crate::dialect::testing::service_at("mix.localhost");
        let mut out = Stanzas::default();
        for f in &facts {
            fact(&g, &service, f, &mut out);
        }
        let at = |to: &str| {
            out.iter()
                .find(|s| s.contains(&format!(" to='{to}'")))
                .unwrap()
                .into_owned()
        };
        assert!(at("alice@localhost/laptop").contains("<jid>bob@localhost</jid>"));
        let at_carol = at("carol@localhost/phone");
        assert!(!at_carol.contains("bob@localhost"), "{at_carol}");
        assert!(at_carol.contains("<nick>bob</nick>"), "{at_carol}");
    }
}
