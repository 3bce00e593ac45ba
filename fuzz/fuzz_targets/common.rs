//! What the fuzz targets share: stanzas read from bytes the way the link reads them, an
//! envelope chosen by a byte so that the fuzzer spends its time inside the payload, a fresh
//! core with a few channels built through the router, and an archive that answers from
//! memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use jid::BareJid;
use minidom::Element;
use mixd::core::{Groups, MessageRef, Micros, Rules, Snapshot};
use mixd::dialect::ids::Ids;
use mixd::dialect::{Handled, Lookup, Read, Service};
use mixd::link::reader::{Item, Limits, Reader};
use mixd::store::{HistoryError, HistoryPage, HistoryQuery, MemberReceipt};
use mixd::xml::{Head, Stanzas};

pub const DOMAIN: &str = "mix.localhost";
pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' from='mix.localhost' id='fuzz'>";
/// The link's defaults (`max_stanza_bytes`, `max_stanza_depth`).
pub const LIMITS: Limits = Limits {
    max_bytes: 262_144,
    max_depth: 32,
};
pub const NOW: Micros = 1_767_225_600_000_000;

/// Who sends: participants of either dialect, an outsider, a user of another domain, the
/// service itself, and a bare domain.
pub const SENDERS: [&str; 8] = [
    "alice@localhost/a",
    "bob@localhost/b",
    "carol@localhost/web",
    "mallory@localhost/m",
    "eve@elsewhere.example/e",
    "alice@localhost/second",
    "localhost",
    "mix.localhost",
];

/// Where to: the service, its channels (MIX, FlyChat, one that does not exist), a full JID of
/// a channel, another domain.
pub const TARGETS: [&str; 7] = [
    "mix.localhost",
    "coven@mix.localhost",
    "flock@mix.localhost",
    "sabbat@mix.localhost",
    "nowhere@mix.localhost",
    "coven@mix.localhost/alice",
    "other.example",
];

/// Stanza kind and type.
pub const KINDS: [(&str, Option<&str>); 10] = [
    ("iq", Some("set")),
    ("iq", Some("get")),
    ("message", Some("groupchat")),
    ("message", Some("normal")),
    ("message", Some("chat")),
    ("message", None),
    ("presence", None),
    ("presence", Some("unavailable")),
    ("message", Some("error")),
    ("iq", Some("result")),
];

/// The top-level elements a reader makes of `bytes` after a stream header, each with the
/// head the reader read beside it; refused ones and a stream the reader gives up on leave
/// nothing.
pub fn stanzas(bytes: &[u8], limits: Limits) -> Vec<(Element, Head)> {
    let mut reader = Reader::new(limits);
    let mut out = Vec::new();
    reader
        .feed(HEADER.as_bytes(), &mut out)
        .expect("the header reads");
    let _ = reader.feed(bytes, &mut out);
    out.into_iter()
        .filter_map(|item| match item {
            Item::Stanza { element, head, .. } => Some((element, head)),
            _ => None,
        })
        .collect()
}

/// The stanza `data` makes: its first three bytes choose the sender, the target and the
/// kind, and the rest is the stanza's content; or, when the third byte's high bit is set,
/// the rest is the whole of what the server sends.
pub fn stanza_text(data: &[u8]) -> Vec<u8> {
    let [from, to, kind, rest @ ..] = data else {
        return data.to_vec();
    };
    if kind & 0x80 != 0 {
        return rest.to_vec();
    }
    let from = SENDERS[*from as usize % SENDERS.len()];
    let to = TARGETS[*to as usize % TARGETS.len()];
    let (name, kind) = KINDS[*kind as usize % KINDS.len()];
    let mut text = format!("<{name} from='{from}' to='{to}' id='f1'");
    if let Some(kind) = kind {
        text.push_str(&format!(" type='{kind}'"));
    }
    text.push('>');
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(rest);
    bytes.extend_from_slice(format!("</{name}>").as_bytes());
    bytes
}

/// The key of the service's opaque message ids (`dialect::ids`): fixed, so that a run
/// replays and the seeds and `xmpp.dict` can name the archive's messages by the ids clients
/// see (archive id 1 is `IguPacAsOe9`, or `9812848425567315901` in FlyChat's digits).
pub const ID_KEY: [u8; 16] = [13; 16];

/// An archive in memory: archive id 1 (what a client names by its opaque id, or by origin-id
/// `o1`) is alice's message, 2 (`o2`) bob's, 3 (`o3`) a retracted one of carol's, each with
/// bob's delivery receipt; reference `fail` is a failing store; history pages are empty, but
/// for a page of 7, which names a message that is not there.
pub struct Archive;

fn bare(s: &str) -> BareJid {
    BareJid::new(s).expect("a bare JID")
}

impl mixd::store::Reader for Archive {
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        Ok(Snapshot::default())
    }
    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
        if query.max == 7 {
            return Err(HistoryError::UnknownId(7));
        }
        Ok(HistoryPage {
            messages: Vec::new(),
            count: 0,
            first_index: Some(0),
            complete: true,
        })
    }
    fn find_message(
        &self,
        channel: i64,
        id: Option<i64>,
        sent: &str,
    ) -> anyhow::Result<Option<MessageRef>> {
        let id = match (id, sent) {
            (Some(id @ 1..=3), _) => id,
            (_, "o1") => 1,
            (_, "o2") => 2,
            (_, "o3") => 3,
            (_, "fail") => anyhow::bail!("the disk is on fire"),
            _ => return Ok(None),
        };
        let (sender, retracted) = match id {
            1 => ("alice@localhost", false),
            2 => ("bob@localhost", false),
            _ => ("carol@localhost", true),
        };
        Ok(Some(MessageRef {
            id,
            channel,
            sender: bare(sender),
            client_id: Some(format!("o{id}")),
            retracted,
        }))
    }
    fn receipts_of(&self, messages: &[i64]) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
        Ok(messages
            .iter()
            .filter(|id| (1..=3).contains(*id))
            .map(|&id| {
                let receipt = MemberReceipt {
                    member: bare("bob@localhost"),
                    delivered_at: Some(NOW),
                    displayed_at: None,
                };
                (id, vec![receipt])
            })
            .collect())
    }
}

pub fn service() -> Service {
    Service {
        domain: DOMAIN.into(),
        archive: Arc::new(Archive),
        ids: Ids::new(&ID_KEY),
    }
}

/// What builds the core every input starts from: MIX channel `coven` (alice owner, bob
/// member, alice online), FlyChat group `flock` (carol's, with alice and dave), and channel
/// `sabbat` that takes join requests, with one pending.
const SETUP: &str = "\
<iq type='set' from='alice@localhost/a' to='mix.localhost' id='s1'><create xmlns='urn:xmpp:mix:core:1' channel='coven'/></iq>\
<iq type='set' from='alice@localhost/a' to='coven@mix.localhost' id='s2'><join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:messages'/><subscribe node='urn:xmpp:mix:nodes:presence'/><subscribe node='urn:xmpp:mix:nodes:participants'/><subscribe node='urn:xmpp:mix:nodes:info'/><subscribe node='urn:xmpp:mix:nodes:config'/><nick>alice</nick></join></iq>\
<iq type='set' from='bob@localhost/b' to='coven@mix.localhost' id='s3'><join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:messages'/><nick>bob</nick></join></iq>\
<presence from='alice@localhost/a' to='coven@mix.localhost'/>\
<presence from='bob@localhost/b' to='coven@mix.localhost'/>\
<message type='groupchat' from='alice@localhost/a' to='coven@mix.localhost' id='m1'><body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>\
<iq type='set' from='carol@localhost/web' to='mix.localhost' id='s4'><query xmlns='jabber:iq:mixgroupchat' status='create_group' group_id='flock'><profile><vCard xmlns='vcard-temp'><nickName>Flock</nickName></vCard></profile><participants><participant>alice@localhost</participant><participant>dave@localhost</participant></participants></query></iq>\
<message type='normal' from='carol@localhost/web' to='flock@mix.localhost' id='o3'><chatcontent xmlns='urn:xmpp:content' message_type='text'/><body>x</body></message>\
<iq type='set' from='bob@localhost/b' to='mix.localhost' id='s5'><create xmlns='urn:xmpp:mix:core:1' channel='sabbat'/></iq>\
<iq type='set' from='bob@localhost/b' to='sabbat@mix.localhost' id='s6'><join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:messages'/></join></iq>\
<iq type='set' from='bob@localhost/b' to='sabbat@mix.localhost' id='s7'><settings xmlns='urn:mixd:admin:0' policy='request'/></iq>\
<iq type='set' from='mallory@localhost/m' to='sabbat@mix.localhost' id='s8'><request xmlns='urn:mixd:admin:0'/></iq>";

/// A fresh core with the channels of [`SETUP`].
pub fn core(service: &Service) -> Groups {
    let rules = Rules {
        user_domains: vec!["localhost".into()],
        max_resources_per_participant: 4,
        ..Rules::default()
    };
    let mut groups = Groups::new(rules, Snapshot::default());
    for (stanza, head) in stanzas(SETUP.as_bytes(), LIMITS) {
        let handled = handle(&mut groups, service, &stanza, &head);
        finish(&mut groups, service, handled, &mut Vec::new());
    }
    assert_eq!(
        groups.channels().count(),
        3,
        "the fuzz set-up no longer works"
    );
    groups
}

thread_local! {
    /// The router's last parsed addresses, kept from stanza to stanza as the service loop
    /// keeps them, so that the inputs also reach it through its kept ones.
    static ADDRESSES: std::cell::RefCell<mixd::router::Addresses> = Default::default();
}

/// What the service loop does with a stanza from the link: its route, then the router.
pub fn handle(groups: &mut Groups, service: &Service, stanza: &Element, head: &Head) -> Handled {
    let route = mixd::router::route(stanza, head);
    ADDRESSES.with_borrow_mut(|addresses| {
        mixd::router::handle(groups, service, addresses, stanza, head, route, NOW)
    })
}

/// Does with `handled` what the service loop does (`service.rs`, `Outlets::dispatch`) —
/// delivery of facts, reads of the archive charged to the asker's quota, look-ups (opaque ids
/// decoded) finished — collecting every stanza mixd would send in `out`, and the errors it
/// would send instead if a commit, a read or a look-up failed.
pub fn finish(groups: &mut Groups, service: &Service, handled: Handled, out: &mut Vec<String>) {
    let mut next = Some(handled);
    while let Some(handled) = next.take() {
        match handled {
            Handled::Changed {
                facts,
                reply,
                on_failure,
            } => {
                let mut stanzas = reply.map(Stanzas::from).unwrap_or_default();
                out.extend(on_failure.map(|failure| failure.reply()));
                mixd::delivery::deliver(groups, service, &facts, &mut stanzas);
                out.extend(stanzas.iter().map(std::borrow::Cow::into_owned));
            }
            Handled::Reply(reply) => out.push(reply),
            Handled::Read(Read { asker, run }) => {
                out.push(asker.storage_failed());
                match groups.charge_read(&asker.user, NOW) {
                    Ok(()) => out.extend(run(service.archive.as_ref())),
                    Err(refusal) => out.push(asker.error(&refusal)),
                }
            }
            Handled::Lookup(Lookup {
                asker,
                channel,
                references,
                resume,
            }) => {
                out.push(asker.storage_failed());
                let found: anyhow::Result<Vec<_>> = references
                    .iter()
                    .map(|sent| {
                        let id = service.ids.decode(sent);
                        service.archive.find_message(channel, id, sent)
                    })
                    .collect();
                if let Ok(found) = found {
                    next = Some(resume(groups, service, found, NOW));
                }
            }
            Handled::Nothing => {}
        }
    }
}

/// Every stanza mixd writes must be XML that a server (here: mixd's own reader, with no
/// limits worth the name) reads as exactly one stanza.
pub fn check_well_formed(out: &[String]) {
    let limits = Limits {
        max_bytes: 1 << 30,
        max_depth: 1 << 20,
    };
    for text in out {
        let mut reader = Reader::new(limits);
        let mut items = Vec::new();
        reader
            .feed(HEADER.as_bytes(), &mut items)
            .expect("the header reads");
        items.clear();
        let result = reader.feed(text.as_bytes(), &mut items);
        match (result, &items[..]) {
            (Ok(()), [Item::Stanza { .. }]) => {}
            (result, items) => {
                panic!("mixd wrote a stanza a server cannot read: {text:?}: {result:?} {items:?}")
            }
        }
    }
}
