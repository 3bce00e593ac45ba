//! Turns between senders: what the link has read waits here, one queue per sender, until
//! the service loop takes it (see [`Intake`]).

use std::ops::Deref;

use minidom::Element;

use crate::core::{Condition, Refusal};
use crate::dialect::{ErrorKind, ReplyTo};
use crate::turns::Turns;
use crate::xml::Head;

/// Fairness between senders: the stanzas the link has read wait here, one queue per sender
/// (the bare JID of `from`: all of one user's clients share a queue), and the loop takes one
/// stanza from each sender with stanzas waiting in turn, instead of all of them in arrival
/// order.
///
/// Why: the quotas (`core/quota.rs`) turn a flood of posts into refusals, cheaper than posts
/// but not free, and they cannot make the stanzas already queued go away, nor do they cover
/// what is not a post (chat states, receipts, queries). With one first-come queue (the
/// link's, up to 4,096 stanzas), a quiet channel's message waits behind everything a flooding
/// user sent before it: measured before the quotas (`mixd-bench fairness`,
/// docs/benchmarks.md), a flood of 25,000 posts a second stopped a quiet channel outright.
/// Taken in turns, it waits for at most one stanza of each other sender with stanzas waiting.
/// (The quotas without the turns were not measured separately.)
///
/// Bounds: at most [`INTAKE_STANZAS`] wait here (beyond, the loop leaves stanzas in the
/// link's queue, and the link stops reading: the back-pressure of before), and at most
/// [`SENDER_STANZAS`] of one sender. A stanza beyond its sender's share is not handled: its
/// sender gets `policy-violation` saying so at once, so one user who sends faster than mixd
/// can work sheds its own load instead of stopping everyone's (the link keeps reading).
/// Every stanza also keeps its share of the link's inbound weight while it waits here, so
/// memory stays within the link's bound. Each sender's stanzas keep their order (RFC 6120
/// §10.1 asks no more); the turns are `turns.rs`'s.
///
/// `S` is the link's `Inbound` (a stanza holding its weight, with its head read); the tests
/// use elements with their heads.
pub struct Intake<S> {
    turns: Turns<S>,
}

/// The most stanzas waiting in the intake (the link's own queue holds as many again).
const INTAKE_STANZAS: usize = 8192;
/// The most stanzas of one sender waiting; beyond, they are refused. No client waits for
/// this many answers at once; a flooding one reaches it when mixd cannot keep up with it.
const SENDER_STANZAS: usize = 1024;

impl<S> Default for Intake<S> {
    fn default() -> Self {
        Intake {
            turns: Turns::new(SENDER_STANZAS),
        }
    }
}

impl<S: Deref<Target = Element> + AsRef<Head>> Intake<S> {
    pub fn has_space(&self) -> bool {
        self.turns.len() < INTAKE_STANZAS
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// Queues `stanza` behind its sender's. A stanza beyond its sender's share is dropped
    /// instead, and what comes back is the error for its sender (none for an error stanza).
    #[must_use]
    pub fn push(&mut self, stanza: S) -> Option<String> {
        let Err(stanza) = self.turns.push(stanza, sender) else {
            return None;
        };
        tracing::debug!(
            sender = sender(&stanza),
            "too many stanzas waiting from one sender; refused"
        );
        overflow(&stanza, stanza.as_ref())
    }

    /// The next sender's oldest stanza; that sender goes to the back of the turns.
    pub fn take_turn(&mut self) -> Option<S> {
        self.turns.take_turn()
    }
}

/// Whose turn a stanza waits for: the bare JID of its `from`.
fn sender(stanza: &impl AsRef<Head>) -> &str {
    let from = stanza.as_ref().from().unwrap_or_default();
    from.split_once('/').map_or(from, |(bare, _)| bare)
}

/// The error a stanza beyond its sender's share gets; none for an error stanza.
fn overflow(stanza: &Element, head: &Head) -> Option<String> {
    let kind = match stanza.name() {
        "iq" => ErrorKind::Iq,
        "message" => ErrorKind::Message,
        "presence" => ErrorKind::Presence,
        _ => return None,
    };
    if head.kind() == Some("error") {
        return None;
    }
    let reply = ReplyTo {
        from: head.to()?.to_owned(),
        to: head.from()?.to_owned(),
        id: head.id().map(str::to_owned),
    };
    let refusal = Refusal::new(
        Condition::PolicyViolation,
        format!(
            "{SENDER_STANZAS} of your stanzas are waiting to be handled; this one was not: \
             send it again once the earlier ones are answered"
        ),
    );
    Some(reply.error(kind, &refusal))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stanza with its head, as the link hands them over.
    struct Received(Element, Head);

    impl Deref for Received {
        type Target = Element;

        fn deref(&self) -> &Element {
            &self.0
        }
    }

    impl AsRef<Head> for Received {
        fn as_ref(&self) -> &Head {
            &self.1
        }
    }

    /// A message of `kind` from `from`, its id saying which.
    fn message(from: &str, id: &str, kind: &str) -> Received {
        let xml = format!(
            "<message xmlns='jabber:component:accept' from='{from}' to='coven@mix.localhost' \
             id='{id}' type='{kind}'><body>{id}</body></message>"
        );
        let element: Element = xml.parse().unwrap();
        let head = Head::of(&element);
        Received(element, head)
    }

    fn stanza(from: &str, id: &str) -> Received {
        message(from, id, "groupchat")
    }

    fn body(stanza: &Element) -> String {
        stanza.attr("id").unwrap().to_owned()
    }

    #[test]
    fn senders_take_turns_and_each_keeps_its_order() {
        let mut intake = Intake::default();
        for i in 0..3 {
            assert!(intake
                .push(stanza("flood@localhost/a", &format!("f{i}")))
                .is_none());
        }
        // Two clients of one user are one sender.
        assert!(intake.push(stanza("flood@localhost/b", "f3")).is_none());
        assert!(intake.push(stanza("quiet@localhost/x", "q0")).is_none());
        assert!(intake.push(stanza("quiet@localhost/x", "q1")).is_none());
        let mut order = Vec::new();
        while let Some(next) = intake.take_turn() {
            order.push(body(&next));
        }
        assert_eq!(order, ["f0", "q0", "f1", "q1", "f2", "f3"]);
        assert!(intake.is_empty());
    }

    #[test]
    fn a_sender_beyond_its_share_is_refused_and_others_are_not() {
        let mut intake = Intake::default();
        for i in 0..SENDER_STANZAS {
            assert!(intake
                .push(stanza("flood@localhost/a", &i.to_string()))
                .is_none());
        }
        let refusal = intake
            .push(stanza("flood@localhost/a", "over"))
            .expect("an error for the sender");
        assert!(refusal.contains("<policy-violation"), "{refusal}");
        assert!(refusal.contains("to='flood@localhost/a'"), "{refusal}");
        assert!(refusal.contains("id='over'"), "{refusal}");
        assert!(
            refusal.contains("1024 of your stanzas are waiting to be handled"),
            "{refusal}"
        );
        // Another sender still gets in, and has the next turn but one.
        assert!(intake.push(stanza("quiet@localhost/x", "q")).is_none());
        assert_eq!(body(&intake.take_turn().unwrap()), "0");
        assert_eq!(body(&intake.take_turn().unwrap()), "q");
        // An error stanza over the share is dropped without an answer.
        assert!(intake.push(stanza("flood@localhost/a", "fits")).is_none());
        assert!(intake
            .push(message("flood@localhost/a", "bounced", "error"))
            .is_none());
        assert_eq!(intake.turns.len(), SENDER_STANZAS);
    }
}
