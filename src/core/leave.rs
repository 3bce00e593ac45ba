//! Leaving a channel (XEP-0369 §7.1.4), or being removed from it: the participant and its
//! subscriptions go; the participants node's subscribers see its item retracted. Owners and
//! admins remove members; only owners remove admins (or other owners).
//!
//! A channel is never left without an owner while it has participants: when the last owner
//! leaves, the longest-standing admin becomes owner, or else the longest-standing member. When
//! the last participant leaves, the channel is deleted.

use jid::BareJid;

use super::{Fact, Groups, Micros, Outcome, Role};

impl Groups {
    pub fn leave(&mut self, name: &str, actor: &BareJid, now: Micros) -> Outcome {
        self.remove(name, actor, actor, now)
    }

    /// Removes `target`; when `target` is the actor, that is leaving.
    pub fn remove(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        now: Micros,
    ) -> Outcome {
        if actor == target {
            self.participant_of(name, actor)?;
        } else {
            let channel = self.existing(name)?;
            Self::named(channel, target)?;
            let needed = Self::above(channel, target);
            Self::at_least(channel, actor, needed, &format!("remove {target}"))?;
        }
        self.removed(name, actor, target, now)
    }

    /// Takes `target` out of channel `name` on `actor`'s word, whose right the caller has
    /// checked: ownership passes on if it was the last owner, the last one out deletes.
    pub(super) fn removed(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        let participant = Self::named(channel, target)?;
        let key = channel.key;
        let was_owner = channel.is_owner(target);
        let remaining = channel.participants.iter().filter(|p| &p.jid != target);
        let heir = if was_owner && channel.owners.len() == 1 {
            let admin = remaining.clone().find(|p| p.role >= Role::Admin);
            admin
                .or_else(|| remaining.clone().next())
                .map(|p| p.jid.to_bare())
        } else {
            None
        };
        let last = remaining.count() == 0;
        let mut facts = vec![Fact::Left {
            key,
            participant: participant.clone(),
            by: actor.clone(),
        }];
        if let Some(heir) = heir {
            facts.push(Fact::RoleChanged {
                key,
                jid: heir,
                role: Role::Owner,
                by: target.clone(),
            });
        }
        if was_owner && actor == target {
            self.departed(key, name, target, now);
        }
        let mut facts = self.apply_noted(facts, now);
        if last {
            facts.extend(self.destroyed(name, target, now));
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::Condition;

    #[test]
    fn admins_remove_members_owners_remove_admins() {
        let mut g = with_carol();
        let err = g
            .remove("coven", &jid("bob@localhost"), &jid("carol@localhost"), 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.make_admin("coven", &jid("alice@localhost"), &jid("bob@localhost"), 5)
            .unwrap();
        let err = g
            .remove("coven", &jid("bob@localhost"), &jid("alice@localhost"), 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let facts = g
            .remove("coven", &jid("bob@localhost"), &jid("carol@localhost"), 5)
            .unwrap();
        assert!(matches!(&facts[0], Fact::Left { by, .. } if by == &jid("bob@localhost")));
        g.remove("coven", &jid("alice@localhost"), &jid("bob@localhost"), 5)
            .unwrap();
        assert_eq!(g.channel("coven").unwrap().participants.len(), 1);
    }

    #[test]
    fn ownership_passes_to_the_longest_standing_admin_else_member() {
        let mut g = with_carol();
        g.make_admin("coven", &jid("alice@localhost"), &jid("carol@localhost"), 5)
            .unwrap();
        g.leave("coven", &jid("alice@localhost"), 6).unwrap();
        let coven = g.channel("coven").unwrap();
        assert_eq!(coven.owners, vec![jid("carol@localhost")]);
        assert_eq!(member(&g, "carol@localhost").role, Role::Owner);
        g.leave("coven", &jid("carol@localhost"), 7).unwrap();
        assert_eq!(member(&g, "bob@localhost").role, Role::Owner);
    }

    #[test]
    fn the_last_one_out_deletes_the_channel() {
        let mut g = coven();
        g.leave("coven", &jid("alice@localhost"), 5).unwrap();
        let facts = g.leave("coven", &jid("bob@localhost"), 6).unwrap();
        assert!(matches!(facts.last(), Some(Fact::ChannelDestroyed { .. })));
        assert!(g.channel("coven").is_none());
    }

    #[test]
    fn leave_removes_and_twice_is_forbidden() {
        let mut g = coven();
        g.leave("coven", &jid("bob@localhost"), 5).unwrap();
        assert!(g
            .channel("coven")
            .unwrap()
            .participant(&jid("bob@localhost"))
            .is_none());
        let err = g.leave("coven", &jid("bob@localhost"), 5).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
    }
}
