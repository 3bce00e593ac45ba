//! Private messages through a channel (XEP-0404): a participant writes to another by its
//! participant id, without knowing its JID, and the channel passes the message on under the
//! sender's participant id. Nothing is archived or changed (the XEP forbids the channel to
//! archive them), so the command only decides the route.

use jid::BareJid;

use super::{Condition, Groups, Outcome, ParticipantId, Refusal};

/// Where a private message goes and under which participant id it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateRoute {
    /// The sender's participant id: the message comes from its proxy JID.
    pub from: ParticipantId,
    /// The recipient's bare JID.
    pub to: BareJid,
}

impl Groups {
    /// The route of a private message from `sender` to participant `to` of channel `name`:
    /// only a participant sends one, and only to a participant.
    pub fn private_route(
        &self,
        name: &str,
        sender: &BareJid,
        to: ParticipantId,
    ) -> Outcome<PrivateRoute> {
        let (channel, from) = self.participant_of(name, sender)?;
        let recipient = channel.participant_by_id(to).ok_or_else(|| {
            Refusal::new(
                Condition::ItemNotFound,
                format!("'{name}' has no participant {to}"),
            )
        })?;
        Ok(PrivateRoute {
            from: from.id,
            to: recipient.jid.to_bare(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn a_participant_reaches_another_by_its_id_and_nobody_else_does() {
        let g = coven();
        let channel = g.channel("coven").unwrap();
        let alice = channel.participant(&jid("alice@localhost")).unwrap().id;
        let bob = channel.participant(&jid("bob@localhost")).unwrap().id;
        let route = g
            .private_route("coven", &jid("bob@localhost"), alice)
            .unwrap();
        assert_eq!(
            route,
            PrivateRoute {
                from: bob,
                to: jid("alice@localhost")
            }
        );
        let outsider = g
            .private_route("coven", &jid("mallory@localhost"), alice)
            .unwrap_err();
        assert_eq!(outsider.condition, Condition::Forbidden);
        let unknown = g
            .private_route("coven", &jid("bob@localhost"), ParticipantId(alice.0 ^ 1))
            .unwrap_err();
        assert_eq!(unknown.condition, Condition::ItemNotFound);
    }
}
