//! Proxy JIDs (XEP-0404, private messages): `<participant id>#<channel>@<service>` names one
//! participant of a channel without its real JID. Both dialects write them where a client
//! needs a JID for someone whose JID is hidden from it, and a message sent to one is relayed
//! to that participant (`mix::private`). Channel names never contain `#`
//! (`core::create`), so a localpart with one is a proxy JID and nothing else.

use std::collections::HashMap;

use jid::BareJid;

use crate::core::{Channel, Participant, ParticipantId};

/// The proxy JID of participant `id` of the channel whose JID is `channel_jid`.
pub fn proxy_jid(channel_jid: &str, id: ParticipantId) -> String {
    // Written in place: every join's reply carries one, and `format!` (the id through its
    // `Display`) took four times the instructions (docs/benchmarks.md, `joins5`).
    let mut jid = String::with_capacity(17 + channel_jid.len());
    jid.push_str(&id.hex());
    jid.push('#');
    jid.push_str(channel_jid);
    jid
}

/// A proxy JID's localpart split into the participant id and the channel's name; `None`
/// when the localpart is a channel's (it has no `#`). The id is `Err` with its text when it
/// is none mixd gives, which names nobody.
pub fn parse(localpart: &str) -> Option<(Result<ParticipantId, &str>, &str)> {
    let (id, channel) = localpart.split_once('#')?;
    let parsed = match id.parse() {
        Ok(parsed) if id.len() == 16 => Ok(parsed),
        _ => Err(id),
    };
    Some((parsed, channel))
}

/// How one recipient is shown the users of a channel where its dialect needs a JID for each
/// (the FlyChat SDK drops an event without one): real JIDs where the channel shows them to
/// it; in a JID-hidden channel, for a member, each participant's proxy JID, its own JID (the
/// SDK must recognise itself), and the channel's JID for anyone else (an owner who takes no
/// part). Owned, so that it can go along with a read of the archive.
#[derive(Debug, Clone)]
pub struct Naming {
    channel_jid: String,
    /// The participants' ids, when JIDs are hidden from the recipient.
    hidden: Option<HashMap<BareJid, ParticipantId>>,
    /// The recipient, who sees its own JID.
    viewer: Option<BareJid>,
}

impl Naming {
    /// Real JIDs.
    pub fn real(channel_jid: &str) -> Naming {
        Naming {
            channel_jid: channel_jid.to_owned(),
            hidden: None,
            viewer: None,
        }
    }

    /// Proxy JIDs for a recipient from whom `channel` hides JIDs.
    pub fn hidden(channel: &Channel, channel_jid: &str) -> Naming {
        let ids = channel
            .participants
            .iter()
            .map(|p| (p.jid.to_bare(), p.id))
            .collect();
        Naming {
            hidden: Some(ids),
            ..Naming::real(channel_jid)
        }
    }

    /// As `channel` shows JIDs to `viewer`.
    pub fn for_viewer(channel: &Channel, channel_jid: &str, viewer: &BareJid) -> Naming {
        if channel.shows_jids_to(viewer) {
            return Naming::real(channel_jid);
        }
        Naming::hidden(channel, channel_jid).seen_by(viewer)
    }

    /// The same, for `viewer`, who sees its own JID.
    pub fn seen_by(self, viewer: &BareJid) -> Naming {
        Naming {
            viewer: Some(viewer.clone()),
            ..self
        }
    }

    pub fn shows_jids(&self) -> bool {
        self.hidden.is_none()
    }

    /// How `jid` is shown.
    pub fn jid(&self, jid: &BareJid) -> String {
        match &self.hidden {
            Some(_) if self.viewer.as_ref() == Some(jid) => jid.to_string(),
            Some(ids) => match ids.get(jid) {
                Some(id) => proxy_jid(&self.channel_jid, *id),
                None => self.channel_jid.clone(),
            },
            None => jid.to_string(),
        }
    }

    /// How `participant` is shown, also once it has left.
    pub fn participant(&self, participant: &Participant) -> String {
        if self.shows_jids() || self.viewer.as_ref() == Some(&participant.jid) {
            return participant.jid.to_string();
        }
        proxy_jid(&self.channel_jid, participant.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_jid_reads_back_as_its_participant_and_channel() {
        let id = ParticipantId(0x0123_4567_89ab_cdef);
        let jid = proxy_jid("coven@mix.example.org", id);
        assert_eq!(jid, "0123456789abcdef#coven@mix.example.org");
        let localpart = jid.split_once('@').unwrap().0;
        assert_eq!(parse(localpart), Some((Ok(id), "coven")));
        assert_eq!(parse("coven"), None);
        assert_eq!(parse("nobody#coven"), Some((Err("nobody"), "coven")));
        assert_eq!(parse("+123#coven"), Some((Err("+123"), "coven")));
    }

    #[test]
    fn a_member_of_a_hidden_channel_sees_proxy_jids_and_its_own() {
        use crate::core::testing::{coven, jid};
        use crate::core::SettingsChange;
        let mut g = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let hide = SettingsChange {
            jids_hidden: Some(true),
            ..Default::default()
        };
        g.change_settings("coven", &alice, hide, 5).unwrap();
        let channel = g.channel("coven").unwrap();
        let channel_jid = "coven@mix.example.org";
        let alice_id = channel.participant(&alice).unwrap().id;
        let at_bob = Naming::for_viewer(channel, channel_jid, &bob);
        assert!(!at_bob.shows_jids());
        assert_eq!(at_bob.jid(&alice), proxy_jid(channel_jid, alice_id));
        assert_eq!(at_bob.jid(&bob), "bob@localhost");
        assert_eq!(at_bob.jid(&jid("owner@localhost")), channel_jid);
        let at_alice = Naming::for_viewer(channel, channel_jid, &alice);
        assert_eq!(at_alice.jid(&bob), "bob@localhost");
    }
}
