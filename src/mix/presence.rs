//! Presence to a channel (XEP-0403): available presence from a participant's client puts
//! that full JID on the channel's delivery list, unavailable takes it off. Servers send
//! unavailable for a client that disconnects, since it had sent the channel directed presence.

use jid::FullJid;

use crate::core::Groups;
use crate::dialect::{Envelope, Handled};

/// A client coming online to a channel, or going away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub channel: String,
    /// Delivery goes to full JIDs (stock servers do not deliver `groupchat` from a
    /// component to a bare JID), so only presence from one counts.
    pub client: FullJid,
    pub online: bool,
}

impl Presence {
    /// The presence, if it is one MIX-Presence cares about: to a channel, from a full JID,
    /// available or unavailable. Anything else is not answered (subscriptions and probes are
    /// not part of XEP-0403, and an error to presence would only bounce around).
    pub fn parse(env: &Envelope, presence_type: Option<&str>) -> Option<Self> {
        let (Some(channel), Some(client)) = (&env.channel, env.full_sender()) else {
            return None;
        };
        let online = match presence_type {
            None => true,
            Some("unavailable") => false,
            Some(_) => return None,
        };
        Some(Presence {
            channel: channel.clone(),
            client: client.clone(),
            online,
        })
    }

    /// An error only for an available presence the channel refuses (no such channel, not a
    /// participant); going away is never refused.
    pub fn apply(self, groups: &mut Groups, env: &Envelope) -> Handled {
        let Presence {
            channel,
            client,
            online,
        } = self;
        tracing::debug!(jid = %client, online, channel = %channel, "client presence");
        match groups.presence(&channel, &client, online) {
            Ok(facts) if facts.is_empty() => Handled::Nothing,
            Ok(facts) => Handled::Changed {
                facts,
                reply: None,
                on_failure: None,
            },
            Err(refusal) if online => Handled::Reply(env.error(&refusal)),
            Err(_) => Handled::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::envelope;
    use crate::dialect::ErrorKind;

    #[test]
    fn available_and_unavailable_presence_from_a_client() {
        let env = envelope(
            ErrorKind::Presence,
            "hag@example.org/broom",
            "coven@mix.example.org",
        );
        let expected = |online| Presence {
            channel: "coven".into(),
            client: FullJid::new("hag@example.org/broom").unwrap(),
            online,
        };
        assert_eq!(Presence::parse(&env, None), Some(expected(true)));
        assert_eq!(
            Presence::parse(&env, Some("unavailable")),
            Some(expected(false))
        );
    }

    #[test]
    fn presence_mix_does_not_care_about_is_no_request() {
        let env = envelope(
            ErrorKind::Presence,
            "hag@example.org/broom",
            "coven@mix.example.org",
        );
        for kind in ["subscribe", "probe", "unsubscribed"] {
            assert_eq!(Presence::parse(&env, Some(kind)), None, "{kind}");
        }
        let bare = envelope(
            ErrorKind::Presence,
            "hag@example.org",
            "coven@mix.example.org",
        );
        assert_eq!(Presence::parse(&bare, None), None);
        let service = envelope(
            ErrorKind::Presence,
            "hag@example.org/broom",
            "mix.example.org",
        );
        assert_eq!(Presence::parse(&service, None), None);
    }
}
