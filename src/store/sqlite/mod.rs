//! The SQLite backend: one file, WAL, one writing connection and a pool of readers.
//!
//! One file per concern, so that a change to how facts are written, how state is loaded or
//! how the archive is read touches only its own:
//! - `mod.rs`: opening the database, connections and their pragmas, the writer and reader
//!   handles, and the row helpers the others share;
//! - `write.rs`: the [`FactWriter`](super::FactWriter) side: each fact's statements, receipts
//!   and the completions they make;
//! - `deferred.rs`: posts' look-up entries (by sender, client id, origin-id), entered in
//!   bulk by the writer after the posts, and the watermark readers read the rest above;
//! - `wal.rs`: when the WAL is checkpointed, and its write-back started ahead of that;
//!   `checkpoint.rs`: the checkpoints, mostly on a thread of their own;
//! - `pcache.rs`: SQLite's page cache, wrapped so that a commit skips a truncation that
//!   would drop nothing; `vfs.rs`: SQLite's file layer, wrapped so that a commit's WAL frames
//!   are written a few calls a commit rather than two a frame;
//! - `load.rs`: the snapshot the core starts from;
//! - `history.rs`: archive pages, message lookups and receipt states;
//! - for the operator (`mixd admin`), beside a running mixd: `inspect.rs` (channels listed,
//!   shown, their archive read: `store::inspect::Inspector`), `check.rs` (integrity, then the
//!   consistency between tables both stores check),
//!   `backup.rs` (online backup, restore).

mod backup;
mod check;
mod checkpoint;
mod deferred;
mod history;
mod inspect;
mod load;
mod pcache;
#[cfg(test)]
pub(crate) mod testing;
mod vfs;
mod wal;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use jid::BareJid;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::columns::{id_key_from, new_id_key};
pub use backup::{backup, restore};
pub use inspect::{inspect, read_only, SqliteInspector};

use super::{HistoryError, HistoryPage, HistoryQuery, MemberReceipt, Reader};
use crate::core::{MessageRef, Snapshot};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=NORMAL`: a commit survives a crash of mixd (the WAL is in the OS), not a
    /// power cut. What the benchmarks assume.
    #[default]
    Normal,
    /// `synchronous=FULL`: every (group) commit is fsynced and survives a power cut too.
    Full,
}

/// A connection with `flags`, in SQLite's multi-thread mode (`NO_MUTEX`), as rusqlite's own
/// `open` makes them: a `Connection` is used by one thread at a time (it is not `Sync`), so
/// SQLite's serialized mode only added a mutex lock and unlock to every call — every column
/// of every row read (13 % of the start-up's CPU at ten million memberships).
///
/// The first open installs the page cache's wrapper (`pcache.rs`), which must precede
/// SQLite's initialization, then the VFS whose WAL files gather their frames (`vfs.rs`).
fn open_connection(path: &Path, flags: OpenFlags) -> anyhow::Result<Connection> {
    pcache::install();
    vfs::install();
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Plans that never depend on a bound value. Without this, SQLite marks a statement
    // "prepare again when this parameter is rebound" as soon as its planner looks at a bound
    // value (`channel = ?` is weighed as a possible 0 or 1 in every plan it does not index),
    // and `sqlite3_clear_bindings`, which rusqlite's statement cache calls on every
    // statement it takes back, then expires it: every cached statement was parsed and
    // planned again at its next use (a tenth of the readers' time: docs/benchmarks.md,
    // "History pages, fewer steps", issue 16). mixd gathers no statistics and binds no `LIKE`
    // pattern, so no plan had anything to gain from the values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

/// Opens (creating and migrating if needed) the database at `path`.
pub fn open(path: &Path, durability: Durability) -> anyhow::Result<(SqliteWriter, SqliteReader)> {
    let mut conn = open_connection(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "could not switch {} to WAL",
        path.display()
    );
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    // Checkpoints every 8,192 pages, the WAL sent towards the disk ahead of them.
    let checkpoints = wal::keep(&mut conn, path, durability)?;
    // Erased content (retractions) is overwritten on disk, not left in free pages.
    conn.pragma_update(None, "secure_delete", true)?;
    // Room for every statement a batch of mixed facts runs (each multi-row statement in
    // each of its six sizes, `write.rs`, `Rows`: 54 at most, and some 40 others), so that
    // none is prepared again within a batch.
    conn.set_prepared_statement_cache_capacity(128);
    super::migrate::migrate(&mut conn)?;
    // A multi-row statement that may abort half-way keeps a statement journal (SQLite must be
    // able to undo that statement alone; the joins' runs do, posts' no longer: `write.rs`,
    // `POSTS`). Past 64 KiB
    // (16 pages; posts into 32 channels dirty about 100) that journal spilled into a temporary
    // file, a write call per page: 7 % of mixd's CPU posting into 1,000 channels
    // (docs/benchmarks.md, "Posts into small channels, per page written"). Set after the
    // migrations, whose index builds sort more than should be held in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Whatever a crash left above the watermark is entered now, so that the writer's count
    // of the rows above it starts at none.
    let tx = conn.transaction()?;
    deferred::enter(&tx, deferred::Totals::Unknown)?;
    tx.commit()?;
    Ok((
        SqliteWriter {
            conn,
            tail: deferred::Tail::default(),
            checkpoints,
        },
        SqliteReader::new(path),
    ))
}

/// The one writing connection, owned by the writer thread (its `FactWriter` side is in
/// `write.rs`).
pub struct SqliteWriter {
    conn: Connection,
    /// The rows above the watermark of deferred look-up entries, by channel.
    tail: deferred::Tail,
    /// The checkpoint thread's turn, which the writer's own checkpoints wait for.
    checkpoints: std::sync::Arc<checkpoint::Checkpoints>,
}

impl SqliteWriter {
    /// The secret of the opaque ids clients see (`dialect::ids`): 16 bytes made from the OS's
    /// randomness the first time the database is opened, then read back, so that ids stay
    /// the same across restarts and differ between databases.
    pub fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
        let read = |conn: &Connection| -> anyhow::Result<Option<Vec<u8>>> {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE name = 'id_key'", [], |r| {
                    r.get(0)
                })
                .optional()?)
        };
        let stored = match read(&self.conn)? {
            Some(stored) => stored,
            None => {
                let key = new_id_key()?;
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta (name, value) VALUES ('id_key', ?1)",
                    [&key[..]],
                )?;
                read(&self.conn)?.context("the id key was not stored")?
            }
        };
        id_key_from(stored)
    }
}

/// How much of the database a reader maps: the whole file, however large the archive grows
/// (1 TiB of address space, of which only the file's size is mapped). SQLite caps the
/// mapping at 2 GiB unless built with a larger `SQLITE_MAX_MMAP_SIZE`, which
/// `.cargo/config.toml` sets to this. With a mapping smaller than the file, the pages past it
/// — at the end of the file, so the newest messages' rows and index entries, which history
/// reads most — were each a `pread` into the connection's small page cache: at ten million
/// messages (1.3 GB) a sixth of the pages, and pages `with` a sender there took a quarter
/// longer (docs/benchmarks.md, "History's tail at 10 M").
const READER_MAP_BYTES: i64 = 1 << 40;

/// A reader's connection: read-only; the archive mapped into memory, so that a page's rows
/// are read from the OS's cache without a system call each; room for the statements of every
/// kind of history query (their text varies with the filters), so that each stays prepared.
fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.pragma_update(None, "mmap_size", READER_MAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Runs `read`'s statements on `conn` in one read transaction: they see one snapshot of the
/// archive (a page's rows and its count agree), and take the WAL's read lock once rather
/// than once a statement (a `fcntl` each way: a page in a time window runs a dozen).
fn in_one_read<T>(conn: &Connection, read: impl FnOnce() -> T) -> anyhow::Result<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let result = read();
    // Ended whatever `read` returned: a transaction left open would hold its snapshot, and
    // keep the WAL from being checkpointed past it, until the connection's next read.
    if let Err(error) = conn.prepare_cached("COMMIT")?.execute([]) {
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        return Err(error.into());
    }
    Ok(result)
}

/// The readers' connections, opened read-only on demand and kept for the next query.
pub struct SqliteReader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    fn new(path: &Path) -> Self {
        SqliteReader {
            path: path.to_owned(),
            pool: Mutex::new(Vec::new()),
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| anyhow::anyhow!("reader pool poisoned"))?
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(conn);
        }
        result
    }
}

/// The reads live with their concern: the start-up load in [`load`], the archive in
/// [`history`].
impl Reader for SqliteReader {
    /// On a connection of its own, without the readers' mapping: the load reads every page
    /// of the state's tables once, and mapped, each page it touched would stay in mixd's
    /// resident memory as long as the pooled connection lives (the whole 800 MB file at ten
    /// million memberships).
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        load::snapshot(&open_connection(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)
    }

    fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
        history::page(self, q)
    }

    fn find_message(
        &self,
        channel: i64,
        id: Option<i64>,
        sent: &str,
    ) -> anyhow::Result<Option<MessageRef>> {
        self.with_conn(|conn| history::find_message(conn, channel, id, sent))
    }

    fn receipts_of(&self, messages: &[i64]) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
        self.with_conn(|conn| history::receipts_of(conn, messages))
    }
}

/// A bare JID from a text column, shared by every read; one that does not parse fails the
/// read as a conversion error rather than panicking.
fn bare(text: String) -> rusqlite::Result<BareJid> {
    BareJid::new(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_ends_its_transaction_whatever_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (_w, r) = open(&dir.path().join("a.db"), Durability::Normal).unwrap();
        r.with_conn(|conn| {
            let failed: anyhow::Result<i64> = in_one_read(conn, || {
                assert!(!conn.is_autocommit(), "inside one transaction");
                conn.query_row("SELECT count(*) FROM no_such_table", [], |row| row.get(0))
                    .map_err(Into::into)
            })?;
            assert!(failed.is_err());
            assert!(conn.is_autocommit(), "ended after a failed read");
            let counted = in_one_read(conn, || {
                conn.query_row("SELECT count(*) FROM messages", [], |row| {
                    row.get::<_, i64>(0)
                })
            })??;
            assert_eq!(counted, 0);
            assert!(conn.is_autocommit());
            Ok(())
        })
        .unwrap();
    }

    /// SQLite quietly lowers `mmap_size` to its build's cap (2 GiB by default): a reader
    /// must map an archive larger than that whole, so the cap must be raised too.
    #[test]
    fn a_reader_maps_the_whole_file_past_sqlites_default_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (_w, r) = open(&dir.path().join("a.db"), Durability::Normal).unwrap();
        let mapped: i64 = r
            .with_conn(|conn| Ok(conn.query_row("PRAGMA mmap_size", [], |row| row.get(0))?))
            .unwrap();
        assert_eq!(mapped, READER_MAP_BYTES);
    }

    #[test]
    fn the_id_key_is_made_once_per_database_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (mut w, _) = open(&path, Durability::Normal).unwrap();
        let key = w.id_key().unwrap();
        assert_eq!(w.id_key().unwrap(), key);
        drop(w);
        let (mut reopened, _) = open(&path, Durability::Normal).unwrap();
        assert_eq!(reopened.id_key().unwrap(), key, "the same after a restart");
        let (mut other, _) = open(&dir.path().join("b.db"), Durability::Normal).unwrap();
        assert_ne!(
            other.id_key().unwrap(),
            key,
            "another database, another key"
        );
        assert_ne!(key, [0; 16]);
    }
}
