//! Making a participant an admin: owners and admins may. Admins may change the channel's
//! information, add and remove members, and moderate.

use jid::BareJid;

use super::{Condition, Fact, Groups, Micros, Outcome, Refusal, Role};

impl Groups {
    pub fn make_admin(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        if channel.role_of(actor) < Role::Admin {
            return Err(Refusal::new(
                Condition::Forbidden,
                "only an owner or admin may make admins",
            ));
        }
        let participant = channel.participant(target).ok_or_else(|| {
            Refusal::new(
                Condition::ItemNotFound,
                format!("{target} is not a participant of '{name}'"),
            )
        })?;
        if participant.role >= Role::Admin {
            return Ok(Vec::new());
        }
        let fact = Fact::RoleChanged {
            key: channel.key,
            jid: target.clone(),
            role: Role::Admin,
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
    fn owner_makes_admins_members_cannot() {
        let mut g = coven();
        let err = g
            .make_admin("coven", &jid("bob@localhost"), &jid("bob@localhost"), 1)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let facts = g
            .make_admin("coven", &jid("alice@localhost"), &jid("bob@localhost"), 1)
            .unwrap();
        assert!(matches!(
            facts[0],
            Fact::RoleChanged {
                role: Role::Admin,
                ..
            }
        ));
        assert_eq!(member(&g, "bob@localhost").role, Role::Admin);
        assert!(g
            .make_admin("coven", &jid("alice@localhost"), &jid("bob@localhost"), 1)
            .unwrap()
            .is_empty());
    }
}
