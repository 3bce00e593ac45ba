//! Roles: owners and admins run a channel, members take part. Owners and admins make
//! admins; only an owner revokes an admin (an admin may step down), makes another owner
//! (XEP-0406 allows several) or transfers its ownership. A channel always keeps an owner:
//! the last one cannot step down except by transferring (or by leaving, see `leave.rs`).

use jid::BareJid;

use super::{Channel, Condition, Fact, Groups, Micros, Outcome, Refusal, Role};

impl Groups {
    pub fn make_admin(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        now: Micros,
    ) -> Outcome {
        self.set_role(name, actor, target, Role::Admin, now)
    }

    /// Gives `target` (a participant) the role `role`.
    pub fn set_role(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        role: Role,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        let current = participant_role(channel, target)?;
        let needed = match (role, current) {
            (_, current) if current == role => return Ok(Vec::new()),
            (Role::Admin, Role::Member) => Role::Admin,
            // Anyone may step down.
            (_, _) if role < current && actor == target => Role::Member,
            _ => Role::Owner,
        };
        let what = format!("make {target} {}", article(role));
        Self::at_least(channel, actor, needed, &what)?;
        if current == Role::Owner && channel.owners.len() == 1 {
            return Err(Refusal::new(
                Condition::NotAllowed,
                format!("{target} is the only owner of '{name}': transfer the ownership instead"),
            ));
        }
        let fact = Fact::RoleChanged {
            key: channel.key,
            jid: target.clone(),
            role,
            by: actor.clone(),
        };
        Ok(self.apply_noted(vec![fact], now))
    }

    /// The owner `actor` hands its ownership to `target` and stays on as an admin.
    pub fn transfer(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Owner, "transfer its ownership")?;
        if actor == target {
            return Err(Refusal::new(
                Condition::BadRequest,
                "the ownership cannot be transferred to its owner",
            ));
        }
        participant_role(channel, target)?;
        let facts = vec![
            Fact::RoleChanged {
                key: channel.key,
                jid: target.clone(),
                role: Role::Owner,
                by: actor.clone(),
            },
            Fact::RoleChanged {
                key: channel.key,
                jid: actor.clone(),
                role: Role::Admin,
                by: actor.clone(),
            },
        ];
        Ok(self.apply_noted(facts, now))
    }
}

/// The role of `target`, who must be a participant.
fn participant_role(channel: &Channel, target: &BareJid) -> Outcome<Role> {
    Groups::named(channel, target)?;
    Ok(channel.role_of(target))
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Owner => "an owner",
        Role::Admin => "an admin",
        Role::Member => "a plain member",
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn role(g: &Groups, who: &str) -> Role {
        g.channel("coven").unwrap().role_of(&jid(who))
    }

    /// `by` gives `whom` role `role` in `coven` at `now`.
    fn set(g: &mut Groups, by: &str, whom: &str, role: Role, now: Micros) -> Outcome {
        g.set_role("coven", &jid(by), &jid(whom), role, now)
    }

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

    #[test]
    fn only_owners_revoke_admins_but_admins_may_step_down() {
        let mut g = with_carol();
        g.make_admin("coven", &jid("alice@localhost"), &jid("bob@localhost"), 5)
            .unwrap();
        g.make_admin("coven", &jid("bob@localhost"), &jid("carol@localhost"), 5)
            .unwrap();
        let err = set(&mut g, "bob@localhost", "carol@localhost", Role::Member, 6).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        set(
            &mut g,
            "carol@localhost",
            "carol@localhost",
            Role::Member,
            6,
        )
        .unwrap();
        set(&mut g, "alice@localhost", "bob@localhost", Role::Member, 6).unwrap();
        assert_eq!(
            (role(&g, "bob@localhost"), role(&g, "carol@localhost")),
            (Role::Member, Role::Member)
        );
    }

    #[test]
    fn transfer_makes_the_old_owner_an_admin_and_the_last_owner_stays() {
        let mut g = coven();
        let err = set(
            &mut g,
            "alice@localhost",
            "alice@localhost",
            Role::Member,
            5,
        )
        .unwrap_err();
        assert_eq!(err.condition, Condition::NotAllowed);
        let err = g
            .transfer("coven", &jid("bob@localhost"), &jid("bob@localhost"), 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let facts = g
            .transfer("coven", &jid("alice@localhost"), &jid("bob@localhost"), 5)
            .unwrap();
        assert_eq!(
            facts
                .iter()
                .filter(|f| matches!(f, Fact::Noticed(_)))
                .count(),
            2
        );
        assert_eq!(
            (role(&g, "alice@localhost"), role(&g, "bob@localhost")),
            (Role::Admin, Role::Owner)
        );
        assert_eq!(
            g.channel("coven").unwrap().owners,
            vec![jid("bob@localhost")]
        );
    }

    #[test]
    fn several_owners() {
        let mut g = coven();
        set(&mut g, "alice@localhost", "bob@localhost", Role::Owner, 5).unwrap();
        // With two owners, one may step down.
        set(&mut g, "alice@localhost", "alice@localhost", Role::Admin, 6).unwrap();
        assert_eq!(role(&g, "bob@localhost"), Role::Owner);
        assert_eq!(role(&g, "alice@localhost"), Role::Admin);
    }
}
