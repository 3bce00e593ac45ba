//! Writing outbound XML, the [`Head`] of inbound stanzas (their addresses, read once), and
//! [`parse`], our parser of one complete stanza or stored fragment into a `minidom::Element`.
//!
//! Incoming stanzas are framed by the link (`link/reader.rs`) and read by [`parse`]. Outbound
//! stanzas are written here as strings instead, for two reasons: a channel message is serialized once and
//! then addressed to many recipients (only the `to` attribute differs), and the namespace of
//! every element is under our control (a `<message/>` forwarded inside a MAM result must be in
//! `jabber:client`, while the stanza around it travels in `jabber:component:accept`).

use minidom::Element;

mod escape;
mod fragment;
pub mod parse;
mod prototypes;
mod stanzas;

pub use escape::escape_into;
use escape::escaped;
pub use fragment::children_fragment;
use stanzas::Shared;
pub use stanzas::Stanzas;

/// Namespaces mixd reads or writes.
pub mod ns {
    pub const COMPONENT: &str = "jabber:component:accept";
    pub const CLIENT: &str = "jabber:client";
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    pub const MIX_CORE: &str = "urn:xmpp:mix:core:1";
    pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
    pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
    pub const PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
    pub const DATA_FORMS: &str = "jabber:x:data";
    pub const XDATA_VALIDATE: &str = "http://jabber.org/protocol/xdata-validate";
    pub const MAM: &str = "urn:xmpp:mam:2";
    pub const RSM: &str = "http://jabber.org/protocol/rsm";
    pub const FORWARD: &str = "urn:xmpp:forward:0";
    pub const DELAY: &str = "urn:xmpp:delay";
    pub const SID: &str = "urn:xmpp:sid:0";
    pub const PING: &str = "urn:xmpp:ping";
    pub const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
    pub const RECEIPTS: &str = "urn:xmpp:receipts";
    pub const MARKERS: &str = "urn:xmpp:chat-markers:0";
    pub const RETRACT: &str = "urn:xmpp:message-retract:1";
    pub const MODERATE: &str = "urn:xmpp:message-moderate:1";
    pub const CORRECT: &str = "urn:xmpp:message-correct:0";
    pub const REACTIONS: &str = "urn:xmpp:reactions:0";
    pub const SFS: &str = "urn:xmpp:sfs:0";
    pub const SIMS: &str = "urn:xmpp:sims:1";
    pub const OOB: &str = "jabber:x:oob";
    pub const REFERENCE: &str = "urn:xmpp:reference:0";
    /// mixd's own: aggregated reactions in history.
    pub const MIXD_REACTIONS: &str = "urn:mixd:reactions:0";
    /// mixd's own: per-member receipt state of a message.
    pub const MIXD_RECEIPTS: &str = "urn:mixd:receipts:0";
    /// mixd's own: clearing one's own history.
    pub const MIXD_HISTORY: &str = "urn:mixd:history:0";
    /// mixd's group administration requests and notifications (docs/protocol.md).
    pub const MIXD_ADMIN: &str = "urn:mixd:admin:0";
    /// Group events as history shows them to MIX clients.
    pub const MIXD_NOTICE: &str = "urn:mixd:notice:0";
    pub const MIX_ADMIN: &str = "urn:xmpp:mix:admin:0";
    pub const MIX_MISC: &str = "urn:xmpp:mix:misc:0";
    /// XEP-0404: the JID map node's items.
    pub const MIX_ANON: &str = "urn:xmpp:mix:anon:0";
}

/// The MIX nodes (XEP-0369 §6.3) a participant subscribes to and events name.
pub mod node {
    pub const MESSAGES: &str = "urn:xmpp:mix:nodes:messages";
    pub const PARTICIPANTS: &str = "urn:xmpp:mix:nodes:participants";
    pub const INFO: &str = "urn:xmpp:mix:nodes:info";
    pub const CONFIG: &str = "urn:xmpp:mix:nodes:config";
    pub const ALLOWED: &str = "urn:xmpp:mix:nodes:allowed";
    pub const BANNED: &str = "urn:xmpp:mix:nodes:banned";
    /// XEP-0404: participant id to real JID, for owners and admins.
    pub const JIDMAP: &str = "urn:xmpp:mix:nodes:jidmap";
}

/// A received stanza's `from`, `to`, `id` and `type`, taken by the link's thread as it builds
/// the stanza (copied from the envelope its framer kept, [`Head::of_values`], or read from the
/// top element's attributes in one pass, [`Head::of`]), and kept beside the element.
///
/// Why: the rules task read each of them through `Element::attr`, a search of a two-level
/// ordered map whose nodes the link's thread had just allocated; those first touches were
/// about 4 % of mixd's CPU in a 10-member fan-out (docs/benchmarks.md, "The envelope read
/// where the stanza is built"). Here the values lie back to back in one string, written
/// while the attributes are still in cache, and the rules task reads one small buffer.
/// The values are exactly the element's (unescaped and normalized as the parser does it);
/// what they mean is for the router to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    values: String,
    /// Where `from`, `to`, `id` and `type` lie in `values`, for those the element has.
    fields: [Option<(u32, u32)>; 4],
}

impl Head {
    /// The head of `stanza`: its un-namespaced `from`, `to`, `id` and `type` (in `fields`'
    /// order), taken in one pass over its attributes, no look-up.
    pub fn of(stanza: &Element) -> Head {
        let mut found: [Option<&str>; 4] = [None; 4];
        for ((namespace, name), value) in stanza.attrs() {
            let at = match name.as_str() {
                "from" => 0,
                "to" => 1,
                "id" => 2,
                "type" => 3,
                _ => continue,
            };
            if namespace.is_empty() {
                found[at] = Some(value.as_str());
            }
        }
        Head::of_values(found)
    }

    /// The head of a stanza whose `from`, `to`, `id` and `type` (in that order) were read
    /// as its start tag went by: the link's framer keeps them, unescaped as the parser
    /// unescapes them, for its `Screen`, so the head of a stanza it read is a copy of them
    /// rather than another pass over the element's attribute map (`link/reader.rs`).
    pub fn of_values(found: [Option<&str>; 4]) -> Head {
        let mut values = String::with_capacity(found.iter().flatten().map(|v| v.len()).sum());
        let fields = found.map(|value| {
            let value = value?;
            let start = values.len();
            values.push_str(value);
            // A stanza is far smaller than 4 GiB (the link's size limit).
            Some((start as u32, values.len() as u32))
        });
        Head { values, fields }
    }

    fn field(&self, at: usize) -> Option<&str> {
        let (start, end) = self.fields[at]?;
        Some(&self.values[start as usize..end as usize])
    }

    pub fn from(&self) -> Option<&str> {
        self.field(0)
    }

    pub fn to(&self) -> Option<&str> {
        self.field(1)
    }

    pub fn id(&self) -> Option<&str> {
        self.field(2)
    }

    /// The `type` attribute.
    pub fn kind(&self) -> Option<&str> {
        self.field(3)
    }
}

/// A small builder for one element and its subtree, written straight into a string.
///
/// Attributes are added before any content; `close` writes the end tag (or turns the start
/// tag into an empty-element tag). Every attribute value and text is escaped (not namespaces:
/// mixd's constants, see [`Xml::open`]).
pub struct Xml {
    out: String,
    open: Vec<&'static str>,
    in_start_tag: bool,
    /// Where [`Template::TO`] was given as an attribute's value (nothing was written there).
    hole: Option<usize>,
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

impl Xml {
    pub fn new() -> Self {
        Self::with_capacity(256)
    }

    /// A builder whose buffer holds `bytes` before it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        Xml {
            out: String::with_capacity(bytes),
            open: Vec::with_capacity(8),
            in_start_tag: false,
            hole: None,
        }
    }

    fn finish_start_tag(&mut self) {
        if self.in_start_tag {
            self.out.push('>');
            self.in_start_tag = false;
        }
    }

    /// Opens `<name xmlns='ns'>`; `ns` may be empty to inherit the parent's namespace.
    ///
    /// The namespace is one of mixd's constants (hence `'static`), none with a character to
    /// escape, so it is written as it is: escaping the seven namespaces of each MAM result
    /// was a fifth of the escaping a history page did (docs/benchmarks.md, "A history page's
    /// rendering, cheaper").
    pub fn open(&mut self, name: &'static str, ns: &'static str) -> &mut Self {
        self.open_tag(name, ns);
        self.open.push(name);
        self.in_start_tag = true;
        self
    }

    /// `<name xmlns='ns'`, after the start tag before it is finished.
    fn open_tag(&mut self, name: &'static str, ns: &'static str) {
        self.finish_start_tag();
        self.out.push('<');
        self.out.push_str(name);
        if !ns.is_empty() {
            debug_assert!(!ns.bytes().any(|b| escaped(b).is_some()), "{ns}");
            self.out.extend([" xmlns='", ns, "'"]);
        }
    }

    pub fn attr(&mut self, name: &str, value: &str) -> &mut Self {
        debug_assert!(self.in_start_tag, "attribute after content");
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("='");
        if value == HOLE {
            self.hole = Some(self.out.len());
        } else {
            escape_into(&mut self.out, value);
        }
        self.out.push('\'');
        self
    }

    pub fn attr_opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.attr(name, value);
        }
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.finish_start_tag();
        escape_into(&mut self.out, text);
        self
    }

    /// Appends XML that is already serialized and known to be well-formed (a stored payload).
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.finish_start_tag();
        self.out.push_str(xml);
        self
    }

    /// `<name xmlns='ns'>text</name>` in one call (with both tags even when `text` is
    /// empty), written straight through: not pushed on the stack of open elements and
    /// popped again, as `open`, `text` and `close` did (a FlyChat history row is 16 leaves).
    pub fn leaf(&mut self, name: &'static str, ns: &'static str, text: &str) -> &mut Self {
        self.open_tag(name, ns);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.extend(["</", name, ">"]);
        self
    }

    pub fn close(&mut self) -> &mut Self {
        let name = self.open.pop().expect("close without open");
        if self.in_start_tag {
            self.out.push_str("/>");
            self.in_start_tag = false;
        } else {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self
    }

    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

/// A stanza serialized once, with a hole where each recipient's `to` goes.
pub struct Template {
    /// The stanza's bytes around the hole, shared with the runs of its copies.
    shared: Shared,
}

/// The length of a recipient's address that [`Template::reserve_copies`] plans for (a longer
/// one only makes the buffer grow again).
const TYPICAL_JID: usize = 48;

/// Marks the hole where an attribute's value is given; NUL cannot occur in XML, so no value
/// from content can be it.
const HOLE: &str = "\u{0}";

impl Template {
    /// `write` builds the stanza, writing [`Template::TO`] as the `to` attribute's value.
    pub fn new(write: impl FnOnce(&mut Xml)) -> Self {
        Self::with_capacity(256, write)
    }

    /// [`Template::new`] for a stanza of about `bytes`: its buffer is allocated once, and
    /// the hole is where the builder was given [`Template::TO`] (no search, no shift after).
    pub fn with_capacity(bytes: usize, write: impl FnOnce(&mut Xml)) -> Self {
        let mut x = Xml::with_capacity(bytes);
        write(&mut x);
        let hole = x.hole.expect("template without a `to` hole");
        Template {
            shared: Shared::new(x.finish(), hole),
        }
    }

    pub const TO: &'static str = HOLE;

    /// Makes room in `out` for `copies` copies, so that addressing them grows it once.
    pub fn reserve_copies(&self, copies: usize, out: &mut Stanzas) {
        out.reserve_copies(&self.shared, copies);
    }

    /// Appends the copy for `recipient` to `out`: its address alone is written, the
    /// template's bytes around it are shared (see [`Stanzas`]).
    pub fn address(&self, recipient: &str, out: &mut Stanzas) {
        out.copy(&self.shared, recipient);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_the_stanzas_own_attributes() {
        let stanza: Element = "<message xmlns='jabber:component:accept' xmlns:x='urn:x' \
             x:from='forged' to='coven@mix.x' from='a&amp;b@x/r' type='groupchat' \
             data='other'><body from='child'/></message>"
            .parse()
            .unwrap();
        let head = Head::of(&stanza);
        assert_eq!(head.from(), stanza.attr("from"));
        assert_eq!(head.from(), Some("a&b@x/r"));
        assert_eq!(head.to(), Some("coven@mix.x"));
        assert_eq!(head.id(), None);
        assert_eq!(head.kind(), Some("groupchat"));
        let bare: Element = "<presence xmlns='jabber:component:accept'/>"
            .parse()
            .unwrap();
        assert_eq!(Head::of(&bare), Head::default());
        let empty: Element = "<iq xmlns='jabber:component:accept' id='' type='get'/>"
            .parse()
            .unwrap();
        assert_eq!(
            (Head::of(&empty).id(), Head::of(&empty).from()),
            (Some(""), None)
        );
    }

    #[test]
    fn builder_escapes_and_nests() {
        let mut x = Xml::new();
        x.open("message", ns::COMPONENT)
            .attr("to", "a'b@c")
            .leaf("body", "", "1 < 2 & \"3\"")
            .open("mix", ns::MIX_CORE)
            .close();
        assert_eq!(
            x.finish(),
            "<message xmlns='jabber:component:accept' to='a&apos;b@c'>\
             <body>1 &lt; 2 &amp; &quot;3&quot;</body><mix xmlns='urn:xmpp:mix:core:1'/></message>"
        );
    }

    #[test]
    fn template_addresses_each_copy() {
        let template = Template::new(|x| {
            x.open("message", ns::COMPONENT)
                .attr("to", Template::TO)
                .leaf("body", "", "hi");
        });
        let mut out = Stanzas::default();
        template.address("a'b@c", &mut out);
        template.address("d@e", &mut out);
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            [
                "<message xmlns='jabber:component:accept' to='a&apos;b@c'><body>hi</body></message>",
                "<message xmlns='jabber:component:accept' to='d@e'><body>hi</body></message>"
            ]
        );
    }

    #[test]
    fn fragment_drops_stanza_namespace_only() {
        let stanza: Element = "<message xmlns='jabber:component:accept' type='groupchat'>\
             <body>hi &amp; bye</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>"
            .parse()
            .unwrap();
        let fragment = children_fragment(ns::COMPONENT, stanza.children());
        assert!(
            fragment.starts_with("<body>hi &amp; bye</body>"),
            "{fragment}"
        );
        assert!(fragment.contains("urn:xmpp:sid:0"), "{fragment}");
    }

    #[test]
    fn fragment_is_what_minidom_writes_inside_the_stanza() {
        let stanza: Element = "<message xmlns='jabber:component:accept' type='groupchat'>\
             <body xml:lang='en'>a &lt; b</body><x xmlns='jabber:x:oob'><url>u</url><desc/></x>\
             <reply xmlns='urn:xmpp:reply:0' to='c@d/e' id='y'/>\
             <html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>\
             <p>one <b>two</b> three</p></body></html></message>"
            .parse()
            .unwrap();
        let mut whole = Vec::new();
        stanza.write_to(&mut whole).unwrap();
        let whole = String::from_utf8(whole).unwrap();
        let inner = &whole[whole.find('>').unwrap() + 1..whole.rfind("</message>").unwrap()];
        assert_eq!(children_fragment(ns::COMPONENT, stanza.children()), inner);
    }

    #[test]
    fn fragment_of_nothing_is_empty() {
        assert_eq!(children_fragment(ns::COMPONENT, std::iter::empty()), "");
    }
}
