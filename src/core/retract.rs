//! Retraction (XEP-0424) by the sender, and moderation (XEP-0425) by an owner or admin. The
//! archive keeps a tombstone in the message's place; its content is erased from storage.

use jid::BareJid;

use super::{Condition, Fact, Groups, MessageRef, Micros, Outcome, Refusal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retracted {
    /// The retraction's own archive id: it is archived as a message (XEP-0424 §6).
    pub id: i64,
    pub channel: i64,
    pub message: i64,
    pub client_id: Option<String>,
    pub by: BareJid,
    pub by_nick: String,
    /// Set when a moderator removed someone else's message, with the reason if given.
    pub moderated: Option<Option<String>>,
    pub at: Micros,
}

impl Groups {
    /// `moderation` is `Some(reason)` for a moderator's retraction (XEP-0425).
    pub fn retract(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: Option<&MessageRef>,
        moderation: Option<Option<String>>,
        now: Micros,
    ) -> Outcome {
        self.charge(actor, super::Quota::Signals, 1, now)?;
        let channel = self.existing(name)?;
        let message = self.live_message(channel.key, target)?;
        let nick = channel.participant(actor).map(|p| p.nick.to_string());
        let allowed = match &moderation {
            None => &message.sender == actor && nick.is_some(),
            Some(_) => channel.is_admin_or_owner(actor),
        };
        if !allowed {
            let text = match moderation {
                None => "only its sender may retract a message",
                Some(_) => "only an owner or admin may moderate messages",
            };
            return Err(Refusal::new(Condition::Forbidden, text));
        }
        let channel_key = channel.key;
        let retracted = Retracted {
            id: self.next_message_id(),
            channel: channel_key,
            message: message.id,
            client_id: message.client_id.clone(),
            by: actor.clone(),
            by_nick: nick.unwrap_or_else(|| actor.to_string()),
            moderated: moderation,
            at: now,
        };
        Ok(self.apply_all(vec![Fact::Retracted(std::sync::Arc::new(retracted))]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn bobs(retracted: bool) -> MessageRef {
        MessageRef {
            client_id: None,
            id: 4,
            channel: 1,
            sender: jid("bob@localhost"),
            retracted,
        }
    }

    #[test]
    fn sender_retracts_owner_moderates() {
        let mut g = coven();
        let m = bobs(false);
        let err = g
            .retract("coven", &jid("alice@localhost"), Some(&m), None, 1)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let err = g
            .retract("coven", &jid("bob@localhost"), Some(&m), Some(None), 1)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        assert!(g
            .retract("coven", &jid("bob@localhost"), Some(&m), None, 1)
            .is_ok());
        let facts = g
            .retract(
                "coven",
                &jid("alice@localhost"),
                Some(&m),
                Some(Some("spam".into())),
                1,
            )
            .unwrap();
        let Fact::Retracted(r) = &facts[0] else {
            panic!()
        };
        assert_eq!(r.moderated, Some(Some("spam".into())));
        let gone = g
            .retract("coven", &jid("bob@localhost"), Some(&bobs(true)), None, 1)
            .unwrap_err();
        assert_eq!(gone.condition, Condition::ItemNotFound);
    }
}
