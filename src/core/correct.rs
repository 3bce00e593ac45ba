//! Corrections (XEP-0308) by the sender only: the archived message takes the new content
//! and is marked as edited; everyone is told.

use jid::BareJid;

use super::{Condition, Fact, Groups, MessageRef, Micros, Outcome, Refusal, Submission};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrected {
    pub channel: i64,
    pub message: i64,
    /// The id the message's sender gave it, by which FlyChat clients know it.
    pub client_id: Option<String>,
    pub sender: BareJid,
    pub nick: String,
    pub submission: Submission,
    pub at: Micros,
}

impl Groups {
    pub fn correct(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: Option<&MessageRef>,
        submission: Submission,
        now: Micros,
    ) -> Outcome {
        self.charge(actor, super::Quota::Messages, 1, now)?;
        let (channel, participant) = self.participant_of(name, actor)?;
        let message = self.live_message(channel.key, target)?;
        if &message.sender != actor {
            return Err(Refusal::new(
                Condition::Forbidden,
                "only its sender may correct a message",
            ));
        }
        let max = self.rules.max_message_bytes;
        if submission.content.len() > max {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!(
                    "the correction is {} bytes; at most {max} are accepted",
                    submission.content.len()
                ),
            ));
        }
        let corrected = Corrected {
            channel: channel.key,
            message: message.id,
            client_id: message.client_id.clone(),
            sender: actor.clone(),
            nick: participant.nick.to_string(),
            submission,
            at: now,
        };
        Ok(vec![Fact::Corrected(std::sync::Arc::new(corrected))])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn only_the_sender_corrects() {
        let mut g = coven();
        let m = MessageRef {
            client_id: None,
            id: 3,
            channel: 1,
            sender: jid("bob@localhost"),
            retracted: false,
        };
        let err = g
            .correct("coven", &jid("alice@localhost"), Some(&m), text("x"), 1)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let facts = g
            .correct("coven", &jid("bob@localhost"), Some(&m), text("fixed"), 1)
            .unwrap();
        assert!(
            matches!(&facts[0], Fact::Corrected(c) if c.message == 3 && c.submission == text("fixed"))
        );
    }
}
