//! Delivery: what each stored fact means for each participant's clients, in the dialect
//! each understands. A fact is written once per dialect as a template and addressed:
//! for MIX participants, to every online full JID (XEP-0403 presence) of those subscribed to
//! the node it concerns; for FlyChat participants, to the bare JID (`normal` messages, which
//! stock servers deliver to every resource or keep offline).

use jid::BareJid;

use crate::core::iso_time;
use crate::core::{
    AccessList, Channel, Dialect, Fact, Groups, Nodes, Participant, PendingKind, ReceiptKind, Role,
};
use crate::dialect::{shapes, Service};
use crate::flychat;
use crate::mix;
use crate::mix::render;
use crate::store::Completion;
use crate::xml::node;
use crate::xml::{ns, Template, Xml};

/// Appends to `out` the stanzas that tell participants about `facts`, which the core has
/// already applied to `groups`.
pub fn deliver(groups: &Groups, service: &Service, facts: &[Fact], out: &mut Vec<String>) {
    for fact in facts {
        mix(groups, service, fact, out);
        flychat(groups, service, fact, out);
        membership(groups, service, fact, out);
    }
}

/// Invitations, join requests and their outcomes, the same in both dialects: to the invitee,
/// to the owners and admins who decide, and to the requester. Each carries a readable
/// `<body>` too, which clients that know nothing of these elements show.
fn membership(groups: &Groups, service: &Service, fact: &Fact, out: &mut Vec<String>) {
    let (Fact::PendingAdded { key, pending } | Fact::PendingResolved { key, pending, .. }) = fact
    else {
        return;
    };
    let Some(channel) = groups.channel_by_key(*key) else {
        return;
    };
    let jid = service.channel_jid(&channel.name);
    let kind = match pending.kind {
        PendingKind::Invited => "invitation",
        PendingKind::Requested => "request",
    };
    // Owners and admins, whether or not they take part.
    let mut deciders: Vec<&BareJid> = channel.admins().map(|p| &p.jid).collect();
    for owner in &channel.owners {
        if !deciders.contains(&owner) {
            deciders.push(owner);
        }
    }
    let (template, recipients) = match fact {
        Fact::PendingAdded { .. } if pending.kind == PendingKind::Invited => {
            let template = shapes::normal_message(&jid, |x| {
                x.leaf(
                    "body",
                    "",
                    &format!("{} invites you to join {jid}", pending.by),
                );
                shapes::invitation(x, &jid, pending);
            });
            (template, vec![&pending.jid])
        }
        Fact::PendingAdded { .. } => {
            let template = shapes::normal_message(&jid, |x| {
                x.leaf("body", "", &format!("{} asks to join {jid}", pending.jid));
                x.open("join-request", ns::MIXD_ADMIN)
                    .attr("channel", &jid)
                    .attr("jid", pending.jid.as_str())
                    .attr("at", &iso_time(pending.at))
                    .close();
            });
            (template, deciders)
        }
        Fact::PendingResolved { by, accepted, .. } => {
            let outcome = if *accepted { "accepted" } else { "declined" };
            let text = match pending.kind {
                PendingKind::Invited => format!("{by} {outcome} the invitation to {jid}"),
                PendingKind::Requested => {
                    format!(
                        "{by} {outcome} the request of {} to join {jid}",
                        pending.jid
                    )
                }
            };
            let template = shapes::normal_message(&jid, |x| {
                x.leaf("body", "", &text);
                x.open("decision", ns::MIXD_ADMIN)
                    .attr("channel", &jid)
                    .attr("kind", kind)
                    .attr("jid", pending.jid.as_str())
                    .attr("accepted", if *accepted { "true" } else { "false" })
                    .attr("by", by.as_str())
                    .close();
            });
            deciders.push(&pending.jid);
            (template, deciders)
        }
        _ => return,
    };
    for recipient in recipients {
        out.push(template.to(recipient.as_str()));
    }
}

/// What FlyChat clients are told (flychat-wire.md §2–3): messages from others, and the
/// group events that drive the SDK's `groupProfileListener`.
fn flychat(groups: &Groups, service: &Service, fact: &Fact, out: &mut Vec<String>) {
    if let Fact::ChannelDestroyed { channel, .. } = fact {
        let template =
            flychat::render::group_deleted(&service.channel_jid(&channel.name), &channel.name);
        for p in channel
            .participants
            .iter()
            .filter(|p| p.dialect == Dialect::FlyChat)
        {
            out.push(template.to(p.jid.as_str()));
        }
        return;
    }
    let Some(channel) = groups.channel_by_key(fact.channel_key()) else {
        return;
    };
    // Most channels have no FlyChat participant: write nothing for them.
    let removed_flychat =
        matches!(fact, Fact::Left { participant, .. } if participant.dialect == Dialect::FlyChat);
    if !removed_flychat
        && !channel
            .participants
            .iter()
            .any(|p| p.dialect == Dialect::FlyChat)
    {
        return;
    }
    let jid = service.channel_jid(&channel.name);
    // The stanza, whom not to send it to, and whom to send it to besides the participants.
    let (template, except, also) = match fact {
        Fact::Posted(posted) => (
            flychat::render::message(&jid, posted),
            Some(&posted.sender),
            None,
        ),
        Fact::Joined {
            participant, by, ..
        } => (
            flychat::render::user_added(&jid, channel, participant, by),
            None,
            None,
        ),
        Fact::Left {
            participant, by, ..
        } => (
            flychat::render::user_left(&jid, participant, by),
            None,
            Some(participant),
        ),
        Fact::InfoChanged { info, by, .. } => {
            (flychat::render::profile_updated(&jid, info, by), None, None)
        }
        Fact::RoleChanged {
            jid: target,
            role,
            by,
            ..
        } => {
            let template = match role {
                Role::Admin => flychat::render::made_admin(&jid, target, by),
                Role::Owner => flychat::render::info_event(
                    &jid,
                    "owner_changed",
                    by,
                    &[("new_owner", target.as_str())],
                ),
                Role::Member => flychat::render::info_event(
                    &jid,
                    "admin_revoked",
                    by,
                    &[("jid", target.as_str())],
                ),
            };
            (template, None, None)
        }
        Fact::SettingsChanged { settings, by, .. } => {
            let limit = settings
                .max_members
                .unwrap_or(groups.rules.max_members)
                .to_string();
            let template = flychat::render::info_event(
                &jid,
                "group_settings_updated",
                by,
                &[
                    ("policy", settings.policy.name()),
                    ("muted", if settings.muted { "1" } else { "0" }),
                    ("max_members", &limit),
                ],
            );
            (template, None, None)
        }
        Fact::Muted {
            jid: target,
            until,
            by,
            ..
        } => {
            let until = flychat::render::time(*until);
            let template = flychat::render::info_event(
                &jid,
                "user_muted",
                by,
                &[("jid", target.as_str()), ("until", &until)],
            );
            (template, None, None)
        }
        Fact::AccessChanged {
            list,
            entry,
            present,
            by,
            ..
        } => {
            let list = match list {
                AccessList::Allowed => "allowed",
                AccessList::Banned => "banned",
            };
            let template = flychat::render::info_event(
                &jid,
                "access_updated",
                by,
                &[
                    ("list", list),
                    ("entry", entry.as_str()),
                    ("present", if *present { "1" } else { "0" }),
                ],
            );
            (template, None, None)
        }
        Fact::ChatState { sender, state, .. } => (
            flychat::render::typing(&jid, &channel.name, sender, *state),
            Some(sender),
            None,
        ),
        Fact::Retracted(r) => (flychat::render::recall(&jid, &channel.name, r), None, None),
        Fact::PendingAdded { pending, .. } => {
            let status = match pending.kind {
                PendingKind::Invited => "user_invited",
                PendingKind::Requested => "join_requested",
            };
            let template = flychat::render::info_event(
                &jid,
                status,
                &pending.by,
                &[("jid", pending.jid.as_str())],
            );
            (template, None, None)
        }
        Fact::PendingResolved {
            pending,
            by,
            accepted: false,
            ..
        } => {
            let template =
                flychat::render::info_event(&jid, "declined", by, &[("jid", pending.jid.as_str())]);
            (template, None, None)
        }
        _ => return,
    };
    let recipients = channel
        .participants
        .iter()
        .chain(also)
        .filter(|p| p.dialect == Dialect::FlyChat && Some(&p.jid) != except);
    for participant in recipients {
        out.push(template.to(participant.jid.as_str()));
    }
}

/// What MIX clients are told.
fn mix(groups: &Groups, service: &Service, fact: &Fact, out: &mut Vec<String>) {
    match fact {
        Fact::Posted(posted) => {
            let Some(channel) = groups.channel_by_key(posted.channel) else {
                return;
            };
            let jid = service.channel_jid(&channel.name);
            let template = Template::new(|x| render::channel_message(x, &jid, posted));
            address(&template, channel.subscribers(Nodes::MESSAGES), out);
        }
        Fact::ChatState {
            key,
            sender,
            nick,
            state,
        } => {
            on_messages_node(groups, service, *key, Some(sender), None, out, |x| {
                x.open(state.name(), ns::CHATSTATES).close();
                render::mix_sender(x, nick, sender);
            });
        }
        Fact::Retracted(r) => {
            let id = r.message.to_string();
            let channel_jid = groups
                .channel_by_key(r.channel)
                .map(|c| service.channel_jid(&c.name));
            on_messages_node(
                groups,
                service,
                r.channel,
                None,
                Some(&format!("retract-{id}")),
                out,
                |x| {
                    x.open("retract", ns::RETRACT).attr("id", &id);
                    if let Some(reason) = &r.moderated {
                        x.open("moderated", ns::MODERATE)
                            .attr("by", channel_jid.as_deref().unwrap_or_default())
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
        Fact::Corrected(c) => {
            let id = c.message.to_string();
            on_messages_node(
                groups,
                service,
                c.channel,
                None,
                Some(&format!("{id}-edit-{}", c.at)),
                out,
                |x| {
                    x.raw(&c.submission.content);
                    x.open("replace", ns::CORRECT).attr("id", &id).close();
                    render::mix_sender(x, &c.nick, &c.sender);
                },
            );
        }
        Fact::Reacted(r) => {
            on_messages_node(groups, service, r.channel, None, None, out, |x| {
                x.open("reactions", ns::REACTIONS)
                    .attr("id", &r.message.to_string());
                for reaction in &r.reactions {
                    x.leaf("reaction", "", reaction);
                }
                x.close();
                render::mix_sender(x, &r.nick, &r.member);
            });
        }
        Fact::Joined {
            key, participant, ..
        } => participant_item(groups, service, *key, participant, out),
        Fact::NickChanged { key, jid, .. } => {
            if let Some(p) = groups.channel_by_key(*key).and_then(|c| c.participant(jid)) {
                participant_item(groups, service, *key, p, out);
            }
        }
        Fact::Left {
            key, participant, ..
        } => {
            let Some(channel) = groups.channel_by_key(*key) else {
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
        Fact::InfoChanged { key, info, .. } => {
            let Some(channel) = groups.channel_by_key(*key) else {
                return;
            };
            let template = render::event(&service.channel_jid(&channel.name), node::INFO, |x| {
                x.open("item", "").attr("id", &iso_time(info.updated_at));
                render::info_form(x, info);
                x.close();
            });
            address(&template, channel.subscribers(Nodes::INFO), out);
        }
        Fact::ChannelDestroyed { channel, .. } => destroyed(service, channel, out),
        Fact::RoleChanged { key, by, .. }
        | Fact::SettingsChanged { key, by, .. }
        | Fact::Muted { key, by, .. } => {
            let Some(channel) = groups.channel_by_key(*key) else {
                return;
            };
            let template = render::event(&service.channel_jid(&channel.name), node::CONFIG, |x| {
                x.open("item", "").attr("id", mix::config::ITEM);
                mix::config::form(x, channel, groups.rules.max_members, Some(by));
                x.close();
            });
            address(&template, channel.subscribers(Nodes::CONFIG), out);
        }
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            ..
        } => {
            let Some(channel) = groups.channel_by_key(*key) else {
                return;
            };
            let node = match list {
                AccessList::Allowed => node::ALLOWED,
                AccessList::Banned => node::BANNED,
            };
            let template = render::event(&service.channel_jid(&channel.name), node, |x| {
                x.open(if *present { "item" } else { "retract" }, "")
                    .attr("id", entry.as_str())
                    .close();
            });
            address(&template, channel.admins(), out);
        }
        Fact::Noticed(notice) => {
            // The configuration node's subscribers follow every change as it is noted in
            // history: who did what to whom, including what no other event shows
            // (invitations, requests, refusals).
            let Some(channel) = groups.channel_by_key(notice.channel) else {
                return;
            };
            // Few follow the configuration node: most notices are written for nobody.
            let mut followers = channel.subscribers(Nodes::CONFIG);
            if !followers.any(|p| p.dialect == Dialect::Mix && !p.online.is_empty()) {
                return;
            }
            let jid = service.channel_jid(&channel.name);
            let template = Template::new(|x| {
                x.open("message", ns::COMPONENT)
                    .attr("from", &jid)
                    .attr("to", Template::TO)
                    .attr("type", "headline");
                render::notice(x, notice.kind, &notice.actor, notice.target.as_ref());
                x.close();
            });
            address(&template, channel.subscribers(Nodes::CONFIG), out);
        }
        Fact::ChannelCreated { .. }
        | Fact::SubscriptionChanged { .. }
        | Fact::PresenceChanged { .. }
        | Fact::Receipt(_)
        | Fact::PendingAdded { .. }
        | Fact::PendingResolved { .. }
        | Fact::HistoryCleared { .. } => {}
    }
}

/// A `groupchat` message from the channel to the messages node's subscribers (but `except`),
/// with the payload `write` puts in.
fn on_messages_node(
    groups: &Groups,
    service: &Service,
    key: i64,
    except: Option<&BareJid>,
    id: Option<&str>,
    out: &mut Vec<String>,
    write: impl FnOnce(&mut Xml),
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        render::open_groupchat(x, ns::COMPONENT, &jid, Some(Template::TO), id);
        write(x);
        x.close();
    });
    let recipients = channel
        .subscribers(Nodes::MESSAGES)
        .filter(|p| Some(&p.jid) != except);
    address(&template, recipients, out);
}

/// Tells authors that every member got (or saw) their message: an XEP-0184 `<received/>`
/// or an XEP-0333 `<displayed/>` from the channel, to the author's online clients.
pub fn completions(
    groups: &Groups,
    service: &Service,
    completions: &[Completion],
    out: &mut Vec<String>,
) {
    for done in completions {
        let Some(channel) = groups.channel_by_key(done.channel) else {
            continue;
        };
        let Some(author) = channel.participant(&done.author) else {
            continue;
        };
        let jid = service.channel_jid(&channel.name);
        if author.dialect == Dialect::FlyChat {
            let template = flychat::render::aggregated_receipt(&jid, &channel.name, done);
            out.push(template.to(author.jid.as_str()));
            continue;
        }
        let template = Template::new(|x| {
            x.open("message", ns::COMPONENT)
                .attr("from", &jid)
                .attr("to", Template::TO);
            match done.kind {
                ReceiptKind::Delivered => x.open("received", ns::RECEIPTS),
                ReceiptKind::Displayed => x.open("displayed", ns::MARKERS),
            };
            x.attr("id", &done.message.to_string()).close();
        });
        address(&template, std::iter::once(author), out);
    }
}

fn address<'a>(
    template: &Template,
    recipients: impl Iterator<Item = &'a Participant>,
    out: &mut Vec<String>,
) {
    for participant in recipients.filter(|p| p.dialect == Dialect::Mix) {
        for client in &participant.online {
            out.push(template.to(client.as_str()));
        }
    }
}

fn participant_item(
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
            x.open("item", "").attr("id", &participant.id.to_string());
            render::participant(x, participant);
            x.close();
        },
    );
    address(&template, channel.subscribers(Nodes::PARTICIPANTS), out);
}

/// Every participant learns that the channel is gone: a pubsub node deletion (which pubsub
/// clients understand) together with MIX's `<destroy/>` naming the channel.
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
