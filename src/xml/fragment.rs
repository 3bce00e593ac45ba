//! A stanza's children written back as text: the payload a sender submitted, as it is
//! archived and reflected (every post of every channel goes through here once).
//!
//! The bytes are exactly those rxml's encoder (`rxml::writer::Encoder` with its
//! `SimpleNamespaces`) writes for the children inside a wrapper in the stanza's namespace,
//! which is what this was before: what is stored and what clients receive do not change. That
//! encoder was two fifths of the router's work on a post (its namespace tracker's maps, a
//! `String` for each element's namespace, a name check a tag; docs/benchmarks.md, "Less CPU
//! per message on the post and fan-out path"); here the namespace in scope is a `&str` on a
//! stack, and only an element that declares a namespace copies it.

use minidom::{Element, Node};

/// Serializes the children of a stanza as a namespace-neutral fragment: elements in the
/// stanza's own namespace (`<body/>`, `<subject/>`, `<thread/>`) carry no `xmlns`, so the
/// fragment can be placed inside a `jabber:component:accept` stanza and inside a
/// `jabber:client` message forwarded by MAM alike. Other payloads keep their namespace.
///
/// Empty if a name or a text cannot be written as XML (as the encoder refused them); a tree
/// the link's parser built always can. The framer has bounded the depth, and the explicit
/// stack keeps this free of recursion anyway.
pub fn children_fragment<'a>(
    stanza_ns: &str,
    children: impl Iterator<Item = &'a Element>,
) -> String {
    let mut out = String::with_capacity(256);
    let mut open = Vec::new();
    for child in children {
        if write_element(&mut out, &mut open, stanza_ns, child).is_none() {
            return String::new();
        }
    }
    out
}

/// An element being written: the nodes still to write inside it, its qualified name's
/// prefix (`xml` or `xmlns` for an element in those namespaces) and the default namespace it
/// declared, if it declared one.
struct Open<'a> {
    element: &'a Element,
    nodes: std::slice::Iter<'a, Node>,
    prefix: Option<&'static str>,
    declared: Option<String>,
}

/// The namespaces bound to a prefix by XML itself, which are never declared.
const BOUND: [(&str, &str); 2] = [
    ("http://www.w3.org/XML/1998/namespace", "xml"),
    ("http://www.w3.org/2000/xmlns/", "xmlns"),
];

fn write_element<'a>(
    out: &mut String,
    open: &mut Vec<Open<'a>>,
    stanza_ns: &str,
    root: &'a Element,
) -> Option<()> {
    let mut next = Some(root);
    loop {
        if let Some(element) = next.take() {
            let default = open
                .iter()
                .rev()
                .find_map(|o| o.declared.as_deref())
                .unwrap_or(stanza_ns);
            let head = start_tag(out, element, default)?;
            open.push(head);
        }
        let Some(top) = open.last_mut() else {
            return Some(());
        };
        match top.nodes.next() {
            Some(Node::Element(inner)) => next = Some(inner),
            Some(Node::Text(text)) => escape(out, text, false)?,
            None => {
                let done = open.pop().expect("the top");
                if done.element.nodes().next().is_none() {
                    out.push_str("/>");
                } else {
                    out.push_str("</");
                    if let Some(prefix) = done.prefix {
                        out.push_str(prefix);
                        out.push(':');
                    }
                    out.push_str(done.element.name());
                    out.push('>');
                }
                if open.is_empty() {
                    return Some(());
                }
            }
        }
    }
}

/// Writes `<name`, the namespace declaration if the element's namespace is not `default`,
/// the attributes, and `>` if anything is inside.
fn start_tag<'a>(out: &mut String, element: &'a Element, default: &str) -> Option<Open<'a>> {
    let name = element.name();
    if !is_ncname(name) {
        return None;
    }
    let mut prefix = None;
    let mut declared = None;
    if !element.has_ns(default) {
        match BOUND.iter().find(|(uri, _)| element.has_ns(*uri)) {
            Some((_, bound)) => prefix = Some(*bound),
            None => declared = Some(element.ns()),
        }
    }
    out.push('<');
    if let Some(prefix) = prefix {
        out.push_str(prefix);
        out.push(':');
    }
    out.push_str(name);
    if let Some(ns) = &declared {
        out.push_str(" xmlns='");
        escape(out, ns, true)?;
        out.push('\'');
    }
    // Attributes in other namespaces get prefixes `tns0`, `tns1`, … in the order they are
    // first met on this element, each declared just before its first attribute.
    let mut prefixed: Vec<&str> = Vec::new();
    for ((ns, attr), value) in element.attrs() {
        out.push(' ');
        if let Some(uri) = ns.as_namespace_name() {
            match BOUND.iter().find(|(bound, _)| *bound == uri) {
                Some((_, bound)) => out.push_str(bound),
                None => {
                    let n = match prefixed.iter().position(|p| *p == uri) {
                        Some(n) => n,
                        None => {
                            prefixed.push(uri);
                            let n = prefixed.len() - 1;
                            out.push_str(&format!("xmlns:tns{n}='"));
                            escape(out, uri, true)?;
                            out.push_str("' ");
                            n
                        }
                    };
                    out.push_str(&format!("tns{n}"));
                }
            }
            out.push(':');
        }
        out.push_str(attr.as_str());
        out.push_str("='");
        escape(out, value, true)?;
        out.push('\'');
    }
    if element.nodes().next().is_some() {
        out.push('>');
    }
    Some(Open {
        element,
        nodes: element.nodes(),
        prefix,
        declared,
    })
}

/// An element's name as the encoder checked it: ASCII names at a glance, others by rxml.
fn is_ncname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let ascii = matches!(bytes.first(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.'));
    ascii || <&rxml::NcNameStr>::try_from(name).is_ok()
}

/// What a byte is to the encoder's escaping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    Plain,
    /// Escaped in text and in attributes: `<`, `>`, `&`, CR.
    Special,
    /// Escaped in attributes only: `"`, `'`, LF, TAB.
    InAttribute,
    /// A control character XML does not allow.
    Invalid,
    /// The last byte of U+FFFE or U+FFFF if the two before are `EF BF`.
    MaybeNonCharacter,
}

const BYTES: [Byte; 256] = {
    let mut table = [Byte::Plain; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = Byte::Invalid;
        b += 1;
    }
    table[b'\r' as usize] = Byte::Special;
    table[b'\n' as usize] = Byte::InAttribute;
    table[b'\t' as usize] = Byte::InAttribute;
    table[b'<' as usize] = Byte::Special;
    table[b'>' as usize] = Byte::Special;
    table[b'&' as usize] = Byte::Special;
    table[b'"' as usize] = Byte::InAttribute;
    table[b'\'' as usize] = Byte::InAttribute;
    table[0xbe] = Byte::MaybeNonCharacter;
    table[0xbf] = Byte::MaybeNonCharacter;
    table
};

/// Escapes `text` as the encoder does, in text or in an attribute quoted with `'`; `None`
/// for a character XML does not allow.
fn escape(out: &mut String, text: &str, attribute: bool) -> Option<()> {
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let entity = match BYTES[byte as usize] {
            Byte::Plain => continue,
            Byte::InAttribute if !attribute => continue,
            Byte::Invalid => return None,
            Byte::MaybeNonCharacter => {
                if i >= 2 && bytes[i - 2] == 0xef && bytes[i - 1] == 0xbf {
                    return None;
                }
                continue;
            }
            Byte::Special | Byte::InAttribute => match byte {
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'&' => "&amp;",
                b'\r' => "&#xd;",
                b'"' => "&#34;",
                b'\'' => "&#39;",
                b'\n' => "&#xa;",
                _ => "&#x9;",
            },
        };
        // Every escaped byte is ASCII, so `i` is a char boundary.
        out.push_str(&text[plain..i]);
        out.push_str(entity);
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    Some(())
}

#[cfg(test)]
mod tests {
    //! The fragment is byte for byte what rxml's encoder wrote, the code this replaced, kept
    //! here as the oracle.

    use super::*;
    use crate::xml::ns;

    /// The previous `children_fragment`, through rxml's encoder.
    fn encoded<'a>(stanza_ns: &str, children: impl Iterator<Item = &'a Element>) -> String {
        use rxml::writer::Item;
        let mut encoder = rxml::writer::Encoder::new();
        let mut out = Vec::new();
        let mut wrapper = Vec::new();
        let run = || -> Result<(), rxml::Error> {
            let x: &rxml::NcNameStr = "x".try_into()?;
            encoder.encode(
                Item::ElementHeadStart(stanza_ns.to_owned().into(), x),
                &mut wrapper,
            )?;
            encoder.encode(Item::ElementHeadEnd, &mut wrapper)?;
            for child in children {
                let mut open = vec![(child, None::<std::slice::Iter<'a, Node>>)];
                while let Some((element, nodes)) = open.last_mut() {
                    let nodes = match nodes {
                        Some(nodes) => nodes,
                        None => {
                            let name: &rxml::NcNameStr = element.name().try_into()?;
                            encoder.encode(
                                Item::ElementHeadStart(element.ns().into(), name),
                                &mut out,
                            )?;
                            for ((ns, name), value) in element.attrs() {
                                encoder
                                    .encode(Item::Attribute(ns.clone(), name, value), &mut out)?;
                            }
                            if element.nodes().next().is_some() {
                                encoder.encode(Item::ElementHeadEnd, &mut out)?;
                            }
                            nodes.insert(element.nodes())
                        }
                    };
                    match nodes.next() {
                        Some(Node::Element(inner)) => open.push((inner, None)),
                        Some(Node::Text(text)) => encoder.encode(Item::Text(text), &mut out)?,
                        None => {
                            encoder.encode(Item::ElementFoot, &mut out)?;
                            open.pop();
                        }
                    }
                }
            }
            encoder.encode(Item::ElementFoot, &mut wrapper)
        };
        match run() {
            Ok(()) => String::from_utf8(out).unwrap(),
            Err(_) => String::new(),
        }
    }

    /// Whether the fragment is the encoder's, and whether it wrote anything.
    fn same(stanza: &Element) -> bool {
        let ours = children_fragment(ns::COMPONENT, stanza.children());
        assert_eq!(
            ours,
            encoded(ns::COMPONENT, stanza.children()),
            "{stanza:?}"
        );
        !ours.is_empty()
    }

    #[test]
    fn parsed_payloads_are_written_as_the_encoder_wrote_them() {
        for xml in [
            "<message xmlns='jabber:component:accept'><body>hi &amp; bye &lt;&gt; '\"</body>\
             <origin-id xmlns='urn:xmpp:sid:0' id='o&apos;1&quot;&lt;&amp;&gt;'/></message>",
            "<message xmlns='jabber:component:accept'><body xml:lang='en'>a</body>\
             <x xmlns='jabber:x:oob'><url>u</url><desc/></x><reply xmlns='urn:xmpp:reply:0' \
             to='c@d/e' id='y'/><html xmlns='http://jabber.org/protocol/xhtml-im'><body \
             xmlns='http://www.w3.org/1999/xhtml'><p>one <b>two</b> ]]&gt; three</p></body>\
             </html></message>",
            "<message xmlns='jabber:component:accept' xmlns:p='urn:p' xmlns:q='urn:q'>\
             <a p:x='1' q:y='2' p:z='3' w='4' xml:lang='de'><b q:y='5'><c xmlns='' p:k='6'/>\
             </b></a><d xmlns='urn:p'><e xmlns='jabber:component:accept'>t</e></d></message>",
            "<message xmlns='jabber:component:accept'><body>é ü 日本 \u{1F600} &#xD; &#x9; \
             &#xA;</body><empty></empty><n a='&#x9;&#xA;&#xD; é'/></message>",
            "<message xmlns='jabber:component:accept'><x:y xmlns:x='urn:x' x:a='1'/>\
             <v.w-z_1 xmlns='urn:a&amp;b'/><ñame/></message>",
            "<message xmlns='jabber:component:accept'/>",
        ] {
            assert!(same(&xml.parse().unwrap()) || xml.ends_with("/>"));
        }
    }

    #[test]
    fn built_trees_are_written_as_the_encoder_wrote_them() {
        // Texts and values a parser would not give, and whatever mixes of them a little
        // generator makes: control characters, CR, U+FFFE/U+FFFF and their neighbours.
        let texts = [
            "",
            "plain",
            "<&>",
            "'\"",
            "\r\n\t",
            "a\u{1}b",
            "\u{b}",
            "\u{fffe}",
            "x\u{ffff}",
            "\u{fffd}\u{fdd0}\u{efbe}",
            "\u{3fbe}",
            "日本語",
            "]]>",
            "\u{7f}\u{85}",
        ];
        let names = ["body", "a", "é", "1x", "x-y", "_z", "b.c"];
        let spaces = [
            ns::COMPONENT,
            "",
            "urn:a",
            "urn:'&",
            "http://www.w3.org/XML/1998/namespace",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut written = 0;
        for _ in 0..5000 {
            let mut stanza = Element::builder("message", ns::COMPONENT).build();
            for _ in 0..next(3) + 1 {
                let mut child =
                    Element::builder(names[next(names.len())], spaces[next(spaces.len())])
                        .attr(
                            rxml::NcName::try_from("k").unwrap(),
                            texts[next(texts.len())],
                        )
                        .build();
                for _ in 0..next(3) {
                    match next(3) {
                        0 => child.append_text_node(texts[next(texts.len())]),
                        _ => {
                            let mut inner = Element::builder(
                                names[next(names.len())],
                                spaces[next(spaces.len())],
                            )
                            .build();
                            if next(2) == 0 {
                                inner.append_text_node(texts[next(texts.len())]);
                            }
                            child.append_child(inner);
                        }
                    }
                }
                stanza.append_child(child);
            }
            written += usize::from(same(&stanza));
        }
        // Both outcomes are compared: fragments written and fragments refused.
        assert!((1000..4000).contains(&written), "{written}");
    }
}
