//! Joining a channel (XEP-0369 §7.1.2) with the node subscriptions asked for, and
//! optionally a nick. Joining again updates the subscriptions and keeps the participant id;
//! joining again as one already is changes nothing and makes no fact.
//! Who may join first time is the group's to say: its allowed and banned lists, its join
//! policy (an invite-only group takes the invited, a group taking requests its approved
//! requesters, who are added by the approval) and its member limit.

use jid::BareJid;

use super::{
    Channel, Condition, Dialect, Fact, Groups, JoinPolicy, Micros, Nodes, Outcome, Participant,
    ParticipantId, PendingKind, Refusal, Role,
};

impl Groups {
    /// A MIX client joins; returns the participant as joined with the facts.
    pub fn join(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: Option<&str>,
        nodes: Nodes,
        now: Micros,
    ) -> Outcome<(Participant, Vec<Fact>)> {
        self.join_as(name, actor, nick, nodes, Dialect::Mix, now)
    }

    /// Joins `actor`, whose client speaks `dialect`.
    pub fn join_as(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: Option<&str>,
        nodes: Nodes,
        dialect: Dialect,
        now: Micros,
    ) -> Outcome<(Participant, Vec<Fact>)> {
        let max_nick = self.rules.max_nick_bytes;
        // One look for the participant: with thousands of members, each scan counts.
        let channel = self.existing(name)?;
        let previous = channel.participant(actor).cloned();
        let role = match &previous {
            _ if channel.is_owner(actor) => Role::Owner,
            Some(p) => p.role,
            None => Role::Member,
        };
        Self::admitted_as(channel, actor, role)?;
        if previous.is_none() {
            let refusal = match way_in(channel, actor, role) {
                WayIn::Open => None,
                WayIn::Closed => Some(format!("'{name}' is joined by invitation only")),
                WayIn::Ask => Some(format!(
                    "'{name}' takes join requests: ask to join and wait for an admin's approval"
                )),
            };
            if let Some(text) = refusal {
                return Err(Refusal::new(Condition::Forbidden, text));
            }
            self.room_for(channel, 1)?;
        }
        let nick = match (nick, &previous) {
            (Some(nick), _) => checked_nick(nick, max_nick)?,
            (None, Some(previous)) => previous.nick.clone(),
            (None, None) => default_nick(actor),
        };
        if channel.nick_taken(&nick, actor) {
            return Err(Refusal::new(
                Condition::Conflict,
                format!("the nick '{nick}' is taken in '{name}'"),
            ));
        }
        let key = channel.key;
        let joining_again = previous.is_some();
        let participant = match previous {
            // Joining again as it already is changes nothing: the join is answered, but
            // nothing is stored and nobody is told (a client that joins from each of its
            // resources would otherwise broadcast the same participant again and again).
            Some(previous)
                if previous.nick == nick
                    && previous.nodes == nodes
                    && previous.dialect == dialect =>
            {
                return Ok((previous, Vec::new()));
            }
            Some(previous) => Participant {
                nick,
                nodes,
                dialect,
                ..previous
            },
            None => self.newcomer(name, actor, Some(nick), nodes, dialect, now),
        };
        self.charge(actor, super::Quota::Joins, 1, now)?;
        let fact = Fact::Joined {
            key,
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

    /// Joins where the group lets `actor` in, and asks where the group wants a request
    /// (FlyChat's `join_group` does both); returns whether it joined.
    pub fn join_or_ask(
        &mut self,
        name: &str,
        actor: &BareJid,
        dialect: Dialect,
        now: Micros,
    ) -> Outcome<(bool, Vec<Fact>)> {
        let channel = self.existing(name)?;
        let asks = channel.participant(actor).is_none()
            && matches!(way_in(channel, actor, channel.role_of(actor)), WayIn::Ask);
        if asks {
            return Ok((false, self.request_join(name, actor, dialect, now)?));
        }
        let (_, facts) = self.join_as(name, actor, None, Nodes::ALL, dialect, now)?;
        Ok((true, facts))
    }

    /// A new participant of channel `name` (which exists): a fresh id, the user's localpart
    /// as nick unless one is given, owner if it owns the channel; where history is not
    /// shared, it sees only what comes after it joins.
    pub(super) fn newcomer(
        &mut self,
        name: &str,
        jid: &BareJid,
        nick: Option<String>,
        nodes: Nodes,
        dialect: Dialect,
        now: Micros,
    ) -> Participant {
        let id = ParticipantId(self.ids.next_u64());
        let last_message_id = self.last_message_id;
        let channel = self.channels.get(name);
        let owner = channel.is_some_and(|c| c.is_owner(jid));
        let history_visible = channel.is_none_or(|c| c.info.history_visible);
        Participant {
            id,
            jid: jid.clone(),
            nick: nick.unwrap_or_else(|| default_nick(jid)),
            nodes,
            role: if owner { Role::Owner } else { Role::Member },
            dialect,
            joined_at: now,
            cleared_upto: if history_visible { 0 } else { last_message_id },
            online: Vec::new(),
        }
    }
}

/// How a user who takes no part gets in, as the group's policy says: owners and the invited
/// always, others as the policy says.
enum WayIn {
    Open,
    /// A request, approved by an owner or admin.
    Ask,
    /// An invitation.
    Closed,
}

fn way_in(channel: &Channel, actor: &BareJid, role: Role) -> WayIn {
    let invited = channel
        .pending(actor)
        .is_some_and(|p| p.kind == PendingKind::Invited);
    match channel.settings().policy {
        _ if invited || role == Role::Owner => WayIn::Open,
        JoinPolicy::Open => WayIn::Open,
        JoinPolicy::Invite => WayIn::Closed,
        JoinPolicy::Request => WayIn::Ask,
    }
}

/// A user's nick unless it picks one: its JID's localpart.
fn default_nick(jid: &BareJid) -> String {
    jid.node()
        .map_or_else(|| jid.to_string(), |n| n.to_string())
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
    fn joining_again_unchanged_makes_no_fact() {
        let mut g = coven();
        let bob = member(&g, "bob@localhost");
        for nick in [None, Some("bob")] {
            let (again, facts) = g
                .join("coven", &jid("bob@localhost"), nick, Nodes::ALL, 9)
                .unwrap();
            assert_eq!(again, bob);
            assert!(facts.is_empty(), "{facts:?}");
        }
        let (_, facts) = g
            .join_or_ask("coven", &jid("bob@localhost"), Dialect::Mix, 9)
            .unwrap();
        assert!(facts.is_empty(), "{facts:?}");
        // A real change still makes one, and only the change's: no notice for a re-join.
        let (_, facts) = g
            .join("coven", &jid("bob@localhost"), None, Nodes::MESSAGES, 10)
            .unwrap();
        assert!(matches!(facts[..], [Fact::Joined { .. }]), "{facts:?}");
        let (_, facts) = g
            .join(
                "coven",
                &jid("bob@localhost"),
                Some("robert"),
                Nodes::MESSAGES,
                11,
            )
            .unwrap();
        assert_eq!(facts.len(), 1);
        let (_, facts) = g
            .join_as(
                "coven",
                &jid("bob@localhost"),
                None,
                Nodes::MESSAGES,
                Dialect::FlyChat,
                12,
            )
            .unwrap();
        assert_eq!(facts.len(), 1, "a change of dialect is a change");
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
