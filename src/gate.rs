//! The gate: a flooding user's posts refused before they are read into trees.
//!
//! When the message quota (`core/quota.rs`) refuses a user's post, that user's bucket has no
//! token until a time the quota knows: every post before then will be refused too, with the
//! same text but for the wait. The rules task publishes that time here ([`PostGate::publish`],
//! from [`crate::core::OutOfPosts`]), and the link's reader asks the gate about each stanza
//! before it parses it ([`Screen`]): a plain MIX post from such a user is answered with the
//! quota's own `policy-violation` and never parsed, queued, routed or handled. A flood then
//! costs the framer's scan and one reply per stanza; measured in docs/benchmarks.md ("The
//! link's reading").
//!
//! Only what is surely a post is refused here, from its envelope: a `groupchat` message to
//! a channel of this service, in the component namespace, with a `<body/>` of that namespace
//! and no child that makes it a retraction, correction, reaction, receipt or marker (those are
//! signals, or take a look-up first) or a FlyChat message. Anything else goes on to the rules
//! as before. One order changes: a post carrying a payload the allow-list refuses
//! (`not-acceptable`) is refused for the quota first while its sender is out of tokens.
//! Entries end by themselves at their time; at most [`crate::core::MAX_TRACKED`] are kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::core::{Micros, OutOfPosts, MAX_TRACKED};
use crate::dialect::{ErrorKind, ReplyTo};
use crate::link::reader::{Envelope, Screen};
use crate::xml::ns;

/// Children whose names (without a prefix) make a groupchat message something other than a
/// plain post, or send it to the FlyChat dialect (`mix/message.rs`, `flychat/`).
const NOT_POSTS: &[&[u8]] = &[
    b"retract",
    b"replace",
    b"reactions",
    b"received",
    b"displayed",
    b"acknowledged",
    b"delivered",
    b"seen",
    b"chatcontent",
];

/// Who may not post until when, shared by the rules task (which writes) and the link's reader
/// (which reads).
pub struct PostGate {
    domain: String,
    out: Mutex<HashMap<String, OutOfPosts>>,
    /// Whether `out` may hold anyone: the reader's check without the lock.
    any: AtomicBool,
}

impl PostGate {
    pub fn new(domain: &str) -> Self {
        PostGate {
            domain: domain.to_owned(),
            out: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
        }
    }

    /// Takes what the quotas refused since the last call.
    pub fn publish(&self, refused: Vec<OutOfPosts>) {
        if refused.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for entry in refused {
            if out.len() >= MAX_TRACKED {
                let now = now();
                out.retain(|_, e| e.until > now);
                if out.len() >= MAX_TRACKED {
                    break;
                }
            }
            out.insert(entry.user.to_string(), entry);
        }
        self.any.store(!out.is_empty(), Ordering::Release);
    }

    /// Forgets everyone (the rules, and so the rates, changed).
    pub fn clear(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.clear();
        self.any.store(false, Ordering::Release);
    }

    /// Whether `to` is a channel of this service: `name@domain`, with or without a resource.
    fn to_channel(&self, to: &str) -> bool {
        let bare = to.split_once('/').map_or(to, |(bare, _)| bare);
        bare.split_once('@')
            .is_some_and(|(node, domain)| !node.is_empty() && domain == self.domain)
    }
}

/// A plain MIX post, told from its envelope (see the module's doc).
fn is_plain_post(envelope: &Envelope) -> bool {
    if envelope.name != b"message"
        || envelope.kind != Some("groupchat")
        || envelope.xmlns.is_some_and(|x| x != ns::COMPONENT)
    {
        return false;
    }
    let Some(children) = envelope.children else {
        return false;
    };
    children
        .iter()
        .any(|c| c.name() == b"body" && !c.declares_namespace)
        && !children
            .iter()
            .any(|c| NOT_POSTS.contains(&local(c.name())))
}

/// A name as written without its prefix.
fn local(name: &[u8]) -> &[u8] {
    name.iter()
        .rposition(|&b| b == b':')
        .map_or(name, |colon| &name[colon + 1..])
}

impl Screen for PostGate {
    fn refuse(&self, envelope: &Envelope) -> Option<String> {
        if !self.any.load(Ordering::Acquire) || !is_plain_post(envelope) {
            return None;
        }
        let (from, to) = (envelope.from?, envelope.to?);
        if !self.to_channel(to) {
            return None;
        }
        let sender = from.split_once('/').map_or(from, |(bare, _)| bare);
        let now = now();
        let refusal = {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let entry = out.get(sender)?;
            if entry.until <= now {
                out.remove(sender);
                self.any.store(!out.is_empty(), Ordering::Release);
                return None;
            }
            entry.refusal(now)
        };
        let reply = ReplyTo {
            from: to.to_owned(),
            to: from.to_owned(),
            id: envelope.id.map(str::to_owned),
        };
        Some(reply.error(ErrorKind::Message, &refusal))
    }
}

/// The system clock, which the rules' clock (`service.rs`) follows: entries' times are
/// compared with it. (The rules' clock never steps back; should this one, an entry would be
/// kept longer than its bucket stays empty.)
fn now() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::testing::{coven, jid, text};
    use crate::link::reader::{Item, Limits, Reader};

    const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' from='mix.localhost' id='s1'>";

    /// The reply the gate gives `stanza`, read through the link's reader; `None` when the
    /// stanza is read as usual.
    fn screened(gate: &Arc<PostGate>, stanza: &str) -> Option<String> {
        let mut reader = Reader::with_screen(
            Limits {
                max_bytes: 64 * 1024,
                max_depth: 32,
            },
            gate.clone(),
        );
        let mut out = Vec::new();
        reader.feed(HEADER.as_bytes(), &mut out).unwrap();
        out.clear();
        reader.feed(stanza.as_bytes(), &mut out).unwrap();
        match out.pop() {
            Some(Item::Screened { reply }) => Some(reply),
            Some(Item::Stanza { .. }) => None,
            other => panic!("{stanza}: {other:?}"),
        }
    }

    /// Bob, out of posts: the quota refused his post a moment ago; what the rules said.
    fn bob_out_of_posts(gate: &PostGate) -> String {
        let mut g = coven();
        g.rules.message_burst = 1;
        g.rules.messages_per_minute = 6;
        let now = now();
        g.post("coven", &jid("bob@localhost"), text("a"), now)
            .unwrap();
        let refusal = g
            .post("coven", &jid("bob@localhost"), text("b"), now)
            .unwrap_err();
        gate.publish(g.take_out_of_posts());
        refusal.text
    }

    fn post(from: &str, children: &str) -> String {
        format!(
            "<message from='{from}' to='coven@mix.localhost' id='p1' type='groupchat'>{children}</message>"
        )
    }

    #[test]
    fn posts_of_a_user_out_of_posts_are_answered_with_the_quotas_refusal() {
        let gate = Arc::new(PostGate::new("mix.localhost"));
        let plain = post("bob@localhost/r", "<body>hi</body>");
        assert_eq!(screened(&gate, &plain), None, "nobody is out of posts");
        let said = bob_out_of_posts(&gate);
        assert!(said.starts_with(
            "you are sending messages too fast: at most 1 at once, then 6 a minute; try again in "
        ));
        let reply = screened(&gate, &plain).expect("refused");
        assert!(
            reply.starts_with(
                "<message xmlns='jabber:component:accept' type='error' from='coven@mix.localhost' to='bob@localhost/r' id='p1'>"
            ),
            "{reply}"
        );
        assert!(
            reply.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
            "{reply}"
        );
        assert!(
            reply.contains(&said[..said.len() - " 9.9 s".len()]),
            "{reply} / {said}"
        );
        // Any client of bob's, and a post with a chat state or another payload.
        for stanza in [
            post("bob@localhost/other", "<body>hi</body>"),
            post(
                "bob@localhost/r",
                "<body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/>",
            ),
            post(
                "bob@localhost/r",
                "<origin-id xmlns='urn:xmpp:sid:0' id='o'/><body/>",
            ),
        ] {
            assert!(screened(&gate, &stanza).is_some(), "{stanza}");
        }
        // What is not surely a plain MIX post from bob to a channel here goes on to the rules.
        for stanza in [
            post("alice@localhost/r", "<body>hi</body>"),
            post("bob@localhost/r", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
            post("bob@localhost/r", "<body>hi</body><received xmlns='urn:xmpp:receipts' id='m'/>"),
            post("bob@localhost/r", "<body>x</body><r:retract xmlns:r='urn:xmpp:message-retract:1' id='m'/>"),
            post("bob@localhost/r", "<body>x</body><replace xmlns='urn:xmpp:message-correct:0' id='m'/>"),
            post("bob@localhost/r", "<body xmlns='urn:other'>hi</body>"),
            // More children than the framer tells of.
            post("bob@localhost/r", &("<a xmlns='urn:a'/>".repeat(8) + "<body>x</body>")),
            "<message from='bob@localhost/r' to='coven@elsewhere' id='p1' type='groupchat'><body>hi</body></message>".into(),
            "<message from='bob@localhost/r' to='mix.localhost' id='p1' type='groupchat'><body>hi</body></message>".into(),
            "<message from='bob@localhost/r' to='coven@mix.localhost' id='p1' type='chat'><body>hi</body></message>".into(),
            "<message from='bob@localhost/r' to='coven@mix.localhost' id='p1' type='groupchat' xmlns='jabber:client'><body>hi</body></message>".into(),
            "<presence from='bob@localhost/r' to='coven@mix.localhost' id='p1'/>".into(),
        ] {
            assert_eq!(screened(&gate, &stanza), None, "{stanza}");
        }
    }

    #[test]
    fn an_entry_ends_at_its_time() {
        let gate = Arc::new(PostGate::new("mix.localhost"));
        let mut g = coven();
        g.rules.message_burst = 1;
        g.rules.messages_per_minute = 6;
        // Refused ten seconds ago, for a wait of ten seconds: over now.
        let then = now() - 10_000_000;
        g.post("coven", &jid("bob@localhost"), text("a"), then)
            .unwrap();
        g.post("coven", &jid("bob@localhost"), text("b"), then)
            .unwrap_err();
        gate.publish(g.take_out_of_posts());
        assert!(gate.any.load(Ordering::Acquire));
        assert_eq!(
            screened(&gate, &post("bob@localhost/r", "<body>hi</body>")),
            None
        );
        assert!(!gate.any.load(Ordering::Acquire), "forgotten");
        bob_out_of_posts(&gate);
        gate.clear();
        assert_eq!(
            screened(&gate, &post("bob@localhost/r", "<body>hi</body>")),
            None
        );
    }
}
