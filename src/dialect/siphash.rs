//! SipHash-2-4 of the id network's round input alone: five bytes (the round number, then the
//! 32-bit half, little-endian), under the service's key. The same function as `siphasher`'s
//! `SipHasher24::hash` of those five bytes (the tests compare them), written for that one
//! length.
//!
//! Why: an id is eight of these, and a MAM page of 50 shows 52 ids; through `siphasher`'s
//! general path (its byte buffer, its tail handling) the ids were a fifth of a MAM page's
//! rendering (docs/benchmarks.md, "A history page's rendering, cheaper"). Five bytes are
//! one message word with the length in its top byte, so the hash is the key's state, that
//! word, two compression rounds and four finalization rounds. The key's state is computed
//! once, with the key.

/// The SipHash state a key starts from.
#[derive(Clone)]
pub struct RoundKey {
    start: [u64; 4],
}

impl RoundKey {
    pub fn new(key: &[u8; 16]) -> RoundKey {
        let half = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"));
        let (k0, k1) = (half(0), half(8));
        RoundKey {
            start: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
        }
    }

    /// SipHash-2-4 of the bytes `[round, half as little-endian]`.
    pub fn hash(&self, round: u8, half: u32) -> u64 {
        const LENGTH: u64 = 5 << 56;
        let message = u64::from(round) | (u64::from(half) << 8) | LENGTH;
        let mut v = self.start;
        v[3] ^= message;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= message;
        v[2] ^= 0xff;
        for _ in 0..4 {
            sip_round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::RoundKey;
    use siphasher::sip::SipHasher24;

    /// The same hash as `siphasher`'s, for keys and inputs drawn from a fixed sequence, and
    /// the edges (zero and all-ones keys, rounds and halves).
    #[test]
    fn it_is_siphash_2_4() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut keys = vec![[0u8; 16], [0xff; 16]];
        keys.extend((0..200).map(|_| {
            let (a, b) = (next().to_le_bytes(), next().to_le_bytes());
            std::array::from_fn(|i| if i < 8 { a[i] } else { b[i - 8] })
        }));
        for key in keys {
            let (ours, theirs) = (RoundKey::new(&key), SipHasher24::new_with_key(&key));
            let inputs = [(0, 0), (7, u32::MAX), (255, 0x8000_0001)];
            let drawn = (0..50).map(|_| ((next() % 256) as u8, next() as u32));
            for (round, half) in inputs.into_iter().chain(drawn) {
                let [a, b, c, d] = half.to_le_bytes();
                assert_eq!(
                    ours.hash(round, half),
                    theirs.hash(&[round, a, b, c, d]),
                    "{key:?} {round} {half}"
                );
            }
        }
    }
}
