//! What a participant's message may carry, in both dialects: an allow-list (issue 13).
//!
//! A channel re-sends a participant's message under its own JID, so whatever the message
//! carries, the channel says. Each top-level child of a message to a channel is therefore
//! one of:
//!
//! - **content**, archived and reflected as sent: the body (every `xml:lang`), subject and
//!   thread, and the extensions of [`SHARED`] (origin-id, replies, fallbacks, references,
//!   file sharing, out-of-band data, hints, encryption, spoilers, markup, XHTML-IM, receipt
//!   requests, markable), plus what the dialect adds (FlyChat's `<chatcontent/>`);
//! - **a command**: what the message does (MIX's retraction, correction, reaction, receipt
//!   or marker), which the dialect reads and never stores as payload;
//! - **dropped**: what a sender legitimately includes but is not the sender's to pass on —
//!   a `<stanza-id/>` (XEP-0359 §3.1: the entity that stamps stanza ids strips those of
//!   others; clients copy them when quoting), chat states (XEP-0085: clients add `<active/>`
//!   to every message; they are relayed on their own and never archived) and XEP-0280's
//!   `<private/>` (a hint to the sender's own server, which should have removed it);
//! - **refused** with `not-acceptable` and a text naming the element: everything else.
//!   Elements only the channel, the server or mixd write ([`server_made`]: `<mix>`, pubsub
//!   events, archive results, `<forwarded>`, delays, carbons, MUC status, occupant ids,
//!   moderation, tombstones, extended addresses, FlyChat's group events, mixd's own
//!   `urn:mixd:*`) and the names FlyChat clients read a message's sender, id and time from
//!   (`<jid>`, `<submission-id>`, `<timestamp>`, in any namespace: the SDK takes the first
//!   it finds anywhere below the stanza, before mixd's own) get a text saying whose they
//!   are; anything unknown, that mixd passes on only what it knows.
//!
//! Opaque application payloads pass only in the namespaces the operator lists
//! (`payload_namespaces`, empty by default), and a namespace may be listed only if no XMPP
//! standard and not mixd can own it ([`unlistable`]): a standard namespace is read by every
//! client as protocol, and protocol can speak for the channel, the server or another user;
//! an application's own namespace is read only by that application's clients.
//!
//! Inside what is kept, every descendant is looked at too, as far as the XEPs and the SDK
//! make it matter: none may be server-made or carry one of FlyChat's identity names. The
//! walk is a loop, not recursion; the link bounds the depth.

use std::sync::OnceLock;

use minidom::Element;

use crate::core::{Condition, Outcome, Refusal};
use crate::xml::ns;

/// What a top-level child of a participant's message is to mixd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Archived and reflected as sent.
    Content,
    /// What the message does; the dialect reads it and never stores it as payload.
    Command,
    /// Legitimately sent, not passed on.
    Dropped,
}

/// One entry of an allow-list: an element by namespace and name. [`STANZA`] stands for the
/// stanza's own namespace (`jabber:client` or `jabber:component:accept`).
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub ns: &'static str,
    pub name: &'static str,
    pub class: Class,
}

/// The stanza's own namespace, in an [`Allowed`] entry.
pub const STANZA: &str = "";

impl Allowed {
    pub const fn content(ns: &'static str, name: &'static str) -> Self {
        Allowed {
            ns,
            name,
            class: Class::Content,
        }
    }

    pub const fn command(ns: &'static str, name: &'static str) -> Self {
        Allowed {
            ns,
            name,
            class: Class::Command,
        }
    }

    pub const fn dropped(ns: &'static str, name: &'static str) -> Self {
        Allowed {
            ns,
            name,
            class: Class::Dropped,
        }
    }

    fn matches(&self, name: &str, ns: &str, stanza_ns: &str) -> bool {
        let own = if self.ns == STANZA {
            stanza_ns
        } else {
            self.ns
        };
        name == self.name && ns == own
    }
}

/// What both dialects accept from a participant.
pub const SHARED: &[Allowed] = &[
    // RFC 6121 §5.2: the message itself.
    Allowed::content(STANZA, "body"),
    Allowed::content(STANZA, "subject"),
    Allowed::content(STANZA, "thread"),
    // XEP-0359: the sender's own id, which its client matches the reflection by.
    Allowed::content(ns::SID, "origin-id"),
    Allowed::dropped(ns::SID, "stanza-id"),
    // XEP-0461 replies, XEP-0428 fallback indication, XEP-0372 references (mentions, and
    // XEP-0385 SIMS inside them).
    Allowed::content("urn:xmpp:reply:0", "reply"),
    Allowed::content("urn:xmpp:fallback:0", "fallback"),
    Allowed::content(ns::REFERENCE, "reference"),
    // XEP-0447 stateless file sharing (and its later sources), XEP-0449 stickers, XEP-0066
    // out-of-band data.
    Allowed::content(ns::SFS, "file-sharing"),
    Allowed::content(ns::SFS, "sources"),
    Allowed::content("urn:xmpp:stickers:0", "sticker"),
    Allowed::content(ns::OOB, "x"),
    // XEP-0334 processing hints.
    Allowed::content(HINTS, "store"),
    Allowed::content(HINTS, "no-store"),
    Allowed::content(HINTS, "no-copy"),
    Allowed::content(HINTS, "no-permanent-store"),
    // Encryption: XEP-0380 EME, OMEMO (XEP-0384: Conversations' legacy namespace, 0.4–0.7
    // and the current one), XEP-0373/0374 OpenPGP, XEP-0027 (still sent by some clients).
    Allowed::content("urn:xmpp:eme:0", "encryption"),
    Allowed::content("eu.siacs.conversations.axolotl", "encrypted"),
    Allowed::content("urn:xmpp:omemo:1", "encrypted"),
    Allowed::content("urn:xmpp:omemo:2", "encrypted"),
    Allowed::content("urn:xmpp:openpgp:0", "openpgp"),
    Allowed::content("jabber:x:encrypted", "x"),
    // Presentation: XEP-0382 spoilers, XEP-0394 markup, XEP-0393 styling opt-out,
    // XEP-0071 XHTML-IM.
    Allowed::content("urn:xmpp:spoiler:0", "spoiler"),
    Allowed::content("urn:xmpp:markup:0", "markup"),
    Allowed::content("urn:xmpp:styling:0", "unstyled"),
    Allowed::content("http://jabber.org/protocol/xhtml-im", "html"),
    // XEP-0184 and XEP-0333: asking for receipts and markers (answered to the channel).
    Allowed::content(ns::RECEIPTS, "request"),
    Allowed::content(ns::MARKERS, "markable"),
    // XEP-0085: relayed on their own, never archived.
    Allowed::dropped(ns::CHATSTATES, "active"),
    Allowed::dropped(ns::CHATSTATES, "composing"),
    Allowed::dropped(ns::CHATSTATES, "paused"),
    Allowed::dropped(ns::CHATSTATES, "inactive"),
    Allowed::dropped(ns::CHATSTATES, "gone"),
    // XEP-0280: a hint to the sender's own server.
    Allowed::dropped(CARBONS, "private"),
];

const HINTS: &str = "urn:xmpp:hints";
const CARBONS: &str = "urn:xmpp:carbons:2";

/// The element names FlyChat clients read a group message's sender, id and time from, in
/// any namespace and at any depth (flychat-wire.md §2): only mixd writes them.
pub const IDENTITY_NAMES: [&str; 3] = ["jid", "submission-id", "timestamp"];

const IDENTITY: &str = "FlyChat clients take the first one they find anywhere in a message for \
    its sender, id or time, which only the channel writes";

/// Whose an element is when only the channel, the server or mixd may write it: the reason
/// a participant's message carrying it is refused. `stanza_ns` is the stanza's namespace;
/// `None` for an element a participant may write.
pub fn server_made(element: &Element, stanza_ns: &str) -> Option<&'static str> {
    let (ns, name) = (element.ns(), element.name());
    let ns = ns.as_str();
    let why = if (ns == stanza_ns && name == "error") || ns == ns::STANZAS {
        "errors are written by the server that refused a stanza"
    } else if ns.starts_with("urn:xmpp:mix:") {
        "it is the channel's to write (XEP-0369): who sent a message, and what the channel says"
    } else if ns.starts_with("urn:mixd:") {
        "mixd's own namespaces are mixd's to write"
    } else if ns.starts_with(ns::PUBSUB) {
        "pubsub events (joins, information, configuration) come only from the channel"
    } else if ns.starts_with("urn:xmpp:mam:") {
        "archive results come only from the archive (XEP-0313)"
    } else if ns == ns::FORWARD {
        "a forwarded stanza would pass off another's message as the channel's (XEP-0297)"
    } else if ns == ns::DELAY || ns == "jabber:x:delay" {
        "a delay is stamped by the server that delayed the stanza (XEP-0203)"
    } else if ns.starts_with("urn:xmpp:carbons:") {
        "carbon copies are made by the server (XEP-0280)"
    } else if ns.starts_with("http://jabber.org/protocol/muc") {
        "room status and invitations come only from the room (XEP-0045)"
    } else if ns.starts_with("urn:xmpp:occupant-id:") {
        "occupant ids are the channel's (XEP-0421)"
    } else if ns.starts_with("urn:xmpp:message-moderate:") {
        "moderation is the channel's to announce (XEP-0425)"
    } else if ns == ns::RETRACT && name == "retracted" {
        "a tombstone is the archive's (XEP-0424); a sender retracts with <retract/>"
    } else if ns == "http://jabber.org/protocol/address" {
        "extended addresses name other senders and recipients (XEP-0033)"
    } else if ns == "jabber:iq:mixgroupchat" {
        "group events (recalls, deletions) come only from the group"
    } else if ns == "urn:xmpp:timestamp" {
        "a message's time is the channel's to stamp"
    } else if IDENTITY_NAMES.contains(&name) {
        IDENTITY
    } else {
        return None;
    };
    Some(why)
}

/// A message's top-level children, screened.
#[derive(Debug, Default)]
pub struct Screened<'a> {
    /// What is archived and reflected, in order.
    pub content: Vec<&'a Element>,
    /// What the message does (MIX's retractions, corrections, reactions, receipts).
    pub commands: Vec<&'a Element>,
}

impl Screened<'_> {
    /// Refuses a command riding on a message that is stored (a post or a correction):
    /// `own` is the one that makes it what it is (a correction's `<replace/>`), if any.
    /// The channel would otherwise re-send, say, a receipt under its own JID.
    pub fn no_other_command(&self, own: Option<(&str, &str)>) -> Outcome<()> {
        match self
            .commands
            .iter()
            .find(|c| own.is_none_or(|(ns, name)| !c.is(name, ns)))
        {
            None => Ok(()),
            Some(command) => Err(not_acceptable(format!(
                "a message may not carry {} beside a body or correction: send it on its own",
                describe(command, "")
            ))),
        }
    }
}

/// Screens the top-level children of a participant's message `stanza` against [`SHARED`],
/// the dialect's `extras` (looked at first) and the operator's `namespaces` for opaque
/// payloads; refuses the message if any child is not allowed, or if anything inside the
/// content is server-made.
pub fn screen<'a>(
    stanza: &'a Element,
    extras: &[Allowed],
    namespaces: &[String],
) -> Outcome<Screened<'a>> {
    let stanza_ns = stanza.ns();
    let mut screened = Screened::default();
    for child in stanza.children() {
        let child_ns = child.ns();
        let class = extras
            .iter()
            .chain(SHARED)
            .find(|a| a.matches(child.name(), &child_ns, &stanza_ns))
            .map(|a| a.class);
        let class = match class {
            Some(class) => class,
            None => {
                if let Some(why) = server_made(child, &stanza_ns) {
                    return Err(forged(child, &stanza_ns, why));
                }
                if namespaces.contains(&child_ns) {
                    Class::Content
                } else {
                    return Err(not_acceptable(format!(
                        "a message may not carry {}: mixd passes on only the extensions it \
                         knows (see Payloads in docs/protocol.md)",
                        describe(child, &stanza_ns)
                    )));
                }
            }
        };
        match class {
            Class::Content => {
                if let Some((inner, why)) = forged_inside(child, &stanza_ns) {
                    return Err(not_acceptable(format!(
                        "a message may not carry {} inside {}: {why}",
                        describe(inner, &stanza_ns),
                        describe(child, &stanza_ns)
                    )));
                }
                screened.content.push(child);
            }
            Class::Command => screened.commands.push(child),
            Class::Dropped => {}
        }
    }
    Ok(screened)
}

/// The first descendant of `top`, in document order, that only the channel, the server or
/// mixd may write. A loop over an explicit stack, not recursion.
fn forged_inside<'a>(top: &'a Element, stanza_ns: &str) -> Option<(&'a Element, &'static str)> {
    let mut stack: Vec<&Element> = top.children().collect();
    stack.reverse();
    while let Some(element) = stack.pop() {
        // Inside an extension the stanza's namespace says nothing of its own (an element
        // `<error/>` there is no stanza error): only other namespaces, and the names FlyChat
        // clients read, are looked at.
        let why = if element.ns() == stanza_ns {
            IDENTITY_NAMES.contains(&element.name()).then_some(IDENTITY)
        } else {
            server_made(element, stanza_ns)
        };
        if let Some(why) = why {
            return Some((element, why));
        }
        let before = stack.len();
        stack.extend(element.children());
        stack[before..].reverse();
    }
    None
}

fn forged(element: &Element, stanza_ns: &str, why: &str) -> Refusal {
    not_acceptable(format!(
        "a message may not carry {}: {why}",
        describe(element, stanza_ns)
    ))
}

fn not_acceptable(text: String) -> Refusal {
    Refusal::new(Condition::NotAcceptable, text)
}

/// `<name xmlns='namespace'/>`, or `<name/>` in the stanza's own namespace (`stanza_ns`),
/// as the sender wrote it; each cut to a readable length (the text goes back to the sender,
/// escaped by the reply's writer).
pub fn describe(element: &Element, stanza_ns: &str) -> String {
    fn cut(s: &str) -> String {
        const MAX: usize = 80;
        if s.len() <= MAX {
            return s.to_owned();
        }
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
    let ns = element.ns();
    if ns == stanza_ns {
        return format!("<{}/>", cut(element.name()));
    }
    format!("<{} xmlns='{}'/>", cut(element.name()), cut(&ns))
}

/// Namespace prefixes an operator may not list for opaque payloads: XMPP's (XSF and IETF),
/// the W3C's (XHTML, …), OMEMO's legacy one, the old `vcard-temp` and `storage:` ones and
/// mixd's own. Clients read those as protocol.
const RESERVED_PREFIXES: [&str; 11] = [
    "urn:xmpp:",
    "urn:ietf:",
    "urn:xsf:",
    "jabber:",
    "http://jabber.org/",
    "https://jabber.org/",
    "http://www.w3.org/",
    "eu.siacs.conversations.",
    "vcard-temp",
    "storage:",
    "urn:mixd:",
];

/// Why `namespace` cannot be listed for opaque payloads, if it cannot.
pub fn unlistable(namespace: &str) -> Option<String> {
    let namespace = namespace.trim();
    if namespace.is_empty() {
        return Some("an empty namespace".into());
    }
    RESERVED_PREFIXES
        .iter()
        .find(|p| namespace.starts_with(*p))
        .map(|p| {
            format!(
                "'{namespace}' is under '{p}', which XMPP clients read as protocol; only an \
                 application's own namespace can carry opaque payloads"
            )
        })
}

static NAMESPACES: OnceLock<Vec<String>> = OnceLock::new();

/// Sets, once at start-up, the namespaces whose elements pass as opaque payloads (the
/// `payload_namespaces` setting, already checked with [`unlistable`]).
pub fn set_namespaces(namespaces: Vec<String>) {
    let _ = NAMESPACES.set(namespaces);
}

/// The namespaces set at start-up; none unless the operator listed some.
pub fn namespaces() -> &'static [String] {
    NAMESPACES.get().map(Vec::as_slice).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::element;

    const MESSAGE: &str = "<message xmlns='jabber:component:accept' type='groupchat' \
        from='hag@example.org/broom' to='coven@mix.example.org' id='m1'>";

    fn message(payload: &str) -> Element {
        element(&format!("{MESSAGE}{payload}</message>"))
    }

    /// The screened message: its kept content and commands as serialized names.
    fn check(payload: &str, extras: &[Allowed], namespaces: &[String]) -> Outcome<Vec<String>> {
        let stanza = message(payload);
        screen(&stanza, extras, namespaces).map(|s| {
            s.content
                .iter()
                .chain(&s.commands)
                .map(|e| e.name().to_owned())
                .collect()
        })
    }

    fn refused(payload: &str, extras: &[Allowed]) -> String {
        match check(payload, extras, &[]) {
            Ok(kept) => panic!("accepted {payload}: {kept:?}"),
            Err(refusal) => {
                assert_eq!(refusal.condition, Condition::NotAcceptable, "{payload}");
                refusal.text
            }
        }
    }

    /// What real clients attach, one extension each.
    const ALLOWED: &[&str] = &[
        "<body>hi</body>",
        "<body xml:lang='de'>hallo</body>",
        "<subject>text</subject>",
        "<thread parent='t0'>t1</thread>",
        "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>",
        "<reply xmlns='urn:xmpp:reply:0' to='coven@mix.example.org' id='41'/>",
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='7'/></fallback>",
        "<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:bob@example.org' begin='0' end='3'/>",
        "<reference xmlns='urn:xmpp:reference:0' type='data'><media-sharing xmlns='urn:xmpp:sims:1'>\
         <file xmlns='urn:xmpp:jingle:apps:file-transfer:5'><name>a.png</name></file>\
         <sources><reference xmlns='urn:xmpp:reference:0' type='data' uri='https://example.org/a.png'/>\
         </sources></media-sharing></reference>",
        "<file-sharing xmlns='urn:xmpp:sfs:0'><file xmlns='urn:xmpp:file:metadata:0'>\
         <name>a.png</name><date>2026-01-01T00:00:00Z</date></file><sources>\
         <url-data xmlns='http://jabber.org/protocol/url-data' target='https://example.org/a.png'/>\
         </sources></file-sharing>",
        "<sources xmlns='urn:xmpp:sfs:0' id='f1'/>",
        "<sticker xmlns='urn:xmpp:stickers:0' pack='p1'/>",
        "<x xmlns='jabber:x:oob'><url>https://example.org/a.png</url></x>",
        "<store xmlns='urn:xmpp:hints'/>",
        "<no-store xmlns='urn:xmpp:hints'/>",
        "<no-copy xmlns='urn:xmpp:hints'/>",
        "<no-permanent-store xmlns='urn:xmpp:hints'/>",
        "<encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:omemo:2' name='OMEMO'/>",
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>a2V5</key>\
         <iv>aXY=</iv></header><payload>Y2lwaGVy</payload></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:1'><payload>Y2lwaGVy</payload></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='bob@example.org'>\
         <key rid='2'>a2V5</key></keys></header><payload>Y2lwaGVy</payload></encrypted>",
        "<openpgp xmlns='urn:xmpp:openpgp:0'>Y2lwaGVy</openpgp>",
        "<x xmlns='jabber:x:encrypted'>Y2lwaGVy</x>",
        "<spoiler xmlns='urn:xmpp:spoiler:0'>the ending</spoiler>",
        "<markup xmlns='urn:xmpp:markup:0'><span start='0' end='2'><emphasis/></span></markup>",
        "<unstyled xmlns='urn:xmpp:styling:0'/>",
        "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>\
         <p>hi <em>there</em></p></body></html>",
        "<request xmlns='urn:xmpp:receipts'/>",
        "<markable xmlns='urn:xmpp:chat-markers:0'/>",
    ];

    #[test]
    fn each_allowed_extension_is_kept_as_content() {
        for payload in ALLOWED {
            let kept = check(payload, &[], &[]).unwrap_or_else(|r| panic!("{payload}: {}", r.text));
            assert_eq!(kept.len(), 1, "{payload}");
        }
        // All together, in order.
        let all = check(&ALLOWED.concat(), &[], &[]).unwrap();
        assert_eq!(all.len(), ALLOWED.len());
    }

    #[test]
    fn what_a_sender_may_include_but_not_pass_on_is_dropped() {
        for payload in [
            "<stanza-id xmlns='urn:xmpp:sid:0' id='99' by='coven@mix.example.org'/>",
            "<active xmlns='http://jabber.org/protocol/chatstates'/>",
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
            "<paused xmlns='http://jabber.org/protocol/chatstates'/>",
            "<inactive xmlns='http://jabber.org/protocol/chatstates'/>",
            "<gone xmlns='http://jabber.org/protocol/chatstates'/>",
            "<private xmlns='urn:xmpp:carbons:2'/>",
        ] {
            assert_eq!(
                check(&format!("<body>b</body>{payload}"), &[], &[]).unwrap(),
                ["body"],
                "{payload}"
            );
        }
    }

    /// Each forged element, and a word its refusal must name.
    const FORGED: &[(&str, &str)] = &[
        ("<mix xmlns='urn:xmpp:mix:core:1'><nick>alice</nick><jid>alice@example.org</jid></mix>", "<mix xmlns='urn:xmpp:mix:core:1'/>"),
        ("<invitation xmlns='urn:xmpp:mix:misc:0'/>", "<invitation xmlns='urn:xmpp:mix:misc:0'/>"),
        ("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:mix:nodes:participants'>\
          <item id='p1'><participant xmlns='urn:xmpp:mix:core:1'><nick>eve</nick></participant></item></items></event>",
         "<event xmlns='http://jabber.org/protocol/pubsub#event'/>"),
        ("<pubsub xmlns='http://jabber.org/protocol/pubsub'/>", "<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"),
        ("<result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'/></result>", "<result xmlns='urn:xmpp:mam:2'/>"),
        ("<fin xmlns='urn:xmpp:mam:2'/>", "<fin xmlns='urn:xmpp:mam:2'/>"),
        ("<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'/></forwarded>", "<forwarded xmlns='urn:xmpp:forward:0'/>"),
        ("<delay xmlns='urn:xmpp:delay' stamp='2001-01-01T00:00:00Z'/>", "<delay xmlns='urn:xmpp:delay'/>"),
        ("<x xmlns='jabber:x:delay' stamp='20010101T00:00:00'/>", "<x xmlns='jabber:x:delay'/>"),
        ("<received xmlns='urn:xmpp:carbons:2'/>", "<received xmlns='urn:xmpp:carbons:2'/>"),
        ("<x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x>", "<x xmlns='http://jabber.org/protocol/muc#user'/>"),
        ("<occupant-id xmlns='urn:xmpp:occupant-id:0' id='x'/>", "<occupant-id xmlns='urn:xmpp:occupant-id:0'/>"),
        ("<moderated xmlns='urn:xmpp:message-moderate:1' by='coven@mix.example.org'/>", "<moderated xmlns='urn:xmpp:message-moderate:1'/>"),
        ("<retracted xmlns='urn:xmpp:message-retract:1' stamp='2001-01-01T00:00:00Z'/>", "<retracted xmlns='urn:xmpp:message-retract:1'/>"),
        ("<addresses xmlns='http://jabber.org/protocol/address'><address type='ofrom' jid='bob@example.org'/></addresses>", "<addresses xmlns='http://jabber.org/protocol/address'/>"),
        ("<notice xmlns='urn:mixd:notice:0' kind='made-admin' code='5' by='alice@example.org' jid='eve@example.org'/>", "<notice xmlns='urn:mixd:notice:0'/>"),
        ("<reactions xmlns='urn:mixd:reactions:0'/>", "<reactions xmlns='urn:mixd:reactions:0'/>"),
        ("<recall xmlns='jabber:iq:mixgroupchat' id='m1'/>", "<recall xmlns='jabber:iq:mixgroupchat'/>"),
        ("<groupdelete xmlns='jabber:iq:mixgroupchat'/>", "<groupdelete xmlns='jabber:iq:mixgroupchat'/>"),
        ("<timestamp xmlns='urn:xmpp:timestamp' time='1'/>", "<timestamp xmlns='urn:xmpp:timestamp'/>"),
        ("<jid>bob@example.org</jid>", "<jid/>"),
        ("<submission-id>m0</submission-id>", "<submission-id/>"),
        ("<timestamp time='1'/>", "<timestamp/>"),
        ("<jid xmlns='urn:example'>bob@example.org</jid>", "<jid xmlns='urn:example'/>"),
        ("<error type='cancel'/>", "<error/>"),
    ];

    #[test]
    fn each_forged_element_is_refused_by_name() {
        for (payload, name) in FORGED {
            let text = refused(&format!("<body>b</body>{payload}"), &[]);
            assert!(text.contains(name), "{payload}: {text}");
        }
    }

    #[test]
    fn what_is_forged_inside_an_allowed_extension_is_refused_too() {
        for (payload, name) in [
            (
                "<reference xmlns='urn:xmpp:reference:0' type='data'><jid>bob@example.org</jid></reference>",
                "<jid xmlns='urn:xmpp:reference:0'/> inside <reference",
            ),
            (
                "<x xmlns='jabber:x:oob'><url>u</url><delay xmlns='urn:xmpp:delay' stamp='x'/></x>",
                "<delay xmlns='urn:xmpp:delay'/> inside <x xmlns='jabber:x:oob'/>",
            ),
            (
                "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>\
                 <p><mix xmlns='urn:xmpp:mix:core:1'/></p></body></html>",
                "<mix xmlns='urn:xmpp:mix:core:1'/> inside <html",
            ),
            // An identity name in the stanza's namespace, deep down.
            (
                "<fallback xmlns='urn:xmpp:fallback:0'><x xmlns='jabber:component:accept'><timestamp/></x></fallback>",
                "<timestamp/>",
            ),
        ] {
            let text = refused(payload, &[]);
            assert!(text.contains(name), "{payload}: {text}");
        }
    }

    #[test]
    fn anything_unknown_is_refused_unless_its_namespace_is_listed() {
        let text = refused("<x xmlns='urn:example:app:0'>hi</x>", &[]);
        assert!(
            text.contains("<x xmlns='urn:example:app:0'/>") && text.contains("Payloads"),
            "{text}"
        );
        // Unknown names in known namespaces too: a receipt is not a receipt request, and
        // FlyChat's aggregated receipts are the group's.
        for payload in [
            "<received xmlns='urn:xmpp:receipts' id='1'/>",
            "<delivered xmlns='urn:xmpp:receipts' id='1'/>",
            "<chatcontent xmlns='urn:xmpp:content'/>",
            "<apply-to xmlns='urn:xmpp:fasten:0' id='1'/>",
            "<nick xmlns='http://jabber.org/protocol/nick'>alice</nick>",
            "<html/>",
        ] {
            let stanza = message(payload);
            let child = stanza.children().next().unwrap();
            let text = refused(payload, &[]);
            assert!(text.contains(&describe(child, ns::COMPONENT)), "{text}");
        }
        let listed = ["urn:example:app:0".to_string()];
        assert_eq!(
            check("<x xmlns='urn:example:app:0'><poll/></x>", &[], &listed).unwrap(),
            ["x"]
        );
        // A listed namespace still carries nothing server-made, and no identity name.
        for payload in [
            "<x xmlns='urn:example:app:0'><event xmlns='http://jabber.org/protocol/pubsub#event'/></x>",
            "<x xmlns='urn:example:app:0'><jid>bob@example.org</jid></x>",
            "<jid xmlns='urn:example:app:0'>bob@example.org</jid>",
        ] {
            let err = check(payload, &[], &listed).unwrap_err();
            assert_eq!(err.condition, Condition::NotAcceptable, "{payload}");
        }
    }

    #[test]
    fn a_dialects_extras_come_first() {
        let extras = [
            Allowed::content("urn:xmpp:content", "chatcontent"),
            Allowed::command(ns::RECEIPTS, "received"),
        ];
        let stanza = message(
            "<chatcontent xmlns='urn:xmpp:content' message_type='text'/>\
             <received xmlns='urn:xmpp:receipts' id='1'/><body>b</body>",
        );
        let screened = screen(&stanza, &extras, &[]).unwrap();
        let names = |v: &[&Element]| v.iter().map(|e| e.name().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&screened.content), ["chatcontent", "body"]);
        assert_eq!(names(&screened.commands), ["received"]);
        let text = screened.no_other_command(None).unwrap_err().text;
        assert!(
            text.contains("<received xmlns='urn:xmpp:receipts'/>"),
            "{text}"
        );
        assert!(screened
            .no_other_command(Some((ns::RECEIPTS, "received")))
            .is_ok());
    }

    #[test]
    fn only_an_applications_own_namespace_can_be_listed() {
        for reserved in [
            "urn:xmpp:mix:core:1",
            "urn:xmpp:content",
            "jabber:x:data",
            "http://jabber.org/protocol/pubsub#event",
            "urn:ietf:params:xml:ns:xmpp-stanzas",
            "urn:mixd:notice:0",
            "eu.siacs.conversations.axolotl",
            "http://www.w3.org/1999/xhtml",
            "",
            "  ",
        ] {
            assert!(unlistable(reserved).is_some(), "{reserved}");
        }
        for own in ["urn:example:app:0", "https://app.example.org/ns/poll"] {
            assert_eq!(unlistable(own), None, "{own}");
        }
    }

    #[test]
    fn long_names_are_cut_in_the_text() {
        let long = "a".repeat(5000);
        let text = refused(&format!("<{long} xmlns='urn:example'/>"), &[]);
        assert!(text.len() < 400, "{}", text.len());
    }

    #[test]
    fn deep_content_is_walked_without_recursion() {
        let depth = 5_000;
        let payload = format!(
            "<x xmlns='jabber:x:oob'>{}<delay xmlns='urn:xmpp:delay'/>{}</x>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        // Parsing and dropping so deep recurse and need a big stack; the walk runs on a
        // small one, where a recursive walk would overflow.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                let stanza = message(&payload);
                std::thread::scope(|scope| {
                    let walk = std::thread::Builder::new()
                        .stack_size(64 << 10)
                        .spawn_scoped(scope, || screen(&stanza, &[], &[]).map(|_| ()))
                        .unwrap();
                    let refusal = walk.join().unwrap().unwrap_err();
                    assert!(refusal.text.contains("<delay"), "{}", refusal.text);
                });
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
