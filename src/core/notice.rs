//! Notices: group events kept in the archive beside the messages — created, added, left or
//! removed, profile updated, roles, settings, access lists, mutes, invitations and requests,
//! deletion (when the archive is kept) — so that history shows who did what and when. Each
//! takes the next archive id, so notices and messages interleave in the order they happened.

use std::sync::Arc;

use jid::BareJid;

use super::{Fact, Groups, Micros};

/// The kinds of notice, numbered as the FlyChat SDK numbers its notification rows (1–5);
/// mixd's own kinds follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Created = 1,
    Added = 2,
    Left = 3,
    ProfileUpdated = 4,
    MadeAdmin = 5,
    AdminRevoked = 6,
    MadeOwner = 7,
    SettingsChanged = 8,
    Banned = 9,
    Unbanned = 10,
    Allowed = 11,
    Disallowed = 12,
    Muted = 13,
    Unmuted = 14,
    Invited = 15,
    JoinRequested = 16,
    Declined = 17,
    Deleted = 18,
}

/// Each kind with the name it has on the wire, in code order.
const KINDS: [(NoticeKind, &str); 18] = [
    (NoticeKind::Created, "created"),
    (NoticeKind::Added, "added"),
    (NoticeKind::Left, "left"),
    (NoticeKind::ProfileUpdated, "profile-updated"),
    (NoticeKind::MadeAdmin, "made-admin"),
    (NoticeKind::AdminRevoked, "admin-revoked"),
    (NoticeKind::MadeOwner, "made-owner"),
    (NoticeKind::SettingsChanged, "settings-changed"),
    (NoticeKind::Banned, "banned"),
    (NoticeKind::Unbanned, "unbanned"),
    (NoticeKind::Allowed, "allowed"),
    (NoticeKind::Disallowed, "disallowed"),
    (NoticeKind::Muted, "muted"),
    (NoticeKind::Unmuted, "unmuted"),
    (NoticeKind::Invited, "invited"),
    (NoticeKind::JoinRequested, "join-requested"),
    (NoticeKind::Declined, "declined"),
    (NoticeKind::Deleted, "deleted"),
];

impl NoticeKind {
    pub fn from_i64(code: i64) -> Option<NoticeKind> {
        let index = usize::try_from(code).ok()?.checked_sub(1)?;
        KINDS.get(index).map(|(kind, _)| *kind)
    }

    pub fn name(self) -> &'static str {
        KINDS[self as usize - 1].1
    }

    /// Whether this kind of event changes what the configuration node shows (XEP-0406: its
    /// item is named by the time of the last such change).
    pub fn changes_configuration(self) -> bool {
        matches!(
            self,
            NoticeKind::MadeAdmin
                | NoticeKind::AdminRevoked
                | NoticeKind::MadeOwner
                | NoticeKind::SettingsChanged
                | NoticeKind::Muted
                | NoticeKind::Unmuted
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub channel: i64,
    pub kind: NoticeKind,
    /// Who did it.
    pub actor: BareJid,
    /// Whom it concerns (added, left or removed, made admin).
    pub target: Option<BareJid>,
    pub at: Micros,
}

/// The notice a fact calls for: its channel, kind, actor and target. Every fact is listed,
/// so that a new one does not compile until it is decided whether history shows it.
fn notice_of(fact: &Fact) -> Option<(i64, NoticeKind, BareJid, Option<BareJid>)> {
    use crate::core::{AccessList, PendingKind, Role};
    Some(match fact {
        Fact::ChannelCreated { key, owner, .. } => (*key, NoticeKind::Created, owner.clone(), None),
        Fact::ChannelDestroyed { channel, by, .. } => {
            (channel.key, NoticeKind::Deleted, by.clone(), None)
        }
        Fact::Joined {
            key,
            participant,
            by,
            ..
        } => (
            *key,
            NoticeKind::Added,
            by.clone(),
            Some(participant.jid.to_bare()),
        ),
        Fact::Left {
            key,
            participant,
            by,
        } => (
            *key,
            NoticeKind::Left,
            by.clone(),
            Some(participant.jid.to_bare()),
        ),
        Fact::InfoChanged { key, by, .. } => (*key, NoticeKind::ProfileUpdated, by.clone(), None),
        Fact::RoleChanged { key, jid, role, by } => {
            let kind = match role {
                Role::Owner => NoticeKind::MadeOwner,
                Role::Admin => NoticeKind::MadeAdmin,
                Role::Member => NoticeKind::AdminRevoked,
            };
            (*key, kind, by.clone(), Some(jid.clone()))
        }
        Fact::SettingsChanged { key, by, .. } => {
            (*key, NoticeKind::SettingsChanged, by.clone(), None)
        }
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            by,
        } => {
            let kind = match (list, present) {
                (AccessList::Banned, true) => NoticeKind::Banned,
                (AccessList::Banned, false) => NoticeKind::Unbanned,
                (AccessList::Allowed, true) => NoticeKind::Allowed,
                (AccessList::Allowed, false) => NoticeKind::Disallowed,
            };
            (*key, kind, by.clone(), Some(entry.clone()))
        }
        Fact::Muted {
            key,
            jid,
            until,
            by,
        } => {
            let kind = if *until > 0 {
                NoticeKind::Muted
            } else {
                NoticeKind::Unmuted
            };
            (*key, kind, by.clone(), Some(jid.clone()))
        }
        Fact::PendingAdded { key, pending } => {
            let kind = match pending.kind {
                PendingKind::Invited => NoticeKind::Invited,
                PendingKind::Requested => NoticeKind::JoinRequested,
            };
            (*key, kind, pending.by.clone(), Some(pending.jid.clone()))
        }
        Fact::PendingResolved {
            key,
            pending,
            by,
            accepted: false,
        } => (
            *key,
            NoticeKind::Declined,
            by.clone(),
            Some(pending.jid.clone()),
        ),
        // No notice: an approved request is noted by its `Joined`; conversation (messages,
        // typing, receipts, retractions, corrections, reactions) is archived or relayed as
        // itself; a notice is not noted again; and history shows what was done to the
        // group, not a participant's own name, subscriptions, presence or cleared history.
        Fact::PendingResolved { accepted: true, .. }
        | Fact::NickChanged { .. }
        | Fact::SubscriptionChanged { .. }
        | Fact::PresenceChanged { .. }
        | Fact::HistoryCleared { .. }
        | Fact::Posted(_)
        | Fact::ChatState { .. }
        | Fact::Receipt(_)
        | Fact::Retracted(_)
        | Fact::Corrected(_)
        | Fact::Reacted(_)
        | Fact::Noticed(_) => return None,
    })
}

impl Groups {
    /// Applies `facts` and records the notices they call for.
    pub(super) fn apply_noted(&mut self, facts: Vec<Fact>, now: Micros) -> Vec<Fact> {
        let wanted: Vec<_> = facts.iter().filter_map(notice_of).collect();
        let mut facts = self.apply_all(facts);
        // Each notice applied and added where it lies, not through a vector of its own: a
        // join's was a vector allocated, appended and freed, and its facts' grown twice.
        facts.reserve_exact(wanted.len());
        for (channel, kind, actor, target) in wanted {
            let notice = Fact::Noticed(Arc::new(Notice {
                id: self.next_message_id(),
                channel,
                kind,
                actor,
                target,
                at: now,
            }));
            self.apply(&notice);
            facts.push(notice);
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn membership_changes_leave_notices_in_order() {
        let mut g = coven();
        let facts = g
            .remove("coven", &jid("alice@localhost"), &jid("bob@localhost"), 9)
            .unwrap();
        let Some(Fact::Noticed(notice)) = facts.last() else {
            panic!("{facts:?}")
        };
        assert_eq!(notice.kind, NoticeKind::Left);
        assert_eq!(
            (
                notice.actor.as_str(),
                notice.target.as_ref().map(|t| t.as_str())
            ),
            ("alice@localhost", Some("bob@localhost"))
        );
        let posted = g
            .post("coven", &jid("alice@localhost"), text("after"), 10)
            .unwrap();
        let Fact::Posted(p) = &posted[0] else {
            panic!()
        };
        assert_eq!(p.id, notice.id + 1);
    }
}
