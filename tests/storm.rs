//! The hostile-stanza storm (issue 13, item 10): the real mixd binary, attached to a fake XMPP
//! server on loopback (this test: it accepts the component connection and answers the
//! handshake, like `mixd-bench`'s peer), gets a few channels and users through normal
//! requests, then at least `MIXD_STORM_REQUESTS` (default 100,000) requests of every kind
//! that mixd understands, each made from a valid template and mutated by a seeded PRNG
//! (`MIXD_STORM_SEED`): attributes and elements deleted, duplicated, swapped and moved, wrong
//! namespaces, huge, empty, unicode and invalid (`&#0;`) values, nesting up to and past the
//! depth limit, stanzas over the size limit, wrong types, bogus ids, random senders and
//! addresses — other users', outsiders', other domains', invalid ones.
//!
//! Checked: every iq get or set with a sender is answered exactly once (a result or an
//! error, matched by id; where the id cannot come back, by count), nothing that must not be
//! answered is (errors, iq results, stanzas without a sender), a message or presence gets at
//! most one error and only with its own id; every error carries a condition; every reply goes
//! to the sender; everything mixd writes is XML a server reads; mixd never panics (its stderr,
//! with `RUST_BACKTRACE`) nor exits, and keeps its one connection; its resident memory stays
//! bounded; afterwards a normal exchange (create, join, post, reflection, MAM page) works,
//! mixd stops cleanly, and the database passes `PRAGMA integrity_check` and
//! `PRAGMA foreign_key_check`. `docs/security.md` ("The storm") has the figures.
//!
//! Debugging: `MIXD_STORM_TRACE=1` prints progress, `MIXD_STORM_CHECK=1` has each generated
//! stanza read alone by mixd's reader first, `MIXD_STORM_LOG=debug` sets mixd's log level
//! (its stderr is shown when it dies). A stall of 10 s prints what is still owed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use mixd::link::reader::{Item, Limits, Reader};

const DOMAIN: &str = "mix.localhost";
const MAX_STANZA_BYTES: usize = 262_144;
const MAX_DEPTH: usize = 32;
/// What mixd's resident memory may grow by, from after the set-up to its peak.
const RSS_GROWTH_LIMIT_MB: f64 = 96.0;

// ---------------------------------------------------------------------------------------
// A small seeded PRNG (SplitMix64): the storm is the same for the same seed.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

// ---------------------------------------------------------------------------------------
// Stanzas as trees the mutations work on, written out by hand so that they can be wrong.

#[derive(Clone, Debug)]
enum Node {
    El(El),
    Text(String),
    /// `<deep>` nested this many levels, written out directly (cheap to mutate around).
    Deep(usize),
    /// This many empty `<a/>` children.
    Many(usize),
    /// Text of this many bytes.
    Big(usize),
}

#[derive(Clone, Debug)]
struct El {
    name: String,
    /// `None`: the parent's namespace (the stanza: the stream's).
    ns: Option<String>,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

impl El {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set_attr(&mut self, name: &str, value: Option<String>) {
        self.attrs.retain(|(k, _)| k != name);
        if let Some(value) = value {
            self.attrs.push((name.to_owned(), value));
        }
    }

    fn depth(&self) -> usize {
        1 + self
            .children
            .iter()
            .filter_map(|c| match c {
                Node::El(e) => Some(e.depth()),
                Node::Deep(levels) => Some(*levels),
                Node::Many(_) => Some(1),
                Node::Text(_) | Node::Big(_) => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// How many elements the tree has (the stanza included).
    fn count(&self) -> usize {
        1 + self
            .children
            .iter()
            .map(|c| match c {
                Node::El(e) => e.count(),
                _ => 0,
            })
            .sum::<usize>()
    }

    /// The `n`th element in document order (0: this one).
    fn nth(&mut self, n: usize) -> &mut El {
        let mut path = Vec::new();
        let (mut e, mut left) = (&*self, n);
        while left > 0 {
            left -= 1;
            let (i, child) = e
                .children
                .iter()
                .enumerate()
                .find_map(|(i, c)| match c {
                    Node::El(c) if left < c.count() => Some((i, c)),
                    Node::El(c) => {
                        left -= c.count();
                        None
                    }
                    _ => None,
                })
                .expect("n is below the count");
            path.push(i);
            e = child;
        }
        let mut e = self;
        for i in path {
            e = match &mut e.children[i] {
                Node::El(c) => c,
                _ => unreachable!(),
            };
        }
        e
    }

    fn write(&self, out: &mut String, parent_ns: Option<&str>, malformed: &mut bool) {
        // A prefix nothing declares.
        *malformed |= self.name.contains(':');
        out.push('<');
        out.push_str(&self.name);
        if let Some(ns) = &self.ns {
            if Some(ns.as_str()) != parent_ns {
                out.push_str(" xmlns='");
                escape(out, ns, true, malformed);
                out.push('\'');
            }
        }
        let mut seen = Vec::new();
        for (k, v) in &self.attrs {
            if seen.contains(&k) || k == "xmlns" {
                *malformed = true;
            }
            seen.push(k);
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape(out, v, true, malformed);
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        let ns = self.ns.as_deref().or(parent_ns);
        for c in &self.children {
            match c {
                Node::El(e) => e.write(out, ns, malformed),
                Node::Text(t) => escape(out, t, false, malformed),
                Node::Deep(levels) => {
                    out.push_str(&"<deep>".repeat(*levels));
                    out.push_str(&"</deep>".repeat(*levels));
                }
                Node::Many(count) => out.push_str(&"<a/>".repeat(*count)),
                Node::Big(size) => out.push_str(&"z".repeat(*size)),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Escapes `text`; a character XML cannot carry is written as a character reference, which
/// makes the stanza malformed (as a broken server might send it).
fn escape(out: &mut String, text: &str, attribute: bool, malformed: &mut bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' if attribute => out.push_str("&apos;"),
            '"' if attribute => out.push_str("&quot;"),
            '\t' | '\n' | '\r' if attribute => out.push_str(&format!("&#{};", c as u32)),
            c if !is_xml_char(c) => {
                *malformed = true;
                out.push_str(&format!("&#{};", c as u32));
            }
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Who and what.

const MIX_USERS: [&str; 6] = ["m0", "m1", "m2", "m3", "m4", "m5"];
const FLY_USERS: [&str; 4] = ["f0", "f1", "f2", "f3"];
const OUTSIDERS: [&str; 3] = ["o0", "o1", "o2"];
const MIX_CHANNELS: [&str; 3] = ["c0", "c1", "c2"];
const FLY_GROUPS: [&str; 2] = ["g0", "g1"];
const NODES: [&str; 7] = [
    "messages",
    "presence",
    "participants",
    "info",
    "config",
    "allowed",
    "banned",
];
const NAMESPACES: [&str; 14] = [
    "urn:xmpp:mix:core:1",
    "urn:xmpp:mix:core:0",
    "urn:mixd:admin:0",
    "urn:mixd:notice:0",
    "jabber:iq:mixgroupchat",
    "jabber:iq:user_activities",
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#event",
    "urn:xmpp:mam:2",
    "jabber:client",
    "jabber:component:accept",
    "urn:example:bogus",
    "",
    "urn:xmpp:mix:misc:0",
];

/// What the storm knows of the service after the set-up: ids of archived messages.
struct World {
    archive_ids: Vec<String>,
}

fn user(name: &str) -> String {
    format!("{name}@localhost")
}

fn random_text(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => String::new(),
        1 => " ".into(),
        2 if rng.chance(10) => "x".repeat(rng.below(20_000) + 1),
        2 => "x".repeat(rng.below(300) + 1),
        3 => "Grüße ☃ 💥 مرحبا \u{202e}evil\u{202c} e\u{301} \u{fffd}".into(),
        4 => format!("{}", rng.next() as i64),
        5 => "-1".into(),
        6 => "99999999999999999999999999".into(),
        7 => "1970-01-01T00:00:00Z".into(),
        8 => "<b>&amp;'\"</b>".into(),
        9 => "\u{0}\u{1}nul".into(),
        10 => "true".into(),
        _ => format!("t{}", rng.below(1000)),
    }
}

/// A JID, often of someone who exists, sometimes of nobody or of nothing valid.
fn random_jid(rng: &mut Rng) -> String {
    match rng.below(14) {
        0..=2 => user(rng.pick(&MIX_USERS)),
        3 | 4 => user(rng.pick(&FLY_USERS)),
        5 => user(rng.pick(&OUTSIDERS)),
        6 => format!("{}@other.example", rng.pick(&MIX_USERS)),
        7 => format!("{}@{DOMAIN}", rng.pick(&MIX_CHANNELS)),
        8 => "localhost".into(),
        9 => format!("{}@localhost/{}", rng.pick(&MIX_USERS), rng.below(10)),
        10 => "not a jid@@".into(),
        11 => format!("{}@localhost", "l".repeat(1100)),
        12 => String::new(),
        _ => format!("u{}@localhost", rng.below(100_000)),
    }
}

fn random_id(rng: &mut Rng, world: &World) -> String {
    if !world.archive_ids.is_empty() && rng.chance(60) {
        return rng.pick(&world.archive_ids);
    }
    match rng.below(6) {
        0 => format!("o{}", rng.below(50)),
        1 => rng.below(100).to_string(),
        2 => String::new(),
        3 => "-5".into(),
        4 => random_text(rng),
        _ => format!("{:x}", rng.next()),
    }
}

/// A sender: a participant's client (most of the time), an outsider, a stranger, the
/// service itself, or something that is no JID.
fn random_sender(rng: &mut Rng) -> String {
    match rng.below(20) {
        0..=8 => format!("{}/{}", user(rng.pick(&MIX_USERS)), rng.pick(&["a", "b"])),
        9..=13 => format!("{}/web", user(rng.pick(&FLY_USERS))),
        14 | 15 => format!("{}/x", user(rng.pick(&OUTSIDERS))),
        16 => format!("stranger{}@other.example/r", rng.below(5)),
        17 => DOMAIN.into(),
        _ => random_jid(rng),
    }
}

fn random_channel(rng: &mut Rng, fly: bool) -> String {
    match rng.below(10) {
        0 => "nowhere".into(),
        1 => (if fly {
            rng.pick(&MIX_CHANNELS)
        } else {
            rng.pick(&FLY_GROUPS)
        })
        .into(),
        _ => (if fly {
            rng.pick(&FLY_GROUPS)
        } else {
            rng.pick(&MIX_CHANNELS)
        })
        .into(),
    }
}

/// One request made from a template, before mutation: the stanza's markup and where it goes.
fn template(rng: &mut Rng, world: &World) -> String {
    let fly = rng.chance(35);
    let ch = random_channel(rng, fly);
    let to_ch = format!("{ch}@{DOMAIN}");
    let u = random_jid(rng);
    let id = random_id(rng, world);
    let id2 = random_id(rng, world);
    let text = random_text(rng);
    let n = rng.below(1000);
    let node = rng.pick(&NODES);
    let iq = |kind: &str, to: &str, payload: String| {
        format!("<iq xmlns='jabber:component:accept' type='{kind}' to='{to}'>{payload}</iq>")
    };
    let message = |kind: &str, to: &str, payload: String| {
        format!(
            "<message xmlns='jabber:component:accept' type='{kind}' to='{to}'>{payload}</message>"
        )
    };
    // Templates are valid: what XML cannot carry comes only from the mutations.
    let xa = |s: &str| {
        let mut out = String::new();
        let valid: String = s.chars().filter(|c| is_xml_char(*c)).collect();
        escape(&mut out, &valid, true, &mut false);
        out
    };
    let (u, id, id2, text) = (xa(&u), xa(&id), xa(&id2), xa(&text));
    if fly {
        let q = |status: &str, rest: &str| {
            format!("<query xmlns='jabber:iq:mixgroupchat' status='{status}'{rest}</query>")
        };
        let participants = format!(
            "<participants><participant>{u}</participant><participant>{}</participant></participants>",
            user(rng.pick(&FLY_USERS))
        );
        return match rng.below(30) {
            0 => iq("set", DOMAIN, q("create_group", &format!(" group_id='{}'><profile><vCard xmlns='vcard-temp'><nickName>{text}</nickName><history>{}</history><image>{id}</image></vCard></profile>{participants}", xa(&random_text(rng)), n % 2))),
            1 => iq("get", &to_ch, q("get_group_profile", &format!(" group_id='{ch}'>"))),
            2 => iq("get", &to_ch, q("get_participants", ">")),
            3 => iq("set", &to_ch, q("add_participants", &format!("><subscriptions><subscribe node='urn:xmpp:mix:nodes:messages'/></subscriptions>{participants}<nick>{text}</nick>"))),
            4 => iq("set", &to_ch, q("set_group_info", &format!("><profile><vCard xmlns='vcard-temp'><nickName>{text}</nickName><history>1</history><thumbImage>{id}</thumbImage></vCard></profile>"))),
            5 => iq("set", &to_ch, q("user_exit_group", &format!("><participant>{u}</participant>"))),
            6 => iq("set", &to_ch, q("user_delete_group", ">")),
            7 => iq("get", DOMAIN, q("get_user_groups", ">")),
            8 => iq("set", &to_ch, q(rng.pick(&["make_admin", "revoke_admin", "transfer_ownership"]), &format!("><participant>{u}</participant>"))),
            9 => iq("set", &to_ch, q("set_group_settings", &format!(" policy='{}' muted='{}' max_members='{}'>", rng.pick(&["open", "request", "invite", "anarchy"]), rng.pick(&["1", "0", "maybe"]), rng.pick(&["5", "default", "-1", "lots"])))),
            10 => iq("set", &to_ch, q("mute_participant", &format!(" until='{}'><participant>{u}</participant>", rng.pick(&["1767225600000000", "0", "soon", "-1"])))),
            11 => iq("set", &to_ch, q("set_access", &format!(" list='{}' action='{}'><participant>{u}</participant>", rng.pick(&["allowed", "banned"]), rng.pick(&["add", "remove"])))),
            12 => iq("set", &to_ch, q("invite_participants", &format!(">{participants}"))),
            13 => iq("set", &to_ch, q("join_group", ">")),
            14 => iq("set", &to_ch, q("decline_invitation", ">")),
            15 => iq("get", &to_ch, q("get_join_requests", ">")),
            16 => iq("set", &to_ch, q("decide_join_request", &format!(" approve='{}'><participant>{u}</participant>", rng.pick(&["1", "0", "true", "yes"])))),
            17 => iq("set", &to_ch, q(rng.pick(&["composing", "gone", "paused"]), ">")),
            18 => iq("set", &to_ch, q("recall", &format!(" chat_type='normal' msgid='{id}, {id2},,'>"))),
            19 => iq("get", &to_ch, q("group_message_status", &format!(" message_id='{id}'>"))),
            20 | 21 => iq("get", DOMAIN, format!("<query xmlns='jabber:iq:user_activities' status='{}' to_user='{to_ch}' position='{}' row_id='{id}' limit='{}' message_id='{id2}' send_seen='0'/>", rng.pick(&["group_chat", "group_chat_media", "reply_message", "everything"]), rng.pick(&["up", "down", "sideways"]), rng.pick(&["20", "0", "5000", "", "x"]))),
            22..=26 => message("normal", &to_ch, format!("<chatcontent xmlns='urn:xmpp:content' message_type='{}' meta_data='{text}' edit_msg_id='{id2}'/><subject>text</subject><body>{text}</body>", rng.pick(&["text", "image", "video", "file", "bogus"]))),
            _ => message("chat", &to_ch, format!("<{} xmlns='urn:xmpp:receipts' id='{id}' group_id='{ch}'/>", rng.pick(&["delivered", "seen", "received"]))),
        };
    }
    let pubsub = "http://jabber.org/protocol/pubsub";
    match rng.below(46) {
        0 => iq("set", DOMAIN, format!("<create xmlns='urn:xmpp:mix:core:1' channel='{}{n}'/>", rng.pick(&["c0", "new", "x y", "", "ab"]))),
        1 => iq("set", DOMAIN, format!("<destroy xmlns='urn:xmpp:mix:core:1' channel='{ch}'/>")),
        2 | 3 => iq("set", &to_ch, format!("<join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:messages'/><subscribe node='urn:xmpp:mix:nodes:{node}'/><nick>{text}</nick></join>")),
        4 => iq("set", &to_ch, "<leave xmlns='urn:xmpp:mix:core:1'/>".into()),
        5 => iq("set", &to_ch, format!("<setnick xmlns='urn:xmpp:mix:core:1'><nick>{text}</nick></setnick>")),
        6 => iq("set", &to_ch, format!("<update-subscription xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:{node}'/><unsubscribe node='urn:xmpp:mix:nodes:{}'/></update-subscription>", rng.pick(&NODES))),
        7 => iq("set", &to_ch, format!("<pubsub xmlns='{pubsub}'><publish node='urn:xmpp:mix:nodes:info'><item><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mix:core:1</value></field><field var='Name'><value>{text}</value></field><field var='Description'><value>{text}</value></field><field var='Contact'><value>{u}</value></field></x></item></publish></pubsub>")),
        8 | 9 => iq("get", &to_ch, format!("<pubsub xmlns='{pubsub}'><items node='urn:xmpp:mix:nodes:{node}'/></pubsub>")),
        10 => iq("set", &to_ch, format!("<pubsub xmlns='{pubsub}'><{} node='urn:xmpp:mix:nodes:{}'><item id='{u}'/></{0}></pubsub>", rng.pick(&["publish", "retract"]), rng.pick(&["allowed", "banned", "info", "config"]))),
        11 => iq("get", rng.pick(&[DOMAIN, to_ch.as_str()]), "<query xmlns='http://jabber.org/protocol/disco#info'/>".into()),
        12 => iq("get", rng.pick(&[DOMAIN, to_ch.as_str()]), format!("<query xmlns='http://jabber.org/protocol/disco#items'{}/>", rng.pick(&["", " node='mix'"]))),
        13 => iq("get", DOMAIN, "<ping xmlns='urn:xmpp:ping'/>".into()),
        14..=17 => {
            let rsm = match rng.below(5) {
                0 => format!("<max>{}</max><before>{id}</before>", rng.pick(&["10", "0", "1000", "x"])),
                1 => format!("<max>5</max><after>{id}</after>"),
                2 => format!("<max>5</max><index>{}</index>", rng.pick(&["20", "0", "-1", "x"])),
                3 => "<before/>".into(),
                _ => "<max>3</max>".into(),
            };
            iq("set", &to_ch, format!("<query xmlns='urn:xmpp:mam:2' queryid='q{n}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>{u}</value></field><field var='start'><value>{}</value></field><field var='end'><value>2030-01-01T00:00:00Z</value></field><field var='color'><value>red</value></field></x><set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query>", rng.pick(&["2020-01-01T00:00:00Z", "yesterday", ""])))
        }
        18 => iq("set", &to_ch, format!("<moderate xmlns='urn:xmpp:message-moderate:1' id='{id}'><retract xmlns='urn:xmpp:message-retract:1'/><reason>{text}</reason></moderate>")),
        19 => iq("get", &to_ch, format!("<message-state xmlns='urn:mixd:receipts:0' id='{id}'/>")),
        20 => iq("set", &to_ch, format!("<clear xmlns='urn:mixd:history:0' upto='{id}'/>")),
        21 => iq("set", &to_ch, format!("<role xmlns='urn:mixd:admin:0' jid='{u}' role='{}'/>", rng.pick(&["admin", "member", "owner", "king"]))),
        22 => iq("set", &to_ch, format!("<transfer xmlns='urn:mixd:admin:0' jid='{u}'/>")),
        23 => iq("set", &to_ch, format!("<remove xmlns='urn:mixd:admin:0' jid='{u}'/>")),
        24 => iq("set", &to_ch, format!("<settings xmlns='urn:mixd:admin:0' policy='{}' muted='{}' max-members='{}'/>", rng.pick(&["open", "request", "invite", "x"]), rng.pick(&["true", "false", "maybe"]), rng.pick(&["12", "default", "0", "-3"]))),
        25 => iq("set", &to_ch, format!("<mute xmlns='urn:mixd:admin:0' jid='{u}' until='{}'/>", rng.pick(&["2030-01-01T00:00:00Z", "1970-01-01T00:01:00Z", "tomorrow"]))),
        26 => iq(rng.pick(&["set", "get"]), &to_ch, format!("<invite xmlns='urn:xmpp:mix:misc:0'><invitee>{u}</invitee></invite>")),
        27 => iq("set", &to_ch, "<decline xmlns='urn:mixd:admin:0'/>".into()),
        28 => iq("set", &to_ch, "<request xmlns='urn:mixd:admin:0'/>".into()),
        29 => iq("set", &to_ch, format!("<decide xmlns='urn:mixd:admin:0' jid='{u}' approve='{}'/>", rng.pick(&["true", "0", "maybe"]))),
        30 => iq("get", &to_ch, "<pending xmlns='urn:mixd:admin:0'/>".into()),
        31 => iq("get", DOMAIN, "<groups xmlns='urn:mixd:admin:0'/>".into()),
        32..=35 => message("groupchat", &to_ch, format!("<body>{text}</body><origin-id xmlns='urn:xmpp:sid:0' id='{id}'/>")),
        36 => message("groupchat", &to_ch, format!("<body>x</body>{}", rng.pick(&[
            "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:mix:nodes:participants'><item id='p'><participant xmlns='urn:xmpp:mix:core:1'><jid>m0@localhost</jid></participant></item></items></event>",
            "<mix xmlns='urn:xmpp:mix:core:1'><jid>m0@localhost</jid><nick>boss</nick></mix>",
            "<delay xmlns='urn:xmpp:delay' stamp='2001-01-01T00:00:00Z'/>",
            "<stanza-id xmlns='urn:xmpp:sid:0' id='1' by='c0@mix.localhost'/>",
            "<notice xmlns='urn:mixd:notice:0' kind='joined'/>",
            "<x xmlns='jabber:x:oob'><url>https://example.org/a.png</url></x>",
            "<x xmlns='urn:example'>app data</x>",
        ]))),
        37 => message("groupchat", &to_ch, format!("<retract xmlns='urn:xmpp:message-retract:1' id='{id}'/><body>/me retracted</body>")),
        38 => message("groupchat", &to_ch, format!("<body>{text}</body><replace xmlns='urn:xmpp:message-correct:0' id='{id}'/>")),
        39 => message("groupchat", &to_ch, format!("<reactions xmlns='urn:xmpp:reactions:0' id='{id}'><reaction>👍</reaction><reaction>{text}</reaction></reactions>")),
        40 => message(rng.pick(&["groupchat", "chat", "normal"]), &to_ch, format!("<{} id='{id}'/>", rng.pick(&["received xmlns='urn:xmpp:receipts'", "displayed xmlns='urn:xmpp:chat-markers:0'", "acknowledged xmlns='urn:xmpp:chat-markers:0'"]))),
        41 => message("groupchat", &to_ch, format!("<{} xmlns='http://jabber.org/protocol/chatstates'/>", rng.pick(&["composing", "paused", "active", "gone", "inactive"]))),
        42 | 43 => format!("<presence xmlns='jabber:component:accept' to='{to_ch}'{}><show>away</show><status>{text}</status></presence>", rng.pick(&["", "", " type='unavailable'", " type='probe'", " type='subscribe'"])),
        44 => message("error", &to_ch, "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>".into()),
        _ => iq("set", DOMAIN, format!("<query xmlns='jabber:iq:mixgroupchat' status='{}'/>", rng.pick(&["create_group", "get_user_groups", "bogus"]))),
    }
}

/// A random element to put somewhere.
fn random_element(rng: &mut Rng) -> El {
    El {
        name: rng
            .pick(&[
                "x",
                "item",
                "body",
                "query",
                "mix",
                "jid",
                "a",
                "participant",
                "field",
            ])
            .to_string(),
        ns: rng.chance(50).then(|| rng.pick(&NAMESPACES).to_string()),
        attrs: vec![("id".into(), random_text(rng))],
        children: vec![Node::Text(random_text(rng))],
    }
}

fn random_value(rng: &mut Rng, world: &World) -> String {
    match rng.below(4) {
        0 => random_jid(rng),
        1 => random_id(rng, world),
        _ => random_text(rng),
    }
}

/// The ids stanzas carry: a token `~n~` (found again in the reply), dressed up or not.
fn stanza_id(rng: &mut Rng, n: u64) -> Option<String> {
    let token = format!("~{n}~");
    Some(match rng.below(40) {
        0 => return None,
        1 => String::new(),
        2 => format!("☃{token}💥\u{202e}"),
        3 => format!("{token}<&'\">"),
        4 => format!("{token}{}", "i".repeat(5_000)),
        5 => format!("{token}{}", "i".repeat(20_000)),
        6 => format!("{token}\u{0}"),
        _ => token,
    })
}

/// Mutates `stanza` once.
fn mutate(rng: &mut Rng, stanza: &mut El, world: &World) {
    let count = stanza.count();
    let target = rng.below(count);
    match rng.below(17) {
        // Delete an attribute (not the envelope's: those have their own mutations).
        0 => {
            let e = stanza.nth(target);
            if !e.attrs.is_empty() && target > 0 {
                let i = rng.below(e.attrs.len());
                e.attrs.remove(i);
            }
        }
        // Delete an element.
        1 if target > 0 => {
            let e = stanza.nth(rng.below(count));
            if !e.children.is_empty() {
                let i = rng.below(e.children.len());
                e.children.remove(i);
            }
        }
        // Duplicate an element (or all of its children, several times).
        2 => {
            let e = stanza.nth(target);
            if !e.children.is_empty() {
                let i = rng.below(e.children.len());
                let small = matches!(&e.children[i], Node::El(c) if c.count() < 10);
                let copies = if small && rng.chance(10) { 200 } else { 1 };
                for _ in 0..copies {
                    let c = e.children[i].clone();
                    e.children.insert(i, c);
                }
            }
        }
        // Swap two children, or move one up to the stanza.
        3 => {
            let e = stanza.nth(target);
            if e.children.len() > 1 {
                let (a, b) = (rng.below(e.children.len()), rng.below(e.children.len()));
                e.children.swap(a, b);
            } else if target > 0 && !e.children.is_empty() {
                let moved = e.children.remove(0);
                stanza.children.push(moved);
            }
        }
        // A wrong namespace.
        4 if target > 0 => stanza.nth(target).ns = Some(rng.pick(&NAMESPACES).to_string()),
        // Another value for an attribute, or a new attribute.
        5 | 6 => {
            let value = random_value(rng, world);
            let e = stanza.nth(target);
            if target > 0 && !e.attrs.is_empty() {
                let i = rng.below(e.attrs.len());
                e.attrs[i].1 = value;
            } else if target > 0 {
                let name = rng.pick(&[
                    "id", "node", "jid", "status", "channel", "group_id", "xml:lang", "a",
                ]);
                e.attrs.push((name.to_string(), value));
            }
        }
        // Another text.
        7 => {
            let value = random_value(rng, world);
            let e = stanza.nth(target);
            match e.children.iter_mut().find(|c| matches!(c, Node::Text(_))) {
                Some(Node::Text(t)) => *t = value,
                _ => e.children.push(Node::Text(value)),
            }
        }
        // Nesting to the limit, just past it, or far past it.
        8 => {
            let levels = rng.pick(&[
                MAX_DEPTH - 2,
                MAX_DEPTH - 1,
                MAX_DEPTH,
                MAX_DEPTH + 1,
                3_000,
            ]);
            stanza.nth(target).children.push(Node::Deep(levels));
        }
        // The stanza's type.
        9 => {
            let kind = rng.pick(&[
                None,
                Some("get"),
                Some("set"),
                Some("result"),
                Some("error"),
                Some("groupchat"),
                Some("normal"),
                Some("chat"),
                Some("headline"),
                Some("unavailable"),
                Some("bogus"),
                Some(""),
            ]);
            stanza.set_attr("type", kind.map(str::to_owned));
        }
        // Where it goes.
        10 => {
            let to = match rng.below(6) {
                0 => None,
                1 => Some(DOMAIN.to_owned()),
                2 => Some("other.example".to_owned()),
                3 => Some(format!("{}@{DOMAIN}/nick", rng.pick(&MIX_CHANNELS))),
                4 => Some(format!("{}@{DOMAIN}", rng.pick(&FLY_GROUPS))),
                _ => Some(random_jid(rng)),
            };
            stanza.set_attr("to", to);
        }
        // Something foreign, anywhere.
        11 => {
            let extra = random_element(rng);
            stanza.nth(target).children.push(Node::El(extra));
        }
        // Many children.
        12 if rng.chance(10) => {
            stanza.nth(target).children.push(Node::Many(3_000));
        }
        // Over the size limit.
        13 if rng.chance(3) => {
            stanza
                .nth(target)
                .children
                .push(Node::Big(MAX_STANZA_BYTES + 10));
        }
        // A duplicated attribute, or an undeclared prefix: XML no parser accepts.
        14 if rng.chance(30) => {
            let e = stanza.nth(target);
            if rng.chance(50) && !e.attrs.is_empty() && target > 0 {
                let dup = e.attrs[0].clone();
                e.attrs.push(dup);
            } else {
                e.children.push(Node::El(El {
                    name: "p:x".into(),
                    ns: None,
                    attrs: Vec::new(),
                    children: Vec::new(),
                }));
            }
        }
        // A value with a character XML cannot carry.
        15 if rng.chance(30) => {
            let e = stanza.nth(target);
            e.children.push(Node::Text("nul\u{0}".into()));
        }
        // Its element's name.
        16 if target > 0 => {
            stanza.nth(target).name = rng
                .pick(&["query", "join", "x", "items", "message", "iq", "body"])
                .to_string();
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// What each stanza should get back.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Exactly one result or error.
    Once,
    /// No more than one error.
    AtMostOnce,
    /// Nothing.
    Never,
}

#[derive(Debug)]
struct Expect {
    kind: &'static str,
    answer: Answer,
    /// The id the answer carries; `None` if it comes back without one.
    id: Option<String>,
    /// Where the answer goes.
    to: Option<String>,
    /// The stanza, for reports.
    text: String,
}

/// What mixd should do with `stanza` as written (`text`).
fn expect(stanza: &El, text: &str, malformed: bool) -> Expect {
    let kind: &'static str = match stanza.name.as_str() {
        "iq" => "iq",
        "message" => "message",
        "presence" => "presence",
        _ => "other",
    };
    let refused = malformed || text.len() > MAX_STANZA_BYTES || stanza.depth() > MAX_DEPTH;
    let stanza_type = stanza.attr("type");
    let from = stanza.attr("from");
    let valid =
        |v: &str| v.len() <= mixd::link::reader::MAX_ENVELOPE_VALUE && v.chars().all(is_xml_char);
    let (answerable, to, id) = if refused {
        // Answered by the link from the envelope it kept.
        let to = from.filter(|f| valid(f)).map(str::to_owned);
        (to.is_some(), to, stanza.attr("id").filter(|i| valid(i)))
    } else {
        let to = from.and_then(|f| Jid::new(f).ok()).map(|j| j.to_string());
        (to.is_some(), to, stanza.attr("id"))
    };
    let never = kind == "other"
        || !answerable
        || stanza_type == Some("error")
        || (kind == "iq" && stanza_type == Some("result"));
    let answer = match kind {
        _ if never => Answer::Never,
        "iq" => Answer::Once,
        _ => Answer::AtMostOnce,
    };
    Expect {
        kind,
        answer,
        id: id.filter(|i| !i.is_empty()).map(str::to_owned),
        to,
        text: text.chars().take(300).collect(),
    }
}

fn token_of(id: &str) -> Option<u64> {
    let start = id.find('~')? + 1;
    let end = start + id[start..].find('~')?;
    id[start..end].parse().ok()
}

// ---------------------------------------------------------------------------------------
// The fake server and mixd.

enum Event {
    Sent(u64, Expect),
    Received(Element),
    /// mixd wrote something a server cannot read.
    Unreadable(String),
    Closed,
    SenderDone,
}

struct Mixd {
    child: Child,
    stderr: std::path::PathBuf,
    listener: TcpListener,
    /// The write half, shared by the storm's sender and the keepalive answers.
    stream: Arc<Mutex<TcpStream>>,
    events: mpsc::Receiver<Event>,
    events_tx: mpsc::Sender<Event>,
    database: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' from='mix.localhost' id='storm' version='1.0'>";

fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, marker: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(at) = buf.windows(marker.len()).position(|w| w == marker) {
            buf.drain(..at + marker.len());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mixd did not complete the handshake"
        );
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("reading the handshake");
        assert!(n > 0, "mixd closed the connection during the handshake");
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl Mixd {
    fn start() -> Mixd {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("storm.db");
        let stderr = dir.path().join("stderr.log");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_mixd"))
            .current_dir(dir.path())
            .args([
                "run",
                "--jid",
                DOMAIN,
                "--secret",
                "storm",
                "--user-domain",
                "localhost",
            ])
            .args(["--max-resources-per-participant", "4"])
            .arg("--server")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database")
            .arg(&database)
            .env(
                "MIXD_LOG",
                std::env::var("MIXD_STORM_LOG").unwrap_or_else(|_| "error".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("mixd starts");
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = Vec::new();
        read_until(&mut stream, &mut buf, b"<stream:stream");
        read_until(&mut stream, &mut buf, b">");
        stream.write_all(SERVER_HEADER.as_bytes()).unwrap();
        read_until(&mut stream, &mut buf, b"</handshake>");
        stream.write_all(b"<handshake/>").unwrap();
        listener.set_nonblocking(true).unwrap();
        let (events_tx, events) = mpsc::channel();
        let read = stream.try_clone().unwrap();
        let tx = events_tx.clone();
        std::thread::spawn(move || read_loop(read, buf, tx));
        Mixd {
            child,
            stderr,
            listener,
            stream: Arc::new(Mutex::new(stream)),
            events,
            events_tx,
            database,
            _dir: dir,
        }
    }

    fn send(&mut self, text: &str) {
        self.stream
            .lock()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// Answers mixd's keepalive ping, as a server does; true if `e` was one.
    fn pong(&self, e: &Element) -> bool {
        if e.name() != "iq" || e.attr("type") != Some("get") {
            return false;
        }
        let reply = format!(
            "<iq type='result' from='{DOMAIN}' to='{DOMAIN}' id='{}'/>",
            e.attr("id").unwrap_or_default()
        );
        self.stream
            .lock()
            .unwrap()
            .write_all(reply.as_bytes())
            .unwrap();
        true
    }

    /// The next stanza from mixd that `wanted` accepts; others are dropped.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Received(e)) if self.pong(&e) => {}
                Ok(Event::Received(e)) if wanted(&e) => return e,
                Ok(Event::Received(_)) => {}
                Ok(Event::Unreadable(text)) => panic!("mixd wrote unreadable XML: {text}"),
                Ok(Event::Closed) => panic!("mixd closed the link while waiting for {what}"),
                Ok(_) => {}
                Err(_) => panic!("no {what} within 60 s"),
            }
        }
    }

    /// Sends an iq and returns its reply, which must be a result.
    fn request(&mut self, from: &str, to: &str, kind: &str, id: &str, payload: &str) -> Element {
        self.send(&format!(
            "<iq type='{kind}' from='{from}' to='{to}' id='{id}'>{payload}</iq>"
        ));
        let reply = self.wait_for(id, |e| e.name() == "iq" && e.attr("id") == Some(id));
        assert_eq!(
            reply.attr("type"),
            Some("result"),
            "{payload}: {}",
            String::from(&reply)
        );
        reply
    }

    fn rss_mb(&self) -> f64 {
        rss_mb(self.child.id())
    }
}

/// A template, read by a small parser (templates are well-formed, single-quoted, and
/// reading them with rxml in a debug build was most of the storm's time).
fn parse_template(text: &str) -> El {
    fn unescape(raw: &str) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let end = at + rest[at..].find(';').expect("an entity ends");
            out.push(match &rest[at + 1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "apos" => '\'',
                "quot" => '"',
                num => {
                    let code = match num.strip_prefix("#x") {
                        Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                        None => num[1..].parse().unwrap(),
                    };
                    char::from_u32(code).unwrap()
                }
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
    let mut stack: Vec<El> = Vec::new();
    let mut rest = text;
    loop {
        let lt = rest.find('<').expect("a tag");
        if lt > 0 {
            let text = unescape(&rest[..lt]);
            stack.last_mut().unwrap().children.push(Node::Text(text));
        }
        rest = &rest[lt + 1..];
        if let Some(after) = rest.strip_prefix('/') {
            rest = &after[after.find('>').unwrap() + 1..];
            let done = stack.pop().unwrap();
            match stack.last_mut() {
                Some(parent) => parent.children.push(Node::El(done)),
                None => return done,
            }
            continue;
        }
        let end = rest.find([' ', '>', '/']).unwrap();
        let mut el = El {
            name: rest[..end].to_owned(),
            ns: None,
            attrs: Vec::new(),
            children: Vec::new(),
        };
        rest = rest[end..].trim_start();
        loop {
            if let Some(after) = rest.strip_prefix("/>") {
                rest = after;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::El(el)),
                    None => return el,
                }
                break;
            }
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                stack.push(el);
                break;
            }
            let eq = rest.find('=').unwrap();
            let name = rest[..eq].trim().to_owned();
            let quote = rest[eq + 1..].chars().next().unwrap();
            let value_start = eq + 2;
            let value_end = value_start + rest[value_start..].find(quote).unwrap();
            let value = unescape(&rest[value_start..value_end]);
            rest = rest[value_end + 1..].trim_start();
            if name == "xmlns" {
                el.ns = Some(value);
            } else {
                el.attrs.push((name, value));
            }
        }
    }
}

const STREAM_START: &[u8] = b"<stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='x'>";

/// CPU seconds a process has used (user and system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Reads everything mixd writes with mixd's own reader (no limit worth the name): each
/// stanza must be XML a server accepts.
fn read_loop(mut stream: TcpStream, first: Vec<u8>, tx: mpsc::Sender<Event>) {
    let mut reader = Reader::new(Limits {
        max_bytes: 1 << 30,
        max_depth: 1 << 20,
    });
    let mut items = Vec::new();
    reader.feed(STREAM_START, &mut items).unwrap();
    items.clear();
    let mut chunk = vec![0u8; 256 * 1024];
    let mut bytes = first;
    loop {
        if let Err(e) = reader.feed(&bytes, &mut items) {
            let _ = tx.send(Event::Unreadable(format!("{e}")));
            return;
        }
        for item in items.drain(..) {
            let event = match item {
                Item::Stanza { element, .. } => Event::Received(element),
                Item::Refused(refused) => Event::Unreadable(format!("{refused:?}")),
                // This reader has no screen.
                Item::Screened { reply } => Event::Unreadable(format!("screened: {reply}")),
                Item::End => Event::Closed,
                Item::Header { .. } => Event::Unreadable("a second stream header".into()),
            };
            if tx.send(event).is_err() {
                return;
            }
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Event::Closed);
                return;
            }
            Ok(n) => n,
        };
        bytes = chunk[..n].to_vec();
    }
}

// ---------------------------------------------------------------------------------------
// The test.

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const JOIN: &str = "<join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:messages'/>\
    <subscribe node='urn:xmpp:mix:nodes:presence'/><subscribe node='urn:xmpp:mix:nodes:participants'/>\
    <subscribe node='urn:xmpp:mix:nodes:info'/><subscribe node='urn:xmpp:mix:nodes:config'/></join>";

/// Channels and users through normal requests; returns what the storm may refer to.
fn set_up(mixd: &mut Mixd) -> World {
    let mut archive_ids = Vec::new();
    for (i, channel) in MIX_CHANNELS.iter().enumerate() {
        let owner = format!("{}/a", user(MIX_USERS[i]));
        mixd.request(
            &owner,
            DOMAIN,
            "set",
            &format!("create-{channel}"),
            &format!("<create xmlns='urn:xmpp:mix:core:1' channel='{channel}'/>"),
        );
        for (j, name) in MIX_USERS.iter().enumerate() {
            let to = format!("{channel}@{DOMAIN}");
            let from = format!("{}/a", user(name));
            mixd.request(&from, &to, "set", &format!("join-{channel}-{j}"), JOIN);
            mixd.send(&format!("<presence from='{from}' to='{to}'/>"));
        }
        // A few messages to refer to.
        for k in 0..3 {
            let to = format!("{channel}@{DOMAIN}");
            mixd.send(&format!(
                "<message type='groupchat' from='{owner}' to='{to}' id='setup-{channel}-{k}'><body>hello {k}</body><origin-id xmlns='urn:xmpp:sid:0' id='o{k}'/></message>"
            ));
            let reflection = mixd.wait_for("a reflection", |e| {
                e.name() == "message"
                    && e.attr("to") == Some(owner.as_str())
                    && e.attr("type") == Some("groupchat")
                    && e.get_child("body", "jabber:component:accept").is_some()
            });
            if let Some(id) = reflection
                .get_child("stanza-id", "urn:xmpp:sid:0")
                .and_then(|s| s.attr("id"))
                .or(reflection.attr("id"))
            {
                archive_ids.push(id.to_owned());
            }
            archive_ids.push(format!("o{k}"));
        }
    }
    for (i, group) in FLY_GROUPS.iter().enumerate() {
        let owner = format!("{}/web", user(FLY_USERS[i]));
        let participants: String = FLY_USERS
            .iter()
            .filter(|u| **u != FLY_USERS[i])
            .map(|u| format!("<participant>{}</participant>", user(u)))
            .collect();
        mixd.request(&owner, DOMAIN, "set", &format!("create-{group}"), &format!(
            "<query xmlns='jabber:iq:mixgroupchat' status='create_group' group_id='{group}'><profile><vCard xmlns='vcard-temp'><nickName>{group}</nickName><history>1</history></vCard></profile><participants>{participants}</participants></query>"
        ));
        let to = format!("{group}@{DOMAIN}");
        mixd.send(&format!(
            "<message type='normal' from='{owner}' to='{to}' id='fly-{group}'><chatcontent xmlns='urn:xmpp:content' message_type='text'/><body>hi</body></message>"
        ));
        archive_ids.push(format!("fly-{group}"));
    }
    // Everything above is stored once this answers (replies follow changes).
    mixd.request(
        &format!("{}/a", user(MIX_USERS[0])),
        DOMAIN,
        "get",
        "setup-done",
        "<ping xmlns='urn:xmpp:ping'/>",
    );
    World { archive_ids }
}

#[derive(Default)]
struct Tally {
    answers: HashMap<u64, u32>,
    idless: HashMap<&'static str, (u64, u64)>,
    idless_samples: Vec<String>,
    received: u64,
    errors: u64,
    results: u64,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.failures.len() < 40 {
            self.failures.push(what);
        }
    }
}

/// Counts one stanza from mixd; returns the token of an owed iq answered for the first time.
fn account(tally: &mut Tally, sent: &HashMap<u64, Expect>, e: &Element) -> Option<u64> {
    tally.received += 1;
    let kind = e.attr("type").unwrap_or("");
    let is_reply = kind == "error" || (e.name() == "iq" && kind == "result");
    if !is_reply {
        return None; // deliveries, and keepalive pings
    }
    if kind == "error" {
        tally.errors += 1;
        let condition = e
            .get_child("error", "jabber:component:accept")
            .and_then(|error| {
                error
                    .children()
                    .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
            });
        if condition.is_none() {
            tally.fail(format!("an error without a condition: {}", String::from(e)));
        }
    } else {
        tally.results += 1;
    }
    let id = e.attr("id").filter(|i| !i.is_empty());
    let Some(id) = id else {
        let count = tally.idless.entry(match e.name() {
            "iq" => "iq",
            "message" => "message",
            _ => "presence",
        });
        count.or_default().1 += 1;
        if e.name() == "iq" && tally.idless_samples.len() < 12 {
            tally
                .idless_samples
                .push(String::from(e).chars().take(400).collect());
        }
        return None;
    };
    let Some(token) = token_of(id) else {
        tally.fail(format!(
            "a reply to nothing that was sent: {}",
            String::from(e)
        ));
        return None;
    };
    let Some(expect) = sent.get(&token) else {
        tally.fail(format!(
            "a reply to nothing that was sent: {}",
            String::from(e)
        ));
        return None;
    };
    let count = tally.answers.entry(token).or_default();
    *count += 1;
    let count = *count;
    let mut problems = Vec::new();
    if expect.answer == Answer::Never {
        problems.push("must not be answered");
    }
    if count > 1 {
        problems.push("answered more than once");
    }
    if expect.kind != e.name() {
        problems.push("answered with another kind of stanza");
    }
    if expect.kind != "iq" && kind != "error" {
        problems.push("answered with something other than an error");
    }
    if expect.id.as_deref() != Some(id) {
        problems.push("answered with another id");
    }
    if expect.to.as_deref() != e.attr("to") {
        problems.push("answered to someone else");
    }
    if !problems.is_empty() {
        tally.fail(format!(
            "{}: sent {}\n  got {}",
            problems.join(", "),
            expect.text,
            String::from(e).chars().take(600).collect::<String>()
        ));
    }
    (count == 1 && expect.answer == Answer::Once && expect.id.is_some()).then_some(token)
}

#[test]
fn a_storm_of_hostile_stanzas() {
    let requests = setting("MIXD_STORM_REQUESTS", 100_000);
    let seed = setting("MIXD_STORM_SEED", 13);
    let started = Instant::now();
    let mut mixd = Mixd::start();
    let world = set_up(&mut mixd);
    let pid = mixd.child.id();
    let rss_start = mixd.rss_mb();
    eprintln!(
        "storm: set up in {:.1?}, {} archive ids, RSS {rss_start:.1} MB",
        started.elapsed(),
        world.archive_ids.len()
    );

    // The storm: a thread writes, this one accounts for what comes back.
    let storm_started = Instant::now();
    let writer = mixd.stream.clone();
    let tx = mixd.events_tx.clone();
    // Set by the sender when it has written everything. Its `SenderDone` event can sit behind
    // thousands of unread `Sent` events when this thread lags, so "finished" alone does not
    // mean "stopped early".
    let sender_completed = Arc::new(AtomicBool::new(false));
    let completed = sender_completed.clone();
    let sender = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut rng = Rng(seed);
            let (mut mutated, mut n) = (0u64, 0u64);
            let mut batch = String::new();
            let mut check = std::env::var_os("MIXD_STORM_CHECK").map(|_| {
                let mut reader = Reader::new(Limits {
                    max_bytes: MAX_STANZA_BYTES,
                    max_depth: MAX_DEPTH,
                });
                reader.feed(STREAM_START, &mut Vec::new()).unwrap();
                reader
            });
            while mutated < requests {
                n += 1;
                let text = template(&mut rng, &world);
                let mut stanza = parse_template(&text);
                stanza.ns = None;
                stanza.set_attr("from", Some(random_sender(&mut rng)));
                stanza.set_attr("id", stanza_id(&mut rng, n));
                if rng.chance(85) {
                    mutated += 1;
                    for _ in 0..1 + rng.below(3) {
                        mutate(&mut rng, &mut stanza, &world);
                    }
                }
                let mut out = String::new();
                let mut malformed = false;
                stanza.write(&mut out, None, &mut malformed);
                let expect = expect(&stanza, &out, malformed);
                if let Some(check) = check.as_mut() {
                    // Debugging aid: what mixd's reader makes of each stanza alone.
                    let mut items = Vec::new();
                    let result = check.feed(out.as_bytes(), &mut items);
                    assert!(
                        result.is_ok() && items.len() == 1,
                        "the reader made {result:?} {items:?} of {}",
                        out.chars().take(2000).collect::<String>()
                    );
                }
                if tx.send(Event::Sent(n, expect)).is_err() {
                    return (mutated, n);
                }
                batch.push_str(&out);
                if batch.len() > 32 * 1024 || n % 64 == 0 {
                    if writer.lock().unwrap().write_all(batch.as_bytes()).is_err() {
                        return (mutated, n);
                    }
                    batch.clear();
                }
            }
            let _ = writer.lock().unwrap().write_all(batch.as_bytes());
            completed.store(true, Ordering::SeqCst);
            let _ = tx.send(Event::SenderDone);
            (mutated, n)
        })
        .unwrap();

    let mut sent: HashMap<u64, Expect> = HashMap::new();
    let mut tally = Tally::default();
    let mut rss_peak = rss_start;
    let mut last_sample = Instant::now();
    let mut done = None;
    let mut last_progress = Instant::now();
    // Iqs owed an answer that carries their id, and not yet answered.
    let mut outstanding = 0usize;
    let mut reported_stall = false;
    loop {
        if last_sample.elapsed() > Duration::from_millis(200) {
            rss_peak = rss_peak.max(rss_mb(pid));
            last_sample = Instant::now();
            if std::env::var_os("MIXD_STORM_TRACE").is_some() {
                eprintln!(
                    "storm: {} sent, {} back, {outstanding} owed, done {}, mixd CPU {:.1} s",
                    sent.len(),
                    tally.received,
                    done.is_some(),
                    cpu_seconds(pid)
                );
            }
            assert!(
                !sender.is_finished() || sender_completed.load(Ordering::SeqCst),
                "the storm's sender stopped early"
            );
            if let Some(status) = mixd.child.try_wait().unwrap() {
                panic!(
                    "mixd exited ({status}) during the storm; its stderr:\n{}",
                    std::fs::read_to_string(&mixd.stderr).unwrap_or_default()
                );
            }
        }
        match mixd.events.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Sent(n, expect)) => {
                if expect.answer != Answer::Never {
                    if expect.id.is_none() {
                        tally.idless.entry(expect.kind).or_default().0 += 1;
                    } else if expect.answer == Answer::Once {
                        outstanding += 1;
                    }
                }
                sent.insert(n, expect);
            }
            Ok(Event::Received(e)) if mixd.pong(&e) => {}
            Ok(Event::Received(e)) => {
                last_progress = Instant::now();
                if account(&mut tally, &sent, &e).is_some() {
                    outstanding -= 1;
                }
            }
            Ok(Event::Unreadable(what)) => panic!("mixd wrote XML a server cannot read: {what}"),
            Ok(Event::Closed) => panic!(
                "mixd closed the link during the storm; its stderr:\n{}",
                std::fs::read_to_string(&mixd.stderr).unwrap_or_default()
            ),
            Ok(Event::SenderDone) => done = Some(Instant::now()),
            Err(_) => {}
        }
        if let Some(at) = done {
            let idless_iq = tally.idless.get("iq").copied().unwrap_or_default();
            // Everything owed has come, and nothing more for a second: done.
            if outstanding == 0
                && idless_iq.1 >= idless_iq.0
                && at.elapsed() > Duration::from_secs(1)
                && last_progress.elapsed() > Duration::from_secs(1)
            {
                break;
            }
            if last_progress.elapsed() > Duration::from_secs(60) {
                break;
            }
            if last_progress.elapsed() > Duration::from_secs(10) && !reported_stall {
                reported_stall = true;
                let last = tally.answers.keys().max().copied().unwrap_or(0);
                eprintln!(
                    "storm: nothing back for 10 s; mixd's CPU {:.1} s; last answered {last}, then sent:",
                    cpu_seconds(pid)
                );
                for n in last + 1..last + 6 {
                    if let Some(e) = sent.get(&n) {
                        eprintln!("  {n}: {}", e.text);
                    }
                }
                let recount = sent
                    .iter()
                    .filter(|(n, e)| {
                        e.answer == Answer::Once && e.id.is_some() && !tally.answers.contains_key(n)
                    })
                    .count();
                eprintln!(
                    "storm: {outstanding} owed (recounted {recount}); id-less answers (owed, got) {:?}, e.g. {:#?}; unanswered:",
                    tally.idless, tally.idless_samples
                );
                for (n, e) in sent
                    .iter()
                    .filter(|(n, e)| {
                        e.answer == Answer::Once && e.id.is_some() && !tally.answers.contains_key(n)
                    })
                    .take(5)
                {
                    eprintln!("  {n}: {}", e.text);
                }
            }
        }
    }
    let (mutated, total) = sender.join().unwrap();
    let storm_time = storm_started.elapsed();
    let rss_after = mixd.rss_mb();
    rss_peak = rss_peak.max(rss_after);
    // The id-less answers: iqs exactly as many as sent, messages and presence no more.
    for (kind, (owed, got)) in tally.idless.clone() {
        let fine = if kind == "iq" {
            got == owed
        } else {
            got <= owed
        };
        if !fine {
            tally.fail(format!(
                "{got} {kind} answers without an id for {owed} such stanzas"
            ));
        }
    }
    let unanswered: Vec<&str> = sent
        .iter()
        .filter(|(n, e)| {
            e.answer == Answer::Once && e.id.is_some() && !tally.answers.contains_key(n)
        })
        .map(|(_, e)| e.text.as_str())
        .take(5)
        .collect();
    if !unanswered.is_empty() {
        tally.fail(format!("unanswered: {unanswered:#?}"));
    }
    let owed = sent.values().filter(|e| e.answer == Answer::Once).count();
    eprintln!(
        "storm: {total} requests ({mutated} mutated, seed {seed}) in {storm_time:.1?}; {owed} iqs owed an answer; \
         {} stanzas back ({} results, {} errors); RSS {rss_start:.1} MB before, {rss_peak:.1} MB peak, {rss_after:.1} MB after",
        tally.received, tally.results, tally.errors
    );
    assert!(
        tally.failures.is_empty(),
        "{} failures:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    assert!(
        rss_peak - rss_start < RSS_GROWTH_LIMIT_MB,
        "mixd grew from {rss_start:.1} MB to {rss_peak:.1} MB"
    );

    // A normal exchange afterwards, on the same link.
    let (alice, bob) = ("after-a@localhost/a", "after-b@localhost/b");
    let channel = format!("afterwards@{DOMAIN}");
    mixd.request(
        alice,
        DOMAIN,
        "set",
        "after-1",
        "<create xmlns='urn:xmpp:mix:core:1' channel='afterwards'/>",
    );
    mixd.request(alice, &channel, "set", "after-2", JOIN);
    mixd.request(bob, &channel, "set", "after-3", JOIN);
    mixd.send(&format!(
        "<presence from='{alice}' to='{channel}'/><presence from='{bob}' to='{channel}'/>"
    ));
    mixd.request(
        bob,
        DOMAIN,
        "get",
        "after-4",
        "<ping xmlns='urn:xmpp:ping'/>",
    );
    mixd.send(&format!(
        "<message type='groupchat' from='{alice}' to='{channel}' id='after-5'><body>after the storm</body></message>"
    ));
    for who in [alice, bob] {
        let reflection = mixd.wait_for("the reflection", |e| {
            e.name() == "message"
                && e.attr("to") == Some(who)
                && e.attr("type") == Some("groupchat")
        });
        let body = reflection
            .get_child("body", "jabber:component:accept")
            .map(|b| b.text());
        assert_eq!(
            body.as_deref(),
            Some("after the storm"),
            "{}",
            String::from(&reflection)
        );
    }
    mixd.send(&format!(
        "<iq type='set' from='{bob}' to='{channel}' id='after-6'><query xmlns='urn:xmpp:mam:2' queryid='last'>\
         <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set></query></iq>"
    ));
    let result = mixd.wait_for("a MAM result", |e| {
        e.name() == "message" && e.get_child("result", "urn:xmpp:mam:2").is_some()
    });
    assert!(
        String::from(&result).contains("after the storm"),
        "{}",
        String::from(&result)
    );
    let fin = mixd.wait_for("the MAM fin", |e| e.attr("id") == Some("after-6"));
    assert_eq!(fin.attr("type"), Some("result"));
    assert!(
        fin.get_child("fin", "urn:xmpp:mam:2").is_some(),
        "{}",
        String::from(&fin)
    );

    // One connection all along, no panic, a clean stop, an intact database.
    assert!(
        mixd.listener.accept().is_err(),
        "mixd connected a second time"
    );
    let stderr = std::fs::read_to_string(&mixd.stderr).unwrap_or_default();
    assert!(!stderr.contains("panicked"), "mixd panicked:\n{stderr}");
    // Failed commits, archive reads or look-ups are logged as errors.
    assert!(!stderr.contains(" ERROR "), "mixd logged errors:\n{stderr}");
    assert!(mixd.child.try_wait().unwrap().is_none(), "mixd exited");
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let status = mixd.child.wait().unwrap();
    assert!(status.success(), "mixd stopped with {status}:\n{stderr}");
    let db = rusqlite::Connection::open(&mixd.database).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let foreign: i64 = db
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(foreign, 0, "foreign keys broken");
    eprintln!("storm: all checks passed in {:.1?}", started.elapsed());
}
