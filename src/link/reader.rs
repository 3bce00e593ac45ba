//! The link's reader: the server's bytes → the stream header, stanzas as `minidom::Element`s,
//! and stanzas refused for a limit, with every limit checked as the bytes arrive.
//!
//! Any user's stanza reaches mixd through the server, so nothing here may be used against
//! the service. Two stages:
//!
//! 1. A **framer** scans the bytes (tags, attribute values, depth; no allocation per
//!    element) and cuts the stream into top-level stanzas. It buffers a stanza's bytes only
//!    while the stanza stays within `max_bytes` and `max_depth`. Past a limit it drops what it
//!    buffered and keeps nothing of the stanza but its envelope (element name, `from`, `to`,
//!    `id`, `type`, captured from the top start tag as it streams past, each value at most
//!    [`MAX_ENVELOPE_VALUE`] bytes), counts its way to the stanza's end, and reports it as
//!    [`Item::Refused`]: one stanza, which the link answers with an error. A 20 MB body or a
//!    million-deep nesting costs a counter, not memory.
//! 2. Only a stanza that is complete and within the limits is parsed, by `xml/parse.rs` (a
//!    validating, namespace-aware parser over the stanza's one slice, in the namespaces the
//!    stream's header declares) and built into an `Element` **iteratively**: an explicit
//!    stack of open elements, no recursion, so depth costs heap, never stack. A stanza it
//!    rejects is reported as refused (`Breach::Malformed`); nothing of it stays, so the link
//!    stays up. What lies outside stanzas (the XML declaration, the stream's header, text
//!    between stanzas) is read by `rxml`, whose token limit is `max_bytes`.
//!
//! Dropping an `Element` is recursive in minidom (each child drops its children): the depth
//! limit is what bounds that recursion, for the elements built here and for everything the
//! rules do with them later. Keep `max_depth` small (the configuration caps it).

use minidom::{Element, Node};
use rxml::{Event, Namespace, Parse, Parser, WithOptions};

use crate::xml::parse::{self, Scope};
use crate::xml::Head;

/// Longest `from`, `to`, `id` or `type` kept from a refused stanza's start tag (a JID is at
/// most 3071 bytes). A longer value is left out of the error reply.
pub const MAX_ENVELOPE_VALUE: usize = 4096;

/// What one element is assumed to cost in memory once built (the `Node` in its parent, its
/// name and namespace strings), for weighing stanzas waiting in the inbound queue.
pub const ELEMENT_COST: usize = std::mem::size_of::<Node>() + 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest stanza, in bytes of XML as received.
    pub max_bytes: usize,
    /// Deepest nesting inside a stanza; the stanza's own element is level 1.
    pub max_depth: usize,
}

/// What the reader found in the bytes it was given.
#[derive(Debug)]
pub enum Item {
    /// The server's `<stream:stream>` header, with its `id`.
    Header { id: Option<String> },
    /// A top-level element within the limits. `weight` estimates the memory it holds;
    /// `ticket` is what the [`Screen`] gave it as it let it by (0 without a screen); `head`
    /// its addresses and type, read while the element was in cache.
    Stanza {
        element: Element,
        head: Head,
        weight: usize,
        ticket: u64,
    },
    /// A top-level element that broke a limit; nothing of it was kept but its envelope.
    Refused(Refused),
    /// A stanza the [`Screen`] refused before it was parsed, and its reply.
    Screened { reply: String },
    /// The server's `</stream:stream>`.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The top start tag's name (qualified as written, e.g. `message`), and its addresses.
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    pub kind: Option<String>,
    pub breach: Breach,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// Larger than this many bytes.
    Bytes(usize),
    /// Nested deeper than this many levels.
    Depth(usize),
    /// Not XML the parser accepts (namespaces, characters, names).
    Malformed(String),
}

/// The stream itself is unusable: the link must be dropped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the server sent XML mixd cannot read: {0}")]
    Malformed(String),
}

fn malformed(what: impl Into<String>) -> ReadError {
    ReadError::Malformed(what.into())
}

/// Where the framer is inside the markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data (or nothing) between tags.
    Text,
    /// Just after `<`.
    Lt,
    /// The name of a start tag.
    StartName,
    /// Inside a start tag, between attributes.
    InTag,
    /// An attribute's name.
    AttrName,
    /// After an attribute's name, before its opening quote.
    AttrEq,
    /// Inside an attribute value quoted with this byte.
    AttrValue(u8),
    /// After `/` in a start tag: `>` must follow.
    Slash,
    /// Inside an end tag.
    EndTag,
    /// Inside `<?…?>` (the XML declaration), and just after a `?` in it.
    Decl,
    DeclQ,
}

/// The envelope captured from the top start tag of the stanza being framed, and the names
/// of its children's start tags. One per reader, emptied for each stanza ([`Capture::reset`]):
/// capturing allocates nothing once its buffers have grown to a stanza's envelope.
#[derive(Debug, Default)]
struct Capture {
    name: Vec<u8>,
    attr: Vec<u8>,
    value: Vec<u8>,
    /// Whether the current attribute is one we keep, and whether its value overflowed.
    keep: bool,
    overflow: bool,
    /// The values kept (unescaped), one after another, and where each lies in it.
    text: String,
    fields: [Option<(usize, usize)>; FIELDS],
    /// The child start tag being read (its name as written, and whether it declares a
    /// default namespace), and the children read so far.
    child: ChildTag,
    children: Vec<ChildTag>,
    /// More children than [`MAX_CHILD_TAGS`], or a name longer than [`ChildTag`] holds.
    untold: bool,
    /// A kept attribute's value was left out (longer than [`MAX_ENVELOPE_VALUE`], or not
    /// well-formed): the fields are not the element's.
    lost: bool,
}

/// The attributes of a stanza's top start tag that are kept, in [`Capture::fields`]' order.
const KEPT: [&[u8]; FIELDS] = [b"from", b"to", b"id", b"type", b"xmlns"];
const FIELDS: usize = 5;
const FROM: usize = 0;
const TO: usize = 1;
const ID: usize = 2;
const TYPE: usize = 3;
const XMLNS: usize = 4;

/// How many of a stanza's children a [`Screen`] is told of (a stanza with more is not
/// screened).
const MAX_CHILD_TAGS: usize = 8;

/// The start tag of one of a stanza's children, as written: the name (with its prefix, if
/// any), whether it declares a default namespace (`xmlns='…'`) and which, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildTag {
    name: [u8; 32],
    len: u8,
    pub declares_namespace: bool,
    /// Whether it has an attribute named `id`.
    pub has_id: bool,
    namespace: [u8; 48],
    /// The namespace's length, or [`UNTOLD`] when it did not fit.
    namespace_len: u8,
}

const UNTOLD: u8 = u8::MAX;

impl Default for ChildTag {
    fn default() -> Self {
        ChildTag {
            name: [0; 32],
            len: 0,
            declares_namespace: false,
            has_id: false,
            namespace: [0; 48],
            namespace_len: 0,
        }
    }
}

impl ChildTag {
    pub fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.len)]
    }

    /// The default namespace it declares, as written (references not resolved); `None`
    /// when it declares none or one longer than a tag holds.
    pub fn namespace(&self) -> Option<&[u8]> {
        (self.declares_namespace && self.namespace_len != UNTOLD)
            .then(|| &self.namespace[..usize::from(self.namespace_len)])
    }

    /// Adds bytes of the namespace's value.
    fn push_namespace(&mut self, bytes: &[u8]) {
        let at = usize::from(self.namespace_len);
        match self.namespace.get_mut(at..at + bytes.len()) {
            Some(slot) if self.namespace_len != UNTOLD => {
                slot.copy_from_slice(bytes);
                self.namespace_len += bytes.len() as u8;
            }
            _ => self.namespace_len = UNTOLD,
        }
    }

    /// Adds a byte of the name; false when it does not fit.
    fn push(&mut self, b: u8) -> bool {
        let Some(slot) = self.name.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = b;
        self.len += 1;
        true
    }
}

/// What a stanza that arrived whole and within the limits shows before it is parsed: its
/// top start tag's name and addresses, and its children's start tags.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub name: &'a [u8],
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub id: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// The default namespace the stanza declares, if it does.
    pub xmlns: Option<&'a str>,
    /// Its children's start tags, when all of them are told (else `None`).
    pub children: Option<&'a [ChildTag]>,
}

/// A check of stanzas on their [`Envelope`], before they are parsed: what it refuses or
/// drops is never built into a tree. It must refuse or drop nothing the rules would not,
/// and answer as they would.
pub trait Screen: Send + Sync {
    fn screen(&self, envelope: &Envelope) -> Verdict;
}

/// What a [`Screen`] made of a stanza.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Read it; the stanza carries the ticket to the rules ([`Item::Stanza`]).
    Read { ticket: u64 },
    /// Refused, with this reply.
    Refused(String),
    /// Dropped, unanswered, as the rules would drop it.
    Dropped,
}

impl Capture {
    fn reset(&mut self) {
        self.name.clear();
        self.attr.clear();
        self.value.clear();
        self.keep = false;
        self.overflow = false;
        self.text.clear();
        self.fields = [None; FIELDS];
        self.child = ChildTag::default();
        self.children.clear();
        self.untold = false;
        self.lost = false;
    }

    fn finish_value(&mut self) {
        if !self.keep {
            return;
        }
        if let Some(field) = KEPT.iter().position(|kept| *kept == self.attr.as_slice()) {
            let start = self.text.len();
            let kept = !self.overflow
                && std::str::from_utf8(&self.value)
                    .is_ok_and(|raw| parse::unescape_value(raw, &mut self.text));
            self.fields[field] = kept.then_some((start, self.text.len()));
            self.lost |= !kept;
        }
        self.keep = false;
        self.overflow = false;
        self.value.clear();
    }

    fn field(&self, field: usize) -> Option<&str> {
        self.fields[field].map(|(start, end)| &self.text[start..end])
    }

    /// The head of the stanza whose envelope this is, once the parser has read it (so its
    /// attributes are unique and well-formed): the kept values are the element's, unless one
    /// was left out.
    fn head(&self) -> Option<Head> {
        (!self.lost).then(|| Head::of_values([FROM, TO, ID, TYPE].map(|f| self.field(f))))
    }
}

/// Turns bytes from the server into [`Item`]s. Feed it whatever arrives, in order.
pub struct Reader {
    limits: Limits,
    /// rxml, for what lies outside stanzas: the stream's header and the text between them.
    parser: Parser,
    in_stream: bool,
    /// What reads each stanza, in the namespaces the stream's header declares.
    stanzas: parse::Parser,
    scope: Scope,
    lex: Lex,
    /// Open elements, the stream's own included (so a stanza's own element opens at depth 1).
    depth: usize,
    /// The bytes before the first stanza: the XML declaration and the stream header, kept
    /// until the header is whole, to read its namespace declarations.
    header: Vec<u8>,
    header_done: bool,
    /// Bytes outside any stanza not yet given to the parser.
    direct: Vec<u8>,
    /// Whether a top-level element is being framed, its bytes so far (while within the
    /// limits), how many bytes it has had, and the limit it broke, if it did.
    in_unit: bool,
    unit: Vec<u8>,
    unit_len: usize,
    breach: Option<Breach>,
    capture: Capture,
    screen: Option<std::sync::Arc<dyn Screen>>,
    /// The ticket the screen gave the stanza being parsed.
    ticket: u64,
}

/// What a byte of markup completed.
enum Done {
    Nothing,
    /// The top-level element being framed has ended.
    Unit,
}

impl Reader {
    pub fn new(limits: Limits) -> Self {
        Reader {
            limits,
            parser: new_parser(limits),
            in_stream: false,
            stanzas: parse::Parser::default(),
            scope: Scope::default(),
            lex: Lex::Text,
            depth: 0,
            header: Vec::new(),
            header_done: false,
            direct: Vec::new(),
            in_unit: false,
            unit: Vec::new(),
            unit_len: 0,
            breach: None,
            capture: Capture::default(),
            screen: None,
            ticket: 0,
        }
    }

    /// A reader whose stanzas pass `screen` before they are parsed.
    pub fn with_screen(limits: Limits, screen: std::sync::Arc<dyn Screen>) -> Self {
        Reader {
            screen: Some(screen),
            ..Reader::new(limits)
        }
    }

    /// Reads `bytes` (any part of the stream), appending what completed to `out`.
    ///
    /// The bytes are kept (or counted) a stretch at a time, not a byte at a time: `kept` is
    /// where the stretch not yet given to [`Reader::take`] begins, and it is given when the
    /// framer's place changes (a stanza begins or ends, the stream header ends) or the
    /// bytes run out. A stanza that begins and ends within `bytes` is parsed from them
    /// directly, never copied.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Item>) -> Result<(), ReadError> {
        let mut i = 0;
        let mut kept = 0;
        while i < bytes.len() {
            // Runs without markup in them are passed over whole.
            let run_end = match self.lex {
                Lex::Text => memchr::memchr(b'<', &bytes[i..]).map_or(bytes.len(), |n| i + n),
                Lex::AttrValue(quote) => {
                    let end = memchr::memchr(quote, &bytes[i..]).map_or(bytes.len(), |n| i + n);
                    if self.in_unit && self.depth == 1 && self.capture.keep {
                        self.capture_value(&bytes[i..end]);
                    } else if self.in_unit && self.depth == 2 && self.capture.keep {
                        self.capture.child.push_namespace(&bytes[i..end]);
                    }
                    end
                }
                // The rest of a name, up to the byte that ends it, and an end tag's, up to
                // its `>`: the same as stepping over each byte.
                Lex::StartName => {
                    let end = run_end(&bytes[i..], &NAME_ENDS, i);
                    self.capture_start_name(&bytes[i..end]);
                    end
                }
                Lex::AttrName => {
                    let end = run_end(&bytes[i..], &ATTR_NAME_ENDS, i);
                    if self.in_unit && matches!(self.depth, 1 | 2) {
                        let room = 16usize.saturating_sub(self.capture.attr.len());
                        let run = &bytes[i..end];
                        self.capture
                            .attr
                            .extend_from_slice(&run[..run.len().min(room)]);
                    }
                    end
                }
                Lex::EndTag => memchr::memchr(b'>', &bytes[i..]).map_or(bytes.len(), |n| i + n),
                _ => i,
            };
            if run_end > i {
                i = run_end;
                continue;
            }
            let b = bytes[i];
            if self.lex == Lex::Text && self.depth == 1 && !self.in_unit {
                // b == '<' at the stream's level: a stanza (or the stream's end) begins.
                self.take(&bytes[kept..i])?;
                kept = i;
                self.flush_direct(out)?;
                self.in_unit = true;
                self.unit_len = 0;
                self.breach = None;
                self.capture.reset();
            }
            i += 1;
            let done = self.step(b)?;
            if !self.header_done && self.depth > 0 {
                self.take(&bytes[kept..i])?;
                kept = i;
                self.header_done = true;
                self.scope = Scope::of_header(&self.header).map_err(ReadError::Malformed)?;
                self.header = Vec::new();
            }
            if let Done::Unit = done {
                self.unit_done(&bytes[kept..i], out)?;
                kept = i;
            }
        }
        self.take(&bytes[kept..])?;
        self.flush_direct(out)
    }

    /// Bytes of a start tag's name after its first (which [`Reader::step`] took).
    fn capture_start_name(&mut self, run: &[u8]) {
        if !self.in_unit {
            return;
        }
        if self.depth == 1 {
            let room = 64usize.saturating_sub(self.capture.name.len());
            self.capture
                .name
                .extend_from_slice(&run[..run.len().min(room)]);
        } else if self.depth == 2 && !run.iter().all(|&b| self.capture.child.push(b)) {
            self.capture.untold = true;
        }
    }

    fn capture_value(&mut self, bytes: &[u8]) {
        if self.capture.value.len() + bytes.len() > MAX_ENVELOPE_VALUE {
            self.capture.overflow = true;
        } else {
            self.capture.value.extend_from_slice(bytes);
        }
    }

    /// Moves the framer past one byte of markup (or the byte that ends a run).
    fn step(&mut self, b: u8) -> Result<Done, ReadError> {
        let top = self.in_unit && self.depth == 1;
        let child = self.in_unit && self.depth == 2;
        match self.lex {
            Lex::Text => self.lex = Lex::Lt, // b == '<'
            Lex::Lt => {
                self.lex = match b {
                    b'/' => Lex::EndTag,
                    b'?' if self.depth == 0 => Lex::Decl,
                    b'!' | b'?' => {
                        return Err(malformed(
                            "comments, CDATA sections, DOCTYPEs and processing instructions are not allowed",
                        ))
                    }
                    _ => {
                        if top {
                            self.capture.name.push(b);
                        } else if child {
                            self.capture.child = ChildTag::default();
                            self.capture.child.push(b);
                        }
                        Lex::StartName
                    }
                };
            }
            Lex::StartName => match b {
                b'>' => return self.opened(false),
                b'/' => self.lex = Lex::Slash,
                b' ' | b'\t' | b'\r' | b'\n' => self.lex = Lex::InTag,
                _ => {
                    if top && self.capture.name.len() < 64 {
                        self.capture.name.push(b);
                    } else if child && !self.capture.child.push(b) {
                        self.capture.untold = true;
                    }
                }
            },
            Lex::InTag => match b {
                b'>' => return self.opened(false),
                b'/' => self.lex = Lex::Slash,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'\'' | b'"' | b'=' | b'<' => return Err(malformed("an attribute without a name")),
                _ => {
                    if top || child {
                        self.capture.attr.clear();
                        self.capture.attr.push(b);
                    }
                    self.lex = Lex::AttrName;
                }
            },
            Lex::AttrName => match b {
                b'=' | b' ' | b'\t' | b'\r' | b'\n' => self.lex = Lex::AttrEq,
                b'>' | b'/' | b'<' | b'\'' | b'"' => {
                    return Err(malformed("an attribute without a value"))
                }
                _ => {
                    if (top || child) && self.capture.attr.len() < 16 {
                        self.capture.attr.push(b);
                    }
                }
            },
            Lex::AttrEq => match b {
                b'\'' | b'"' => {
                    if top {
                        self.capture.keep = KEPT.contains(&self.capture.attr.as_slice());
                        self.capture.overflow = false;
                        self.capture.value.clear();
                    } else if child && self.capture.attr == b"xmlns" {
                        self.capture.child.declares_namespace = true;
                        self.capture.keep = true;
                    } else if child && self.capture.attr == b"id" {
                        self.capture.child.has_id = true;
                    }
                    self.lex = Lex::AttrValue(b);
                }
                b'=' | b' ' | b'\t' | b'\r' | b'\n' => {}
                _ => return Err(malformed("an attribute value without quotes")),
            },
            Lex::AttrValue(_) => {
                // b is the closing quote.
                if top {
                    self.capture.finish_value();
                }
                self.capture.keep = false;
                self.lex = Lex::InTag;
            }
            Lex::Slash => {
                if b != b'>' {
                    return Err(malformed("'/' inside a start tag"));
                }
                return self.opened(true);
            }
            Lex::EndTag => {
                if b == b'>' {
                    self.lex = Lex::Text;
                    self.depth = self
                        .depth
                        .checked_sub(1)
                        .ok_or_else(|| malformed("an end tag with nothing open"))?;
                    if self.in_unit && self.depth <= 1 {
                        return Ok(Done::Unit);
                    }
                }
            }
            Lex::Decl => {
                if b == b'?' {
                    self.lex = Lex::DeclQ;
                }
            }
            Lex::DeclQ => {
                self.lex = match b {
                    b'>' => Lex::Text,
                    b'?' => Lex::DeclQ,
                    _ => Lex::Decl,
                }
            }
        }
        Ok(Done::Nothing)
    }

    /// A start tag ended with `>`, or with `/>` (`empty`).
    fn opened(&mut self, empty: bool) -> Result<Done, ReadError> {
        self.lex = Lex::Text;
        // Inside a stanza, the element that just opened is at level `depth` (the stanza's
        // own element at 1).
        if self.in_unit && self.depth > self.limits.max_depth && self.breach.is_none() {
            self.breach = Some(Breach::Depth(self.limits.max_depth));
            self.drop_unit();
        }
        if self.in_unit && self.depth == 2 {
            if self.capture.children.len() < MAX_CHILD_TAGS {
                self.capture.children.push(self.capture.child);
            } else {
                self.capture.untold = true;
            }
        }
        if empty {
            return Ok(if self.in_unit && self.depth == 1 {
                Done::Unit
            } else {
                Done::Nothing
            });
        }
        self.depth += 1;
        Ok(Done::Nothing)
    }

    /// Counts (and, within the limits, keeps) bytes where the framer is: a stanza's or the
    /// stream's.
    fn take(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        if self.in_unit {
            if self.count(bytes.len()) {
                self.unit.extend_from_slice(bytes);
            }
            return Ok(());
        }
        if !self.header_done {
            if self.header.len() + bytes.len() > self.limits.max_bytes {
                return Err(malformed("the stream header is too large"));
            }
            self.header.extend_from_slice(bytes);
        }
        self.direct.extend_from_slice(bytes);
        Ok(())
    }

    /// Counts `n` more bytes of the stanza being framed; whether it is still within the
    /// limits (so that they are to be kept).
    fn count(&mut self, n: usize) -> bool {
        self.unit_len += n;
        if self.breach.is_some() {
            return false;
        }
        if self.unit_len > self.limits.max_bytes {
            self.breach = Some(Breach::Bytes(self.limits.max_bytes));
            self.drop_unit();
            return false;
        }
        true
    }

    fn drop_unit(&mut self) {
        self.unit.clear();
        // Give back the memory of a large stanza rather than keep it for the next one.
        if self.unit.capacity() > 64 * 1024 {
            self.unit = Vec::new();
        }
    }

    /// Bytes outside stanzas go to the parser as they come.
    fn flush_direct(&mut self, out: &mut Vec<Item>) -> Result<(), ReadError> {
        if self.direct.is_empty() {
            return Ok(());
        }
        let direct = std::mem::take(&mut self.direct);
        let result = self.parse(&direct, out);
        self.direct = direct;
        self.direct.clear();
        result.map_err(ReadError::Malformed)
    }

    /// The top-level element being framed has ended; `tail` is its last bytes, those not
    /// yet taken.
    fn unit_done(&mut self, tail: &[u8], out: &mut Vec<Item>) -> Result<(), ReadError> {
        let within = self.count(tail.len());
        self.in_unit = false;
        if self.depth == 0 {
            self.drop_unit();
            out.push(Item::End);
            return Ok(());
        }
        if let (None, Some(screen)) = (&self.breach, &self.screen) {
            let capture = &self.capture;
            let envelope = Envelope {
                name: &capture.name,
                from: capture.field(FROM),
                to: capture.field(TO),
                id: capture.field(ID),
                kind: capture.field(TYPE),
                xmlns: capture.field(XMLNS),
                children: (!capture.untold).then_some(capture.children.as_slice()),
            };
            match screen.screen(&envelope) {
                Verdict::Read { ticket } => self.ticket = ticket,
                Verdict::Refused(reply) => {
                    self.drop_unit();
                    out.push(Item::Screened { reply });
                    return Ok(());
                }
                Verdict::Dropped => {
                    self.drop_unit();
                    return Ok(());
                }
            }
        }
        let breach = match self.breach.take() {
            Some(breach) => Some(breach),
            None => {
                debug_assert!(within);
                // Whole in this read: parsed where it lies.
                let result = if self.unit.is_empty() {
                    self.stanzas.parse(tail, &self.scope)
                } else {
                    self.unit.extend_from_slice(tail);
                    self.stanzas.parse(&self.unit, &self.scope)
                };
                self.drop_unit();
                match result {
                    Ok((element, elements)) => {
                        out.push(Item::Stanza {
                            head: self.capture.head().unwrap_or_else(|| Head::of(&element)),
                            element,
                            weight: self.unit_len + elements * ELEMENT_COST,
                            ticket: std::mem::take(&mut self.ticket),
                        });
                        None
                    }
                    Err(error) => Some(Breach::Malformed(error)),
                }
            }
        };
        if let Some(breach) = breach {
            let capture = &self.capture;
            let owned = |field| capture.field(field).map(str::to_owned);
            out.push(Item::Refused(Refused {
                name: String::from_utf8_lossy(&capture.name).into_owned(),
                from: owned(FROM),
                to: owned(TO),
                id: owned(ID),
                kind: owned(TYPE),
                breach,
            }));
        }
        Ok(())
    }

    /// Gives what lies outside stanzas (the header, text between stanzas) to rxml.
    fn parse(&mut self, mut bytes: &[u8], out: &mut Vec<Item>) -> Result<(), String> {
        loop {
            match self.parser.parse(&mut bytes, false) {
                Ok(Some(Event::XmlDeclaration(..) | Event::Text(..))) => {}
                Ok(Some(Event::StartElement(_, _, attrs))) if !self.in_stream => {
                    self.in_stream = true;
                    let id = attrs.get(&Namespace::NONE, "id").cloned();
                    out.push(Item::Header { id });
                }
                // Stanzas and the stream's end are the framer's: never given to rxml.
                Ok(Some(Event::StartElement(..) | Event::EndElement(..))) => {
                    return Err("a stanza reached the stream's parser".into())
                }
                Ok(None) => return Err("the stream ended".into()),
                Err(rxml::error::EndOrError::NeedMoreData) => return Ok(()),
                Err(rxml::error::EndOrError::Error(error)) => return Err(error.to_string()),
            }
        }
    }
}

/// Where the run at the start of `bytes` (which begins at `offset`) ends: at the first byte
/// `ends` marks, or with the bytes. A table rather than a list of bytes: the framer asks it
/// of every byte of every name.
fn run_end(bytes: &[u8], ends: &[bool; 256], offset: usize) -> usize {
    bytes
        .iter()
        .position(|&b| ends[usize::from(b)])
        .map_or(offset + bytes.len(), |n| offset + n)
}

/// The bytes that end a start tag's name, and an attribute's.
const NAME_ENDS: [bool; 256] = byte_set(b" \t\r\n>/");
const ATTR_NAME_ENDS: [bool; 256] = byte_set(b" \t\r\n>/=<'\"");

const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = true;
        i += 1;
    }
    set
}

fn new_parser(limits: Limits) -> Parser {
    // The framer never hands the parser a stanza larger than this, so no token inside one
    // can be larger either.
    Parser::with_options(rxml::Options {
        max_token_length: limits.max_bytes,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' from='mix.localhost' id='s1'>";
    const LIMITS: Limits = Limits {
        max_bytes: 64 * 1024,
        max_depth: 32,
    };

    fn reader() -> Reader {
        let mut reader = Reader::new(LIMITS);
        let mut out = Vec::new();
        reader.feed(HEADER.as_bytes(), &mut out).unwrap();
        assert!(matches!(&out[..], [Item::Header { id: Some(id) }] if id == "s1"));
        reader
    }

    /// Feeds `bytes` in chunks of `chunk`, checking after each that no more than the limit
    /// is held.
    fn feed(reader: &mut Reader, bytes: &[u8], chunk: usize) -> Vec<Item> {
        let mut out = Vec::new();
        for part in bytes.chunks(chunk) {
            reader.feed(part, &mut out).unwrap();
            assert!(reader.unit.len() <= reader.limits.max_bytes);
        }
        out
    }

    fn stanza(item: &Item) -> &Element {
        match item {
            Item::Stanza { element, .. } => element,
            other => panic!("expected a stanza, got {other:?}"),
        }
    }

    fn refused(item: &Item) -> &Refused {
        match item {
            Item::Refused(refused) => refused,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn nested(depth: usize) -> String {
        let mut x = String::from(
            "<message xmlns='jabber:component:accept' from='eve@localhost/r' to='c@mix.localhost' id='deep' type='groupchat'>",
        );
        for _ in 1..depth {
            x.push_str("<a>");
        }
        for _ in 1..depth {
            x.push_str("</a>");
        }
        x.push_str("</message>");
        x
    }

    const NEXT: &str = "<presence from='bob@localhost/r' to='c@mix.localhost' id='next'/>";

    #[test]
    fn stanzas_are_built_alike_whole_or_byte_by_byte() {
        let text = "<message from='a@localhost/r' to='c@mix.localhost' id='m1' type='groupchat'>\
            <body xml:lang='en'>hi &amp; &lt;bye&gt; &#x263A;</body>\
            <x:thing xmlns:x='urn:x' x:attr='v' plain=\"q'uote\"><x:in/>tail</x:thing></message>\n \
            <iq type='get' from='a@localhost/r' to='mix.localhost' id='i1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
        for chunk in [text.len(), 7, 1] {
            let mut r = reader();
            let out = feed(&mut r, text.as_bytes(), chunk);
            assert_eq!(out.len(), 2, "chunk {chunk}: {out:?}");
            let message = stanza(&out[0]);
            assert!(message.is("message", "jabber:component:accept"));
            assert_eq!(message.attr("id"), Some("m1"));
            let body = message
                .get_child("body", "jabber:component:accept")
                .unwrap();
            assert_eq!(body.text(), "hi & <bye> \u{263A}");
            let thing = message.get_child("thing", "urn:x").unwrap();
            assert_eq!(thing.attr("plain"), Some("q'uote"));
            assert_eq!(thing.attr_ns("urn:x", "attr"), Some("v"));
            assert!(thing.has_child("in", "urn:x"));
            assert_eq!(thing.text(), "tail");
            let iq = stanza(&out[1]);
            assert!(iq.has_child("query", "http://jabber.org/protocol/disco#info"));
            // Each stanza's head is its own top element's, not a child's.
            for (item, (from, to, id, kind)) in out.iter().zip([
                ("a@localhost/r", "c@mix.localhost", "m1", "groupchat"),
                ("a@localhost/r", "mix.localhost", "i1", "get"),
            ]) {
                let Item::Stanza { head, .. } = item else {
                    panic!("{item:?}")
                };
                let read = (head.from(), head.to(), head.id(), head.kind());
                assert_eq!(read, (Some(from), Some(to), Some(id), Some(kind)));
            }
        }
    }

    /// The head copied from the envelope is the one read from the element's attributes.
    #[test]
    fn the_head_from_the_envelope_is_the_elements() {
        let text = "<message from='a&amp;b@l/&#x72;' to=\"c@mix.l\" id='x\r\ny\t' type='chat'/>\
            <iq type='get' xmlns:p='urn:p' p:from='p@l' id=''/>\
            <presence from = 'a@l/r' to='c@mix.l' fromage='no' ide='no' idtypefromtoxmlns='no'/>\
            <message xmlns='jabber:component:accept' to='c@mix.l' kind='x' type='normal'><body>b</body></message>\
            <message to='c@mix.l'><x from='evil@l' id='i' type='error'><y to='d@l'/></x></message>";
        for chunk in [text.len(), 3] {
            let out = feed(&mut reader(), text.as_bytes(), chunk);
            assert_eq!(out.len(), 5);
            for item in &out {
                let Item::Stanza { element, head, .. } = item else {
                    panic!("{item:?}")
                };
                assert_eq!(*head, Head::of(element), "chunk {chunk}: {element:?}");
            }
        }
    }

    #[test]
    fn a_stanza_nested_past_the_limit_is_refused_with_its_envelope_and_the_next_one_read() {
        let mut r = reader();
        let at_limit = nested(32);
        let out = feed(&mut r, at_limit.as_bytes(), 1000);
        assert_eq!(out.len(), 1);
        stanza(&out[0]);
        for depth in [33, 5_000, 1_000_000] {
            let text = nested(depth) + NEXT;
            let out = feed(&mut r, text.as_bytes(), 4096);
            assert_eq!(out.len(), 2, "depth {depth}");
            let refusal = refused(&out[0]);
            assert_eq!(refusal.breach, Breach::Depth(32));
            assert_eq!(refusal.name, "message");
            assert_eq!(refusal.from.as_deref(), Some("eve@localhost/r"));
            assert_eq!(refusal.to.as_deref(), Some("c@mix.localhost"));
            assert_eq!(refusal.id.as_deref(), Some("deep"));
            assert_eq!(refusal.kind.as_deref(), Some("groupchat"));
            assert_eq!(stanza(&out[1]).attr("id"), Some("next"));
        }
    }

    #[test]
    fn tokens_up_to_the_stanza_limit_are_read_and_larger_stanzas_skipped() {
        let mut r = reader();
        // An attribute value and an id of 20 KB: over rxml's default token limit of 8192.
        let long = "v".repeat(20_000);
        let text = format!(
            "<iq type='get' from='a@localhost/r' to='mix.localhost' id='{long}'><q xmlns='urn:q' meta='{long}'/></iq>"
        );
        let out = feed(&mut r, text.as_bytes(), 1500);
        assert_eq!(stanza(&out[0]).attr("id"), Some(long.as_str()));
        // An id too long for the envelope: the head is read from the element.
        let Item::Stanza { head, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (head.id(), head.from()),
            (Some(long.as_str()), Some("a@localhost/r"))
        );

        // A 20 MB body, a 20 MB attribute on the stanza itself and a million empty children.
        let body = format!(
            "<message from='a@localhost/r' to='c@mix.localhost' id='big'><body>{}</body></message>",
            "x".repeat(20 << 20)
        );
        let attribute = format!(
            "<presence from='a@localhost/r' meta='{}' to='c@mix.localhost' id='attr'/>",
            "y".repeat(20 << 20)
        );
        let children = format!(
            "<message from='a@localhost/r' to='c@mix.localhost' id='many'>{}</message>",
            "<a/>".repeat(1_000_000)
        );
        for (text, name, id) in [
            (body, "message", "big"),
            (attribute, "presence", "attr"),
            (children, "message", "many"),
        ] {
            let out = feed(&mut r, (text + NEXT).as_bytes(), 64 * 1024);
            assert_eq!(out.len(), 2);
            let refusal = refused(&out[0]);
            assert_eq!(refusal.breach, Breach::Bytes(64 * 1024));
            assert_eq!(
                (refusal.name.as_str(), refusal.id.as_deref()),
                (name, Some(id))
            );
            assert_eq!(refusal.from.as_deref(), Some("a@localhost/r"));
            assert_eq!(stanza(&out[1]).attr("id"), Some("next"));
            // Nothing of the skipped stanza is kept.
            assert!(r.unit.capacity() <= 64 * 1024);
        }
    }

    #[test]
    fn envelope_values_are_unescaped_and_overlong_ones_left_out() {
        let mut r = reader();
        let text = format!(
            "<iq from='a&amp;b@localhost/&#x72;' to=\"c@mix.localhost\" id='{}' type='set'>{}</iq>",
            "i".repeat(MAX_ENVELOPE_VALUE + 1),
            "<a>".repeat(40) + &"</a>".repeat(40)
        );
        let out = feed(&mut r, text.as_bytes(), 100);
        let refusal = refused(&out[0]);
        assert_eq!(refusal.from.as_deref(), Some("a&b@localhost/r"));
        assert_eq!(refusal.id, None);
        assert_eq!(refusal.kind.as_deref(), Some("set"));
    }

    /// A refused stanza's envelope goes back out in the error reply: a value with a
    /// character XML cannot carry is left out, not echoed (the storm found `id='x&#0;'`
    /// answered with a raw NUL, which a server would take as a broken stream).
    #[test]
    fn envelope_values_xml_cannot_carry_are_left_out() {
        let mut r = reader();
        for (id, kept) in [
            ("a&#0;", None),
            ("a&#x1;", None),
            ("a\u{1}", None),
            ("a&#xFFFE;", None),
            ("a&#9;\u{e000}&#x10FFFF;", Some("a\t\u{e000}\u{10ffff}")),
        ] {
            let text = format!(
                "<iq from='a@localhost/r' to='c@mix.localhost' type='get' id='{id}'><p:x/></iq>"
            );
            let out = feed(&mut r, text.as_bytes(), 7);
            let refusal = refused(&out[0]);
            assert!(matches!(refusal.breach, Breach::Malformed(_)), "{id}");
            assert_eq!(refusal.id.as_deref(), kept, "{id}");
            assert_eq!(refusal.from.as_deref(), Some("a@localhost/r"));
        }
    }

    #[test]
    fn xml_the_parser_rejects_is_refused_and_the_stream_goes_on() {
        let mut r = reader();
        let text = format!(
            "<message from='a@localhost/r' to='c@mix.localhost' id='bad'><p:x/></message>{NEXT}"
        );
        let out = feed(&mut r, text.as_bytes(), 10);
        assert!(matches!(refused(&out[0]).breach, Breach::Malformed(_)));
        assert_eq!(stanza(&out[1]).attr("id"), Some("next"));
    }

    #[test]
    fn the_stream_end_and_broken_framing() {
        let mut r = reader();
        let out = feed(
            &mut r,
            b" <presence from='a@localhost/r'/> </stream:stream>",
            3,
        );
        assert!(matches!(&out[..], [Item::Stanza { .. }, Item::End]));
        let mut r = reader();
        let mut out = Vec::new();
        assert!(r.feed(b"<message><!-- hi --></message>", &mut out).is_err());
    }

    /// Refuses the stanzas whose id starts with `no`, saying what their envelope showed.
    struct Refuser;

    impl Screen for Refuser {
        fn screen(&self, e: &Envelope) -> Verdict {
            if e.id.is_some_and(|id| id.starts_with("drop")) {
                return Verdict::Dropped;
            }
            if !e.id.is_some_and(|id| id.starts_with("no")) {
                return Verdict::Read { ticket: 7 };
            }
            let children = e.children.map(|c| {
                c.iter()
                    .map(|c| {
                        let name = String::from_utf8_lossy(c.name()).into_owned();
                        let name = if c.has_id { name + "#id" } else { name };
                        match (c.declares_namespace, c.namespace()) {
                            (true, Some(ns)) => format!("{name}+{}", String::from_utf8_lossy(ns)),
                            (true, None) => name + "+untold",
                            (false, _) => name,
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            });
            Verdict::Refused(format!(
                "{} {:?} {:?} {:?} {:?} {children:?}",
                String::from_utf8_lossy(e.name),
                e.from,
                e.to,
                e.kind,
                e.xmlns
            ))
        }
    }

    /// The screen sees the envelope and the children's start tags before anything is parsed;
    /// what it refuses is answered and never built, what it drops is gone, what it lets by is
    /// read as before, with the screen's ticket.
    #[test]
    fn a_screen_sees_envelopes_and_what_it_refuses_is_not_parsed() {
        let text = format!(
            "<message from='a@localhost/r' to='c@mix.localhost' id='no1' type='groupchat' xmlns='jabber:component:accept'>\
             <body>x<b/></body><x:retract id='m' xmlns:x='urn:x'/><active a='1' xmlns='urn:s' b='2'/><e:thing/>\
             <long xmlns='urn:{}'/></message>\
             <message from='a@localhost/r' to='c@mix.localhost' id='drop1' type='groupchat'><body>gone</body></message>\
             <message from='a@localhost/r' to='c@mix.localhost' id='yes' type='groupchat'><body>kept</body></message>\
             <presence from='a@localhost/r' to='c@mix.localhost' id='no2'>{}</presence>\
             <iq from='a@localhost/r' to='c@mix.localhost' id='no3' type='get'><{}/></iq>{NEXT}",
            "l".repeat(48),
            "<a/>".repeat(MAX_CHILD_TAGS + 1),
            "n".repeat(40),
        );
        for chunk in [text.len(), 5, 1] {
            let mut r = Reader::with_screen(LIMITS, std::sync::Arc::new(Refuser));
            let mut out = Vec::new();
            r.feed(HEADER.as_bytes(), &mut out).unwrap();
            let out = feed(&mut r, text.as_bytes(), chunk);
            let replies: Vec<&str> = out
                .iter()
                .filter_map(|item| match item {
                    Item::Screened { reply } => Some(reply.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(
                replies,
                [
                    // Only the stanza's own children; an undeclared prefix (`e:`) is not the
                    // framer's to judge.
                    "message Some(\"a@localhost/r\") Some(\"c@mix.localhost\") Some(\"groupchat\") \
                     Some(\"jabber:component:accept\") Some(\"body,x:retract#id,active+urn:s,e:thing,long+untold\")",
                    // More children than are told, or a name too long to hold: not told.
                    "presence Some(\"a@localhost/r\") Some(\"c@mix.localhost\") None None None",
                    "iq Some(\"a@localhost/r\") Some(\"c@mix.localhost\") Some(\"get\") None None",
                ],
                "chunk {chunk}"
            );
            let read: Vec<_> = out
                .iter()
                .filter_map(|item| match item {
                    Item::Stanza {
                        element, ticket, ..
                    } => Some((element.attr("id").unwrap_or_default(), *ticket)),
                    _ => None,
                })
                .collect();
            assert_eq!(read, [("yes", 7), ("next", 7)], "chunk {chunk}");
            assert_eq!(
                out.len(),
                5,
                "chunk {chunk}: nothing else, no refusal: {out:?}"
            );
        }
    }

    /// The framer too: a stanza ten million levels deep goes by on the same small stack.
    #[test]
    fn framing_does_not_recurse() {
        let thread = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let mut r = reader();
                let text = nested(10_000_000) + NEXT;
                let out = feed(&mut r, text.as_bytes(), 1 << 20);
                (refused(&out[0]).breach.clone(), out.len())
            })
            .unwrap();
        assert_eq!(thread.join().unwrap(), (Breach::Depth(32), 2));
    }
}
