//! Deleting a channel (XEP-0369 §7.3.4): owners only. The participants are told; the archive
//! goes with the channel unless the service keeps archives (then a last notice records who
//! deleted it).
//!
//! An owner who has just left may still delete: the FlyChat SDK's delete sends the owner's
//! exit first and the delete right after, and by then the ownership has passed on (or, if the
//! owner was the last one in, the channel is already gone, which the delete then accepts).

use jid::BareJid;

use super::{Condition, Fact, Groups, Micros, Outcome, Refusal};

/// How long an owner who left keeps the right to delete, in microseconds.
pub const DEPARTED_OWNER_GRACE: Micros = 60_000_000;

impl Groups {
    pub fn destroy(&mut self, actor: &BareJid, name: &str, now: Micros) -> Outcome {
        let departed = self
            .departed_owners
            .get(name)
            .is_some_and(|(who, at)| who == actor && now - at < DEPARTED_OWNER_GRACE);
        let Some(channel) = self.channels.get(name) else {
            if departed {
                self.departed_owners.remove(name);
                return Ok(Vec::new());
            }
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("no channel '{name}'"),
            ));
        };
        if !channel.is_owner(actor) && !departed {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("only an owner of '{name}' may delete it"),
            ));
        }
        self.departed_owners.remove(name);
        Ok(self.destroyed(name, actor, now))
    }

    /// The facts of deleting channel `name` (which exists) on `by`'s behalf.
    pub(super) fn destroyed(&mut self, name: &str, by: &BareJid, now: Micros) -> Vec<Fact> {
        let Some(channel) = self.channels.get(name) else {
            return Vec::new();
        };
        let fact = Fact::ChannelDestroyed {
            channel: Box::new(channel.clone()),
            by: by.clone(),
            archive_kept: self.rules.keep_archive,
        };
        if self.rules.keep_archive {
            self.apply_noted(vec![fact], now)
        } else {
            self.apply_all(vec![fact])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn only_owner_destroys() {
        let mut g = coven();
        let err = g.destroy(&jid("bob@localhost"), "coven", 5).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        assert!(g.channel("coven").is_some());
        let facts = g.destroy(&jid("alice@localhost"), "coven", 5).unwrap();
        match &facts[0] {
            Fact::ChannelDestroyed { channel, .. } => assert_eq!(channel.participants.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(facts.len(), 1, "no notice when the archive goes");
        assert!(g.channel("coven").is_none());
        let missing = g.destroy(&jid("alice@localhost"), "coven", 5).unwrap_err();
        assert_eq!(missing.condition, Condition::ItemNotFound);
    }

    #[test]
    fn an_owner_who_just_left_may_still_delete() {
        let mut g = coven();
        g.leave("coven", &jid("alice@localhost"), 10).unwrap();
        assert!(g.channel("coven").unwrap().is_owner(&jid("bob@localhost")));
        let late = g.destroy(&jid("alice@localhost"), "coven", 10 + DEPARTED_OWNER_GRACE);
        assert_eq!(late.unwrap_err().condition, Condition::Forbidden);
        g.destroy(&jid("alice@localhost"), "coven", 11).unwrap();
        assert!(g.channel("coven").is_none());
    }

    #[test]
    fn deleting_after_the_last_one_left_is_accepted() {
        let mut g = coven();
        g.leave("coven", &jid("bob@localhost"), 5).unwrap();
        g.leave("coven", &jid("alice@localhost"), 6).unwrap();
        assert!(g.channel("coven").is_none());
        assert!(g
            .destroy(&jid("alice@localhost"), "coven", 7)
            .unwrap()
            .is_empty());
        let again = g.destroy(&jid("alice@localhost"), "coven", 8).unwrap_err();
        assert_eq!(again.condition, Condition::ItemNotFound);
    }

    #[test]
    fn a_kept_archive_ends_with_a_deletion_notice() {
        let mut g = coven();
        g.rules.keep_archive = true;
        let facts = g.destroy(&jid("alice@localhost"), "coven", 5).unwrap();
        assert!(
            matches!(facts.last(), Some(Fact::Noticed(n)) if n.kind == crate::core::NoticeKind::Deleted)
        );
    }
}
