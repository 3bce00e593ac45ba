//! Receipts (XEP-0184) and markers (XEP-0333; FlyChat's delivered/seen): recorded per member
//! and message with their times. Each carries how many members must have it for the message
//! to count as delivered (or seen) by everyone; the store tells when that is reached, and the
//! author is told then.

use jid::BareJid;

use super::{Condition, Fact, Groups, MessageRef, Micros, Outcome, Refusal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReceiptKind {
    Delivered,
    /// Displayed (seen); implies delivered.
    Displayed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub channel: i64,
    pub message: i64,
    pub client_id: Option<String>,
    pub author: BareJid,
    pub member: BareJid,
    pub kind: ReceiptKind,
    pub at: Micros,
    /// Members other than the author when the receipt came in.
    pub expected: usize,
}

impl Groups {
    /// Whom a message's receipt state lists: every participant but its author. Any
    /// participant may ask, of any message of its channel (retracted ones too).
    pub fn members_of(
        &self,
        name: &str,
        requester: &BareJid,
        target: Option<&MessageRef>,
    ) -> Outcome<(MessageRef, Vec<BareJid>)> {
        let (channel, _) = self.participant_of(name, requester)?;
        let message = match target {
            Some(m) if m.channel == channel.key => m.clone(),
            _ => {
                return Err(Refusal::new(
                    Condition::ItemNotFound,
                    format!("no such message in '{name}'"),
                ))
            }
        };
        let members = channel
            .participants
            .iter()
            .filter(|p| p.jid != message.sender)
            .map(|p| p.jid.to_bare())
            .collect();
        Ok((message, members))
    }

    pub fn receipt(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: Option<&MessageRef>,
        kind: ReceiptKind,
        now: Micros,
    ) -> Outcome {
        self.charge(actor, super::Quota::Signals, 1, now)?;
        let (channel, _) = self.participant_of(name, actor)?;
        let message = self.live_message(channel.key, target)?;
        if &message.sender == actor {
            // Nothing to learn from acknowledging one's own message.
            return Ok(Vec::new());
        }
        let expected = channel
            .participants
            .iter()
            .filter(|p| p.jid != message.sender)
            .count();
        Ok(vec![Fact::Receipt(Receipt {
            channel: channel.key,
            message: message.id,
            client_id: message.client_id.clone(),
            author: message.sender.clone(),
            member: actor.clone(),
            kind,
            at: now,
            expected,
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Condition;
    use super::*;

    fn message(id: i64, sender: &str) -> MessageRef {
        MessageRef {
            id,
            client_id: None,
            channel: 1,
            sender: jid(sender),
            retracted: false,
        }
    }

    #[test]
    fn receipts_count_the_other_members() {
        let mut g = coven();
        let m = message(7, "alice@localhost");
        let facts = g
            .receipt(
                "coven",
                &jid("bob@localhost"),
                Some(&m),
                ReceiptKind::Displayed,
                3,
            )
            .unwrap();
        let Fact::Receipt(r) = &facts[0] else {
            panic!()
        };
        assert_eq!(
            (r.message, r.expected, r.kind),
            (7, 1, ReceiptKind::Displayed)
        );
        assert!(g
            .receipt(
                "coven",
                &jid("alice@localhost"),
                Some(&m),
                ReceiptKind::Delivered,
                3
            )
            .unwrap()
            .is_empty());
        let err = g
            .receipt(
                "coven",
                &jid("bob@localhost"),
                None,
                ReceiptKind::Delivered,
                3,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::ItemNotFound);
        let elsewhere = MessageRef { channel: 9, ..m };
        assert!(g
            .receipt(
                "coven",
                &jid("bob@localhost"),
                Some(&elsewhere),
                ReceiptKind::Delivered,
                3
            )
            .is_err());
    }
}
