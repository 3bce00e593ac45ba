//! Reactions (XEP-0444): each participant's current set of reactions to a message, which
//! replaces its previous set (an empty set removes them). History returns them aggregated.

use jid::BareJid;

use super::{Condition, Fact, Groups, MessageRef, Micros, Outcome, Refusal};

pub const MAX_REACTIONS: usize = 20;
pub const MAX_REACTION_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reacted {
    /// The reactions' own archive id: they are archived as a message (XEP-0444).
    pub id: i64,
    pub channel: i64,
    pub message: i64,
    pub member: BareJid,
    pub nick: String,
    pub reactions: Vec<String>,
    pub at: Micros,
}

impl Groups {
    pub fn react(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: Option<&MessageRef>,
        mut reactions: Vec<String>,
        now: Micros,
    ) -> Outcome {
        self.charge(actor, super::Quota::Signals, 1, now)?;
        let (channel, participant) = self.participant_of(name, actor)?;
        let message = self.live_message(channel.key, target)?;
        reactions.sort();
        reactions.dedup();
        if reactions.len() > MAX_REACTIONS
            || reactions
                .iter()
                .any(|r| r.is_empty() || r.len() > MAX_REACTION_BYTES)
        {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!(
                    "at most {MAX_REACTIONS} reactions of 1 to {MAX_REACTION_BYTES} bytes each"
                ),
            ));
        }
        let (channel, nick, message) = (channel.key, participant.nick.to_string(), message.id);
        let reacted = Reacted {
            id: self.next_message_id(),
            channel,
            message,
            member: actor.clone(),
            nick,
            reactions,
            at: now,
        };
        Ok(self.apply_all(vec![Fact::Reacted(std::sync::Arc::new(reacted))]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn reactions_are_deduplicated_and_bounded() {
        let mut g = coven();
        let m = MessageRef {
            client_id: None,
            id: 3,
            channel: 1,
            sender: jid("alice@localhost"),
            retracted: false,
        };
        let facts = g
            .react(
                "coven",
                &jid("bob@localhost"),
                Some(&m),
                vec!["👍".into(), "🎉".into(), "👍".into()],
                1,
            )
            .unwrap();
        let Fact::Reacted(r) = &facts[0] else {
            panic!()
        };
        assert_eq!(r.reactions.len(), 2);
        let many = (0..30).map(|i| i.to_string()).collect();
        let err = g
            .react("coven", &jid("bob@localhost"), Some(&m), many, 1)
            .unwrap_err();
        assert_eq!(err.condition, Condition::NotAcceptable);
    }
}
