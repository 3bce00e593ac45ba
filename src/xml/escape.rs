//! Escaping text for XML content and for attributes quoted with `'`: the five characters
//! `&`, `<`, `>`, `'` and `"` become entities, nothing else changes.
//!
//! This is what keeps a client's text inside the element it is written in (a body, a nick,
//! an attribute value), so it runs on every text of every stanza mixd writes: every
//! recipient's address of every copy of a fan-out, every field of every row of a history
//! page. Most of those texts hold no special character, and most are short (ids, addresses,
//! nicks, times).

/// Escapes `text` for use in element content or in an attribute quoted with `'`.
///
/// It looks at eight bytes at a time (the last word of a text padded with zero bytes, which
/// are never special, so a short text is one word) and steps over words with none of the five
/// special characters in them; only a word with one is looked at byte by byte. The runs
/// between special characters are copied whole. The special characters are ASCII, so byte
/// positions are char boundaries.
///
/// Before, the bytes past the last whole word went one at a time: most texts a history page
/// writes are shorter than 16 bytes, and escaping was a third of a MAM page's instructions
/// (docs/benchmarks.md, "A history page's rendering, cheaper").
///
/// A text with no special character at all (nearly every one: each recipient's address of a
/// fan-out) is first found so by [`needs_escaping`] and copied in one piece: the loop below
/// pays, for the last bytes of a text, a zero-padded copy of them into a word and a bound of
/// each word's byte loop; a copy's addressing went from 308 to 245 instructions
/// (docs/benchmarks.md, branch `fanout4`).
pub fn escape_into(out: &mut String, text: &str) {
    if !needs_escaping(text.as_bytes()) {
        out.push_str(text);
        return;
    }
    let bytes = text.as_bytes();
    let mut plain = 0;
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes.len().min(at + 8);
        if has_special_byte(word_at(bytes, at)) {
            for (i, &byte) in bytes.iter().enumerate().take(end).skip(at) {
                if let Some(entity) = escaped(byte) {
                    out.push_str(&text[plain..i]);
                    out.push_str(entity);
                    plain = i + 1;
                }
            }
        }
        at = end;
    }
    out.push_str(&text[plain..]);
}

/// Whether `bytes` hold any of the five special characters: whole words read where they lie,
/// the last one overlapping the one before it (a byte looked at twice changes no answer), and
/// a text shorter than a word looked at byte by byte.
fn needs_escaping(bytes: &[u8]) -> bool {
    let Some(last) = bytes.len().checked_sub(8) else {
        return bytes.iter().any(|&byte| escaped(byte).is_some());
    };
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    (0..last).step_by(8).any(|at| has_special_byte(word(at))) || has_special_byte(word(last))
}

/// The entity a special byte is written as; `None` for every other byte.
pub(super) fn escaped(byte: u8) -> Option<&'static str> {
    match byte {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\'' => Some("&apos;"),
        b'"' => Some("&quot;"),
        _ => None,
    }
}

/// The eight bytes of `bytes` from `at` as a little-endian word, zeros past the end.
fn word_at(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(word) => u64::from_le_bytes(word.try_into().expect("eight bytes")),
        None => {
            let mut word = [0u8; 8];
            let rest = &bytes[at..];
            word[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(word)
        }
    }
}

/// Whether any of the eight bytes of `word` is one [`escape_into`] replaces.
fn has_special_byte(word: u64) -> bool {
    [b'&', b'<', b'>', b'\'', b'"']
        .into_iter()
        .fold(0, |found, special| found | bytes_equal(word, special))
        != 0
}

/// A one in each byte: `ONES * n` is the byte `n` eight times.
pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
/// Each byte's high bit.
pub(super) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Nonzero if any of the eight bytes of `word` equals `byte` (what both the escaping here and
/// the parser's unescaping look for a word at a time): the bytes equal to it are turned to
/// zero, and a zero byte is found by the borrow it causes into its high bit (exact for "is
/// there any", which is all that is asked).
pub(super) fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::testing::mutated;

    /// The escaping before this one (whole words, then the rest byte by byte), kept as the
    /// oracle the new one is compared with.
    fn before(out: &mut String, text: &str) {
        let bytes = text.as_bytes();
        let mut plain = 0;
        let mut at = 0;
        while at < bytes.len() {
            if let Some(word) = bytes.get(at..at + 8) {
                let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
                if !has_special_byte(word) {
                    at += 8;
                    continue;
                }
            }
            let entity = match bytes[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'\'' => "&apos;",
                b'"' => "&quot;",
                _ => {
                    at += 1;
                    continue;
                }
            };
            out.push_str(&text[plain..at]);
            out.push_str(entity);
            at += 1;
            plain = at;
        }
        out.push_str(&text[plain..]);
    }

    /// The fuzz seeds' stanzas (what clients send, escaped and not), in pieces of every
    /// length from each start, and thousands of mutations of them, escape as before; and
    /// what is escaped reads back, through the link's parser, as the text it was.
    #[test]
    fn escaping_is_what_it_was() {
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds");
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for dir in std::fs::read_dir(seeds).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                inputs.push(std::fs::read(file.unwrap().path()).unwrap());
            }
        }
        inputs.push("é ☺ \u{1F600} ]]> a'b\"c<d>e&f 日本語".into());
        let alphabet: &[u8] = b"<>'\"&;]a \xc3\xa9\xe2\x98\xba";
        let (mut compared, mut special) = (0, 0);
        let pieces = inputs.iter().flat_map(|input| {
            let text = String::from_utf8_lossy(input).into_owned();
            let starts: Vec<usize> = (0..text.len().min(40))
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            starts
                .into_iter()
                .flat_map(|start| {
                    (start..=text.len().min(start + 40))
                        .filter(|&end| text.is_char_boundary(end))
                        .map(|end| text[start..end].to_owned())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        });
        let mutations = mutated(&inputs, alphabet, 0x9e37_79b9_7f4a_7c15, 30_000)
            .map(|input| String::from_utf8_lossy(&input).into_owned());
        for text in pieces.chain(mutations) {
            let (mut new, mut old) = (String::from("["), String::from("["));
            escape_into(&mut new, &text);
            before(&mut old, &text);
            assert_eq!(new, old, "{text:?}");
            compared += 1;
            special += usize::from(new.len() != text.len() + 1);
            assert!(!new[1..].contains(['<', '>', '\'', '"']), "{new}");
        }
        assert!(
            compared > 50_000 && special > 10_000,
            "{compared}, {special}"
        );
    }

    #[test]
    fn escaping_keeps_the_text_between_special_characters_whole() {
        for (text, escaped) in [
            ("", ""),
            ("plain", "plain"),
            ("<>", "&lt;&gt;"),
            ("é<ü>ß", "é&lt;ü&gt;ß"),
            ("a&b'c\"d", "a&amp;b&apos;c&quot;d"),
            ("ends with &", "ends with &amp;"),
            ("日本語", "日本語"),
            (
                "a-long-address@example.org/resource",
                "a-long-address@example.org/resource",
            ),
            (
                "eight by&es then <more> 'quoted' \"text\"!",
                "eight by&amp;es then &lt;more&gt; &apos;quoted&apos; &quot;text&quot;!",
            ),
            ("12345678&", "12345678&amp;"),
            ("&2345678'", "&amp;2345678&apos;"),
        ] {
            let mut out = String::from("[");
            escape_into(&mut out, text);
            assert_eq!(out, format!("[{escaped}"), "{text}");
        }
    }

    #[test]
    fn escaping_finds_each_special_character_at_every_position() {
        for special in ['&', '<', '>', '\'', '"', 'é'] {
            for len in 0..20 {
                for at in 0..len {
                    let text: String = (0..len)
                        .map(|i| if i == at { special } else { 'a' })
                        .collect();
                    let expected: String = text
                        .chars()
                        .map(|c| match c {
                            '&' => "&amp;".to_owned(),
                            '<' => "&lt;".to_owned(),
                            '>' => "&gt;".to_owned(),
                            '\'' => "&apos;".to_owned(),
                            '"' => "&quot;".to_owned(),
                            c => c.to_string(),
                        })
                        .collect();
                    let mut out = String::new();
                    escape_into(&mut out, &text);
                    assert_eq!(out, expected, "{text}");
                }
            }
        }
    }
}
