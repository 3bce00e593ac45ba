//! The gate: a flooding user's posts, signals and history queries refused, and its chat
//! states dropped, before they are read into trees.
//!
//! **Posts.** When the message quota (`core/quota.rs`) refuses a user's post, that user's
//! bucket has no token until a time the quota knows: every post before then will be refused
//! too, with the same text but for the wait. The rules task publishes that time here
//! ([`Gate::publish`], from [`crate::core::OutOfTokens`]), and the link's reader asks the gate
//! about each stanza before it parses it ([`Screen`]): a plain MIX post from such a user is
//! answered with the quota's own `policy-violation` and never parsed, queued, routed or
//! handled. Only what is surely a post is refused here, from its envelope: a `groupchat`
//! message to a channel of this service, in the component namespace, with a `<body/>` of that
//! namespace and no child that makes it a retraction, correction, reaction, receipt or marker
//! (those are signals, or take a look-up first) or a FlyChat message. Anything else goes on
//! to the rules as before. One order changes: a post carrying a payload the allow-list
//! refuses (`not-acceptable`) is refused for the quota first while its sender is out of
//! tokens.
//!
//! **Signals.** The same for the signal quota, whose refusals the rules publish too: a
//! `groupchat` message to a channel here (not a proxy JID) whose one child is a retraction,
//! reactions, or a receipt or marker with an `id`, in its namespace, is refused with the
//! quota's refusal while its sender is out of signals, as the rules refuse it before they
//! look the message it names up. Chat states are not refused here: the rules drop a repeat
//! before they charge the quota, and only they know whether one is.
//!
//! **History queries.** The same for the history quota: a user out of reads has its MAM
//! queries and FlyChat history pages and look-ups refused with the quota's refusal, told from
//! the envelope as `read_gate.rs` says. A history flood then costs the framer's scan and one
//! reply per query instead of a tree, a turn of the intake, the dialect's parsing and the
//! rules' refusal.
//!
//! **Chat states.** The rules drop a participant's MIX chat state that repeats the last one
//! it told the channel, or comes beyond its pace (`core/typing.rs`): untold, unanswered. When
//! they drop one, they publish until when the next ones will be dropped ([`Quiet`]), and the
//! gate drops them here, before they are parsed, as long as that still holds: the stanza is a
//! `groupchat` message to exactly `channel@domain` from a client of exactly that user, whose
//! one child is that chat state in its namespace, before the time, and **no message of the
//! user has been let by since the dropped one** — a post or another state the rules have not
//! handled yet would change what they decide. For that the gate gives every stanza it lets
//! by a ticket, which travels with it to the rules ([`crate::link::Inbound`]) and comes back
//! with what they publish; the gate keeps the last ticket given to a message of each user
//! (in [`SLOTS`] slots by a hash of the sender: two users in one slot only make an entry
//! end sooner), and an entry holds only while no later ticket went to its user. A message
//! from an address the gate cannot compare as written (not lowercase ASCII) ends every
//! entry. Whatever ends a membership (a participant leaving or removed, a channel destroyed)
//! ends every entry too: a non-participant's chat state is refused, not dropped.
//!
//! What the gate decides on is the envelope the framer read (`link/reader.rs`); a stanza
//! that is not well-formed XML (which a server never forwards) is refused by the parser
//! when it is read, but may be refused for the quota, or dropped, here. Entries end by
//! themselves at their time; at most [`crate::core::MAX_TRACKED`] users are kept. Measured
//! in docs/benchmarks.md ("Fairness").

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::core::{ChatState, Micros, OutOfTokens, QuietNews, Quota, MAX_TRACKED};
use crate::dialect::{ErrorKind, ReplyTo};
use crate::link::reader::{Envelope, Screen, Verdict};
use crate::read_gate::{is_history_query, Addressed};
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

/// How many slots keep the last ticket given to a user's message (see the module's doc).
const SLOTS: usize = 4096;

/// Who may not post or signal, and whose chat states are dropped, until when; shared by the
/// rules task (which writes) and the link's reader (which reads).
pub struct Gate {
    domain: String,
    out: Mutex<OutOf>,
    /// Whether `out` may hold anyone: the reader's check without the lock.
    any: AtomicBool,
    /// By user, then by channel.
    quiet: Mutex<HashMap<String, Vec<Stilled>>>,
    any_quiet: AtomicBool,
    /// The last ticket given.
    tickets: AtomicU64,
    /// The last ticket given to a message, by a hash of its sender; and to a message from
    /// an address not written as the rules write it.
    last_message: Box<[AtomicU64]>,
    last_unusual: AtomicU64,
}

/// Who is out of posts, of signals and of reads, by user.
#[derive(Default)]
struct OutOf {
    posts: HashMap<String, OutOfTokens>,
    signals: HashMap<String, OutOfTokens>,
    reads: HashMap<String, OutOfTokens>,
}

impl OutOf {
    /// The users out of `quota`'s tokens, for a quota the gate is told of.
    fn of(&mut self, quota: Quota) -> Option<&mut HashMap<String, OutOfTokens>> {
        match quota {
            Quota::Messages => Some(&mut self.posts),
            Quota::Signals => Some(&mut self.signals),
            Quota::Reads => Some(&mut self.reads),
            Quota::Channels | Quota::Joins | Quota::Adds => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.posts.is_empty() && self.signals.is_empty() && self.reads.is_empty()
    }
}

/// A user's chat states in one channel that the rules drop (see [`crate::core::Quiet`]),
/// since the stanza with `ticket`.
#[derive(Debug)]
struct Stilled {
    channel: String,
    last: ChatState,
    repeats_until: Micros,
    paced_until: Micros,
    ticket: u64,
}

impl Stilled {
    fn drops(&self, state: ChatState, now: Micros) -> bool {
        (state == self.last && now < self.repeats_until) || now < self.paced_until
    }

    fn over(&self, now: Micros) -> bool {
        now >= self.repeats_until && now >= self.paced_until
    }
}

impl Gate {
    pub fn new(domain: &str) -> Self {
        Gate {
            domain: domain.to_owned(),
            out: Mutex::new(OutOf::default()),
            any: AtomicBool::new(false),
            quiet: Mutex::new(HashMap::new()),
            any_quiet: AtomicBool::new(false),
            tickets: AtomicU64::new(0),
            last_message: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            last_unusual: AtomicU64::new(0),
        }
    }

    /// Takes who the quotas refused since the last call (`core::OutOfTokens`).
    pub fn publish(&self, refused: Vec<OutOfTokens>) {
        if refused.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for entry in refused {
            let Some(users) = out.of(entry.quota) else {
                continue;
            };
            if users.len() >= MAX_TRACKED {
                let now = now();
                users.retain(|_, e| e.until > now);
                if users.len() >= MAX_TRACKED {
                    continue;
                }
            }
            users.insert(entry.user.to_string(), entry);
        }
        self.any.store(!out.is_empty(), Ordering::Release);
    }

    /// Takes what the rules told of chat states while they handled the stanza with `ticket`.
    pub fn publish_quiet(&self, news: QuietNews, ticket: u64) {
        if news == QuietNews::default() {
            return;
        }
        let mut quiet = self.quiet.lock().unwrap_or_else(|e| e.into_inner());
        if news.membership_ended {
            quiet.clear();
        }
        for entry in news.quiet {
            if quiet.len() >= MAX_TRACKED {
                let now = now();
                quiet.retain(|_, stilled| {
                    stilled.retain(|s| !s.over(now));
                    !stilled.is_empty()
                });
                if quiet.len() >= MAX_TRACKED {
                    break;
                }
            }
            let stilled = quiet.entry(entry.user.to_string()).or_default();
            stilled.retain(|s| s.channel != entry.channel);
            stilled.push(Stilled {
                channel: entry.channel,
                last: entry.last,
                repeats_until: entry.repeats_until,
                paced_until: entry.paced_until,
                ticket,
            });
        }
        self.any_quiet.store(!quiet.is_empty(), Ordering::Release);
    }

    /// Forgets everyone (the rules, and so the rates, changed, or the rules' state was
    /// loaded again).
    pub fn clear(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        *out = OutOf::default();
        self.any.store(false, Ordering::Release);
        drop(out);
        let mut quiet = self.quiet.lock().unwrap_or_else(|e| e.into_inner());
        quiet.clear();
        self.any_quiet.store(false, Ordering::Release);
    }

    /// Where `to` is, as written.
    fn addressed(&self, to: &str) -> Addressed {
        let bare = to.split_once('/').map_or(to, |(bare, _)| bare);
        match bare.split_once('@') {
            Some((node, domain)) if !node.is_empty() && domain == self.domain => Addressed::Channel,
            None if bare == self.domain => Addressed::Service,
            Some(_) | None => Addressed::Elsewhere,
        }
    }

    /// The quota a stanza surely asks one token of, told from its envelope, and how its
    /// refusal is sent; `None` for anything the rules must read first.
    fn asks(&self, envelope: &Envelope) -> Option<(Quota, ErrorKind)> {
        let to = self.addressed(envelope.to?);
        if is_mix_groupchat(envelope) {
            let quota = if to != Addressed::Channel {
                None
            } else if is_plain_post(envelope) {
                Some(Quota::Messages)
            } else if is_lone_named_signal(envelope) {
                Some(Quota::Signals)
            } else {
                None
            };
            return quota.map(|quota| (quota, ErrorKind::Message));
        }
        is_history_query(envelope, to).then_some((Quota::Reads, ErrorKind::Iq))
    }

    /// The reply to a request of one token of `quota` from `sender`, who is out of them;
    /// `None` if it is not.
    fn out_of(
        &self,
        envelope: &Envelope,
        sender: &str,
        (quota, kind): (Quota, ErrorKind),
    ) -> Option<String> {
        let (from, to) = (envelope.from?, envelope.to?);
        let now = now();
        let refusal = {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let users = out.of(quota)?;
            let entry = users.get(sender)?;
            if entry.until <= now {
                users.remove(sender);
                let any = !out.is_empty();
                self.any.store(any, Ordering::Release);
                return None;
            }
            entry.refusal(now)
        };
        let reply = ReplyTo {
            from: to.to_owned(),
            to: from.to_owned(),
            id: envelope.id.map(str::to_owned),
        };
        Some(reply.error(kind, &refusal))
    }

    /// Whether the rules would drop this chat state of `sender`'s (see the module's doc).
    fn drops(&self, envelope: &Envelope, sender: &str, state: ChatState) -> bool {
        let Some((channel, domain)) = envelope.to.and_then(|to| to.split_once('@')) else {
            return false;
        };
        if domain != self.domain {
            return false;
        }
        let slot = &self.last_message[slot(sender)];
        let now = now();
        let mut quiet = self.quiet.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stilled) = quiet.get_mut(sender) else {
            return false;
        };
        let Some(at) = stilled.iter().position(|s| s.channel == channel) else {
            return false;
        };
        let entry = &stilled[at];
        let still = entry.ticket >= slot.load(Ordering::Acquire)
            && entry.ticket >= self.last_unusual.load(Ordering::Acquire);
        if still && entry.drops(state, now) {
            return true;
        }
        if !still || entry.over(now) {
            stilled.swap_remove(at);
            if stilled.is_empty() {
                quiet.remove(sender);
                self.any_quiet.store(!quiet.is_empty(), Ordering::Release);
            }
        }
        false
    }

    /// A ticket for a stanza let by; a message's is kept for its sender.
    fn let_by(&self, envelope: &Envelope, sender: Option<&str>) -> u64 {
        let ticket = self.tickets.fetch_add(1, Ordering::AcqRel) + 1;
        if envelope.name == b"message" {
            match sender.filter(|s| written_as_the_rules_write(s)) {
                Some(sender) => self.last_message[slot(sender)].fetch_max(ticket, Ordering::AcqRel),
                None => self.last_unusual.fetch_max(ticket, Ordering::AcqRel),
            };
        }
        ticket
    }
}

/// A plain MIX message (a `groupchat` one in the component namespace), by its envelope.
fn is_mix_groupchat(envelope: &Envelope) -> bool {
    envelope.name == b"message"
        && envelope.kind == Some("groupchat")
        && envelope.xmlns.is_none_or(|x| x == ns::COMPONENT)
}

/// A plain MIX post, told from its envelope (see the module's doc).
fn is_plain_post(envelope: &Envelope) -> bool {
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

/// A MIX signal that names a message (a retraction, reactions, a receipt or marker) and
/// carries nothing else, told from its envelope: the rules check the signal quota for it
/// before anything else (`mix/message.rs`), to any channel that is not a proxy JID's.
fn is_lone_named_signal(envelope: &Envelope) -> bool {
    let Some([child]) = envelope.children else {
        return false;
    };
    if envelope.to.is_none_or(|to| {
        to.split_once('@')
            .is_none_or(|(node, _)| node.contains('#'))
    }) {
        return false;
    }
    let Some(namespace) = child.namespace() else {
        return false;
    };
    let is = |expected: &str| namespace == expected.as_bytes();
    match child.name() {
        b"retract" => is(ns::RETRACT),
        b"reactions" => is(ns::REACTIONS),
        b"received" => child.has_id && (is(ns::RECEIPTS) || is(ns::MARKERS)),
        b"displayed" | b"acknowledged" => child.has_id && is(ns::MARKERS),
        _ => false,
    }
}

/// The chat state a message carries and nothing else, told from its envelope.
fn lone_chat_state(envelope: &Envelope) -> Option<ChatState> {
    let [child] = envelope.children? else {
        return None;
    };
    if child.namespace()? != ns::CHATSTATES.as_bytes() {
        return None;
    }
    ChatState::ALL
        .into_iter()
        .find(|s| s.name().as_bytes() == child.name())
}

/// A name as written without its prefix.
fn local(name: &[u8]) -> &[u8] {
    name.iter()
        .rposition(|&b| b == b':')
        .map_or(name, |colon| &name[colon + 1..])
}

/// Whether a bare JID as written is surely the one the rules make of it: lowercase ASCII
/// without a trailing dot, which JID normalization leaves as it is.
fn written_as_the_rules_write(bare: &str) -> bool {
    !bare.ends_with('.')
        && bare
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
}

fn slot(sender: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hash =
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(sender);
    (hash as usize) % SLOTS
}

impl Screen for Gate {
    fn screen(&self, envelope: &Envelope) -> Verdict {
        let sender = envelope
            .from
            .map(|from| from.split_once('/').map_or(from, |(bare, _)| bare));
        if let (true, Some(sender)) = (self.any.load(Ordering::Acquire), sender) {
            let asked = self.asks(envelope);
            if let Some(reply) = asked.and_then(|asked| self.out_of(envelope, sender, asked)) {
                return Verdict::Refused(reply);
            }
        }
        if let (true, Some(sender)) = (is_mix_groupchat(envelope), sender) {
            if self.any_quiet.load(Ordering::Acquire) {
                if let Some(state) = lone_chat_state(envelope) {
                    if self.drops(envelope, sender, state) {
                        return Verdict::Dropped;
                    }
                }
            }
        }
        Verdict::Read {
            ticket: self.let_by(envelope, sender),
        }
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

    /// What became of `stanza` read through the link's reader with the gate.
    #[derive(Debug, PartialEq)]
    enum Read {
        Refused(String),
        Dropped,
        Parsed { ticket: u64 },
    }

    fn read(gate: &Arc<Gate>, stanza: &str) -> Read {
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
            Some(Item::Screened { reply }) => Read::Refused(reply),
            Some(Item::Stanza { ticket, .. }) => Read::Parsed { ticket },
            None => Read::Dropped,
            other => panic!("{stanza}: {other:?}"),
        }
    }

    /// The reply the gate gives `stanza`; `None` when the stanza is read as usual.
    fn screened(gate: &Arc<Gate>, stanza: &str) -> Option<String> {
        match read(gate, stanza) {
            Read::Refused(reply) => Some(reply),
            Read::Parsed { .. } => None,
            Read::Dropped => panic!("{stanza}: dropped"),
        }
    }

    /// `reply` starts with `head` and is the quota's refusal that said `said` (but for the
    /// wait, which has gone on since).
    fn assert_the_quotas_refusal(reply: &str, head: &str, said: &str) {
        assert!(reply.starts_with(head), "{reply}");
        assert!(
            reply.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
            "{reply}"
        );
        assert!(
            reply.contains(&said[..said.len() - " 9.9 s".len()]),
            "{reply} / {said}"
        );
    }

    /// `stanza` goes on to the rules until `exhaust` runs bob out of a quota (returning what
    /// the rules said, which starts with `says`); then the gate answers it with the quota's
    /// refusal, a reply that starts with `head`.
    fn assert_refused_once_out(
        gate: &Arc<Gate>,
        stanza: &str,
        exhaust: impl FnOnce(&Gate) -> String,
        says: &str,
        head: &str,
    ) {
        assert_eq!(screened(gate, stanza), None, "nobody is out of the quota");
        let said = exhaust(gate);
        assert!(said.starts_with(says), "{said}");
        let reply = screened(gate, stanza).expect("refused");
        assert_the_quotas_refusal(&reply, head, &said);
    }

    /// Bob, out of posts: the quota refused his post a moment ago; what the rules said.
    fn bob_out_of_posts(gate: &Gate) -> String {
        let mut g = coven();
        g.rules.message_burst = 1;
        g.rules.messages_per_minute = 6;
        let now = now();
        g.post("coven", &jid("bob@localhost"), text("a"), now)
            .unwrap();
        let refusal = g
            .post("coven", &jid("bob@localhost"), text("b"), now)
            .unwrap_err();
        gate.publish(g.take_out_of_tokens());
        refusal.text
    }

    fn post(from: &str, children: &str) -> String {
        format!(
            "<message from='{from}' to='coven@mix.localhost' id='p1' type='groupchat'>{children}</message>"
        )
    }

    #[test]
    fn posts_of_a_user_out_of_posts_are_answered_with_the_quotas_refusal() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        assert_refused_once_out(
            &gate,
            &post("bob@localhost/r", "<body>hi</body>"),
            bob_out_of_posts,
            "you are sending messages too fast: at most 1 at once, then 6 a minute; try again in ",
            "<message xmlns='jabber:component:accept' type='error' from='coven@mix.localhost' to='bob@localhost/r' id='p1'>",
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
        let gate = Arc::new(Gate::new("mix.localhost"));
        let mut g = coven();
        g.rules.message_burst = 1;
        g.rules.messages_per_minute = 6;
        // Refused ten seconds ago, for a wait of ten seconds: over now.
        let then = now() - 10_000_000;
        g.post("coven", &jid("bob@localhost"), text("a"), then)
            .unwrap();
        g.post("coven", &jid("bob@localhost"), text("b"), then)
            .unwrap_err();
        gate.publish(g.take_out_of_tokens());
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

    fn chat_state(from: &str, state: &str) -> String {
        post(
            from,
            &format!("<{state} xmlns='http://jabber.org/protocol/chatstates'/>"),
        )
    }

    /// Bob's chat state `state` read through the gate and, if parsed, handled by the rules
    /// (`g`), whose news the gate is then told as the service loop tells it; whether the
    /// gate dropped it, and whether the rules relayed it.
    fn through(
        gate: &Arc<Gate>,
        g: &mut crate::core::Groups,
        stanza: &str,
        state: ChatState,
    ) -> (bool, bool) {
        match read(gate, stanza) {
            Read::Dropped => (true, false),
            Read::Parsed { ticket } => {
                let relayed = !g
                    .chat_state(
                        "coven",
                        &jid("bob@localhost"),
                        state,
                        crate::core::Repeats::Dropped,
                        now(),
                    )
                    .unwrap()
                    .is_empty();
                gate.publish_quiet(g.take_quiet_states(), ticket);
                (false, relayed)
            }
            Read::Refused(reply) => panic!("{stanza}: {reply}"),
        }
    }

    #[test]
    fn chat_states_the_rules_drop_are_dropped_before_they_are_read() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        let mut g = coven();
        let composing = chat_state("bob@localhost/r", "composing");
        let paused = chat_state("bob@localhost/r", "paused");
        use ChatState::{Composing, Paused};
        // The first is relayed, the repeat dropped by the rules, the next ones by the gate.
        assert_eq!(through(&gate, &mut g, &composing, Composing), (false, true));
        assert_eq!(
            through(&gate, &mut g, &composing, Composing),
            (false, false)
        );
        assert_eq!(through(&gate, &mut g, &composing, Composing), (true, false));
        assert_eq!(
            through(
                &gate,
                &mut g,
                &chat_state("bob@localhost/other", "composing"),
                Composing
            ),
            (true, false),
            "any client of bob's"
        );
        // What the rules would not drop goes on to them: another state, and the same one
        // once a message of bob's went by (a post makes bob active).
        assert_eq!(through(&gate, &mut g, &paused, Paused), (false, true));
        assert_eq!(through(&gate, &mut g, &paused, Paused), (false, false));
        assert_eq!(through(&gate, &mut g, &paused, Paused), (true, false));
        assert!(matches!(
            read(&gate, &post("bob@localhost/r", "<body>hi</body>")),
            Read::Parsed { .. }
        ));
        assert_eq!(through(&gate, &mut g, &paused, Paused), (false, false));
        // A message the rules have not handled yet, from an address the gate cannot
        // compare as written, ends what the gate was told too.
        assert_eq!(through(&gate, &mut g, &paused, Paused), (true, false));
        assert!(matches!(
            read(&gate, &post("Bob@LOCALHOST/r", "<body>hi</body>")),
            Read::Parsed { .. }
        ));
        assert_eq!(through(&gate, &mut g, &paused, Paused), (false, false));
        // Other shapes, addresses and users are not the gate's to drop.
        for stanza in [
            post("bob@localhost/r", "<paused xmlns='http://jabber.org/protocol/chatstates'/><body>x</body>"),
            post("bob@localhost/r", "<paused xmlns='urn:other'/>"),
            post("bob@localhost/r", "<c:paused xmlns:c='http://jabber.org/protocol/chatstates'/>"),
            post("alice@localhost/r", "<paused xmlns='http://jabber.org/protocol/chatstates'/>"),
            "<message from='bob@localhost/r' to='coven@mix.localhost/x' id='p1' type='groupchat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>".into(),
            "<message from='bob@localhost/r' to='other@mix.localhost' id='p1' type='groupchat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>".into(),
            "<message from='bob@localhost/r' to='coven@mix.localhost' id='p1' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>".into(),
        ] {
            assert!(matches!(read(&gate, &stanza), Read::Parsed { .. }), "{stanza}");
        }
        // Whatever ends a membership ends everything the gate was told.
        let dropped = |gate: &Arc<Gate>, g: &mut crate::core::Groups| {
            through(gate, g, &composing, Composing);
            through(gate, g, &composing, Composing);
            through(gate, g, &composing, Composing) == (true, false)
        };
        assert!(dropped(&gate, &mut g));
        g.leave("coven", &jid("alice@localhost"), now()).unwrap();
        gate.publish_quiet(g.take_quiet_states(), 0);
        assert_eq!(
            through(&gate, &mut g, &composing, Composing),
            (false, false)
        );
        assert!(dropped(&gate, &mut g));
        gate.clear();
        assert_eq!(
            through(&gate, &mut g, &composing, Composing),
            (false, false)
        );
    }

    #[test]
    fn signals_of_a_user_out_of_signals_are_answered_with_the_quotas_refusal() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        let mut g = coven();
        g.rules.signals_per_minute = 1;
        let bob = jid("bob@localhost");
        let now = now();
        g.chat_state(
            "coven",
            &bob,
            ChatState::Composing,
            crate::core::Repeats::Relayed,
            now,
        )
        .unwrap();
        let said = g
            .afford(&bob, crate::core::Quota::Signals, 1, now)
            .unwrap_err()
            .text;
        gate.publish(g.take_out_of_tokens());
        let wait = said.len() - " 59.9 s".len();
        for stanza in [
            post(
                "bob@localhost/r",
                "<received xmlns='urn:xmpp:receipts' id='m'/>",
            ),
            post(
                "bob@localhost/r",
                "<displayed xmlns='urn:xmpp:chat-markers:0' id='m'/>",
            ),
            post(
                "bob@localhost/r",
                "<reactions xmlns='urn:xmpp:reactions:0' id='m'><reaction>x</reaction></reactions>",
            ),
            post(
                "bob@localhost/r",
                "<retract xmlns='urn:xmpp:message-retract:1' id='m'/>",
            ),
        ] {
            let reply = screened(&gate, &stanza).unwrap_or_else(|| panic!("{stanza}"));
            assert!(reply.contains(&said[..wait]), "{reply} / {said}");
            assert!(reply.contains("<policy-violation"), "{reply}");
        }
        // Posts are not signals; nor is what the rules would not take for one at once.
        for stanza in [
            post("bob@localhost/r", "<body>hi</body>"),
            post("bob@localhost/r", "<received xmlns='urn:xmpp:receipts'/>"),
            post("bob@localhost/r", "<received xmlns='urn:xmpp:receipts' id='m'/><body>x</body>"),
            post("bob@localhost/r", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
            post("bob@localhost/r", "<received xmlns='urn:other' id='m'/>"),
            post("alice@localhost/r", "<received xmlns='urn:xmpp:receipts' id='m'/>"),
            "<message from='bob@localhost/r' to='0123456789abcdef#coven@mix.localhost' id='p1' type='groupchat'><received xmlns='urn:xmpp:receipts' id='m'/></message>".into(),
        ] {
            assert_eq!(screened(&gate, &stanza), None, "{stanza}");
        }
    }

    /// Bob, out of reads: the quota refused his read a moment (`ago`) before now; what the
    /// rules said.
    fn bob_out_of_reads(gate: &Gate, ago: Micros) -> String {
        let mut g = coven();
        g.rules.history_burst = 1;
        g.rules.history_per_minute = 6;
        let at = now() - ago;
        let bob = jid("bob@localhost");
        g.charge_read(&bob, at).unwrap();
        let refusal = g.charge_read(&bob, at).unwrap_err();
        gate.publish(g.take_out_of_tokens());
        refusal.text
    }

    const MAM: &str = "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>\
        <max>10</max><before/></set></query>";
    const FLYCHAT: &str = "<query xmlns='jabber:iq:user_activities' to_user='coven@mix.localhost' \
        status='group_chat' limit='50'/>";

    fn iq(from: &str, to: &str, kind: &str, payload: &str) -> String {
        format!("<iq from='{from}' to='{to}' id='h1' type='{kind}'>{payload}</iq>")
    }

    #[test]
    fn history_queries_of_a_user_out_of_reads_are_answered_with_the_quotas_refusal() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        assert_refused_once_out(
            &gate,
            &iq("bob@localhost/r", "coven@mix.localhost", "set", MAM),
            |gate| bob_out_of_reads(gate, 0),
            "you are reading history too fast: at most 1 reads at once, then 6 a minute; try again in ",
            "<iq xmlns='jabber:component:accept' type='error' from='coven@mix.localhost' to='bob@localhost/r' id='h1'>",
        );
        // Any client of bob's; FlyChat's history pages and look-ups, to the service or a
        // channel.
        for stanza in [
            iq("bob@localhost/other", "coven@mix.localhost", "set", MAM),
            iq("bob@localhost/r", "mix.localhost", "get", FLYCHAT),
            iq("bob@localhost/r", "coven@mix.localhost/x", "get", FLYCHAT),
            iq(
                "bob@localhost/r",
                "mix.localhost",
                "get",
                "<query xmlns='jabber:iq:user_activities' status='reply_message' message_id='m'/>",
            ),
        ] {
            assert!(screened(&gate, &stanza).is_some(), "{stanza}");
        }
        // What is not surely a history query from bob to this service goes on to the rules.
        for stanza in [
            iq("alice@localhost/r", "coven@mix.localhost", "set", MAM),
            iq("bob@localhost/r", "coven@mix.localhost", "get", MAM),
            iq("bob@localhost/r", "mix.localhost", "set", MAM),
            iq("bob@localhost/r", "coven@elsewhere", "set", MAM),
            iq("bob@localhost/r", "mix.localhost", "set", FLYCHAT),
            iq("bob@localhost/r", "elsewhere", "get", FLYCHAT),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "get",
                "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            ),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "set",
                "<m:query xmlns:m='urn:xmpp:mam:2'/>",
            ),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "set",
                "<query xmlns='urn:xmpp:mam:2&#x30;'/>",
            ),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "set",
                &format!("{MAM}{MAM}"),
            ),
            "<iq from='bob@localhost/r' to='coven@mix.localhost' id='h1' type='set' xmlns='jabber:client'>\
             <query xmlns='urn:xmpp:mam:2'/></iq>"
                .into(),
            "<message from='bob@localhost/r' to='coven@mix.localhost' type='groupchat'>\
             <query xmlns='urn:xmpp:mam:2'/></message>"
                .into(),
        ] {
            assert_eq!(screened(&gate, &stanza), None, "{stanza}");
        }
    }

    #[test]
    fn an_entry_ends_at_its_time_and_a_reload_clears_them() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        let mam = iq("bob@localhost/r", "coven@mix.localhost", "set", MAM);
        // Refused twenty seconds ago, for a wait of ten seconds: over now.
        bob_out_of_reads(&gate, 20_000_000);
        assert_eq!(screened(&gate, &mam), None);
        bob_out_of_reads(&gate, 0);
        assert!(screened(&gate, &mam).is_some());
        gate.clear();
        assert_eq!(screened(&gate, &mam), None);
    }
}
