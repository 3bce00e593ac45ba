//! The link's reader: bytes from the server → stanzas, refusals, or the end of the link.
//! Small limits, so that inputs reach them; the same bytes fed whole and in chunks (sized
//! by the first byte) must read the same; nothing built may be deeper than the limit; the
//! envelope kept from a refused stanza holds only characters XML can carry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minidom::Element;
use mixd::link::reader::{Item, Limits, Reader};

mod common;

const LIMITS: Limits = Limits {
    max_bytes: 2048,
    max_depth: 6,
};

fn read(bytes: &[u8], chunk: usize) -> (Vec<String>, bool) {
    let mut reader = Reader::new(LIMITS);
    let mut items = Vec::new();
    let mut ok = true;
    for part in bytes.chunks(chunk.max(1)) {
        if reader.feed(part, &mut items).is_err() {
            ok = false;
            break;
        }
    }
    for item in &items {
        match item {
            Item::Stanza { element, .. } => {
                assert!(depth(element) <= LIMITS.max_depth, "{element:?}")
            }
            // The envelope of a refused stanza goes back out in the error reply: only
            // characters XML can carry.
            Item::Refused(refused) => {
                for value in [&refused.from, &refused.to, &refused.id, &refused.kind]
                    .into_iter()
                    .flatten()
                {
                    assert!(value.chars().all(is_xml_char), "{refused:?}");
                }
            }
            _ => {}
        }
    }
    (items.iter().map(|i| format!("{i:?}")).collect(), ok)
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

fn depth(element: &Element) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(element, 1)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(e.children().map(|c| (c, d + 1)));
    }
    deepest
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    // Most inputs after a header, as the server sends them; some as the whole stream.
    let mut bytes = Vec::new();
    if chunk & 0x80 == 0 {
        bytes.extend_from_slice(common::HEADER.as_bytes());
    }
    bytes.extend_from_slice(rest);
    let (whole, whole_ok) = read(&bytes, bytes.len());
    let (parts, parts_ok) = read(&bytes, (chunk & 0x7f) as usize);
    assert_eq!(whole_ok, parts_ok, "a chunked read ended differently");
    if whole_ok {
        assert_eq!(whole, parts, "a chunked read gave other items");
    }
});
