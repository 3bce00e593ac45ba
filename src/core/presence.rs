//! Client presence in a channel (XEP-0403): a participant's client sends available presence
//! to the channel to receive its traffic live, and unavailable (or its server does, when it
//! goes offline) to stop. Stock Prosody and ejabberd do not deliver `groupchat` from a
//! component to a bare JID, so these full JIDs are where live deliveries go; a participant
//! with none catches up from the archive (MAM).
//!
//! Presence is stored like every other fact, so that a restart does not silence a channel:
//! clients never send presence again by themselves. A client that went away while mixd was
//! down stays listed until a delivery to it bounces ([`Groups::bounced`]). A failed commit's
//! reload keeps the presence the core knew ([`Groups::keep_presence_of`]).
//!
//! One participant may have at most `Rules::max_resources_per_participant` clients online in
//! a channel. Presence beyond that is refused (`resource-constraint`) rather than pushing the
//! oldest client out: every listed client is a copy of every live delivery, and refusing keeps
//! the clients that already work working — dropping the oldest would silently cut off a
//! client that is still there, and let a burst of logins churn through the list. The client
//! that is refused learns why; the user frees a place by closing a client (its server sends
//! unavailable), and a client gone without a word is taken off when a delivery bounces.

use std::collections::HashMap;

use jid::FullJid;

use super::{Channel, Condition, Fact, Groups, Online, Outcome, Participant, Refusal, UserJid};

impl Groups {
    pub fn presence(&mut self, name: &str, from: &FullJid, online: bool) -> Outcome {
        let bare = from.to_bare();
        let (channel, participant) = self.participant_of(name, &bare)?;
        let change = self.presence_change(channel, participant, from, online)?;
        Ok(self.apply_all(change.into_iter().collect()))
    }

    /// The fact of `from`, a client of `participant` of `channel`, coming online (`online`)
    /// or going; none when it already is as said. Coming online beyond the limit of clients
    /// one participant may have is refused. (A join from a client asks this of the
    /// participant it just made, without finding it again.)
    pub(super) fn presence_change(
        &self,
        channel: &Channel,
        participant: &Participant,
        from: &FullJid,
        online: bool,
    ) -> Outcome<Option<Fact>> {
        if participant.online.contains(from) == online {
            return Ok(None);
        }
        let limit = self.rules.max_resources_per_participant;
        if online && participant.online.len() >= limit {
            return Err(Refusal::new(
                Condition::ResourceConstraint,
                format!(
                    "{} already has {} clients online in '{}', the most one participant \
                     may have; send unavailable presence from one of them first",
                    participant.jid,
                    participant.online.len(),
                    channel.name
                ),
            ));
        }
        Ok(Some(Fact::PresenceChanged {
            key: channel.key,
            jid: from.clone(),
            online,
        }))
    }

    /// A delivery to `to` bounced: it is not online any more, in any channel.
    pub fn bounced(&mut self, to: &FullJid) -> Vec<Fact> {
        let facts: Vec<Fact> = self
            .channels
            .iter()
            .filter(|c| {
                c.participant(&to.to_bare())
                    .is_some_and(|p| p.online.contains(to))
            })
            .map(|c| Fact::PresenceChanged {
                key: c.key,
                jid: to.clone(),
                online: false,
            })
            .collect();
        self.apply_all(facts)
    }

    /// After a failed commit the core starts again from the store (`self`, just loaded);
    /// `old` is the state it ran ahead with. Who is online is what clients told, whether or
    /// not its last change reached the disk, so each participant that is still one keeps the
    /// clients `old` knew: without this, live delivery would stop until clients sent presence
    /// again, which they never do by themselves.
    pub fn keep_presence_of(&mut self, old: Groups) {
        for old_channel in old.channels {
            let Some(channel) = self.channels.by_key_mut(old_channel.key) else {
                continue;
            };
            if channel.name != old_channel.name {
                continue;
            }
            let mut online: HashMap<UserJid, Online> = old_channel
                .participants
                .into_iter()
                .map(|p| (p.jid, p.online))
                .collect();
            channel.participants.update_all(|participant| {
                if let Some(clients) = online.remove(&participant.jid) {
                    participant.online = clients;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Condition, Rules, Snapshot};
    use super::*;

    #[test]
    fn presence_tracks_full_jids() {
        let mut g = coven();
        let phone = FullJid::new("bob@localhost/phone").unwrap();
        assert_eq!(g.presence("coven", &phone, true).unwrap().len(), 1);
        assert!(g.presence("coven", &phone, true).unwrap().is_empty());
        let bob = member(&g, "bob@localhost");
        assert_eq!(bob.online, vec![phone.clone()]);
        assert_eq!(g.bounced(&phone).len(), 1);
        let bob = member(&g, "bob@localhost");
        assert!(bob.online.is_empty());
        let eve = FullJid::new("eve@localhost/x").unwrap();
        assert!(g.presence("coven", &eve, true).is_err());
    }

    #[test]
    fn clients_beyond_the_limit_are_refused_and_going_away_frees_a_place() {
        let mut g = coven();
        g.rules.max_resources_per_participant = 3;
        let client = |i: usize| FullJid::new(&format!("bob@localhost/r{i}")).unwrap();
        for i in 0..3 {
            assert_eq!(g.presence("coven", &client(i), true).unwrap().len(), 1);
        }
        let err = g.presence("coven", &client(3), true).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert!(err.text.contains("3 clients"), "{}", err.text);
        // One already online is no change, not a refusal.
        assert!(g.presence("coven", &client(1), true).unwrap().is_empty());
        // Unavailable beyond the limit is never refused (and changes nothing).
        assert!(g.presence("coven", &client(3), false).unwrap().is_empty());
        assert_eq!(g.presence("coven", &client(0), false).unwrap().len(), 1);
        assert_eq!(g.presence("coven", &client(3), true).unwrap().len(), 1);
        let online = member(&g, "bob@localhost").online;
        assert_eq!(online, vec![client(1), client(2), client(3)]);
        // The limit is per participant: alice still comes online.
        let alice = FullJid::new("alice@localhost/a").unwrap();
        assert_eq!(g.presence("coven", &alice, true).unwrap().len(), 1);
    }

    #[test]
    fn a_reload_keeps_who_was_online() {
        let phone = FullJid::new("bob@localhost/phone").unwrap();
        // What the store has: the channel with alice and bob as they joined, nobody online,
        // and no trace of carol, whose join was in the failed batch.
        let stored = coven();
        let mut carol_joined = coven();
        carol_joined
            .join(
                "coven",
                &jid("carol@localhost"),
                None,
                crate::core::Nodes::ALL,
                4,
            )
            .unwrap();
        let carol = FullJid::new("carol@localhost/c").unwrap();
        carol_joined.presence("coven", &phone, true).unwrap();
        carol_joined.presence("coven", &carol, true).unwrap();
        let snapshot = Snapshot {
            last_channel_key: 1,
            last_message_id: stored.last_message_id(),
            departures: Vec::new(),
            ..Snapshot::of(stored.channels().cloned().map(Box::new).collect())
        };
        let mut reloaded = Groups::new(Rules::default(), snapshot);
        reloaded.keep_presence_of(carol_joined);
        assert_eq!(member(&reloaded, "bob@localhost").online, vec![phone]);
        assert!(reloaded
            .channel("coven")
            .unwrap()
            .participant(&jid("carol@localhost"))
            .is_none());
        assert!(member(&reloaded, "alice@localhost").online.is_empty());
    }
}
