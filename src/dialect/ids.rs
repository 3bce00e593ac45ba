//! Identifiers as clients see them. Inside, a message is its archive id: one counter for the
//! whole service, the key of `messages` and of every index that pages it. A client never
//! sees that integer: anyone could count the whole service's traffic from two of its
//! messages (XEP-0313 §3 and XEP-0359 §4 ask for ids that are unique and unpredictable).
//! Every archive id that leaves mixd (MAM result ids and RSM `first`/`last`, stanza-ids,
//! reflection and retraction ids, receipt and message-state ids, `upto` of a clear, FlyChat
//! row ids and message ids) is written here, and every id a client sends back is read here:
//! it decodes to the archive id it was made from, or to nothing.
//!
//! # Design
//!
//! An id is a keyed permutation of the archive id: a balanced Feistel network of
//! [`ROUNDS`] rounds over 64 bits, whose round function is SipHash-2-4 under the service's
//! 128-bit secret key, of the round number and the right half (5 bytes: `siphash.rs` computes
//! it for that length, the same function as `siphasher`'s, which its tests check, and
//! `ids_are_what_they_always_were` holds outputs of the first implementation). The archive id
//! fills the low [`ID_BITS`] bits of the block and the high 16 are zero: decoding inverts
//! the network and refuses a block whose high bits are not zero, so a made-up or altered id
//! decodes to nothing except by a 1 in 65,536 chance (and then names a message only if
//! that one is in the channel asked about; a look-up never crosses channels).
//!
//! Why this and not the alternatives:
//! - A permutation, not a random id stored per message: nothing is added to the hot tables
//!   or their indexes, paging keeps using the integer (`id > ?` over `(channel, id)`), and
//!   the mapping needs no look-up in either direction.
//! - SipHash-2-4 is a pseudo-random function built for keyed use on short inputs;
//!   `siphasher` is the widely used implementation, and the reference ours is checked
//!   against (std's `DefaultHasher` may change between Rust releases, and ids must not).
//!   Eight rounds of a Feistel network with a pseudo-random round function are well past
//!   the four that Luby–Rackoff needs for a pseudo-random permutation; with 32-bit halves
//!   the margin matters.
//! - The key is made from the OS's randomness once per database and kept in it (the
//!   `meta` table), so ids survive restarts and differ between services.
//! - 48 bits of archive id are 2.8·10¹⁴ messages: at 100,000 a second, 89 years.
//!
//! What it does not hide: a client still sees the messages it may see in order, and their
//! times. It no longer learns how many messages the service (or the channel) archived
//! between two of them, nor can it name a message it was never shown.
//!
//! # Forms
//!
//! One value, two spellings, one per dialect:
//! - MIX: 11 characters of the URL-safe base64 alphabet (`A–Z a–z 0–9 - _`), the 64-bit
//!   block big-endian, the first character carrying its top 4 bits (so it is one of
//!   `A`–`P`). Example: `Kq3x0Zb9-Q_`.
//! - FlyChat: the block in decimal (up to 20 digits). The FlyChat SDK pages history only
//!   with a `lastRowId` of digits (`/^\d+$/`), and keeps it as a string; an app must too
//!   (a JavaScript number loses the low digits).
//!
//! Either dialect's ids are accepted where a client names a message: the base64 form never
//! starts with a digit and the decimal form never has a letter, so no text is both.

use siphasher::sip::SipHasher24;

use super::siphash::RoundKey;
use crate::store::Page;

/// The length of the secret key, in bytes.
pub const KEY_BYTES: usize = 16;
/// How many low bits of the block carry the archive id; the rest must be zero.
pub const ID_BITS: u32 = 48;
/// Rounds of the Feistel network.
pub const ROUNDS: u8 = 8;
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Characters of the base64 form: 64 bits in 6-bit digits.
const BASE64_LEN: usize = 11;

/// The service's keyed id permutation. Cheap to clone (the key schedule is a few words).
#[derive(Clone)]
pub struct Ids {
    /// For invitation tokens, whose input is longer.
    prf: SipHasher24,
    /// The same function, for the network's rounds (`siphash.rs`).
    rounds: RoundKey,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ids(secret)")
    }
}

impl Ids {
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        Ids {
            prf: SipHasher24::new_with_key(key),
            rounds: RoundKey::new(key),
        }
    }

    /// A key from the OS's randomness: what a new database gets (`store`), and what tests
    /// use.
    pub fn random_key() -> std::io::Result<[u8; KEY_BYTES]> {
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        Ok(key)
    }

    /// Archive id `id` as MIX clients see it.
    pub fn encode(&self, id: i64) -> String {
        let block = self.permute(plain(id));
        let text: [u8; BASE64_LEN] = std::array::from_fn(|i| {
            let shift = 6 * (BASE64_LEN - 1 - i);
            ALPHABET[((block >> shift) & 63) as usize]
        });
        std::str::from_utf8(&text).expect("ASCII").to_owned()
    }

    /// Archive id `id` as FlyChat clients see it: digits, as the SDK pages with.
    pub fn encode_digits(&self, id: i64) -> String {
        self.permute(plain(id)).to_string()
    }

    /// The archive id that `text` (either form) was made from, or `None`: not an id of
    /// this service.
    pub fn decode(&self, text: &str) -> Option<i64> {
        let block = parse_base64(text).or_else(|| parse_digits(text))?;
        let plain = self.unpermute(block);
        (plain >> ID_BITS == 0).then_some(plain as i64)
    }

    /// The `<token>` of an XEP-0407 invitation of `invitee` to `channel_jid` made at `at`:
    /// 128 bits of SipHash under the service's key (two outputs, domain-separated from the
    /// id rounds and from each other), as 22 URL-safe characters. Nobody without the key can
    /// make or predict one, and the service can recompute it to check one, storing nothing.
    ///
    /// It is informational today: what admits an invitee is its pending invitation, found
    /// by its bare JID, which its own server authenticates (`Groups::join`); a token sent
    /// back in a join is not read. Before, the token was the invitation's time.
    pub fn invitation_token(&self, channel_jid: &str, invitee: &str, at: i64) -> String {
        let half = |part: u8| {
            let mut input = Vec::with_capacity(32 + channel_jid.len() + invitee.len());
            input.extend_from_slice(b"mixd invitation ");
            input.push(part);
            input.extend_from_slice(channel_jid.as_bytes());
            input.push(0);
            input.extend_from_slice(invitee.as_bytes());
            input.push(0);
            input.extend_from_slice(&at.to_le_bytes());
            self.prf.hash(&input)
        };
        let value = (u128::from(half(1)) << 64) | u128::from(half(2));
        (0..22)
            .map(|i| ALPHABET[((value >> (6 * (21 - i))) & 63) as usize] as char)
            .collect()
    }

    /// SipHash-2-4 of `[round, half as little-endian]`, its low 32 bits.
    fn round(&self, round: u8, half: u32) -> u32 {
        self.rounds.hash(round, half) as u32
    }

    fn permute(&self, block: u64) -> u64 {
        let (mut left, mut right) = ((block >> 32) as u32, block as u32);
        for round in 0..ROUNDS {
            let next = left ^ self.round(round, right);
            left = right;
            right = next;
        }
        (u64::from(left) << 32) | u64::from(right)
    }

    fn unpermute(&self, block: u64) -> u64 {
        let (mut left, mut right) = ((block >> 32) as u32, block as u32);
        for round in (0..ROUNDS).rev() {
            let previous = right ^ self.round(round, left);
            right = left;
            left = previous;
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

/// The block an archive id is encrypted as. Archive ids are positive and far below 2⁴⁸;
/// one that is not (a corrupt row) is written as an id that decodes to nothing rather than
/// as one that decodes to another message.
fn plain(id: i64) -> u64 {
    let id = id as u64;
    debug_assert!(id >> ID_BITS == 0, "archive id {id} is past 2^{ID_BITS}");
    if id >> ID_BITS == 0 {
        id
    } else {
        u64::MAX
    }
}

fn parse_base64(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != BASE64_LEN {
        return None;
    }
    let mut block: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == byte)? as u64;
        // The first digit carries the top 4 bits only: anything above is no block.
        if i == 0 && digit >= 16 {
            return None;
        }
        block = (block << 6) | digit;
    }
    Some(block)
}

/// Digits only, no sign, no leading zero (so each block has one spelling).
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// RSM or FlyChat paging as the client asked for it, with ids as it sent them; they are
/// decoded when the query runs ([`Paging::resolve`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Paging {
    /// From the oldest matching message forward.
    #[default]
    First,
    /// The newest page.
    Last,
    /// Forward from this position in the result set.
    Index(usize),
    /// Forward from after the message this id names.
    After(String),
    /// Backward from before the message this id names.
    Before(String),
}

impl Paging {
    /// The store's page; `Err` with the id as sent when it names no message of this service.
    pub fn resolve(self, ids: &Ids) -> Result<Page, String> {
        let decode = |id: String| ids.decode(&id).ok_or(id);
        Ok(match self {
            Paging::First => Page::First,
            Paging::Last => Page::Last,
            Paging::Index(i) => Page::Index(i),
            Paging::After(id) => Page::After(decode(id)?),
            Paging::Before(id) => Page::Before(decode(id)?),
        })
    }
}

#[cfg(test)]
pub mod testing {
    use super::{Ids, KEY_BYTES};

    /// The ids of a service whose key is all `byte`: fixed, so that tests can write ids.
    pub fn ids(byte: u8) -> Ids {
        Ids::new(&[byte; KEY_BYTES])
    }
}

#[cfg(test)]
mod tests {
    use super::testing::ids;
    use super::*;

    #[test]
    fn ids_round_trip_in_both_forms() {
        let ids = Ids::new(&Ids::random_key().unwrap());
        for id in [0, 1, 2, 41, 42, 1_000_000, (1 << ID_BITS) - 1] {
            let text = ids.encode(id);
            assert_eq!(text.len(), BASE64_LEN, "{text}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text} is URL-safe"
            );
            assert_eq!(ids.decode(&text), Some(id), "{text}");
            let digits = ids.encode_digits(id);
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{digits}");
            assert_eq!(ids.decode(&digits), Some(id), "{digits}");
        }
    }

    #[test]
    fn the_network_is_a_permutation_each_way() {
        let ids = ids(7);
        for block in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(ids.unpermute(ids.permute(block)), block);
            assert_eq!(ids.permute(ids.unpermute(block)), block);
        }
    }

    #[test]
    fn distinct_keys_give_distinct_ids() {
        let (one, other) = (ids(1), ids(2));
        for id in 1..100 {
            assert_ne!(one.encode(id), other.encode(id), "{id}");
            // And an id of one service is (almost surely) none of the other's.
            assert_ne!(other.decode(&one.encode(id)), Some(id));
        }
        let random = Ids::new(&Ids::random_key().unwrap());
        let again = Ids::new(&Ids::random_key().unwrap());
        assert_ne!(random.encode(1), again.encode(1));
    }

    #[test]
    fn consecutive_ids_look_unrelated() {
        let ids = ids(3);
        let encoded: Vec<String> = (1..=1000).map(|id| ids.encode(id)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_ne!(sorted, encoded, "not in archive order");
        sorted.dedup();
        assert_eq!(sorted.len(), encoded.len(), "no two alike");
        let blocks: Vec<u64> = encoded.iter().map(|t| parse_base64(t).unwrap()).collect();
        let ascending = blocks.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(
            (400..600).contains(&ascending),
            "about half the steps go up: {ascending}"
        );
        assert!(
            blocks.windows(2).all(|w| w[0].abs_diff(w[1]) > 1),
            "no two consecutive archive ids give neighbouring blocks"
        );
        // Their digit forms are not consecutive numbers either.
        let digits: Vec<u64> = (1..=3)
            .map(|id| ids.encode_digits(id).parse().unwrap())
            .collect();
        assert_ne!(digits[1], digits[0] + 1);
        assert_ne!(digits[2], digits[1] + 1);
    }

    #[test]
    fn tampered_and_garbage_ids_decode_to_nothing() {
        let ids = ids(5);
        let good = ids.encode(42);
        assert_eq!(ids.decode(&good), Some(42));
        // Every one-character change of a real id.
        let mut accepted = 0;
        for i in 0..BASE64_LEN {
            for &c in ALPHABET.iter() {
                let mut bytes = good.clone().into_bytes();
                if bytes[i] == c {
                    continue;
                }
                bytes[i] = c;
                let tampered = String::from_utf8(bytes).unwrap();
                if ids.decode(&tampered).is_some() {
                    accepted += 1;
                }
            }
        }
        assert!(accepted <= 2, "{accepted} of ~700 altered ids decoded");
        for garbage in [
            "",
            "42",
            "0",
            "-1",
            "+42",
            "042",
            "abc",
            "not-an-id",
            "AAAAAAAAAAAA",
            "zzzzzzzzzzz",
            "AAAAAAAAAA=",
            "AAAAAAAAAA ",
            "ÅAAAAAAAAAA",
            "18446744073709551616",
        ] {
            assert_eq!(ids.decode(garbage), None, "{garbage:?}");
        }
        // Old integer ids in particular: at most a stray few of them are anyone's block.
        let small = (0..10_000).filter(|n| ids.decode(&n.to_string()).is_some());
        assert!(small.count() <= 3);
        // Of random blocks, about one in 65,536 passes the check.
        let passing = (0..100_000u64)
            .map(|n| ids.permute(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .filter(|&b| ids.decode(&b.to_string()).is_some())
            .count();
        assert!(passing <= 10, "{passing}");
    }

    #[test]
    fn invitation_tokens_are_keyed_and_name_one_invitation() {
        let ids = ids(8);
        let token = ids.invitation_token("coven@mix.localhost", "dave@localhost", 1_000);
        assert_eq!(token.len(), 22);
        assert_eq!(
            token,
            ids.invitation_token("coven@mix.localhost", "dave@localhost", 1_000),
            "the same invitation, the same token"
        );
        assert!(!token.contains("1000"));
        for other in [
            ids.invitation_token("coven@mix.localhost", "dave@localhost", 1_001),
            ids.invitation_token("coven@mix.localhost", "erin@localhost", 1_000),
            ids.invitation_token("hall@mix.localhost", "dave@localhost", 1_000),
            super::testing::ids(9).invitation_token("coven@mix.localhost", "dave@localhost", 1_000),
        ] {
            assert_ne!(token, other);
        }
    }

    #[test]
    fn paging_decodes_its_ids() {
        let ids = ids(9);
        assert_eq!(
            Paging::After(ids.encode(41)).resolve(&ids),
            Ok(Page::After(41))
        );
        assert_eq!(
            Paging::Before(ids.encode_digits(7)).resolve(&ids),
            Ok(Page::Before(7))
        );
        assert_eq!(Paging::Last.resolve(&ids), Ok(Page::Last));
        assert_eq!(Paging::Index(3).resolve(&ids), Ok(Page::Index(3)));
        assert_eq!(
            Paging::After("41".into()).resolve(&ids),
            Err("41".to_owned())
        );
    }
    /// Ids clients already hold must still decode, so the function never changes, whatever
    /// its implementation: these outputs were written by the first one (`siphasher`'s
    /// SipHash-2-4 over the 5-byte round input), under a fixed key.
    #[test]
    fn ids_are_what_they_always_were() {
        let key: [u8; KEY_BYTES] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) + 3);
        let ids = Ids::new(&key);
        for (id, base64, digits) in [
            (0, "J5z0HkYYg8X", "11417698698833039127"),
            (1, "NKDT5SXwslB", "15169055469533841729"),
            (2, "J7KJWS2PSiB", "11441998917772585089"),
            (41, "LQsjqVctkiW", "12982908666678495382"),
            (1_000_000, "HQDW3aXSb3b", "8359625898232233435"),
            (999_999_999, "HyjR0J14bPT", "8981100432678040531"),
            ((1 << ID_BITS) - 1, "Cgp1wnffRRw", "2894080672966448240"),
        ] {
            assert_eq!(ids.encode(id), base64, "{id}");
            assert_eq!(ids.encode_digits(id), digits, "{id}");
            assert_eq!(ids.decode(base64), Some(id), "{base64}");
            assert_eq!(ids.decode(digits), Some(id), "{digits}");
        }
        assert_eq!(
            ids.invitation_token("coven@mix.localhost", "dave@localhost", 1_000),
            "AUpObFpI5TMVhAU5fpeGtz"
        );
        // The service key of `testing::ids(6)`, whose ids the tests' fixed pages show.
        assert_eq!(super::testing::ids(6).encode(1), "OUAtwqMlD5u");
        assert_eq!(
            super::testing::ids(6).encode_digits(41),
            "13612068050289219520"
        );
    }
}
