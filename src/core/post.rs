//! Posting a message (XEP-0369 §7.1.7): only participants post. The message gets the next
//! archive id, which is also the id it is reflected with and its XEP-0359 stanza-id.

use std::sync::Arc;

use jid::BareJid;

use super::{Condition, Fact, Groups, Micros, Outcome, Refusal};

/// A message as archived and reflected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub id: i64,
    pub channel: i64,
    pub sender: BareJid,
    pub nick: String,
    pub at: Micros,
    /// The sender's XEP-0359 origin-id, kept so that its client can match the reflection.
    pub origin_id: Option<String>,
    /// The message's children as a namespace-neutral XML fragment, exactly as sent.
    pub content: String,
}

impl Groups {
    pub fn post(
        &mut self,
        name: &str,
        actor: &BareJid,
        origin_id: Option<String>,
        content: String,
        now: Micros,
    ) -> Outcome {
        // not-acceptable rather than RFC 6120's policy-violation, which clients built on the
        // RFC 3920 list of conditions (slixmpp among them) do not recognize.
        let max = self.rules.max_message_bytes;
        if content.len() > max {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!(
                    "the message is {} bytes; at most {max} are accepted",
                    content.len()
                ),
            ));
        }
        let id = self.next_message_id();
        let (channel, participant) = self.participant_of(name, actor)?;
        let posted = Posted {
            id,
            channel: channel.key,
            sender: actor.clone(),
            nick: participant.nick.clone(),
            at: now,
            origin_id,
            content,
        };
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
            .post(
                "coven",
                &jid("bob@localhost"),
                Some("o1".into()),
                "<body>a</body>".into(),
                5,
            )
            .unwrap();
        let second = g
            .post(
                "coven",
                &jid("alice@localhost"),
                None,
                "<body>b</body>".into(),
                6,
            )
            .unwrap();
        let (Fact::Posted(a), Fact::Posted(b)) = (&first[0], &second[0]) else {
            panic!("not posts")
        };
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(a.nick, "bob");
        assert_eq!(a.origin_id.as_deref(), Some("o1"));
    }

    #[test]
    fn outsiders_and_oversized_are_refused() {
        let mut g = coven();
        let err = g
            .post(
                "coven",
                &jid("eve@localhost"),
                None,
                "<body>x</body>".into(),
                5,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let big = "x".repeat(g.rules.max_message_bytes + 1);
        let err = g
            .post("coven", &jid("bob@localhost"), None, big, 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::NotAcceptable);
        // Nothing refused took an id.
        let ok = g
            .post("coven", &jid("bob@localhost"), None, String::new(), 5)
            .unwrap();
        assert!(matches!(&ok[0], Fact::Posted(p) if p.id == 1));
    }
}
