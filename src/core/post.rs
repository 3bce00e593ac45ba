//! Posting a message (XEP-0369 §7.1.7): only participants post. The message gets the next
//! archive id, which is also the id it is reflected with and its XEP-0359 stanza-id.

use std::sync::Arc;

use jid::BareJid;

use super::{Channel, Condition, Fact, Groups, Micros, Outcome, Participant, Refusal, Role};

/// What a participant submits: the payload and the ids its client knows the message by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    /// The message's children as a namespace-neutral XML fragment, exactly as sent.
    pub content: String,
    /// The sender's XEP-0359 origin-id, kept so that its client can match the reflection.
    pub origin_id: Option<String>,
    /// The id attribute of the sender's stanza, which XEP-0308 corrections refer to.
    pub client_id: Option<String>,
    /// Whether it shares a file (XEP-0447, XEP-0385, XEP-0066): history can list these alone.
    pub media: bool,
}

/// A message as archived and reflected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub id: i64,
    pub channel: i64,
    pub sender: BareJid,
    pub nick: String,
    pub at: Micros,
    pub submission: Submission,
}

impl Groups {
    /// Banned users, muted members and, in a muted group, members who are not admins may not
    /// post; the refusal says until when.
    fn may_post(channel: &Channel, participant: &Participant, now: Micros) -> Outcome<()> {
        Self::admitted_as(channel, &participant.jid, participant.role)?;
        let muted_until = channel.muted_until(&participant.jid);
        if muted_until > now {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!(
                    "you are muted in '{}' until {}",
                    channel.name,
                    crate::core::iso_time(muted_until)
                ),
            ));
        }
        if channel.settings().muted && participant.role < Role::Admin {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("'{}' is muted: only owners and admins post", channel.name),
            ));
        }
        Ok(())
    }

    pub fn post(
        &mut self,
        name: &str,
        actor: &BareJid,
        submission: Submission,
        now: Micros,
    ) -> Outcome {
        // not-acceptable rather than RFC 6120's policy-violation, which clients built on the
        // RFC 3920 list of conditions (slixmpp among them) do not recognize.
        let max = self.rules.max_message_bytes;
        let size = submission.content.len();
        if size > max {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!("the message is {size} bytes; at most {max} are accepted"),
            ));
        }
        self.charge(actor, super::Quota::Messages, 1, now)?;
        let id = self.next_message_id();
        let (channel, participant) = self.participant_of(name, actor)?;
        Self::may_post(channel, participant, now)?;
        let key = channel.key;
        let posted = Posted {
            id,
            channel: channel.key,
            sender: actor.clone(),
            nick: participant.nick.to_string(),
            at: now,
            submission,
        };
        self.chat_states.posted(key, actor, now);
        Ok(self.apply_all(vec![Fact::Posted(Arc::new(posted))]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn participants_post_with_increasing_ids() {
        let mut g = coven();
        let first = g
            .post("coven", &jid("bob@localhost"), text("a"), 5)
            .unwrap();
        let second = g
            .post("coven", &jid("alice@localhost"), text("b"), 6)
            .unwrap();
        let (Fact::Posted(a), Fact::Posted(b)) = (&first[0], &second[0]) else {
            panic!("not posts")
        };
        // The channel's creation and joins took the first ids, as notices.
        assert_eq!((a.id, b.id), (4, 5));
        assert_eq!(a.nick, "bob");
        assert_eq!(a.submission, text("a"));
    }

    #[test]
    fn outsiders_and_oversized_are_refused() {
        let mut g = coven();
        let err = g
            .post("coven", &jid("eve@localhost"), text("x"), 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let big = Submission {
            content: "x".repeat(g.rules.max_message_bytes + 1),
            ..Submission::default()
        };
        let err = g.post("coven", &jid("bob@localhost"), big, 5).unwrap_err();
        assert_eq!(err.condition, Condition::NotAcceptable);
        // Nothing refused took an id.
        let ok = g
            .post("coven", &jid("bob@localhost"), text("y"), 5)
            .unwrap();
        assert!(matches!(&ok[0], Fact::Posted(p) if p.id == 4));
    }
}
