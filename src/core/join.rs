//! Joining a channel (XEP-0369 §7.1.2) with the node subscriptions asked for, and
//! optionally a nick. Joining again updates the subscriptions and keeps the participant id.

use jid::BareJid;

use super::{
    Condition, Dialect, Fact, Groups, Micros, Nodes, Outcome, Participant, ParticipantId, Refusal,
    Role,
};

impl Groups {
    /// Returns the participant as joined with the facts.
    pub fn join(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: Option<&str>,
        nodes: Nodes,
        now: Micros,
    ) -> Outcome<(Participant, Vec<Fact>)> {
        let id = ParticipantId(self.ids.next_u64());
        let max_nick = self.rules.max_nick_bytes;
        let last_message_id = self.last_message_id;
        let channel = self.existing(name)?;
        let previous = channel.participant(actor);
        let joining_again = previous.is_some();
        let nick = match nick {
            Some(nick) => checked_nick(nick, max_nick)?,
            None => previous.map_or_else(
                || {
                    actor
                        .node()
                        .map_or_else(|| actor.to_string(), |n| n.to_string())
                },
                |p| p.nick.clone(),
            ),
        };
        if channel.nick_taken(&nick, actor) {
            return Err(Refusal::new(
                Condition::Conflict,
                format!("the nick '{nick}' is taken in '{name}'"),
            ));
        }
        let participant = Participant {
            id: previous.map_or(id, |p| p.id),
            jid: actor.clone(),
            nick,
            nodes,
            role: previous.map_or_else(
                || {
                    if channel.is_owner(actor) {
                        Role::Owner
                    } else {
                        Role::Member
                    }
                },
                |p| p.role,
            ),
            dialect: Dialect::Mix,
            joined_at: previous.map_or(now, |p| p.joined_at),
            // Where history is not shared, new members see only what comes after they join.
            cleared_upto: previous.map_or(
                if channel.info.history_visible {
                    0
                } else {
                    last_message_id
                },
                |p| p.cleared_upto,
            ),
            online: previous.map(|p| p.online.clone()).unwrap_or_default(),
        };
        let fact = Fact::Joined {
            key: channel.key,
            participant: participant.clone(),
            by: actor.clone(),
        };
        // Joining again only changes subscriptions: no notice for that.
        let facts = if joining_again {
            self.apply_all(vec![fact])
        } else {
            self.apply_noted(vec![fact], now)
        };
        Ok((participant, facts))
    }
}

/// Nicks are non-empty, trimmed of surrounding space and bounded in length.
pub(super) fn checked_nick(nick: &str, max_bytes: usize) -> Outcome<String> {
    let nick = nick.trim();
    if nick.is_empty() {
        return Err(Refusal::new(Condition::BadRequest, "the nick is empty"));
    }
    if nick.len() > max_bytes {
        return Err(Refusal::new(
            Condition::NotAcceptable,
            format!(
                "the nick is {} bytes long; at most {max_bytes} are allowed",
                nick.len()
            ),
        ));
    }
    Ok(nick.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn join_assigns_stable_id_and_checks_nicks() {
        let mut g = coven();
        let bob = member(&g, "bob@localhost");
        let (again, _) = g
            .join("coven", &jid("bob@localhost"), None, Nodes::MESSAGES, 9)
            .unwrap();
        assert_eq!(again.id, bob.id);
        assert_eq!(again.nick, "bob");
        assert_eq!(again.nodes, Nodes::MESSAGES);
        let taken = g
            .join(
                "coven",
                &jid("carol@localhost"),
                Some("ALICE"),
                Nodes::ALL,
                9,
            )
            .unwrap_err();
        assert_eq!(taken.condition, Condition::Conflict);
        let (carol, _) = g
            .join("coven", &jid("carol@localhost"), None, Nodes::ALL, 9)
            .unwrap();
        assert_eq!(carol.nick, "carol");
        assert_eq!(carol.role, Role::Member);
        assert_eq!(g.channel("coven").unwrap().participants.len(), 3);
    }

    #[test]
    fn join_missing_channel_is_item_not_found() {
        let mut g = groups();
        let err = g
            .join("nowhere", &jid("bob@localhost"), None, Nodes::ALL, 1)
            .unwrap_err();
        assert_eq!(err.condition, Condition::ItemNotFound);
    }

    #[test]
    fn owner_joins_as_owner() {
        let g = coven();
        let alice = member(&g, "alice@localhost");
        assert_eq!(alice.role, Role::Owner);
    }
}
