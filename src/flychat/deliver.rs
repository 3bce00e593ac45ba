//! What FlyChat clients are told of each fact (flychat-wire.md §2–3): messages from others,
//! the group events that drive the SDK's `groupProfileListener`, typing, recalls, and
//! aggregated receipts. The SDK has no node subscriptions and announces no presence to the
//! group, so everything goes to each FlyChat participant's bare JID as a `normal` message,
//! which stock servers deliver to every online resource or keep offline. MIX participants
//! are skipped here: their dialect tells them (`mix::deliver`).
//!
//! Each event is written once as a [`Template`] and copied per recipient. An add of several
//! users is told in as many stanzas as there are recipients ([`joined`]), not one per pair.

use std::collections::HashMap;

use jid::BareJid;

use crate::core::{
    AccessList, Channel, Corrected, Dialect, Fact, Groups, Micros, Participant, Pending,
    PendingKind, Role, Settings,
};
use crate::dialect::proxy::Naming;
use crate::dialect::Service;
use crate::store::Completion;
use crate::xml::{Stanzas, Template};

use super::render;

/// Appends to `out` what FlyChat clients are told of `fact`, which the core has already
/// applied to `groups`. Every fact is listed, so that a new one does not compile until
/// FlyChat says what its clients learn of it.
pub fn fact(groups: &Groups, service: &Service, fact: &Fact, out: &mut Stanzas) {
    let all = Audience::default();
    // Events about users who take no part (invitees, those who ask, access entries) name
    // them by JID alone: in a JID-hidden channel only owners and admins are told.
    let seeing = Audience {
        seeing_only: true,
        ..all
    };
    match fact {
        Fact::Posted(posted) => {
            // The SDK drops the sender's own copy (flychat-wire.md §2): none is written.
            let others = Audience::except(&posted.sender);
            tell(
                groups,
                service,
                posted.channel,
                others,
                out,
                |jid, _, names| render::message(&service.ids, jid, posted, names),
            );
        }
        Fact::ChatState {
            key, sender, state, ..
        } => tell(
            groups,
            service,
            *key,
            Audience::except(sender),
            out,
            |jid, _, names| render::typing(jid, &names.jid(sender), *state),
        ),
        Fact::Retracted(r) => tell(groups, service, r.channel, all, out, |jid, c, names| {
            render::recall(&service.ids, jid, &c.name, r, names)
        }),
        Fact::Joined {
            key,
            participant,
            by,
            ..
        } => joined(groups, service, *key, by, &[participant], out),
        Fact::Left {
            key,
            participant,
            by,
        } => {
            // The one who left (or was removed) hears of it too, no longer a participant:
            // its SDK reports `userLeft` or `userRemoved` for itself as for the others.
            let also = Audience {
                also: Some(participant),
                ..all
            };
            tell(groups, service, *key, also, out, |jid, _, names| {
                render::user_left(jid, participant, by, names)
            });
        }
        Fact::InfoChanged { key, info, by } => {
            tell(groups, service, *key, all, out, |jid, _, names| {
                render::profile_updated(jid, info, &names.jid(by))
            })
        }
        Fact::RoleChanged {
            key,
            jid: target,
            role,
            by,
        } => tell(groups, service, *key, all, out, |jid, _, names| {
            role_changed(jid, &names.jid(target), *role, &names.jid(by))
        }),
        Fact::SettingsChanged { key, settings, by } => {
            let limit = groups.rules.max_members;
            tell(groups, service, *key, all, out, |jid, _, names| {
                settings_changed(jid, settings, limit, &names.jid(by))
            });
        }
        Fact::Muted {
            key,
            jid: target,
            until,
            by,
        } => tell(groups, service, *key, all, out, |jid, _, names| {
            muted(jid, &names.jid(target), *until, &names.jid(by))
        }),
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            by,
        } => tell(groups, service, *key, seeing, out, |jid, _, _| {
            access_changed(jid, *list, entry, *present, by)
        }),
        Fact::PendingAdded { key, pending } => {
            tell(groups, service, *key, seeing, out, |jid, _, _| {
                pending_added(jid, pending)
            })
        }
        Fact::PendingResolved {
            key,
            pending,
            by,
            accepted: false,
        } => tell(groups, service, *key, seeing, out, |jid, _, _| {
            render::info_event(
                jid,
                "declined",
                by.as_str(),
                &[("jid", pending.jid.as_str())],
            )
        }),
        Fact::Corrected(corrected) => {
            // The SDK reads an edit from the `edit_msg_id` of `<chatcontent/>`, which only
            // an SDK's own edit carries: a MIX client's correction (XEP-0308) would show as
            // a second message with the first one's id, so FlyChat clients are not told of
            // it (their history shows the corrected text).
            if edited_by_flychat(groups, corrected) {
                tell(
                    groups,
                    service,
                    corrected.channel,
                    Audience::except(&corrected.sender),
                    out,
                    |jid, _, names| render::edit(&service.ids, jid, corrected, names),
                );
            }
        }
        Fact::ChannelDestroyed { channel, .. } => destroyed(service, channel, out),
        // Told to nobody: an approved request is told by its `Joined`; the SDK's wire
        // (flychat-wire.md) has no event for a reaction or a nick change, and
        // no notices beside the events above; FlyChat clients have no subscriptions or
        // presence in a group; a new channel has no participant yet; cleared history
        // concerns only its requester (which has its reply); a receipt is told to the author
        // once every member has the message (`completion`).
        Fact::PendingResolved { accepted: true, .. }
        | Fact::Reacted(_)
        | Fact::NickChanged { .. }
        | Fact::Noticed(_)
        | Fact::SubscriptionChanged { .. }
        | Fact::PresenceChanged { .. }
        | Fact::ChannelCreated { .. }
        | Fact::HistoryCleared { .. }
        | Fact::Receipt(_) => {}
    }
}

/// Whether the correction is an SDK edit: its author takes part through FlyChat.
fn edited_by_flychat(groups: &Groups, corrected: &Corrected) -> bool {
    groups
        .channel_by_key(corrected.channel)
        .and_then(|channel| channel.participant(&corrected.sender))
        .is_some_and(|author| author.dialect == Dialect::FlyChat)
}

/// Users `by` added to (or who joined) channel `key` in one operation: `userAdded`, one
/// stanza per FlyChat participant, however many were added.
///
/// The SDK's `userAdded` carries one user: it reads the first `<participant>` it finds in
/// the event and ignores the rest (flychat-wire.md §3; checked in mirrorfly-sdk 4.25.10, whose
/// lookup returns the first match), and after every group event it fetches the participant
/// list again. So each added user is told of its own addition — how its SDK learns that it
/// is in the group, with the group's name — and each member who was there before is told
/// once, of the first added user; the list it then fetches shows them all, and history keeps
/// one notice per added user. Telling every member of every added user, as before, made an
/// add of K users to a group of M members K × (M + K) stanzas (65,793 for one `create_group`
/// of 255); now it is M + K. A group being created has no members before, so its K
/// participants get K stanzas.
pub fn joined(
    groups: &Groups,
    service: &Service,
    key: i64,
    by: &BareJid,
    added: &[&Participant],
    out: &mut Stanzas,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let Some(first) = added.first() else {
        return;
    };
    let recipients = || {
        channel
            .participants
            .iter()
            .filter(|p| p.dialect == Dialect::FlyChat)
    };
    if !channel.participants.any_speaks(Dialect::FlyChat) {
        return;
    }
    let jid = service.channel_jid(&channel.name);
    let own: HashMap<&BareJid, &Participant> = added.iter().map(|p| (&*p.jid, *p)).collect();
    // One template for those who see JIDs and one for those who do not (a JID-hidden
    // channel's members), each written when first needed; each added user sees itself.
    let mut to_others: [Option<Template>; 2] = [None, None];
    for recipient in recipients() {
        let shown = channel.shows_jids_to_participant(recipient);
        let names = |viewer: &BareJid| match shown {
            true => Naming::real(&jid),
            false => Naming::hidden(channel, &jid).seen_by(viewer),
        };
        match own.get(&*recipient.jid) {
            Some(itself) if itself.jid != first.jid || !shown => {
                render::user_added(&jid, channel, itself, by, &names(&itself.jid))
                    .address(recipient.jid.as_str(), out)
            }
            _ => to_others[usize::from(shown)]
                .get_or_insert_with(|| {
                    let names = match shown {
                        true => Naming::real(&jid),
                        false => Naming::hidden(channel, &jid),
                    };
                    render::user_added(&jid, channel, first, by, &names)
                })
                .address(recipient.jid.as_str(), out),
        }
    }
}

/// Tells a FlyChat author that every member has its message (`delivered`) or has seen it
/// (`seen`), at its bare JID.
pub fn completion(
    service: &Service,
    channel: &Channel,
    author: &Participant,
    done: &Completion,
    out: &mut Stanzas,
) {
    let jid = service.channel_jid(&channel.name);
    let template = render::aggregated_receipt(&service.ids, &jid, &channel.name, done);
    template.address(author.jid.as_str(), out);
}

/// Who of a channel hears of a fact besides its FlyChat participants.
#[derive(Clone, Copy, Default)]
struct Audience<'a> {
    /// Not told: the one who did it, whose client shows it already.
    except: Option<&'a BareJid>,
    /// Told though no longer a participant: the one who left.
    also: Option<&'a Participant>,
    /// Only those who may see JIDs are told.
    seeing_only: bool,
}

impl<'a> Audience<'a> {
    fn except(jid: &'a BareJid) -> Self {
        Audience {
            except: Some(jid),
            ..Audience::default()
        }
    }
}

/// Sends the event `write` makes (given the channel's JID, the channel and how to name its
/// users) to the FlyChat participants of channel `key` that `audience` names, at their bare
/// JIDs. A channel that shows JIDs writes it once; a JID-hidden one once with JIDs for its
/// owners and admins and once with proxy JIDs for the others (`Naming`), and once more for
/// one who left and no longer sees JIDs, who sees its own.
fn tell(
    groups: &Groups,
    service: &Service,
    key: i64,
    audience: Audience,
    out: &mut Stanzas,
    write: impl Fn(&str, &Channel, &Naming) -> Template,
) {
    // A fact about a channel that a later fact of the same batch deleted (the last one out)
    // finds no channel: its deletion tells everyone.
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let recipients = || {
        channel
            .participants
            .iter()
            .chain(audience.also)
            .filter(|p| p.dialect == Dialect::FlyChat && Some(&*p.jid) != audience.except)
    };
    // Most channels have no FlyChat participant: write nothing for them (the roster counts
    // them, so a large MIX channel is not scanned for none on every fact).
    let speaks = channel.participants.any_speaks(Dialect::FlyChat)
        || audience.also.is_some_and(|p| p.dialect == Dialect::FlyChat);
    if !speaks || recipients().next().is_none() {
        return;
    }
    let jid = service.channel_jid(&channel.name);
    if !channel.settings().jids_hidden {
        let template = write(&jid, channel, &Naming::real(&jid));
        template.reserve_copies(recipients().count(), out);
        for participant in recipients() {
            template.address(participant.jid.as_str(), out);
        }
        return;
    }
    // One who left no longer sees JIDs, whatever its role was.
    let leaver = |p: &Participant| audience.also.is_some_and(|also| also.jid == p.jid);
    let (seeing, blind): (Vec<_>, Vec<_>) =
        recipients().partition(|p| !leaver(p) && channel.shows_jids_to_participant(p));
    if !seeing.is_empty() {
        let template = write(&jid, channel, &Naming::real(&jid));
        for participant in seeing {
            template.address(participant.jid.as_str(), out);
        }
    }
    if audience.seeing_only {
        return;
    }
    let (leaving, blind): (Vec<_>, Vec<_>) = blind.into_iter().partition(|p| leaver(p));
    let hidden = Naming::hidden(channel, &jid);
    if !blind.is_empty() {
        let template = write(&jid, channel, &hidden);
        for participant in blind {
            template.address(participant.jid.as_str(), out);
        }
    }
    for participant in leaving {
        let names = hidden.clone().seen_by(&participant.jid);
        write(&jid, channel, &names).address(participant.jid.as_str(), out);
    }
}

/// `madeAdmin` for a new admin; mixd's `owner_changed` and `admin_revoked` otherwise.
fn role_changed(channel_jid: &str, target: &str, role: Role, by: &str) -> Template {
    match role {
        Role::Admin => render::made_admin(channel_jid, target, by),
        Role::Owner => {
            render::info_event(channel_jid, "owner_changed", by, &[("new_owner", target)])
        }
        Role::Member => render::info_event(channel_jid, "admin_revoked", by, &[("jid", target)]),
    }
}

/// The settings as they now are; a group without a limit of its own shows the service's.
fn settings_changed(
    channel_jid: &str,
    settings: &Settings,
    service_limit: usize,
    by: &str,
) -> Template {
    let limit = settings.max_members.unwrap_or(service_limit).to_string();
    render::info_event(
        channel_jid,
        "group_settings_updated",
        by,
        &[
            ("policy", settings.policy.name()),
            ("muted", if settings.muted { "1" } else { "0" }),
            ("max_members", &limit),
            ("jids_hidden", if settings.jids_hidden { "1" } else { "0" }),
        ],
    )
}

/// A member muted until a time (in the SDK's microseconds; 0: unmuted).
fn muted(channel_jid: &str, target: &str, until: Micros, by: &str) -> Template {
    let until = render::time(until);
    render::info_event(
        channel_jid,
        "user_muted",
        by,
        &[("jid", target), ("until", &until)],
    )
}

fn access_changed(
    channel_jid: &str,
    list: AccessList,
    entry: &BareJid,
    present: bool,
    by: &BareJid,
) -> Template {
    let list = match list {
        AccessList::Allowed => "allowed",
        AccessList::Banned => "banned",
    };
    render::info_event(
        channel_jid,
        "access_updated",
        by.as_str(),
        &[
            ("list", list),
            ("entry", entry.as_str()),
            ("present", if present { "1" } else { "0" }),
        ],
    )
}

/// The group's members see who was invited or asks to join; the invitee and the deciders
/// get the invitation or request itself (`delivery`).
fn pending_added(channel_jid: &str, pending: &Pending) -> Template {
    let status = match pending.kind {
        PendingKind::Invited => "user_invited",
        PendingKind::Requested => "join_requested",
    };
    render::info_event(
        channel_jid,
        status,
        pending.by.as_str(),
        &[("jid", pending.jid.as_str())],
    )
}

/// Every FlyChat participant learns that the group is gone (`deleteChat`). The channel is no
/// longer in `Groups`; the fact carries it as it was.
fn destroyed(service: &Service, channel: &Channel, out: &mut Stanzas) {
    let template = render::group_deleted(&service.channel_jid(&channel.name), &channel.name);
    for p in channel
        .participants
        .iter()
        .filter(|p| p.dialect == Dialect::FlyChat)
    {
        template.address(p.jid.as_str(), out);
    }
}
