//! One stanza's XML → its `minidom::Element`, in one pass over the bytes the framer cut.
//!
//! Why not rxml, which still reads the stream's header (`reader.rs`): rxml is a streaming
//! parser that must be able to stop and resume at any byte, so it lexes a byte at a time
//! into tokens (a `String` each), resolves names through maps of namespaces, and builds an
//! attribute map of its own that the tree then takes over. That was the largest single part
//! of the link's reading (15–17 % of mixd's samples when posting into small channels). The
//! framer only ever hands over a stanza that is complete, in one slice, and within the size
//! and depth limits, so this parser never resumes: it walks the slice once, finds each run
//! with `memchr`, copies text and values that hold nothing to unescape straight into the
//! tree, and keeps its scratch (namespace declarations in scope, open elements, a tag's
//! attributes) from one stanza to the next.
//!
//! It checks what rxml checks: UTF-8; XML 1.0 names (rxml's own validators), characters and
//! references (at most 8 digits or letters, as rxml); `]]>` in text; whitespace between
//! attributes; unique attributes before and after their prefixes are resolved; the
//! reserved prefixes and namespace names (`xml`, `xmlns`) and no undeclaring of a prefix;
//! declared prefixes; end tags matching their start tags. It builds the same `Element`
//! (the tests compare the two parsers on the fuzz seeds, a case of each rule and thousands
//! of mutations of them). Where rxml 0.14 departs from XML 1.0 this follows XML 1.0: a
//! second default namespace declaration on one element is refused (rxml kept the last), and
//! a carriage return in an attribute value becomes a space (rxml dropped one before the
//! closing quote and refused one before any other character than a line feed). Comments,
//! CDATA sections and processing instructions never get here (the framer drops the link),
//! and are refused if they do.
//!
//! No recursion: the open elements are an explicit stack, whose depth the framer bounds.
//!
//! What it makes of the elements is a [`Build`]'s: the link's stanzas a tree
//! ([`Parser::parse`]); FlyChat's history the few parts of each stored payload it shows
//! (`flychat::render::Payloads`, through [`Parser::read_into`]), with every check the same.

use minidom::Element;
use rxml::{AttrMap, Namespace, NcName, NcNameStr};

use super::prototypes::Prototypes;

/// The XML namespace, which the prefix `xml` is always bound to.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// The longest reference rxml reads (`&#x10FFFF;` has 6 digits): its bound, kept so that
/// both parsers refuse the same.
const MAX_REFERENCE: usize = 8;

/// The most namespace declarations in scope at once (the stanza's open elements' and the tag
/// being read). Finding a prefix, checking that a tag declares it once and finding an
/// element's default namespace each walk the declarations in scope, so without a bound a
/// stanza of 256 KiB holding thousands of declarations costs the square of their number (a
/// 160 KB one took 2.4 s in a debug build): a participant could stall the link's reading.
/// Stanzas declare a handful; beyond this one is refused like any malformed one.
const MAX_DECLARATIONS: usize = 64;

/// The namespaces the stream's header declares, in which every stanza is read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scope {
    default: Option<String>,
    prefixes: Vec<(String, String)>,
}

impl Scope {
    /// The declarations of the stream's start tag, from the bytes before the first stanza (an
    /// optional XML declaration, then the start tag, whole; rxml has checked them).
    pub fn of_header(header: &[u8]) -> Result<Scope, String> {
        let text = std::str::from_utf8(header).map_err(|e| e.to_string())?;
        // The start tag is the last `<`: a value may not hold one, nor the declaration.
        let at = text.rfind('<').ok_or("no stream header")?;
        let mut parser = Parser::default();
        let tag = parser.read_tag(text, at)?;
        if tag.empty {
            return Err("the stream's header closes the stream".into());
        }
        let mut scope = Scope::default();
        for decl in &parser.decls {
            let value = parser.namespaces[decl.value.0..decl.value.1].to_owned();
            match decl.prefix {
                None => scope.default = Some(value),
                Some((start, end)) => scope.prefixes.push((text[start..end].to_owned(), value)),
            }
        }
        Ok(scope)
    }
}

/// A namespace declaration in scope: the prefix (a range of the input; `None` for the
/// default namespace) and its value (a range of [`Parser::namespaces`]).
#[derive(Debug, Clone, Copy)]
struct Decl {
    prefix: Option<(usize, usize)>,
    value: (usize, usize),
}

/// An element whose end tag is still to come.
#[derive(Debug)]
struct Open {
    /// Its name as written (a range of the input), which the end tag must repeat.
    name: (usize, usize),
    /// The declarations (and bytes of their values) in scope outside it.
    outside: (usize, usize),
}

/// What a reading makes of the elements the parser reads, in document order, once each is
/// checked: the link's stanzas become a tree ([`Parser::parse`]); a reader that needs only a
/// few parts of a stored fragment keeps those and drops the rest as it goes
/// ([`Parser::read_into`]: no element built, no tree to take apart). Every check is the
/// parser's, so a builder accepts exactly what the link does.
pub trait Build {
    /// An element starts: its namespace, local name and attributes, resolved.
    fn start(&mut self, namespace: &str, name: &str, attrs: AttrMap);
    /// Text inside the element last started and not yet ended, unescaped (a text between
    /// two tags is one call).
    fn text(&mut self, text: String);
    /// The element last started and not yet ended ends.
    fn end(&mut self);
}

/// The builder of [`Parser::parse`]: the stanza's tree.
#[derive(Debug, Default)]
struct Tree {
    /// The open elements, innermost last.
    open: Vec<Element>,
    done: Option<Element>,
    /// Each new element a clone of one of these, sharing its namespace.
    prototypes: Prototypes,
}

impl Build for Tree {
    fn start(&mut self, namespace: &str, name: &str, attrs: AttrMap) {
        let mut element = self.prototypes.element(name, namespace);
        *element.attrs_mut() = attrs;
        self.open.push(element);
    }

    fn text(&mut self, text: String) {
        if let Some(open) = self.open.last_mut() {
            open.append_text(text);
        }
    }

    fn end(&mut self) {
        if let Some(element) = self.open.pop() {
            match self.open.last_mut() {
                Some(parent) => {
                    parent.append_child(element);
                }
                None => self.done = Some(element),
            }
        }
    }
}

/// An attribute of the start tag being read, before its prefix is resolved.
#[derive(Debug)]
struct Attr {
    prefix: Option<(usize, usize)>,
    local: NcName,
    value: String,
}

/// A start tag as written: its name (and its parts, checked), where it ended, whether
/// it was empty (`/>`), and the declarations in scope outside it. Its declarations are in
/// [`Parser::decls`], its other attributes in [`Parser::attrs`].
struct Tag {
    name: (usize, usize),
    prefix: Option<(usize, usize)>,
    local: (usize, usize),
    end: usize,
    empty: bool,
    outside: (usize, usize),
}

/// Builds stanzas; its scratch is kept from one to the next (the reader holds one).
#[derive(Debug, Default)]
pub struct Parser {
    decls: Vec<Decl>,
    /// The values of the declarations in `decls`, unescaped, back to back.
    namespaces: String,
    stack: Vec<Open>,
    attrs: Vec<Attr>,
    /// [`Parser::parse`]'s elements cloned for each new one, sharing their namespace.
    prototypes: Prototypes,
    /// [`Parser::parse`]'s open elements.
    tree: Vec<Element>,
}

impl Parser {
    /// Reads `bytes`, exactly one element, in the stream's `scope`: the element, and how
    /// many elements it holds (itself included). The error says what is wrong, for the
    /// sender's error reply.
    pub fn parse(&mut self, bytes: &[u8], scope: &Scope) -> Result<(Element, usize), String> {
        let mut tree = Tree {
            open: std::mem::take(&mut self.tree),
            done: None,
            prototypes: std::mem::take(&mut self.prototypes),
        };
        let read = self.read_into(bytes, scope, &mut tree);
        // Nothing of a refused stanza is kept until the next one.
        tree.open.clear();
        self.tree = tree.open;
        self.prototypes = tree.prototypes;
        let elements = read?;
        let element = tree.done.ok_or("not an element")?;
        Ok((element, elements))
    }

    /// Reads `bytes`, exactly one element, in `scope`, into `build` as it goes, checked as
    /// [`Parser::parse`] checks a stanza: how many elements it holds (itself included), or
    /// what is wrong (then `build` has seen the part before the fault).
    pub fn read_into<B: Build>(
        &mut self,
        bytes: &[u8],
        scope: &Scope,
        build: &mut B,
    ) -> Result<usize, String> {
        self.decls.clear();
        self.namespaces.clear();
        self.stack.clear();
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let bytes = text.as_bytes();
        if bytes.first() != Some(&b'<') {
            return Err("not an element".into());
        }
        let mut at = 0;
        let mut elements = 0;
        loop {
            // `at` is at a `<`.
            match bytes.get(at + 1) {
                Some(b'/') => self.end_tag(text, &mut at)?,
                Some(b'!' | b'?') => {
                    return Err(
                        "comments, CDATA sections and processing instructions are not allowed"
                            .into(),
                    )
                }
                _ => {
                    let tag = self.read_tag(text, at)?;
                    let (namespace, attrs) = self.resolve(text, &tag, scope)?;
                    build.start(namespace, &text[tag.local.0..tag.local.1], attrs);
                    elements += 1;
                    at = tag.end;
                    if !tag.empty {
                        self.stack.push(Open {
                            name: tag.name,
                            outside: tag.outside,
                        });
                        self.text_until_tag(text, &mut at, build)?;
                        continue;
                    }
                    self.close_scope(tag.outside);
                }
            }
            build.end();
            match self.stack.is_empty() {
                false => self.text_until_tag(text, &mut at, build)?,
                true if at == bytes.len() => return Ok(elements),
                true => return Err("more than one element".into()),
            }
        }
    }

    /// The text from `at` to the next tag, handed to `build`; `at` moves to the tag's `<`.
    fn text_until_tag(
        &mut self,
        text: &str,
        at: &mut usize,
        build: &mut impl Build,
    ) -> Result<(), String> {
        let rest = &text.as_bytes()[*at..];
        let len = memchr::memchr(b'<', rest).ok_or("an element without its end tag")?;
        if len > 0 {
            let mut out = String::with_capacity(len);
            unescape(&text[*at..*at + len], Context::Text, &mut out)?;
            build.text(out);
            *at += len;
        }
        Ok(())
    }

    /// The end tag at `at` (`</`), which closes the innermost open element; `at` moves past
    /// it.
    fn end_tag(&mut self, text: &str, at: &mut usize) -> Result<(), String> {
        let bytes = text.as_bytes();
        let start = *at + 2;
        let end = start + name_len(&bytes[start..]);
        let close = skip_space(bytes, end);
        if bytes.get(close) != Some(&b'>') {
            return Err("an end tag not closed by '>'".into());
        }
        let open = self.stack.pop().ok_or("an end tag with nothing open")?;
        if bytes[open.name.0..open.name.1] != bytes[start..end] {
            return Err("an end tag that does not match its start tag".into());
        }
        self.close_scope(open.outside);
        *at = close + 1;
        Ok(())
    }

    /// Forgets the declarations of an element that has ended.
    fn close_scope(&mut self, (decls, namespaces): (usize, usize)) {
        self.decls.truncate(decls);
        self.namespaces.truncate(namespaces);
    }

    /// Reads the start tag at `at` (a `<` not followed by `/`, `!` or `?`), its names
    /// checked, its declarations added to those in scope and its other attributes put in
    /// [`Parser::attrs`].
    fn read_tag(&mut self, text: &str, at: usize) -> Result<Tag, String> {
        let bytes = text.as_bytes();
        let outside = (self.decls.len(), self.namespaces.len());
        let start = at + 1;
        let name = (start, start + name_len(&bytes[start..]));
        let (prefix, local) = split_name(text, name)?;
        ncname(&text[local.0..local.1])?;
        self.attrs.clear();
        let mut default_declared = false;
        let mut at = name.1;
        loop {
            let spaced = skip_space(bytes, at);
            let had_space = spaced > at;
            at = spaced;
            match bytes.get(at) {
                Some(b'>') => {
                    return Ok(Tag {
                        name,
                        prefix,
                        local,
                        end: at + 1,
                        empty: false,
                        outside,
                    })
                }
                Some(b'/') if bytes.get(at + 1) == Some(&b'>') => {
                    return Ok(Tag {
                        name,
                        prefix,
                        local,
                        end: at + 2,
                        empty: true,
                        outside,
                    })
                }
                Some(b'/') => return Err("'/' inside a start tag".into()),
                None => return Err("a start tag without its end".into()),
                Some(_) if !had_space => {
                    return Err("space required before an attribute's name".into())
                }
                Some(_) => {}
            }
            let attr = (at, at + attr_name_len(&bytes[at..]));
            let (prefix, local) = split_name(text, attr)?;
            at = skip_space(bytes, attr.1);
            if bytes.get(at) != Some(&b'=') {
                return Err("an attribute without '='".into());
            }
            at = skip_space(bytes, at + 1);
            let quote = match bytes.get(at) {
                Some(&quote @ (b'\'' | b'"')) => quote,
                _ => return Err("an attribute value without quotes".into()),
            };
            let value_start = at + 1;
            let len = memchr::memchr(quote, &bytes[value_start..])
                .ok_or("an attribute value without its closing quote")?;
            let raw = &text[value_start..value_start + len];
            at = value_start + len + 1;
            let local_text = &text[local.0..local.1];
            let declared = match (prefix.map(|(s, e)| &text[s..e]), local_text) {
                (None, "xmlns") => None,
                (Some("xmlns"), _) => {
                    ncname(local_text)?;
                    Some(local)
                }
                _ => {
                    let local = NcName::try_from(local_text)
                        .map_err(|e| format!("the name '{local_text}': {e}"))?;
                    let mut value = String::with_capacity(raw.len());
                    unescape(raw, Context::Attribute, &mut value)?;
                    self.attrs.push(Attr {
                        prefix,
                        local,
                        value,
                    });
                    continue;
                }
            };
            let value_at = self.namespaces.len();
            unescape(raw, Context::Attribute, &mut self.namespaces)?;
            let value = &self.namespaces[value_at..];
            match declared {
                None => {
                    if default_declared {
                        return Err("the default namespace declared twice".into());
                    }
                    default_declared = true;
                    if value == XML_NAMESPACE {
                        return Err("the XML namespace as the default namespace".into());
                    }
                }
                Some((s, e)) => {
                    let declared = &text[s..e];
                    if declared == "xmlns" {
                        return Err("the prefix 'xmlns' declared".into());
                    }
                    if (declared == "xml") != (value == XML_NAMESPACE) {
                        return Err("the prefix 'xml' or the XML namespace rebound".into());
                    }
                    if value.is_empty() {
                        return Err("a prefix undeclared".into());
                    }
                    let twice = self.decls[outside.0..].iter().any(|decl| {
                        decl.prefix
                            .is_some_and(|(ps, pe)| text[ps..pe] == *declared)
                    });
                    if twice {
                        return Err("a prefix declared twice in one tag".into());
                    }
                }
            }
            if self.decls.len() == MAX_DECLARATIONS {
                return Err(format!(
                    "more than {MAX_DECLARATIONS} namespace declarations in scope"
                ));
            }
            self.decls.push(Decl {
                prefix: declared,
                value: (value_at, self.namespaces.len()),
            });
        }
    }

    /// The namespace and the attributes, resolved, of a start tag just read.
    fn resolve<'a>(
        &'a mut self,
        text: &'a str,
        tag: &Tag,
        scope: &'a Scope,
    ) -> Result<(&'a str, AttrMap), String> {
        let prefix = tag.prefix.map(|(start, end)| &text[start..end]);
        let namespace = lookup(&self.decls, &self.namespaces, text, prefix, scope)?;
        let mut attrs = AttrMap::new();
        for attr in self.attrs.drain(..) {
            let namespace = match attr.prefix {
                None => Namespace::NONE,
                Some((s, e)) => match &text[s..e] {
                    "xml" => Namespace::XML,
                    prefix => Namespace::from(
                        lookup(&self.decls, &self.namespaces, text, Some(prefix), scope)?
                            .to_owned(),
                    ),
                },
            };
            if attrs.insert(namespace, attr.local, attr.value).is_some() {
                return Err("an attribute given twice".into());
            }
        }
        Ok((namespace, attrs))
    }
}

/// The namespace `prefix` (`None`: the default namespace) is bound to: the innermost
/// declaration in the stanza, else the stream's.
fn lookup<'a>(
    decls: &[Decl],
    namespaces: &'a str,
    text: &str,
    prefix: Option<&str>,
    scope: &'a Scope,
) -> Result<&'a str, String> {
    let value = |decl: &Decl| &namespaces[decl.value.0..decl.value.1];
    match prefix {
        None => Ok(decls
            .iter()
            .rev()
            .find(|decl| decl.prefix.is_none())
            .map(value)
            .or(scope.default.as_deref())
            .unwrap_or("")),
        Some("xml") => Ok(XML_NAMESPACE),
        Some(prefix) => decls
            .iter()
            .rev()
            .find(|decl| decl.prefix.is_some_and(|(s, e)| &text[s..e] == prefix))
            .map(value)
            .or_else(|| {
                scope
                    .prefixes
                    .iter()
                    .rev()
                    .find(|(declared, _)| declared == prefix)
                    .map(|(_, namespace)| namespace.as_str())
            })
            .ok_or_else(|| format!("the prefix '{prefix}' is not declared")),
    }
}

/// A qualified name's prefix, if it has one, and local part (ranges of the input).
type Split = (Option<(usize, usize)>, (usize, usize));

/// Splits the qualified name at `name` (a range of `text`) at its colon, if it has one: the
/// prefix, checked, and the local part, which the caller checks as it keeps it (an NCName:
/// a second colon is refused there).
fn split_name(text: &str, (start, end): (usize, usize)) -> Result<Split, String> {
    match memchr::memchr(b':', &text.as_bytes()[start..end]) {
        Some(at) => {
            ncname(&text[start..start + at])?;
            Ok((Some((start, start + at)), (start + at + 1, end)))
        }
        None => Ok((None, (start, end))),
    }
}

/// Checks an NCName (a name without a colon), with rxml's own check.
fn ncname(name: &str) -> Result<&NcNameStr, String> {
    <&NcNameStr>::try_from(name).map_err(|e| format!("the name '{name}': {e}"))
}

/// The length of the name at the start of `bytes`: up to whitespace, `>` or `/` (what else
/// is in it, the name's check refuses).
fn name_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
        .unwrap_or(bytes.len())
}

/// The same for an attribute's name, which `=` also ends.
fn attr_name_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/' | b'='))
        .unwrap_or(bytes.len())
}

/// Where the whitespace from `at` ends.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        at += 1;
    }
    at
}

/// Where character data stands, which decides what its special bytes mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Text,
    Attribute,
}

/// The bytes that need more than a copy: in text, references, carriage returns (a line end
/// becomes a line feed), `]` (for `]]>`), control characters; in attribute values,
/// references, `<`, and every whitespace but the space (each becomes a space) with the
/// other control characters. In both, `0xEF`, which begins U+FFFE and U+FFFF.
const SPECIAL: [[bool; 256]; 2] = {
    let mut table = [[false; 256]; 2];
    let mut b = 0;
    while b < 0x20 {
        table[0][b] = b != b'\t' as usize && b != b'\n' as usize;
        table[1][b] = true;
        b += 1;
    }
    table[0][b'&' as usize] = true;
    table[0][b']' as usize] = true;
    table[0][0xef] = true;
    table[1][b'&' as usize] = true;
    table[1][b'<' as usize] = true;
    table[1][0xef] = true;
    table
};

/// Appends character data as written (`raw`: text, or an attribute value without its
/// quotes) to `out` as it reads: references resolved, line ends and (in values) whitespace
/// normalized, characters XML cannot carry refused.
fn unescape(raw: &str, context: Context, out: &mut String) -> Result<(), String> {
    let special = &SPECIAL[context as usize];
    let bytes = raw.as_bytes();
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8) {
            if !may_be_special(u64::from_le_bytes(word.try_into().expect("8")), context) {
                at += 8;
                continue;
            }
        }
        let b = bytes[at];
        if !special[usize::from(b)] {
            at += 1;
            continue;
        }
        if b == 0xef {
            if bytes.get(at + 1) == Some(&0xbf) && matches!(bytes.get(at + 2), Some(0xbe | 0xbf)) {
                return Err("the character U+FFFE or U+FFFF".into());
            }
            at += 1;
            continue;
        }
        out.push_str(&raw[copied..at]);
        at += 1;
        match (b, context) {
            (b'&', _) => {
                let (c, len) = reference(&bytes[at..])?;
                out.push(c);
                at += len;
            }
            (b'\r', _) => {
                out.push(if context == Context::Text { '\n' } else { ' ' });
                if bytes.get(at) == Some(&b'\n') {
                    at += 1;
                }
            }
            (b'\t' | b'\n', Context::Attribute) => out.push(' '),
            (b']', Context::Text) => {
                if bytes[at..].starts_with(b"]>") {
                    return Err("']]>' in text".into());
                }
                out.push(']');
            }
            (b'<', Context::Attribute) => return Err("'<' in an attribute value".into()),
            _ => return Err(format!("the character U+{b:04X}")),
        }
        copied = at;
    }
    out.push_str(&raw[copied..]);
    Ok(())
}

/// Whether any of the eight bytes of `word` may be one of [`SPECIAL`] in `context`: a byte
/// below 0x20, `&`, `0xEF`, and `]` in text or `<` in a value (tab and line feed in text
/// answer yes too, and are then looked at byte by byte). A word with none is stepped over
/// whole, where the loop took a table look-up a byte: every value of every envelope is
/// unescaped twice (the framer's head, the tree), and the link's unescaping of a fan-out
/// post went from 1,736 to 1,365 instructions (docs/benchmarks.md, branch `fanout4`).
fn may_be_special(word: u64, context: Context) -> bool {
    use super::escape::{bytes_equal, HIGHS, ONES};
    // Exact for "is any byte below 0x20": such a byte borrows into its high bit, and a byte
    // that has its high bit set is masked off by `!word`.
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let third = match context {
        Context::Text => b']',
        Context::Attribute => b'<',
    };
    (control | bytes_equal(word, b'&') | bytes_equal(word, 0xef) | bytes_equal(word, third)) != 0
}

/// An attribute's value as written → its text, appended to `out`, as [`Parser::parse`] reads
/// it. False, and `out` as it was, if it is not well-formed or holds a character XML cannot
/// carry (the framer's envelope of a stanza goes back out in an error reply: mixd must never
/// write XML the server cannot read).
pub fn unescape_value(raw: &str, out: &mut String) -> bool {
    let start = out.len();
    let unescaped = unescape(raw, Context::Attribute, out).is_ok();
    if !unescaped {
        out.truncate(start);
    }
    unescaped
}

/// The reference after a `&` at the start of `bytes`: its character, and how many bytes it
/// took with its `;`.
fn reference(bytes: &[u8]) -> Result<(char, usize), String> {
    let (start, radix) = match (bytes.first(), bytes.get(1)) {
        (Some(b'#'), Some(b'x')) => (2, 16),
        (Some(b'#'), _) => (1, 10),
        _ => (0, 0),
    };
    let len = bytes[start..]
        .iter()
        .take(MAX_REFERENCE + 1)
        .position(|&b| b == b';')
        .ok_or("a reference without its ';', or too long")?;
    let body = &bytes[start..start + len];
    let c = match (radix, body) {
        (0, b"amp") => '&',
        (0, b"lt") => '<',
        (0, b"gt") => '>',
        (0, b"apos") => '\'',
        (0, b"quot") => '"',
        (0, _) => return Err("an entity XML does not define".into()),
        _ => {
            let digits = body.iter().all(|b| match radix {
                16 => b.is_ascii_hexdigit(),
                _ => b.is_ascii_digit(),
            });
            // At most 8 digits: the value fits in a u32.
            let code = std::str::from_utf8(body)
                .ok()
                .filter(|_| digits && !body.is_empty())
                .and_then(|body| u32::from_str_radix(body, radix).ok())
                .ok_or("a character reference that is not a number")?;
            char::from_u32(code)
                .filter(|&c| is_xml_char(c))
                .ok_or_else(|| format!("a reference to U+{code:04X}, not an XML character"))?
        }
    };
    Ok((c, start + len + 1))
}

/// XML 1.0's `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Mutations of inputs for the differential tests against rxml, here and in
/// `flychat::render`.
#[cfg(test)]
pub(crate) mod testing {
    /// `rounds` inputs: each of `inputs` in turn with one to three bytes replaced, removed or
    /// inserted (from `alphabet`), at places drawn from a fixed xorshift sequence from `seed`,
    /// so that every run tests the same ones.
    pub(crate) fn mutated<'a>(
        inputs: &'a [Vec<u8>],
        alphabet: &'a [u8],
        seed: u64,
        rounds: usize,
    ) -> impl Iterator<Item = Vec<u8>> + 'a {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..rounds).map(move |round| {
            let mut input = inputs[round % inputs.len()].clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % (input.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if at < input.len() => input[at] = byte,
                    1 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.insert(at, byte),
                }
            }
            input
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::mutated;
    use minidom::Node;
    use rxml::{Event, Parse, Parser as Rxml};

    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' xmlns:p='urn:p' id='s1'>";

    fn scope() -> Scope {
        Scope::of_header(HEADER.as_bytes()).unwrap()
    }

    /// What rxml (the link's parser before this one) made of `stanza` after `HEADER`: the
    /// element, or that it refused it.
    fn rxml(stanza: &[u8]) -> Option<Element> {
        let mut parser = Rxml::new();
        let mut bytes = HEADER.as_bytes();
        while let Ok(Some(_)) = parser.parse(&mut bytes, false) {}
        let mut bytes = stanza;
        let mut stack: Vec<Element> = Vec::new();
        loop {
            match parser.parse(&mut bytes, false) {
                Ok(Some(Event::StartElement(_, (namespace, name), attrs))) => {
                    let mut element = Element::bare(name.as_str(), namespace.as_str());
                    *element.attrs_mut() = attrs;
                    stack.push(element);
                }
                Ok(Some(Event::Text(_, text))) => stack.last_mut()?.append_text(text),
                Ok(Some(Event::EndElement(_))) => {
                    let element = stack.pop()?;
                    match stack.last_mut() {
                        Some(parent) => {
                            parent.append_child(element);
                        }
                        // Only if nothing follows (the framer's unit is one element).
                        None => return bytes.is_empty().then_some(element),
                    }
                }
                Ok(Some(Event::XmlDeclaration(..))) | Ok(None) => return None,
                Err(_) => return None,
            }
        }
    }

    fn ours(parser: &mut Parser, stanza: &[u8]) -> Option<Element> {
        parser
            .parse(stanza, &scope())
            .ok()
            .map(|(element, _)| element)
    }

    /// Where XML 1.0 and rxml differ, and this parser follows XML 1.0 (the module's doc),
    /// or what the framer never hands over (comments, CDATA sections, processing
    /// instructions: it drops the link), which this parser refuses.
    fn not_compared(stanza: &[u8]) -> bool {
        let text = String::from_utf8_lossy(stanza);
        stanza.contains(&b'\r')
            || text.matches("xmlns=").count() > 1
            || text.contains("<!")
            || text.contains("<?")
    }

    const CASES: &[&str] = &[
        "<message from='a@l/r' to='c@mix.l' id='m1' type='groupchat'><body>hi &amp; &lt;b&gt; &#x263A;&#65;</body></message>",
        "<m><body xml:lang='en'>x</body><x:t xmlns:x='urn:x' x:a='v' a='w'><x:in/>tail</x:t></m>",
        "<m xmlns='urn:a'><b xmlns=''><c/></b><d/></m>",
        "<m xmlns:x='urn:x'><x:a xmlns:x='urn:y'><x:b/></x:a><x:c/></m>",
        "<p:m p:a='1'/>",
        "<stream:error/>",
        "<m a=\"q'uote\" b='d\"q'/>",
        "<m a = 'spaced' \n\tb\t=\n'x' ></m >",
        "<m>  <a/>\n <b>t</b> </m>",
        "<m a='x\ty\nz'/>",
        "<m a='&#9;&#10;&#13;'>&#13;</m>",
        "<m>a\r\nb\rc\r\r\nd</m>",
        "<m>]]</m>",
        "<m>]]&gt;</m>",
        "<m>a]]>b</m>",
        "<m>a > b</m>",
        "<m a='1'b='2'/>",
        "<m a='1' a='2'/>",
        "<m xmlns:x='urn:x' xmlns:y='urn:x' x:a='1' y:a='2'/>",
        "<m xmlns:x='urn:x' xmlns:x='urn:y'/>",
        "<m xmlns:x=''/>",
        "<m xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
        "<m xmlns:xml='urn:x'/>",
        "<m xmlns:x='http://www.w3.org/XML/1998/namespace'/>",
        "<m xmlns='http://www.w3.org/XML/1998/namespace'/>",
        "<m xmlns:xmlns='urn:x'/>",
        "<xmlns:m/>",
        "<xml:m/>",
        "<q:m/>",
        "<m q:a='1'/>",
        "<m:/>",
        "<:m/>",
        "<m a:b:c='1'/>",
        "<a:b:c/>",
        "<1m/>",
        "<m-.1/>",
        "<é/>",
        "<m>\u{1}</m>",
        "<m a='\u{1}'/>",
        "<m>\u{fffe}</m>",
        "<m>\u{ffff}</m>",
        "<m>\u{fffd}\u{ff0c}</m>",
        "<m a='\u{ffff}'/>",
        "<m>&#0;</m>",
        "<m>&#x0;</m>",
        "<m>&#xD800;</m>",
        "<m>&#xFFFE;</m>",
        "<m>&#x10FFFF;</m>",
        "<m>&#x110000;</m>",
        "<m>&#00000065;</m>",
        "<m>&#000000065;</m>",
        "<m>&#x0000041;</m>",
        "<m>&#x00000041;</m>",
        "<m>&#X41;</m>",
        "<m>&#+5;</m>",
        "<m>&#;</m>",
        "<m>&#x;</m>",
        "<m>&;</m>",
        "<m>&nbsp;</m>",
        "<m>&amp</m>",
        "<m>& amp;</m>",
        "<m a='&quot;&apos;'/>",
        "<m a='<'/>",
        "<m a='>'/>",
        "<m a=x/>",
        "<m a/>",
        "<m a=/>",
        "<m =''/>",
        "<m/ >",
        "<m></n>",
        "<m><n></m></n>",
        "<m></m><n/>",
        "<m></m> ",
        "<m>",
        "<m><!-- c --></m>",
        "<m><![CDATA[x]]></m>",
        "<m><?pi x?></m>",
        "< m/>",
        "<m\u{0}/>",
        "<m></ m>",
        "<m></m\n>",
        "<m>\u{85}\u{2028}</m>",
    ];

    #[test]
    fn reads_as_rxml_does() {
        let mut parser = Parser::default();
        for case in CASES {
            let expected = rxml(case.as_bytes());
            let got = ours(&mut parser, case.as_bytes());
            if !not_compared(case.as_bytes()) {
                assert_eq!(got, expected, "{case:?}");
            }
        }
        // Invalid UTF-8, alone and inside a name, a value, text.
        for case in [
            &b"<m>\xff</m>"[..],
            b"<m\xc3/>",
            b"<m a='\xe2\x82'/>",
            b"<m>\xed\xa0\x80</m>",
        ] {
            assert_eq!(ours(&mut parser, case), None, "{case:?}");
            assert_eq!(rxml(case), None, "{case:?}");
        }
    }

    /// XML 1.0 where rxml departs from it.
    #[test]
    fn where_rxml_departs_xml_is_followed() {
        let mut parser = Parser::default();
        let mut value = |stanza: &str| {
            let element = ours(&mut parser, stanza.as_bytes())?;
            element.attr("a").map(str::to_owned)
        };
        assert_eq!(value("<m a='x\ry'/>").as_deref(), Some("x y"));
        assert_eq!(value("<m a='x\r'/>").as_deref(), Some("x "));
        assert_eq!(value("<m a='x\r\ny\r\r'/>").as_deref(), Some("x y  "));
        assert_eq!(value("<m xmlns='urn:a' xmlns='urn:b' a='1'/>"), None);
    }

    /// The fuzz seeds, and thousands of mutations of them and of the cases above: the two
    /// parsers agree on each (and this one never panics).
    #[test]
    fn mutations_read_as_rxml_does() {
        let mut inputs: Vec<Vec<u8>> = CASES.iter().map(|c| c.as_bytes().to_vec()).collect();
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds");
        for dir in std::fs::read_dir(seeds).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let bytes = std::fs::read(file.unwrap().path()).unwrap();
                // The stanzas in it, each cut where a top-level element ends.
                let mut depth = 0i32;
                let mut start = None;
                for (i, w) in bytes.windows(2).enumerate() {
                    match w {
                        [b'<', b'/'] => depth -= 1,
                        [b'<', b'?' | b'!'] => {}
                        [b'<', _] => {
                            if depth == 0 {
                                start = Some(i);
                            }
                            depth += 1
                        }
                        [b'/', b'>'] => depth -= 1,
                        _ => {}
                    }
                    if let (0, Some(s), [_, b'>']) = (depth, start, w) {
                        inputs.push(bytes[s..i + 2].to_vec());
                        start = None;
                    }
                }
            }
        }
        let alphabet: &[u8] = b"<>/='\"&;#x:! \t\r\n]ab\xc3\xa9\xef\xbf\xbe\x00";
        let mut parser = Parser::default();
        let (mut compared, mut accepted) = (0, 0);
        for input in mutated(&inputs, alphabet, 0x9e37_79b9_7f4a_7c15, 40_000) {
            let got = ours(&mut parser, &input);
            if not_compared(&input) {
                continue;
            }
            assert_eq!(got, rxml(&input), "{:?}", String::from_utf8_lossy(&input));
            compared += 1;
            accepted += usize::from(got.is_some());
        }
        eprintln!("{compared} compared, {accepted} read by both");
        assert!(
            compared > 20_000 && accepted > 5_000,
            "{compared}, {accepted}"
        );
    }

    /// The stream header's declarations are in scope in every stanza.
    #[test]
    fn the_header_declares_the_stanzas_namespaces() {
        assert_eq!(
            scope(),
            Scope {
                default: Some("jabber:component:accept".into()),
                prefixes: vec![
                    ("stream".into(), "http://etherx.jabber.org/streams".into()),
                    ("p".into(), "urn:p".into())
                ],
            }
        );
        let mut parser = Parser::default();
        let (element, elements) = parser
            .parse(
                b"<message><body/><stream:x><p:y/></stream:x></message>",
                &scope(),
            )
            .unwrap();
        assert!(element.is("message", "jabber:component:accept"));
        assert_eq!(elements, 4);
        let x = element
            .get_child("x", "http://etherx.jabber.org/streams")
            .unwrap();
        assert!(x.has_child("y", "urn:p"));
    }

    /// The builder keeps its open elements on a stack: 20,000 levels on a thread with a
    /// 256 KiB stack (the depth limit, not the builder, is what keeps trees shallow).
    #[test]
    fn declarations_in_scope_are_bounded() {
        // Declarations of a tag and of its ancestors count together; a sibling's are gone
        // once it has ended.
        let stanza = |outer: usize, inner: usize, siblings: usize| {
            let declare = |n: usize, tag: &str| {
                (0..n)
                    .map(|i| format!(" xmlns:{tag}{i}='urn:{tag}{i}'"))
                    .collect::<String>()
            };
            let sibling = format!("<s{}/>", declare(inner, "s"));
            format!(
                "<message xmlns='jabber:client'{}>{}<i{}/></message>",
                declare(outer, "o"),
                sibling.repeat(siblings),
                declare(inner, "i"),
            )
        };
        let parse = |text: String| Parser::default().parse(text.as_bytes(), &Scope::default());
        // The stanza's own default namespace is a declaration too.
        assert!(parse(stanza(31, 32, 100)).is_ok());
        let refused = parse(stanza(32, 32, 1)).unwrap_err();
        assert!(refused.contains("namespace declarations"), "{refused}");
        assert!(parse(stanza(MAX_DECLARATIONS, 0, 0)).is_err());
    }

    #[test]
    fn building_does_not_recurse() {
        let thread = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let depth = 20_000;
                let mut text = String::from("<r xmlns='urn:r'>");
                text.push_str(&"<a>".repeat(depth));
                text.push_str(&"</a>".repeat(depth));
                text.push_str("</r>");
                let (root, elements) = Parser::default()
                    .parse(text.as_bytes(), &Scope::default())
                    .unwrap();
                assert_eq!(elements, depth + 1);
                // Taken apart with a loop too: minidom's own drop would recurse.
                let mut stack = vec![root];
                let mut seen = 0;
                while let Some(mut element) = stack.pop() {
                    seen += 1;
                    for node in element.take_nodes() {
                        if let Node::Element(child) = node {
                            stack.push(child);
                        }
                    }
                }
                seen
            })
            .unwrap();
        assert_eq!(thread.join().unwrap(), 20_001);
    }
}
