//! Leaving a channel (XEP-0369 §7.1.4), or being removed from it: the participant and its
//! subscriptions go; the participants node's subscribers see its item retracted. Owners and
//! admins remove members; only owners remove admins (or other owners).

use jid::BareJid;

use super::{Condition, Fact, Groups, Micros, Outcome, Refusal, Role};

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
        let (channel, participant) = if actor == target {
            self.participant_of(name, actor)?
        } else {
            let channel = self.existing(name)?;
            let participant = channel.participant(target).ok_or_else(|| {
                Refusal::new(
                    Condition::ItemNotFound,
                    format!("{target} is not a participant of '{name}'"),
                )
            })?;
            let needed = if participant.role == Role::Member {
                Role::Admin
            } else {
                Role::Owner
            };
            if channel.role_of(actor) < needed {
                let who = if needed == Role::Owner {
                    "an owner"
                } else {
                    "an owner or admin"
                };
                return Err(Refusal::new(
                    Condition::Forbidden,
                    format!("only {who} may remove {target}"),
                ));
            }
            (channel, participant)
        };
        let fact = Fact::Left {
            key: channel.key,
            participant: participant.clone(),
            by: actor.clone(),
        };
        Ok(self.apply_noted(vec![fact], now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn admins_remove_members_owners_remove_admins() {
        let mut g = coven();
        g.join(
            "coven",
            &jid("carol@localhost"),
            None,
            crate::core::Nodes::ALL,
            4,
        )
        .unwrap();
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
