//! Adding participants directly (what the FlyChat SDK's createGroup and addParticipants do):
//! owners and admins add users, who are in at once and told, whatever the join policy. Users
//! already in are skipped; one not admitted by the access lists, or more users than the member
//! limit has room for, refuse the whole request.

use jid::BareJid;

use super::{Condition, Dialect, Fact, Groups, Micros, Nodes, Outcome, Refusal, Role};

/// The most users one request may add.
pub const MAX_ADDED_PER_REQUEST: usize = 256;

impl Groups {
    pub fn add_participants(
        &mut self,
        name: &str,
        actor: &BareJid,
        users: &[BareJid],
        dialect: Dialect,
        now: Micros,
    ) -> Outcome {
        if users.len() > MAX_ADDED_PER_REQUEST {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!("at most {MAX_ADDED_PER_REQUEST} participants may be added at once"),
            ));
        }
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Admin, "add participants")?;
        let key = channel.key;
        let mut added: Vec<&BareJid> = Vec::new();
        for user in users {
            if user.node().is_none() {
                return Err(Refusal::new(
                    Condition::BadRequest,
                    format!("{user} is not a user's JID"),
                ));
            }
            if channel.participant(user).is_none() && !added.contains(&user) {
                Self::admitted(channel, user)?;
                added.push(user);
            }
        }
        self.room_for(channel, added.len())?;
        // Each with whether it had an invitation or request waiting, which being added settles.
        let added: Vec<(BareJid, bool)> = added
            .into_iter()
            .map(|user| (user.clone(), channel.pending(user).is_some()))
            .collect();
        let others = added.iter().filter(|(user, _)| user != actor).count();
        self.charge(actor, super::Quota::Adds, others, now)?;
        let facts = added
            .iter()
            .map(|(user, settles)| Fact::Joined {
                key,
                by: actor.clone(),
                participant: self.newcomer(key, user, None, Nodes::ALL, dialect, now),
                settles: *settles,
                again: false,
            })
            .collect();
        Ok(self.apply_noted(facts, now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn admins_add_members_once() {
        let mut g = coven();
        let users = [
            jid("carol@localhost"),
            jid("bob@localhost"),
            jid("carol@localhost"),
        ];
        let err = g
            .add_participants("coven", &jid("bob@localhost"), &users, Dialect::FlyChat, 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let facts = g
            .add_participants(
                "coven",
                &jid("alice@localhost"),
                &users,
                Dialect::FlyChat,
                5,
            )
            .unwrap();
        assert_eq!(
            facts
                .iter()
                .filter(|f| matches!(f, Fact::Joined { .. }))
                .count(),
            1
        );
        assert!(
            matches!(facts.last(), Some(Fact::Noticed(n)) if n.target == Some(jid("carol@localhost")))
        );
        let carol = member(&g, "carol@localhost");
        assert_eq!(
            (carol.nick.as_str(), carol.dialect, carol.role),
            ("carol", Dialect::FlyChat, Role::Member)
        );
    }

    #[test]
    fn without_shared_history_new_members_start_now() {
        let mut g = coven();
        let hide = crate::core::InfoChange {
            history_visible: Some(false),
            ..Default::default()
        };
        g.set_info("coven", &jid("alice@localhost"), hide, 5)
            .unwrap();
        g.post("coven", &jid("alice@localhost"), text("before"), 6)
            .unwrap();
        let last = g.last_message_id();
        g.add_participants(
            "coven",
            &jid("alice@localhost"),
            &[jid("dave@localhost")],
            Dialect::FlyChat,
            7,
        )
        .unwrap();
        assert_eq!(member(&g, "dave@localhost").cleared_upto, last);
        assert_eq!(member(&g, "bob@localhost").cleared_upto, 0);
    }
}
