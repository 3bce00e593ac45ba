//! The PostgreSQL backend: the same facts, snapshot and archive reads as the SQLite backend,
//! in a PostgreSQL database (`--database postgres://user@host:port/db`).
//!
//! One file per concern, as in `sqlite/`:
//! - `mod.rs`: connecting, the reader pool, taking the active instance's place (the lock and
//!   the fence) and the row helpers the others share;
//! - `migrate.rs`: schema versions (`schema.postgres.sql`);
//! - `write.rs`: the [`FactWriter`](super::FactWriter) side, with the fence check;
//! - `load.rs`: the snapshot the core starts from;
//! - `history.rs`: archive pages, message lookups and receipt states;
//! - `inspect.rs`: what `mixd admin` reads (channels, a channel, its archive, the check).
//!
//! **Crates.** The synchronous [`postgres`] client (the sfackler driver every Rust PostgreSQL
//! stack builds on; it wraps `tokio-postgres` and drives each connection on a small runtime of
//! its own): the writer is a plain thread and reads run on the service's reader threads, exactly where
//! the SQLite backend does its blocking I/O, so neither needs to know about async. The readers'
//! connections live in an [`r2d2`] pool (the pool Diesel uses; small, stable, no async), with a
//! manager of our own rather than `r2d2_postgres` so that each pooled connection keeps its
//! prepared statements (a history page is then one round trip, not a prepare and an execute).
//! The pool is bounded ([`READERS`]): PostgreSQL allows a hundred connections by default, and
//! tokio's blocking pool could otherwise open one per concurrent read. No TLS: the connection
//! is meant for loopback or a private network (`NoTls`).
//!
//! **One active instance.** Several mixd may point at one database; one is active. [`open`]
//! first takes a session-level advisory lock on a connection kept for nothing else (an
//! instance that cannot get it waits there, as a standby, and tries again every
//! [`STANDBY_POLL`]), then raises the epoch in the `fence` row and remembers it. Every write
//! transaction first updates that row *where the epoch is still ours*: the row lock orders it
//! against a newer instance's raise, so once a standby has taken over, an old active that
//! stalled (and lost its lock session) can no longer commit anything, even on a write
//! connection that stayed open. Such an instance stops (see `write.rs`). When the process
//! dies, PostgreSQL ends its sessions and the lock is free at once.
//!
//! **Runtimes.** The `postgres` client blocks on a runtime of its own, which tokio forbids
//! inside an async task (it panics), and a client that is dropped closes its connection the
//! same way. The service opens the store, loads the snapshot and drops the reader from async
//! code, so those few paths move to a plain thread when they are called from a runtime
//! ([`off_runtime`], [`Detached`]); archive reads come from the reader threads (`readers.rs`) and need not.

mod history;
mod inspect;
mod load;
mod migrate;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use postgres::{Client, NoTls, Statement};

use super::columns::bare;
use super::sqlite::Durability;
use super::{HistoryError, HistoryPage, HistoryQuery, MemberReceipt, PageReceipts, Reader};
use crate::core::{MessageRef, Snapshot};
pub use inspect::{inspect, PgInspector};

/// The most reader connections one instance opens.
const READERS: u32 = 8;

/// How often a standby tries to take the active instance's place.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// How long the active instance's lock session may stay silent before the server ends it and
/// a standby may take over; [`HEARTBEAT`] keeps it from being silent that long.
const LEASE: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The advisory lock the active instance holds: "mixd" in ASCII. One database serves one
/// mixd service (one component domain), with any number of standbys.
const ACTIVE_LOCK: i64 = 0x6d69_7864;

/// A connection and the statements prepared on it, by their SQL.
pub(super) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    fn new(client: Client) -> Self {
        Conn {
            client,
            statements: HashMap::new(),
        }
    }

    /// `sql`, prepared once per connection.
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// Opens reader connections for the pool.
struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    /// Sets PostgreSQL's `plan_cache_mode` to `force_generic_plan`: every statement a reader
    /// prepares is planned once per connection and kept, never planned again for its
    /// parameters (0.1–0.4 ms of planning a statement at 10 M messages, more than most of
    /// them take to run). `auto` kept a generic plan only where it costs no more than the
    /// custom ones, and a page or count `with` a sender, whose custom plans know how rare
    /// the sender is and estimate a few rows, never did: those were planned at each run.
    /// Each history statement is written so that its generic plan is the index scan it
    /// needs (`history.rs`); the readers' other statements look rows up by key.
    fn connect(&self) -> Result<Conn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute("SET plan_cache_mode = force_generic_plan")?;
        Ok(Conn::new(client))
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// Runs `f` on a plain thread when called from inside a tokio runtime, where the `postgres`
/// client may not block; directly otherwise.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Owns something that holds `postgres` clients, and drops it off any tokio runtime (a client
/// closes its connection by blocking).
pub(super) struct Detached<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> Detached<T> {
    fn new(value: T) -> Self {
        Detached(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for Detached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("present until dropped")
    }
}

impl<T: Send + 'static> std::ops::DerefMut for Detached<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            off_runtime(move || drop(value));
        }
    }
}

/// Whether `setting` names a PostgreSQL database rather than an SQLite file.
pub fn is_url(setting: &str) -> bool {
    setting.starts_with("postgres://") || setting.starts_with("postgresql://")
}

/// Connects to the database at `url`, waits to be the active instance, creates or migrates
/// the schema and raises the fence. `durability` maps to the writer session's
/// `synchronous_commit`: `normal` does not wait for the server's WAL flush (a commit survives
/// a crash of mixd, not one of the database server), `full` waits (the server's default).
pub fn open(url: &str, durability: Durability) -> anyhow::Result<(PgWriter, PgReader)> {
    let config = parse(url)?;
    off_runtime(|| {
        hold_active_place(take_active_place(&config)?, config.clone());
        let mut writer = connect(&config, "the writer")?;
        migrate::migrate(&mut writer)?;
        let sync = match durability {
            Durability::Normal => "off",
            Durability::Full => "on",
        };
        writer.batch_execute(&format!("SET synchronous_commit = {sync}"))?;
        let epoch: i64 = writer
            .query_one("UPDATE fence SET epoch = epoch + 1 RETURNING epoch", &[])?
            .get(0);
        tracing::info!(epoch, "active: this instance writes the database");
        Ok((
            PgWriter {
                config: config.clone(),
                sync,
                epoch,
                conn: Detached::new(Conn::new(writer)),
                exit_when_fenced: true,
            },
            readers(config.clone())?,
        ))
    })
}

/// Creates the schema at `url`, or brings it up to date, holding the active instance's lock
/// only while it does (waiting, as a standby would, while another instance is active): for
/// tools that fill a database before mixd first runs on it (the bench's seeder).
pub fn prepare(url: &str) -> anyhow::Result<()> {
    let config = parse(url)?;
    off_runtime(|| {
        let mut lock = take_active_place(&config)?;
        // Closing the session frees the lock.
        migrate::migrate(&mut lock)
    })
}

/// Reader connections beside a running mixd, never its lock: for tools that read a live
/// database (`mixd admin`, the bench). Their sessions are read-only.
pub fn read_only(url: &str) -> anyhow::Result<PgReader> {
    let mut config = parse(url)?;
    config.options("-c default_transaction_read_only=on");
    off_runtime(|| {
        // At once the server's own reason if it cannot be reached (the pool would only tell
        // that it timed out).
        drop(connect(&config, "a reader")?);
        readers(config)
    })
}

fn parse(url: &str) -> anyhow::Result<postgres::Config> {
    url.parse()
        .context("the database URL is not a PostgreSQL connection URL")
}

/// The pool of reader connections.
fn readers(config: postgres::Config) -> anyhow::Result<PgReader> {
    let pool = r2d2::Pool::builder()
        .max_size(READERS)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(10))
        .build(Manager { config })
        .context("opening reader connections")?;
    Ok(PgReader {
        pool: Detached::new(pool),
    })
}

fn connect(config: &postgres::Config, role: &str) -> anyhow::Result<Client> {
    config
        .connect(NoTls)
        .with_context(|| format!("connecting {role} to PostgreSQL"))
}

/// A connection holding the active instance's lock, once it could be had: a standby waits
/// here until the active instance is gone.
fn take_active_place(config: &postgres::Config) -> anyhow::Result<Client> {
    let mut lock = connect(config, "the lock session")?;
    let mut told = false;
    loop {
        if try_lock(&mut lock)? {
            return Ok(lock);
        }
        if !told {
            tracing::info!("another mixd is active on this database; standing by");
            told = true;
        }
        std::thread::sleep(STANDBY_POLL);
    }
}

/// Takes the lock on a session that keeps the lease (see [`hold_active_place`]).
fn try_lock(lock: &mut Client) -> anyhow::Result<bool> {
    // The server ends the session, and so frees the lock, once it has been idle this long:
    // an active instance that stalls loses its place (PostgreSQL 14 and later; older servers
    // keep the lock until the connection breaks).
    let _ = lock.batch_execute(&format!(
        "SET idle_session_timeout = '{}ms'",
        LEASE.as_millis()
    ));
    Ok(lock
        .query_one("SELECT pg_try_advisory_lock($1)", &[&ACTIVE_LOCK])?
        .get(0))
}

/// Keeps the lock's session busy enough that the server does not end it, on a thread of its
/// own for as long as the process lives: the lock goes when the process does (PostgreSQL ends
/// the session of a process that died), not before the link's last stanzas are out. Should the
/// session break (a server restart), it takes the lock again on a new one; if another instance
/// has it by then, this one is no longer active and stops.
fn hold_active_place(mut lock: Client, config: postgres::Config) {
    let spawned = std::thread::Builder::new()
        .name("mixd-lease".into())
        .spawn(move || loop {
            std::thread::sleep(HEARTBEAT);
            if lock.simple_query("").is_ok() {
                continue;
            }
            tracing::warn!("the lock session broke; taking the lock again");
            match connect(&config, "the lock session").and_then(|mut fresh| {
                let held = try_lock(&mut fresh)?;
                Ok((fresh, held))
            }) {
                Ok((fresh, true)) => lock = fresh,
                Ok((_, false)) => {
                    tracing::error!("stopping: another mixd took the active place");
                    std::process::exit(1);
                }
                // The server is away: the writer's commits fail meanwhile; try again.
                Err(error) => tracing::warn!(%error, "the lock session cannot reconnect yet"),
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the lease thread; the lock holds until a timeout");
    }
}

/// The writing connection, owned by the writer thread (its `FactWriter` side is in
/// `write.rs`). The lock's session lives on its own thread ([`hold_active_place`]).
pub struct PgWriter {
    config: postgres::Config,
    /// The session's `synchronous_commit`, set again after a reconnection.
    sync: &'static str,
    /// This instance's epoch in the `fence` row.
    epoch: i64,
    conn: Detached<Conn>,
    /// Whether a fenced commit ends the process (always, but in tests).
    exit_when_fenced: bool,
}

impl PgWriter {
    /// Whether another instance was active on this database before this one: the fence's
    /// epoch was raised before ours (the first instance ever gets epoch 1).
    pub fn follows_an_active(&self) -> bool {
        self.epoch > 1
    }
}

/// The readers' connections.
pub struct PgReader {
    pool: Detached<r2d2::Pool<Manager>>,
}

impl PgReader {
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.pool.get().context("no reader connection")?;
        f(&mut conn)
    }
}

/// The reads live with their concern: the start-up load in [`load`], the archive in
/// [`history`].
impl Reader for PgReader {
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        off_runtime(|| self.with_conn(load::snapshot))
    }

    fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
        history::page(self, q)
    }
    fn history_with_receipts(&self, q: &HistoryQuery) -> Result<PageReceipts, HistoryError> {
        history::page_with_receipts(self, q)
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
