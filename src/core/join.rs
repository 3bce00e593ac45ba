//! Joining a channel (XEP-0369 §7.1.2) with the node subscriptions asked for, and
//! optionally a nick. Joining again updates the subscriptions and keeps the participant id;
//! joining again as one already is changes nothing and makes no fact.
//! Who may join first time is the group's to say: its allowed and banned lists, its join
//! policy (an invite-only group takes the invited, a group taking requests its approved
//! requesters, who are added by the approval) and its member limit.
//!
//! A MIX `<join/>` also says how the participant is reached ([`Reach`]): from the user's
//! bare JID it is its server joining for it (XEP-0405 MIX-PAM), and deliveries go to the bare
//! JID; from a full JID it is the client joining itself, which is online from its join on
//! (as if it had also sent presence), so that nothing said right after the join misses it.

use jid::{BareJid, Jid};

use super::model::{Online, Reach};
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

    /// A MIX `<join/>` from `from`: a bare JID is the user's server joining for it (MIX-PAM,
    /// reached at the bare JID), a full JID a client joining directly, which is online from
    /// now on. The joining client is made online only within the limit of clients per
    /// participant: beyond it the join still succeeds, and the client's own presence is
    /// refused as usual.
    pub fn join_from(
        &mut self,
        name: &str,
        from: &Jid,
        nick: Option<&str>,
        nodes: Nodes,
        now: Micros,
    ) -> Outcome<(Participant, Vec<Fact>)> {
        // A copy of the sender's JID cut at its resource: `to_bare` wrote the parts again
        // through `format!`, 1,100 instructions of each join (docs/benchmarks.md, `joins5`).
        let actor = from.clone().into_bare();
        let (reach, client) = match from.try_as_full() {
            Ok(full) => (Reach::Direct, Some(full)),
            Err(_) => (Reach::Server, None),
        };
        let (key, mut participant, mut facts) =
            self.join_with(name, &actor, nick, nodes, Dialect::Mix, Some(reach), now)?;
        // The channel by the key the join found it under (by name, its name would be hashed
        // again with the keyed hasher, `Channels`).
        if let (Some(client), Some(channel)) = (client, self.channels.by_key(key)) {
            // The participant as joined is the one whose client comes online: asked of it,
            // not found again. Refused beyond the limit of clients: not online, still joined.
            if let Ok(Some(online)) = self.presence_change(channel, &participant, client, true) {
                facts.extend(self.apply_all(vec![online]));
                participant.online.push(client.clone());
            }
        }
        Ok((participant, facts))
    }

    /// Joins `actor`, whose client speaks `dialect`; one already taking part keeps how it
    /// is reached, a newcomer is reached directly.
    pub fn join_as(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: Option<&str>,
        nodes: Nodes,
        dialect: Dialect,
        now: Micros,
    ) -> Outcome<(Participant, Vec<Fact>)> {
        self.join_with(name, actor, nick, nodes, dialect, None, now)
            .map(|(_, participant, facts)| (participant, facts))
    }

    /// Joins `actor`, whose client speaks `dialect`, reached as `reach` says (`None`: as it
    /// was, directly for a newcomer); with the channel's key.
    #[allow(clippy::too_many_arguments)]
    fn join_with(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: Option<&str>,
        nodes: Nodes,
        dialect: Dialect,
        reach: Option<Reach>,
        now: Micros,
    ) -> Outcome<(i64, Participant, Vec<Fact>)> {
        let max_nick = self.rules.max_nick_bytes;
        // One look for the participant: with thousands of members, each scan counts.
        let channel = self.existing(name)?;
        let previous = channel.participant(actor).cloned();
        let settles = channel.pending(actor).is_some();
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
            (Some(nick), _) => Some(checked_nick(nick, max_nick)?),
            (None, Some(previous)) => Some(previous.nick.to_string()),
            // Named by `newcomer`, once its participant id is known (see `assigned_nick`).
            (None, None) => None,
        };
        if let Some(nick) = nick.as_deref().filter(|n| channel.nick_taken(n, actor)) {
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
                if nick.as_deref() == Some(previous.nick.as_str())
                    && previous.nodes == nodes
                    && previous.dialect == dialect
                    && reach.is_none_or(|r| r == previous.reach) =>
            {
                return Ok((key, previous, Vec::new()));
            }
            Some(previous) => Participant {
                nick: nick.map_or(previous.nick, Into::into),
                nodes,
                dialect,
                reach: reach.unwrap_or(previous.reach),
                ..previous
            },
            None => Participant {
                reach: reach.unwrap_or_default(),
                ..self.newcomer(key, actor, nick, nodes, dialect, now)
            },
        };
        self.charge(actor, super::Quota::Joins, 1, now)?;
        let fact = Fact::Joined {
            key,
            participant: participant.clone(),
            by: actor.clone(),
            settles,
            again: joining_again,
        };
        // Joining again only changes subscriptions: no notice for that.
        let facts = if joining_again {
            self.apply_all(vec![fact])
        } else {
            self.apply_noted(vec![fact], now)
        };
        Ok((key, participant, facts))
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

    /// A new participant of the channel keyed `key` (which exists): a fresh id, the user's
    /// localpart as nick unless one is given (in a JID-hidden channel its participant id),
    /// owner if it owns the channel; where history is not shared, it sees only what comes
    /// after it joins.
    pub(super) fn newcomer(
        &mut self,
        key: i64,
        jid: &BareJid,
        nick: Option<String>,
        nodes: Nodes,
        dialect: Dialect,
        now: Micros,
    ) -> Participant {
        // Found once, by the key its callers have (by name, it would be hashed again with
        // the keyed hasher): the fields read here are not the ones drawn from (`ids`).
        let channel = self.channels.by_key(key);
        let hashed = channel.and_then(|c| {
            let id = participant_id(&self.rules.participant_key, c.key, jid);
            c.participant_by_id(id).is_none().then_some(id)
        });
        // Random only after a collision (or without a channel): it costs a system call.
        let id = match hashed {
            Some(id) => id,
            None => ParticipantId(self.ids.next_u64()),
        };
        let owner = channel.is_some_and(|c| c.is_owner(jid));
        let history_visible = channel.is_none_or(|c| c.info.history_visible);
        Participant {
            id,
            jid: self.directory.shared(jid),
            nick: nick
                .unwrap_or_else(|| assigned_nick(channel, jid, id, self.rules.max_nick_bytes))
                .into(),
            nodes,
            role: if owner { Role::Owner } else { Role::Member },
            dialect,
            reach: Reach::Direct,
            joined_at: now,
            cleared_upto: if history_visible {
                0
            } else {
                self.last_message_id
            },
            online: Online::default(),
        }
    }
}

/// The stable participant id (XEP-0369 §5.3) of `jid` in the channel keyed `channel`: a
/// keyed hash (SipHash-2-4 under the service's secret) of the two, so that a user who leaves
/// and joins again has the same id, the mapping from participant to id outlives the
/// participant without being stored, and the id tells nothing of the JID to one who does
/// not know the secret. Channel keys are never reused, so neither are ids; two users of one
/// channel whose ids collide (one chance in 2⁶⁴ per pair) are told apart by a random id for
/// the later one. Hex, so never with '#', '/' or '@'.
pub fn participant_id(key: &[u8; 16], channel: i64, jid: &BareJid) -> ParticipantId {
    use std::hash::Hasher;
    let mut hasher = siphasher::sip::SipHasher24::new_with_key(key);
    hasher.write(b"mixd participant id");
    hasher.write_i64(channel);
    hasher.write(jid.as_str().as_bytes());
    ParticipantId(hasher.finish())
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

/// The nick the service gives participant `id` when it picks none (XEP-0369 §7.1.6, "the MIX
/// service generates the nick"): in a JID-hidden channel (XEP-0404) its participant id, since
/// a nick made from the JID would name it to everyone; elsewhere [`generated_nick`].
pub(super) fn assigned_nick(
    channel: Option<&Channel>,
    jid: &BareJid,
    id: ParticipantId,
    max_bytes: usize,
) -> String {
    match channel.is_some_and(|c| c.settings().jids_hidden) {
        true => id.to_string(),
        false => generated_nick(channel, jid, max_bytes),
    }
}

/// The nick generated from a JID: its JID's localpart, within the length limit, and where another
/// participant of `channel` has that nick, the first of `<localpart>-2`, `<localpart>-3`, …
/// that is free.
pub(super) fn generated_nick(channel: Option<&Channel>, jid: &BareJid, max_bytes: usize) -> String {
    let localpart = jid
        .node()
        .map_or_else(|| jid.to_string(), |n| n.to_string());
    let within = |text: &str, room: usize| -> String {
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_owned()
    };
    let free = |nick: &str| channel.is_none_or(|c| !c.nick_taken(nick, jid));
    let base = within(&localpart, max_bytes);
    if free(&base) {
        return base;
    }
    (2u64..)
        .map(|n| {
            let suffix = format!("-{n}");
            format!(
                "{}{suffix}",
                within(&base, max_bytes.saturating_sub(suffix.len()))
            )
        })
        .find(|nick| free(nick))
        .expect("some suffix is free: a channel has finitely many participants")
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
    fn a_participant_id_survives_leave_and_rejoin_and_differs_between_users_and_channels() {
        let mut g = coven();
        let bob = jid("bob@localhost");
        let before = member(&g, "bob@localhost").id;
        g.leave("coven", &bob, 5).unwrap();
        let (again, _) = g.join("coven", &bob, None, Nodes::ALL, 6).unwrap();
        assert_eq!(again.id, before);
        assert_ne!(member(&g, "alice@localhost").id, before);
        g.create(&bob, Some("other"), 7).unwrap();
        let (elsewhere, _) = g.join("other", &bob, None, Nodes::ALL, 8).unwrap();
        assert_ne!(elsewhere.id, before);
        let secret = [7; 16];
        let key = g.channel("coven").unwrap().key;
        assert_ne!(participant_id(&secret, key, &bob), before, "keyed");
        let shown = before.to_string();
        assert!(
            !shown.contains(['#', '/', '@']) && shown.len() == 16,
            "{shown}"
        );
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
    fn a_join_from_the_bare_jid_is_reached_through_the_server() {
        let mut g = coven();
        let carol: Jid = "carol@localhost".parse().unwrap();
        let (p, facts) = g.join_from("coven", &carol, None, Nodes::ALL, 9).unwrap();
        assert_eq!((p.reach, p.online.len()), (Reach::Server, 0));
        assert!(matches!(facts[..], [Fact::Joined { .. }, ..]), "{facts:?}");
        assert!(!facts
            .iter()
            .any(|f| matches!(f, Fact::PresenceChanged { .. })));
        // The same join again changes nothing; from a client, it changes the reach.
        let (_, facts) = g.join_from("coven", &carol, None, Nodes::ALL, 10).unwrap();
        assert!(facts.is_empty(), "{facts:?}");
        let phone: Jid = "carol@localhost/phone".parse().unwrap();
        let (p, facts) = g.join_from("coven", &phone, None, Nodes::ALL, 11).unwrap();
        assert_eq!(p.reach, Reach::Direct);
        assert!(matches!(
            facts[..],
            [
                Fact::Joined { .. },
                Fact::PresenceChanged { online: true, .. }
            ]
        ));
    }

    #[test]
    fn a_client_that_joins_directly_is_online_from_its_join() {
        let mut g = coven();
        let phone: Jid = "carol@localhost/phone".parse().unwrap();
        let (p, facts) = g.join_from("coven", &phone, None, Nodes::ALL, 9).unwrap();
        assert_eq!(p.reach, Reach::Direct);
        assert_eq!(p.online, vec![phone.try_as_full().unwrap().clone()]);
        assert!(matches!(
            facts.last(),
            Some(Fact::PresenceChanged { online: true, .. })
        ));
        // Another of its clients joining as it is only comes online.
        let laptop: Jid = "carol@localhost/laptop".parse().unwrap();
        let (p, facts) = g.join_from("coven", &laptop, None, Nodes::ALL, 10).unwrap();
        assert_eq!(p.online.len(), 2);
        assert!(
            matches!(facts[..], [Fact::PresenceChanged { .. }]),
            "{facts:?}"
        );
        // Beyond the limit of clients the join is still answered; that client is not online.
        g.rules.max_resources_per_participant = 2;
        let third: Jid = "carol@localhost/third".parse().unwrap();
        let (p, facts) = g.join_from("coven", &third, None, Nodes::ALL, 11).unwrap();
        assert_eq!(p.online.len(), 2);
        assert!(facts.is_empty(), "{facts:?}");
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
