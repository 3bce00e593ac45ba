//! Client presence in a channel (XEP-0403): a participant's client sends available presence
//! to the channel to receive its traffic live, and unavailable (or its server does, when it
//! goes offline) to stop. Stock Prosody and ejabberd do not deliver `groupchat` from a
//! component to a bare JID, so these full JIDs are where live deliveries go; a participant
//! with none catches up from the archive (MAM).

use jid::FullJid;

use super::{Fact, Groups, Outcome};

impl Groups {
    pub fn presence(&mut self, name: &str, from: &FullJid, online: bool) -> Outcome {
        let bare = from.to_bare();
        let (channel, participant) = self.participant_of(name, &bare)?;
        if participant.online.contains(from) == online {
            return Ok(Vec::new());
        }
        let fact = Fact::PresenceChanged {
            key: channel.key,
            jid: from.clone(),
            online,
        };
        Ok(self.apply_all(vec![fact]))
    }

    /// A delivery to `to` bounced: it is not online any more, in any channel.
    pub fn bounced(&mut self, to: &FullJid) -> Vec<Fact> {
        let facts: Vec<Fact> = self
            .channels
            .values()
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn presence_tracks_full_jids() {
        let mut g = coven();
        let phone = jid::FullJid::new("bob@localhost/phone").unwrap();
        assert_eq!(g.presence("coven", &phone, true).unwrap().len(), 1);
        assert!(g.presence("coven", &phone, true).unwrap().is_empty());
        let bob = member(&g, "bob@localhost");
        assert_eq!(bob.online, vec![phone.clone()]);
        assert_eq!(g.bounced(&phone).len(), 1);
        let bob = member(&g, "bob@localhost");
        assert!(bob.online.is_empty());
        let eve = jid::FullJid::new("eve@localhost/x").unwrap();
        assert!(g.presence("coven", &eve, true).is_err());
    }
}
