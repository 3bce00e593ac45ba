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
use crate::xml::{ns, Template, Xml};

use super::config;
use super::render;

/// Appends to `out` what MIX clients are told of `fact`, which the core has already applied
/// to `groups`. Every fact is listed, so that a new one does not compile until MIX says what
/// its clients learn of it.
pub fn fact(groups: &Groups, service: &Service, fact: &Fact, out: &mut Vec<String>) {
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

/// Tells a MIX author that every member got (or saw) its message: an XEP-0184
/// `<received/>` or an XEP-0333 `<displayed/>` from the channel, to each of its online
/// clients.
pub fn completion(
    service: &Service,
    channel: &Channel,
    author: &Participant,
    done: &Completion,
    out: &mut Vec<String>,
) {
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", &jid)
            .attr("to", Template::TO);
        match done.kind {
            ReceiptKind::Delivered => x.open("received", ns::RECEIPTS),
            ReceiptKind::Displayed => x.open("displayed", ns::MARKERS),
        };
        x.attr("id", &service.ids.encode(done.message)).close();
    });
    address(&template, std::iter::once(author), out);
}

/// The reflection of a post, to every subscriber of the messages node — the sender's own
/// clients included: the reflection, carrying the archive id, is how they learn it was
/// accepted.
fn reflect(groups: &Groups, service: &Service, posted: &Posted, out: &mut Vec<String>) {
    let Some(channel) = groups.channel_by_key(posted.channel) else {
        return;
    };
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| render::channel_message(x, &service.ids, &jid, posted));
    address(&template, channel.subscribers(Nodes::MESSAGES), out);
}

/// Typing and the like (XEP-0085), to everyone but the sender, whose clients know.
fn chat_state(
    groups: &Groups,
    service: &Service,
    key: i64,
    sender: &BareJid,
    nick: &str,
    state: ChatState,
    out: &mut Vec<String>,
) {
    on_messages_node(groups, service, key, Some(sender), None, out, |x, _| {
        x.open(state.name(), ns::CHATSTATES).close();
        render::mix_sender(x, nick, sender);
    });
}

/// An XEP-0424 retraction (with XEP-0425's `<moderated/>` when a moderator removed someone
/// else's message), naming the message by its (opaque) archive id.
fn retraction(groups: &Groups, service: &Service, r: &Retracted, out: &mut Vec<String>) {
    let id = service.ids.encode(r.message);
    let stanza_id = format!("retract-{id}");
    on_messages_node(
        groups,
        service,
        r.channel,
        None,
        Some(&stanza_id),
        out,
        |x, channel_jid| {
            x.open("retract", ns::RETRACT).attr("id", &id);
            if let Some(reason) = &r.moderated {
                x.open("moderated", ns::MODERATE)
                    .attr("by", channel_jid)
                    .close();
                if let Some(reason) = reason {
                    x.leaf("reason", "", reason);
                }
            }
            x.close();
            render::mix_sender(x, &r.by_nick, &r.by);
        },
    );
}

/// An XEP-0308 correction: the new payload with `<replace/>` naming the message. Its stanza
/// id names the message and the time, so that successive corrections differ.
fn correction(groups: &Groups, service: &Service, c: &Corrected, out: &mut Vec<String>) {
    let id = service.ids.encode(c.message);
    let stanza_id = format!("{id}-edit-{}", c.at);
    on_messages_node(
        groups,
        service,
        c.channel,
        None,
        Some(&stanza_id),
        out,
        |x, _| {
            x.raw(&c.submission.content);
            x.open("replace", ns::CORRECT).attr("id", &id).close();
            render::mix_sender(x, &c.nick, &c.sender);
        },
    );
}

/// A member's XEP-0444 reactions to a message, all of them (each update replaces the last).
fn reactions(groups: &Groups, service: &Service, r: &Reacted, out: &mut Vec<String>) {
    on_messages_node(groups, service, r.channel, None, None, out, |x, _| {
        x.open("reactions", ns::REACTIONS)
            .attr("id", &service.ids.encode(r.message));
        for reaction in &r.reactions {
            x.leaf("reaction", "", reaction);
        }
        x.close();
        render::mix_sender(x, &r.nick, &r.member);
    });
}

/// A `groupchat` message from the channel to the messages node's subscribers (but `except`),
/// with the payload `write` puts in (given the channel's JID).
fn on_messages_node(
    groups: &Groups,
    service: &Service,
    key: i64,
    except: Option<&BareJid>,
    id: Option<&str>,
    out: &mut Vec<String>,
    write: impl FnOnce(&mut Xml, &str),
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        render::open_groupchat(x, ns::COMPONENT, &jid, Some(Template::TO), id);
        write(x, &jid);
        x.close();
    });
    let recipients = channel
        .subscribers(Nodes::MESSAGES)
        .filter(|p| Some(&p.jid) != except);
    address(&template, recipients, out);
}

/// Participants as they now are (joined, added, or renamed), published on the participants
/// node: one event with an item each, so that an add of K users is one stanza per client of
/// each subscriber, not K.
pub fn joined(
    groups: &Groups,
    service: &Service,
    key: i64,
    participants: &[&Participant],
    out: &mut Vec<String>,
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
    out: &mut Vec<String>,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let recipients = || {
        channel
            .subscribers(Nodes::PARTICIPANTS)
            .filter(move |p| Some(&p.jid) != except)
    };
    if !recipients().any(live) {
        return;
    }
    let template = render::event(
        &service.channel_jid(&channel.name),
        node::PARTICIPANTS,
        |x| {
            for participant in participants {
                x.open("item", "").attr("id", &participant.id.to_string());
                render::participant(x, participant);
                x.close();
            }
        },
    );
    address(&template, recipients(), out);
}

/// A participant gone (left or removed): its item retracted from the participants node. It
/// is no longer a participant, so it is not told.
fn participant_retracted(
    groups: &Groups,
    service: &Service,
    key: i64,
    participant: &Participant,
    out: &mut Vec<String>,
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
fn info_item(groups: &Groups, service: &Service, key: i64, info: &Info, out: &mut Vec<String>) {
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
/// it now is, naming who changed it last (XEP-0406).
fn configuration(
    groups: &Groups,
    service: &Service,
    key: i64,
    by: &BareJid,
    out: &mut Vec<String>,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let template = render::event(&service.channel_jid(&channel.name), node::CONFIG, |x| {
        x.open("item", "").attr("id", config::ITEM);
        config::form(x, channel, groups.rules.max_members, Some(by));
        x.close();
    });
    address(&template, channel.subscribers(Nodes::CONFIG), out);
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
    out: &mut Vec<String>,
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
pub fn noticed(groups: &Groups, service: &Service, notices: &[&Notice], out: &mut Vec<String>) {
    let Some(first) = notices.first() else {
        return;
    };
    let Some(channel) = groups.channel_by_key(first.channel) else {
        return;
    };
    // Few follow the configuration node: most notices are written for nobody.
    let mut followers = channel.subscribers(Nodes::CONFIG);
    if !followers.any(live) {
        return;
    }
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", &jid)
            .attr("to", Template::TO)
            .attr("type", "headline");
        for notice in notices {
            render::notice(x, notice.kind, &notice.actor, notice.target.as_ref());
        }
        x.close();
    });
    address(&template, channel.subscribers(Nodes::CONFIG), out);
}

/// Every participant learns that the channel is gone, whatever it subscribed to: a pubsub
/// node deletion (which pubsub clients understand) together with MIX's `<destroy/>` naming
/// the channel. The channel is no longer in `Groups`; the fact carries it as it was.
fn destroyed(service: &Service, channel: &Channel, out: &mut Vec<String>) {
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

/// Whether a MIX event to `participant` would reach anyone now: its server (reached at the
/// bare JID, which delivers or keeps it), or at least one of its clients online.
fn live(participant: &Participant) -> bool {
    participant.dialect == Dialect::Mix
        && match participant.reach {
            Reach::Server => true,
            Reach::Direct => !participant.online.is_empty(),
        }
}

/// One copy of `template` per MIX participant among `recipients` as each is reached: its
/// bare JID when its server joined for it, else each of its clients online.
fn address<'a>(
    template: &Template,
    recipients: impl Iterator<Item = &'a Participant>,
    out: &mut Vec<String>,
) {
    for participant in recipients.filter(|p| p.dialect == Dialect::Mix) {
        match participant.reach {
            Reach::Server => out.push(template.to(participant.jid.as_str())),
            Reach::Direct => {
                for client in &participant.online {
                    out.push(template.to(client.as_str()));
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
        let mut out = Vec::new();
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
}
