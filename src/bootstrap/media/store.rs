//! Where uploaded media lives: `<media_dir>/<file token>` holds the bytes as the SDK sent them
//! (it may have encrypted them itself; mixd never looks inside) and `<file token>.json` what
//! serving them needs. A file token is 128 random bits in hex: names say nothing and cannot
//! be guessed. No rules here: who may write or read is decided by the routes, by asking.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The SDK cuts every file into parts of this size (its constant 5242880) and puts part `n`
/// at offset `(n - 1) * PART_BYTES`.
pub const PART_BYTES: u64 = 5 * 1024 * 1024;

/// What mixd records about a file when its upload starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// The group (the group JID's local part) the file was sent to; its members may read it.
    pub group: String,
    /// The user (local part) who uploads it; only they may write its parts.
    pub uploader: String,
    pub content_type: String,
    /// How many parts the SDK announced.
    pub parts: u64,
}

pub struct MediaStore {
    dir: PathBuf,
    pub max_bytes: u64,
}

impl MediaStore {
    /// Creates the directory if it is missing, so that a wrong path fails at start-up.
    pub fn open(dir: PathBuf, max_bytes: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("bootstrap: cannot create media_dir {dir:?}: {e}"))?;
        Ok(MediaStore { dir, max_bytes })
    }

    /// A fresh, unguessable file token.
    pub fn new_token() -> anyhow::Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether `token` has the shape of a file token (and so is safe as a file name).
    pub fn is_token(token: &str) -> bool {
        token.len() == 32
            && token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// The largest number of parts a file within the limit can have.
    pub fn max_parts(&self) -> u64 {
        self.max_bytes.div_ceil(PART_BYTES)
    }

    pub fn create(&self, token: &str, upload: &Upload) -> std::io::Result<()> {
        std::fs::File::create(self.dir.join(token))?;
        std::fs::write(self.meta(token), serde_json::to_vec(upload)?)
    }

    /// The record of `token`, if it names a stored file.
    pub fn describe(&self, token: &str) -> Option<Upload> {
        if !Self::is_token(token) {
            return None;
        }
        serde_json::from_slice(&std::fs::read(self.meta(token)).ok()?).ok()
    }

    /// Writes part `part` (from 1) of `token` at its place in the file.
    pub fn write_part(&self, token: &str, part: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join(token))?;
        file.seek(SeekFrom::Start((part - 1) * PART_BYTES))?;
        file.write_all(bytes)?;
        file.sync_data()
    }

    pub fn len(&self, token: &str) -> std::io::Result<u64> {
        Ok(std::fs::metadata(self.dir.join(token))?.len())
    }

    /// The bytes `first..=last` of `token` (`last` cut to the file's end).
    pub fn read(&self, token: &str, first: u64, last: u64) -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(self.dir.join(token))?;
        file.seek(SeekFrom::Start(first))?;
        let mut bytes = Vec::new();
        file.take(last.saturating_sub(first) + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn meta(&self, token: &str) -> PathBuf {
        self.dir.join(format!("{token}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_land_at_their_offsets_and_ranges_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::open(dir.path().join("media"), 3 * PART_BYTES).unwrap();
        let token = MediaStore::new_token().unwrap();
        assert!(MediaStore::is_token(&token));
        let upload = Upload {
            group: "coven".into(),
            uploader: "alice".into(),
            content_type: "image/png".into(),
            parts: 2,
        };
        store.create(&token, &upload).unwrap();
        assert_eq!(store.describe(&token), Some(upload));
        store.write_part(&token, 2, b"tail").unwrap();
        store
            .write_part(&token, 1, &vec![7u8; PART_BYTES as usize])
            .unwrap();
        assert_eq!(store.len(&token).unwrap(), PART_BYTES + 4);
        assert_eq!(
            store
                .read(&token, PART_BYTES - 1, PART_BYTES + 100)
                .unwrap(),
            b"\x07tail"
        );
        assert_eq!(store.max_parts(), 3);
    }

    #[test]
    fn only_token_shaped_names_are_looked_up() {
        for bad in [
            "",
            "../etc/passwd",
            "ABCDEF0123456789abcdef0123456789",
            "0.json",
        ] {
            assert!(!MediaStore::is_token(bad), "{bad}");
        }
        assert!(MediaStore::new_token().unwrap() != MediaStore::new_token().unwrap());
    }
}
