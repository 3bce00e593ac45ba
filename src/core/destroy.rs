//! Deleting a channel (XEP-0369 §7.3.4): owners only. The participants are told; the archive
//! goes with the channel unless the service keeps archives (then a last notice records who
//! deleted it).
//!
//! An owner who has just left may still delete: the FlyChat SDK's delete sends the owner's
//! exit first and the delete right after, and by then the ownership has passed on (or, if the
//! owner was the last one in, the channel is already gone, which the delete then accepts).
//!
//! That right belongs to the channel the owner left, named by its key, not by its name: keys
//! are never reused (the store's sequence keeps the highest key ever handed out, deleted
//! channels' included), so once that channel is gone no later channel of the same name can
//! be deleted through it. It is kept in the store too (`departed_owners`, written with the
//! owner's `Left` and read back at start), so a restart between the exit and the delete does
//! not turn the SDK's delete into a refusal.
//!
//! Why a grace and not something that needs none: the SDK's two requests are separate
//! stanzas, and nothing in the exit says a delete follows. Letting a departed owner keep its
//! ownership without taking part would need none, but it would contradict the rule that
//! leaving passes ownership on (which FlyChat clients are shown); answering every delete of a
//! missing channel with success would let anyone tell missing channels from forbidden ones.
//! So the right stays, bounded to one channel's life and to a minute.

use jid::BareJid;

use super::{Condition, Departure, Fact, Groups, Micros, Outcome, Refusal};

/// How long an owner who left keeps the right to delete, in microseconds.
pub const DEPARTED_OWNER_GRACE: Micros = 60_000_000;

impl Groups {
    pub fn destroy(&mut self, actor: &BareJid, name: &str, now: Micros) -> Outcome {
        let Some(channel) = self.channels.get(name) else {
            // The channel is gone: accepted only if this actor left it (the exit emptied and
            // deleted it) within the grace.
            let key = self.departure(actor, now, |d| d.name == name);
            if let Some(key) = key {
                self.departed_owners.retain(|d| d.key != key);
                return Ok(Vec::new());
            }
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("no channel '{name}'"),
            ));
        };
        let key = channel.key;
        let departed = self.departure(actor, now, |d| d.key == key).is_some();
        if !channel.is_owner(actor) && !departed {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("only an owner of '{name}' may delete it"),
            ));
        }
        self.departed_owners.retain(|d| d.key != key);
        Ok(self.destroyed(name, actor, now))
    }

    /// The key of a channel `actor` left as its owner less than the grace ago, among the
    /// departures `which` accepts.
    fn departure(
        &self,
        actor: &BareJid,
        now: Micros,
        which: impl Fn(&Departure) -> bool,
    ) -> Option<i64> {
        self.departed_owners
            .iter()
            .find(|d| &d.owner == actor && now - d.at < DEPARTED_OWNER_GRACE && which(d))
            .map(|d| d.key)
    }

    /// Notes that `owner` just left channel `key` (named `name`) itself; expired notes go.
    pub(super) fn departed(&mut self, key: i64, name: &str, owner: &BareJid, now: Micros) {
        self.departed_owners
            .retain(|d| now - d.at < DEPARTED_OWNER_GRACE && !(d.key == key && &d.owner == owner));
        self.departed_owners.push(Departure {
            key,
            name: name.to_owned(),
            owner: owner.clone(),
            at: now,
        });
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
    fn the_right_ends_with_the_channel_and_never_reaches_a_new_one_of_the_same_name() {
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let mut g = coven();
        g.leave("coven", &bob, 5).unwrap();
        g.leave("coven", &alice, 6).unwrap();
        assert!(g.channel("coven").is_none());
        // Bob makes a new coven at once; alice's right was to the old one.
        g.create(&bob, Some("coven"), 7).unwrap();
        g.join("coven", &bob, None, crate::core::Nodes::ALL, 7)
            .unwrap();
        assert_ne!(g.channel("coven").unwrap().key, 1);
        let err = g.destroy(&alice, "coven", 8).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        assert!(g.channel("coven").is_some());
    }

    #[test]
    fn an_owner_who_left_one_channel_may_not_delete_another() {
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let mut g = coven();
        g.create(&bob, Some("tower"), 4).unwrap();
        g.leave("coven", &alice, 5).unwrap();
        let err = g.destroy(&alice, "tower", 6).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.destroy(&alice, "coven", 6).unwrap();
    }

    #[test]
    fn a_departure_loaded_at_start_keeps_the_right() {
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let mut before = coven();
        let key = before.channel("coven").unwrap().key;
        before.leave("coven", &alice, 10).unwrap();
        let snapshot = crate::core::Snapshot {
            last_channel_key: key,
            last_message_id: before.last_message_id(),
            departures: vec![Departure {
                key,
                name: "coven".into(),
                owner: alice.clone(),
                at: 10,
            }],
            ..crate::core::Snapshot::of(before.channels().cloned().map(Box::new).collect())
        };
        let mut after = Groups::new(before.rules.clone(), snapshot);
        assert!(after.channel("coven").unwrap().is_owner(&bob));
        let late = after.destroy(&alice, "coven", 10 + DEPARTED_OWNER_GRACE);
        assert_eq!(late.unwrap_err().condition, Condition::Forbidden);
        after.destroy(&alice, "coven", 11).unwrap();
        assert!(after.channel("coven").is_none());
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
