//! Notices: group events kept in the archive beside the messages — created, added, left or
//! removed, profile updated, made admin — so that history shows who did what and when. Each
//! takes the next archive id, so notices and messages interleave in the order they happened.

use std::sync::Arc;

use jid::BareJid;

use super::{Fact, Groups, Micros};

/// The kinds of notice, numbered as the FlyChat SDK numbers its notification rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Created = 1,
    Added = 2,
    Left = 3,
    ProfileUpdated = 4,
    MadeAdmin = 5,
}

impl NoticeKind {
    pub fn from_i64(code: i64) -> Option<NoticeKind> {
        Some(match code {
            1 => NoticeKind::Created,
            2 => NoticeKind::Added,
            3 => NoticeKind::Left,
            4 => NoticeKind::ProfileUpdated,
            5 => NoticeKind::MadeAdmin,
            _ => return None,
        })
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

/// The notice a fact calls for: its channel, kind, actor and target.
fn notice_of(fact: &Fact) -> Option<(i64, NoticeKind, BareJid, Option<BareJid>)> {
    Some(match fact {
        Fact::ChannelCreated { key, owner, .. } => (*key, NoticeKind::Created, owner.clone(), None),
        Fact::Joined {
            key,
            participant,
            by,
        } => (
            *key,
            NoticeKind::Added,
            by.clone(),
            Some(participant.jid.clone()),
        ),
        Fact::Left {
            key,
            participant,
            by,
        } => (
            *key,
            NoticeKind::Left,
            by.clone(),
            Some(participant.jid.clone()),
        ),
        Fact::InfoChanged { key, by, .. } => (*key, NoticeKind::ProfileUpdated, by.clone(), None),
        Fact::RoleChanged { key, jid, by, .. } => {
            (*key, NoticeKind::MadeAdmin, by.clone(), Some(jid.clone()))
        }
        _ => return None,
    })
}

impl Groups {
    /// Applies `facts` and records the notices they call for.
    pub(super) fn apply_noted(&mut self, facts: Vec<Fact>, now: Micros) -> Vec<Fact> {
        let wanted: Vec<_> = facts.iter().filter_map(notice_of).collect();
        let mut facts = self.apply_all(facts);
        for (channel, kind, actor, target) in wanted {
            let notice = Notice {
                id: self.next_message_id(),
                channel,
                kind,
                actor,
                target,
                at: now,
            };
            facts.extend(self.apply_all(vec![Fact::Noticed(Arc::new(notice))]));
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
