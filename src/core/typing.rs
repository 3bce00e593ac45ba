//! Chat states (XEP-0085; FlyChat's composing/gone): relayed to the other participants as
//! they happen, never stored, so history never shows them.

use jid::BareJid;

use super::{Fact, Groups, Micros, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    Active,
    Composing,
    Paused,
    Inactive,
    Gone,
}

impl ChatState {
    pub const ALL: [ChatState; 5] = [
        ChatState::Active,
        ChatState::Composing,
        ChatState::Paused,
        ChatState::Inactive,
        ChatState::Gone,
    ];

    /// The XEP-0085 element name.
    pub fn name(self) -> &'static str {
        match self {
            ChatState::Active => "active",
            ChatState::Composing => "composing",
            ChatState::Paused => "paused",
            ChatState::Inactive => "inactive",
            ChatState::Gone => "gone",
        }
    }
}

impl Groups {
    pub fn chat_state(
        &mut self,
        name: &str,
        actor: &BareJid,
        state: ChatState,
        now: Micros,
    ) -> Outcome {
        self.charge(actor, super::Quota::Signals, 1, now)?;
        let (channel, participant) = self.participant_of(name, actor)?;
        Ok(vec![Fact::ChatState {
            key: channel.key,
            sender: actor.clone(),
            nick: participant.nick.clone(),
            state,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn only_participants_type() {
        let mut g = coven();
        let facts = g
            .chat_state("coven", &jid("bob@localhost"), ChatState::Composing, 0)
            .unwrap();
        assert!(
            matches!(&facts[0], Fact::ChatState { nick, state: ChatState::Composing, .. } if nick == "bob")
        );
        assert!(g
            .chat_state("coven", &jid("eve@localhost"), ChatState::Composing, 0)
            .is_err());
    }
}
