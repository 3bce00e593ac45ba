//! The allowed and banned lists (XEP-0369 §7.3.7), kept by owners and admins. Entries are
//! bare JIDs or whole domains; banned wins over allowed. Banning removes the participants it
//! matches, with the same rights removal needs (only an owner bans an admin; nobody bans an
//! owner: a domain ban leaves the owners in), so that a ban is never half applied, and
//! declines their invitations and requests.

use jid::BareJid;

use super::{AccessList, Condition, Fact, Groups, Micros, Outcome, Refusal, Role};

impl Groups {
    /// Puts `entry` on `list` (`present`) or takes it off.
    pub fn set_access(
        &mut self,
        name: &str,
        actor: &BareJid,
        list: AccessList,
        entry: &BareJid,
        present: bool,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Admin, "change its access lists")?;
        let role = channel.role_of(actor);
        if channel.access().list(list).contains(entry) == present {
            return Ok(Vec::new());
        }
        let mut facts = vec![Fact::AccessChanged {
            key: channel.key,
            list,
            entry: entry.clone(),
            present,
            by: actor.clone(),
        }];
        if list == AccessList::Banned && present {
            let banned = super::Access {
                banned: vec![entry.clone()],
                ..Default::default()
            };
            // Nobody bans an owner by name. A domain ban leaves the owners in (owners are
            // admitted whatever the lists say): else no owner could ever ban the domain its
            // own users share, such as the service's own user domain.
            if channel.is_owner(entry) {
                return Err(Refusal::new(
                    Condition::NotAllowed,
                    format!("{entry} is an owner of '{name}' and cannot be banned"),
                ));
            }
            for p in channel
                .participants
                .iter()
                .filter(|p| banned.is_banned(&p.jid) && !channel.is_owner(&p.jid))
            {
                if p.role >= Role::Admin && role < Role::Owner {
                    return Err(Refusal::new(
                        Condition::Forbidden,
                        format!("only an owner may ban {}, an admin of '{name}'", p.jid),
                    ));
                }
                facts.push(Fact::Left {
                    key: channel.key,
                    participant: p.clone(),
                    by: actor.clone(),
                });
            }
            // Invitations and requests of the banned are declined with it.
            let waiting = &channel.administration().pending;
            for pending in waiting.iter().filter(|p| banned.is_banned(&p.jid)) {
                facts.push(Fact::PendingResolved {
                    key: channel.key,
                    pending: pending.clone(),
                    by: actor.clone(),
                    accepted: false,
                });
            }
        }
        Ok(self.apply_noted(facts, now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::Nodes;
    use AccessList::{Allowed, Banned};

    /// `by` puts `entry` on `list` of `coven` at `now`.
    fn put(g: &mut Groups, by: &str, list: AccessList, entry: &str, now: Micros) -> Outcome {
        g.set_access("coven", &jid(by), list, &jid(entry), true, now)
    }

    #[test]
    fn banning_removes_and_keeps_out_and_banned_wins() {
        let mut g = with_carol();
        let err = put(&mut g, "bob@localhost", Banned, "carol@localhost", 5).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        put(&mut g, "alice@localhost", Allowed, "localhost", 5).unwrap();
        let facts = put(&mut g, "alice@localhost", Banned, "carol@localhost", 6).unwrap();
        assert!(facts.iter().any(|f| matches!(f, Fact::Left { .. })));
        assert!(g
            .channel("coven")
            .unwrap()
            .participant(&jid("carol@localhost"))
            .is_none());
        let err = g
            .join("coven", &jid("carol@localhost"), None, Nodes::ALL, 7)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let err = g
            .join("coven", &jid("eve@elsewhere"), None, Nodes::ALL, 7)
            .unwrap_err();
        assert_eq!(
            err.condition,
            Condition::Forbidden,
            "not on the allowed list"
        );
        g.join("coven", &jid("dave@localhost"), None, Nodes::ALL, 7)
            .unwrap();
    }

    #[test]
    fn banning_declines_what_waits() {
        let mut g = coven();
        let alice = jid("alice@localhost");
        g.invite("coven", &alice, &[jid("eve@elsewhere")], 5)
            .unwrap();
        let facts = put(&mut g, "alice@localhost", Banned, "elsewhere", 6).unwrap();
        assert!(facts.iter().any(|f| matches!(
            f,
            Fact::PendingResolved {
                accepted: false,
                ..
            }
        )));
        assert!(g
            .channel("coven")
            .unwrap()
            .pending(&jid("eve@elsewhere"))
            .is_none());
    }

    #[test]
    fn owners_cannot_be_banned_by_name() {
        let mut g = coven();
        let alice = jid("alice@localhost");
        let err = g
            .set_access("coven", &alice, Banned, &alice, true, 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::NotAllowed);
        assert_eq!(
            err.text,
            "alice@localhost is an owner of 'coven' and cannot be banned"
        );
        assert!(g.channel("coven").unwrap().access().banned.is_empty());
    }

    #[test]
    fn the_owners_own_domain_can_be_banned_and_keeps_everyone_else_out() {
        let mut g = with_carol();
        let alice = jid("alice@localhost");
        let facts = put(&mut g, "alice@localhost", Banned, "localhost", 5).unwrap();
        let left: Vec<_> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::Left { participant, .. } => Some(participant.jid.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(left, ["bob@localhost", "carol@localhost"]);
        let channel = g.channel("coven").unwrap();
        assert_eq!(channel.participants.len(), 1, "the owner stays");
        assert!(channel.is_owner(&alice));
        let err = g
            .join("coven", &jid("dave@localhost"), None, Nodes::ALL, 6)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        assert_eq!(err.text, "dave@localhost is banned from 'coven'");
        g.post("coven", &alice, text("still mine"), 7).unwrap();
        g.join("coven", &jid("eve@elsewhere"), None, Nodes::ALL, 8)
            .unwrap();
    }
}
