//! Persisting facts: the [`FactWriter`] side of the backend. Each fact becomes its
//! statements inside the batch's one transaction; receipts also say whether they completed a
//! message for its author. Which rows a fact changes is decided once for both backends
//! (`store/persist.rs`, `joins.rs`, `receipt.rs`); this file holds SQLite's statements for
//! them ([`Statements`], [`ReceiptRows`]), the runs of posts' and joins' multi-row statements
//! and what a batch does at its end (deferred look-up entries with the message counts, a
//! checkpoint).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use jid::{BareJid, FullJid};
use rusqlite::{params, OptionalExtension};

use super::{deferred, SqliteWriter};
use crate::core::{
    bare_text, AccessList, Corrected, Fact, Info, Micros, Nodes, Notice, Participant, Pending,
    Posted, Reacted, Retracted, Role, Settings, DEPARTED_OWNER_GRACE,
};
use crate::store::columns::{
    contacts_text, mode_code, writer_now, ACTION_REACTIONS, ACTION_RETRACTION,
};
use crate::store::joins::Joins;
use crate::store::persist::{persist, Statements};
use crate::store::receipt::{ReceiptRows, Times};
use crate::store::{Completion, FactWriter};

impl FactWriter for SqliteWriter {
    fn commit(&mut self, facts: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
        let tx = self.conn.transaction()?;
        let mut batch = Batch {
            tx: &tx,
            posts: Vec::new(),
            archived: Archived::default(),
            tail: &self.tail,
            erased: false,
        };
        let mut joins = Joins::default();
        let mut completions = Vec::new();
        for fact in facts {
            // Posts wait to be inserted together; anything else may refer to them, so they are
            // written first. Whatever follows a run of joins may change their rows (a leave,
            // a nick): the run is written before any other fact too.
            if !matches!(fact, Fact::Posted(_)) {
                batch.write_posts()?;
            }
            if !Joins::holds(fact) {
                joins.write(|joins| insert_joins(&tx, joins))?;
            }
            persist(&mut batch, fact, &mut joins, &mut completions)?;
        }
        batch.write_posts()?;
        joins.write(|joins| insert_joins(&tx, joins))?;
        let Batch {
            archived, erased, ..
        } = batch;
        let enter = archived.tail(&mut self.tail);
        if enter {
            let counted = self.tail.counted_with(&archived.counted);
            deferred::enter(&tx, deferred::Totals::Counted(&counted))?;
        }
        tx.commit()?;
        if enter {
            self.tail.entered();
        } else {
            self.tail.committed(&archived.counted);
        }
        if erased {
            // The old page versions holding retracted content live on in the WAL until a
            // checkpoint overwrites the database and truncates the log.
            let conn = &self.conn;
            self.checkpoints
                .in_turn(|| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))?;
        }
        Ok(completions)
    }

    fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
        SqliteWriter::id_key(self)
    }

    fn checkpointed(&mut self) -> Option<Duration> {
        self.checkpoints.writer_took()
    }
}

/// SQLite's statements for a batch's facts ([`Statements`]), in its transaction, and what
/// the batch leaves to do at its end (`commit`): the rows each channel's archive gained (for
/// the deferred entries and counts), and a checkpoint when a retraction erased content. Both
/// are noted by the statements of the facts that need them, not by a second look over the
/// batch.
struct Batch<'t, 'c, 'a> {
    tx: &'t rusqlite::Transaction<'c>,
    /// Consecutive posts not yet inserted ([`POSTS`]).
    posts: Vec<&'a Posted>,
    archived: Archived,
    /// The rows above the watermark before this batch: with `archived`, whether the batch
    /// ends with the fill.
    tail: &'t deferred::Tail,
    /// A retraction erased content: the WAL must be checkpointed to drop the old pages.
    erased: bool,
}

/// How many rows a batch adds to each channel's archive: what the channel's tail above the
/// watermark of deferred look-up entries grows by ([`deferred::Tail`]), and how many of them
/// its total counts, which the fill adds to it once committed. The channels' running
/// totals (`channels.message_count`) are not raised here but by the fill that moves the
/// watermark (`deferred::enter`): raised once per channel a batch, they were an `UPDATE` of a
/// channel's whole row for about every post into many small channels, and a page of
/// `channels` dirtied per forty channels (docs/benchmarks.md, "The writer's cost a message
/// posted into many small channels").
#[derive(Default)]
struct Archived {
    rows: BTreeMap<i64, u32>,
    /// Of `rows`, those a channel's total counts (not notices): what the fill adds to it.
    counted: BTreeMap<i64, u32>,
}

impl Archived {
    /// A notice's row.
    fn row(&mut self, channel: i64) {
        *self.rows.entry(channel).or_default() += 1;
    }

    /// A row the channel's total counts: a message, a retraction or a reaction.
    fn counted_row(&mut self, channel: i64) {
        self.row(channel);
        *self.counted.entry(channel).or_default() += 1;
    }

    /// Whether the batch ends with the fill already, with the rows it has so far: it gains
    /// rows, never loses them, so a yes stays a yes until the batch's end.
    fn fills(&self, tail: &deferred::Tail) -> bool {
        tail.reached(self.rows.iter())
    }

    /// Counts the batch's rows into `tail`; whether the deferred entries must be entered.
    fn tail(&self, tail: &mut deferred::Tail) -> bool {
        tail.add(self.rows.iter())
    }
}

/// A statement that writes many rows at once: `head`, then `row` once per row (comma
/// separated), then `tail`. [`Rows::run`] writes [`MANY_ROWS`] rows a statement and the rest
/// in statements of 16, 8, 4, 2 and 1 rows, as many as its count has bits: a statement run
/// a row (and the archive's AUTOINCREMENT bookkeeping, done once per statement) was a fixed
/// cost of every row, and a run's rest one by one about a sixth of a commit's posts in one
/// channel's fan-out (docs/benchmarks.md, "A group commit's last rows in a few statements,
/// its totals as counted").
struct Rows {
    head: &'static str,
    row: &'static str,
    tail: &'static str,
    /// The statement's text for 2^i rows, at `i`, up to [`MANY_ROWS`].
    sized: [OnceLock<String>; SIZES],
}

/// Rows per multi-row statement (at most 9 parameters a row, far below SQLite's limit).
const MANY_ROWS: usize = 32;
/// How many statement sizes a [`Rows`] has: 1, 2, 4, … [`MANY_ROWS`] rows.
const SIZES: usize = MANY_ROWS.trailing_zeros() as usize + 1;

impl Rows {
    const fn new(head: &'static str, row: &'static str, tail: &'static str) -> Rows {
        Rows {
            head,
            row,
            tail,
            sized: [const { OnceLock::new() }; SIZES],
        }
    }

    fn sql(&self, rows: usize) -> String {
        let mut sql = String::from(self.head);
        for row in 0..rows {
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(self.row);
        }
        sql.push_str(self.tail);
        sql
    }

    /// Writes `items`, each bound as one row by `bind`, in order: [`MANY_ROWS`] a statement,
    /// then the rest in statements of the powers of two its count is the sum of, largest
    /// first.
    fn run<T>(
        &self,
        tx: &rusqlite::Transaction,
        items: &[T],
        bind: impl Fn(&mut Binder<'_, '_>, &T) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut rest = items;
        while !rest.is_empty() {
            let size = (SIZES - 1).min(rest.len().ilog2() as usize);
            let (chunk, after) = rest.split_at(1 << size);
            let sql = self.sized[size].get_or_init(|| self.sql(1 << size));
            let mut statement = tx.prepare_cached(sql)?;
            let mut binder = Binder {
                statement: &mut statement,
                next: 1,
            };
            for item in chunk {
                bind(&mut binder, item)?;
            }
            statement.raw_execute()?;
            rest = after;
        }
        Ok(())
    }
}

/// Binds a multi-row statement's parameters in order.
struct Binder<'s, 'c> {
    statement: &'s mut rusqlite::CachedStatement<'c>,
    next: usize,
}

impl Binder<'_, '_> {
    fn bind(&mut self, value: impl rusqlite::ToSql) -> rusqlite::Result<&mut Self> {
        self.statement.raw_bind_parameter(self.next, value)?;
        self.next += 1;
        Ok(self)
    }
}

/// A run of consecutive posts, [`MANY_ROWS`] rows a statement: a post's own statement run
/// (and its AUTOINCREMENT bookkeeping, a scan and a rewrite of `sqlite_sequence`'s row) was a
/// fixed cost of every post. `OR FAIL`, not the default `OR ABORT`, and without the archive
/// id when the run's ids are the ones SQLite gives next ([`APPENDED`], nearly always): SQLite
/// gives a statement of several rows that may abort after changing some a statement journal,
/// a copy of every page it is about to change, so that it can undo that statement alone; a
/// post changes a page of each of the archive's indexes in its channel, and those copies cost
/// more than the statements spared (docs/benchmarks.md, "Storing posts into many small
/// channels"). The abort points were the `NOT NULL` checks (`OR FAIL` has none: every value
/// is bound from a post) and the explicit id's integer check (`OP_MustBeInt`, there even
/// for a `NULL`), which only a column list without the id leaves out. An error fails the
/// whole batch's transaction, which the writer rolls back, as the fill's
/// (`deferred::enter`). The look-up entries are deferred (`deferred.rs`): a row goes into the
/// tail's table ([`TAIL`]) and the media index if it shares a file only; but a run written in a
/// batch that ends with the fill anyway is entered at once (`deferred = 0`), which spares
/// the fill rewriting each of its rows in the same transaction (`Batch::write_posts`).
static POSTS: Rows = Rows::new(
    "INSERT OR FAIL INTO messages
     (id, channel, at, sender, nick, origin_id, client_id, media, content, deferred) VALUES ",
    "(?,?,?,?,?,?,?,?,?,?)",
    "",
);
/// [`POSTS`] for a run whose ids follow the archive's newest (`NEXT_ID`, one apart): SQLite
/// gives each row the next id itself (`OP_NewRowid`, which also spares the id's uniqueness
/// probe), and the statement keeps no journal. The ids are the core's all the same: checked
/// before (the run's ids are the ones SQLite gives next) and after (the last row's id).
static APPENDED: Rows = Rows::new(
    "INSERT OR FAIL INTO messages
     (channel, at, sender, nick, origin_id, client_id, media, content, deferred) VALUES ",
    "(?,?,?,?,?,?,?,?,?)",
    "",
);
/// The posts of a run not entered, into the tail's table, where readers find them until the
/// fill enters their look-up entries (`deferred.rs`): a commit into many channels dirties a
/// few of its pages rather than a leaf of `(channel, id)` a post. `OR FAIL`, as the posts':
/// no abort point, so no statement journal.
static TAIL: Rows = Rows::new(
    "INSERT OR FAIL INTO tail (channel, id) VALUES ",
    "(?,?)",
    "",
);
/// The id SQLite gives the next row of the archive (`OP_NewRowid` under AUTOINCREMENT): one
/// past the larger of the newest row's and the sequence's.
const NEXT_ID: &str = "SELECT 1 + max(
     coalesce((SELECT max(id) FROM messages), 0),
     coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0))";

/// Whether the archive ids `ids` (a run about to be inserted, in order) are the ones SQLite
/// gives next ([`NEXT_ID`], each one more than the last), so that the run may leave them to
/// SQLite ([`APPENDED`], [`NOTICES_APPENDED`]). No ids: false (no statement to choose).
fn appends(
    tx: &rusqlite::Transaction,
    mut ids: impl Iterator<Item = i64>,
) -> rusqlite::Result<bool> {
    let Some(first) = ids.next() else {
        return Ok(false);
    };
    let next: i64 = tx.prepare_cached(NEXT_ID)?.query_row([], |r| r.get(0))?;
    let mut last = first;
    Ok(first == next
        && ids.all(|id| {
            let follows = id == last + 1;
            last = id;
            follows
        }))
}

/// After a run that left its ids to SQLite: the last row must have been given `last`, the
/// run's last id. Cannot fail while SQLite gives ids as `NEXT_ID` says; were it to, the batch
/// fails rather than store rows under ids their readers were not told.
fn stored_up_to(tx: &rusqlite::Transaction, last: Option<i64>) -> rusqlite::Result<()> {
    match last {
        Some(last) if tx.last_insert_rowid() != last => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
            Some(format!(
                "archive rows stored up to id {}, not {last}",
                tx.last_insert_rowid()
            )),
        )),
        _ => Ok(()),
    }
}

/// Newcomers' rows: `OR FAIL` (a row already there fails the batch, as it would have
/// before) and no upsert, whose update SQLite checks for `NOT NULL` with `OE_Abort` whatever
/// the insert says; with the foreign key to `channels` deferred (schema 14) the statement
/// has no abort point and keeps no statement journal.
static NEWCOMERS: Rows = Rows::new(
    "INSERT OR FAIL INTO participants (channel, jid, id, nick, nodes, role, dialect, joined_at, cleared_upto) VALUES ",
    "(?,?,?,?,?,?,?,?,?)",
    "",
);
// Joining again updates the row and keeps what the join does not say (a mute); a
// participant joining twice in one statement is updated row after row, the last one standing.
static REJOINED: Rows = Rows::new(
    "INSERT INTO participants (channel, jid, id, nick, nodes, role, dialect, joined_at, cleared_upto) VALUES ",
    "(?,?,?,?,?,?,?,?,?)",
    " ON CONFLICT (channel, jid) DO UPDATE SET id = excluded.id, nick = excluded.nick,
     nodes = excluded.nodes, role = excluded.role, dialect = excluded.dialect,
     joined_at = excluded.joined_at, cleared_upto = excluded.cleared_upto",
);
static SETTLED: Rows = Rows::new(
    "DELETE FROM pending WHERE (channel, jid) IN (VALUES ",
    "(?,?)",
    ")",
);
/// The run's notices, as [`POSTS`] and [`APPENDED`] are and for the same reason: `OR FAIL`,
/// and the id left to SQLite when the notices' ids follow the archive ([`NOTICES_APPENDED`],
/// nearly always), so that the statement has no abort point and keeps no statement journal.
static NOTICES: Rows = Rows::new(
    "INSERT OR FAIL INTO messages (id, channel, at, sender, nick, content, notice, notice_target) VALUES ",
    "(?,?,?,?,'','',?,?)",
    "",
);
static NOTICES_APPENDED: Rows = Rows::new(
    "INSERT OR FAIL INTO messages (channel, at, sender, nick, content, notice, notice_target) VALUES ",
    "(?,?,?,'','',?,?)",
    "",
);
static ONLINE: Rows = Rows::new(
    "INSERT OR IGNORE INTO presence (channel, jid, resource) VALUES ",
    "(?,?,?)",
    "",
);

/// A participant's row, for [`NEWCOMERS`] and [`REJOINED`].
fn participant(b: &mut Binder<'_, '_>, (key, p): &(i64, &Participant)) -> rusqlite::Result<()> {
    b.bind(key)?
        .bind(p.jid.as_str())?
        .bind(&*p.id.hex())?
        .bind(p.nick.as_str())?
        .bind(p.nodes.0)?
        .bind(p.role as i64)?
        .bind(mode_code(p))?
        .bind(p.joined_at)?
        .bind(p.cleared_upto)?;
    Ok(())
}

/// Writes a run of joins ([`Joins`]), [`MANY_ROWS`] rows a statement.
fn insert_joins(tx: &rusqlite::Transaction, joins: &Joins) -> rusqlite::Result<()> {
    NEWCOMERS.run(tx, &joins.participants, participant)?;
    REJOINED.run(tx, &joins.rejoined, participant)?;
    SETTLED.run(tx, &joins.settled, |b, (key, jid)| {
        b.bind(key)?.bind(jid.as_str())?;
        Ok(())
    })?;
    let appended = appends(tx, joins.notices.iter().map(|n| n.id))?;
    let notices = if appended {
        &NOTICES_APPENDED
    } else {
        &NOTICES
    };
    notices.run(tx, &joins.notices, |b, n| {
        if !appended {
            b.bind(n.id)?;
        }
        b.bind(n.channel)?
            .bind(n.at)?
            .bind(n.actor.as_str())?
            .bind(n.kind as i64)?
            .bind(n.target.as_ref().map(|t| t.as_str()))?;
        Ok(())
    })?;
    if appended {
        stored_up_to(tx, joins.notices.last().map(|n| n.id))?;
    }
    ONLINE.run(tx, &joins.online, |b, (key, client)| {
        b.bind(key)?
            .bind(bare_text(client.as_str()))?
            .bind(client.resource().as_str())?;
        Ok(())
    })?;
    Ok(())
}

impl Batch<'_, '_, '_> {
    /// Inserts the run of posts ([`POSTS`], [`APPENDED`]) and empties it for the next.
    fn write_posts(&mut self) -> rusqlite::Result<()> {
        let Some(last) = self.posts.last() else {
            return Ok(());
        };
        let appended = appends(self.tx, self.posts.iter().map(|p| p.id))?;
        let rows = if appended { &APPENDED } else { &POSTS };
        // The batch's fill (`deferred::enter`) would rewrite each of these rows to enter
        // them: in one channel's fan-out it runs at nearly every commit, and the rewrite was
        // a descent and a leaf's record rewritten a post (docs/benchmarks.md, "Posts entered
        // at once"). Entered by their insert instead: readers take a row above the watermark
        // by its flag (`sqlite/history.rs`), so it is found through its look-up entries once,
        // and the fill still counts it into its channel's total and moves the watermark over
        // it in this transaction.
        let deferred = !self.archived.fills(self.tail);
        rows.run(self.tx, &self.posts, |b, post| {
            let s = &post.submission;
            if !appended {
                b.bind(post.id)?;
            }
            b.bind(post.channel)?
                .bind(post.at)?
                .bind(post.sender.as_str())?
                .bind(&post.nick)?
                .bind(&s.origin_id)?
                .bind(&s.client_id)?
                .bind(s.media)?
                .bind(&s.content)?
                .bind(deferred)?;
            Ok(())
        })?;
        if appended {
            stored_up_to(self.tx, Some(last.id))?;
        }
        if deferred {
            TAIL.run(self.tx, &self.posts, |b, post| {
                b.bind(post.channel)?.bind(post.id)?;
                Ok(())
            })?;
        }
        self.posts.clear();
        Ok(())
    }
}

impl<'a> Statements<'a> for Batch<'_, '_, 'a> {
    /// Joins the run of posts, written by the batch (`commit`).
    fn post(&mut self, post: &'a Posted) -> rusqlite::Result<()> {
        self.posts.push(post);
        self.archived.counted_row(post.channel);
        Ok(())
    }

    fn create_channel(
        &mut self,
        key: i64,
        name: &str,
        owner: &BareJid,
        at: Micros,
        listed: bool,
    ) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO channels (key, name, created_by, created_at, info_updated_at, listed)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            )?
            .execute(params![key, name, owner.as_str(), at, listed])?;
        self.tx
            .prepare_cached("INSERT INTO channel_owners (channel, jid) VALUES (?1, ?2)")?
            .execute(params![key, owner.as_str()])?;
        Ok(())
    }

    /// The channel's rows: those entered through `(channel, id)`, those not yet entered
    /// through the tail's table (`deferred.rs`), which loses them too.
    fn delete_archive(&mut self, key: i64) -> rusqlite::Result<()> {
        for table in ["receipts", "reactions"] {
            self.tx
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE message IN
                     (SELECT id FROM messages WHERE channel = ?1 AND deferred = 0
                      UNION ALL SELECT id FROM tail WHERE channel = ?1)"
                ))?
                .execute([key])?;
        }
        for statement in [
            "DELETE FROM messages WHERE id IN (SELECT id FROM tail WHERE channel = ?1)",
            "DELETE FROM tail WHERE channel = ?1",
            "DELETE FROM messages WHERE channel = ?1 AND deferred = 0",
        ] {
            self.tx.prepare_cached(statement)?.execute([key])?;
        }
        Ok(())
    }

    fn delete_channel(&mut self, key: i64) -> rusqlite::Result<()> {
        // The participants go by their foreign key's cascade, their clients here: presence
        // has no foreign key (schema 15: its probe cost every join a seek).
        for statement in [
            "DELETE FROM channels WHERE key = ?1",
            "DELETE FROM presence WHERE channel = ?1",
        ] {
            self.tx.prepare_cached(statement)?.execute([key])?;
        }
        Ok(())
    }

    fn keep_departed_owner(&mut self, key: i64, owner: &BareJid) -> rusqlite::Result<()> {
        let now = writer_now();
        self.tx
            .prepare_cached("DELETE FROM departed_owners WHERE at <= ?1")?
            .execute([now - DEPARTED_OWNER_GRACE])?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO departed_owners (channel, name, jid, at)
                 SELECT key, name, ?2, ?3 FROM channels WHERE key = ?1",
            )?
            .execute(params![key, owner.as_str(), now])?;
        Ok(())
    }

    fn delete_participant(&mut self, key: i64, jid: &BareJid) -> rusqlite::Result<()> {
        // Its clients with it: presence has no foreign key to cascade (schema 15).
        for statement in [
            "DELETE FROM participants WHERE channel = ?1 AND jid = ?2",
            "DELETE FROM presence WHERE channel = ?1 AND jid = ?2",
            "DELETE FROM channel_owners WHERE channel = ?1 AND jid = ?2",
        ] {
            self.tx
                .prepare_cached(statement)?
                .execute(params![key, jid.as_str()])?;
        }
        Ok(())
    }

    fn settings(&mut self, key: i64, settings: &Settings) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE channels SET join_policy = ?2, muted = ?3, max_members = ?4, jids_hidden = ?5
                 WHERE key = ?1",
            )?
            .execute(params![
                key,
                settings.policy as i64,
                settings.muted,
                settings.max_members.map(|m| m as i64),
                settings.jids_hidden
            ])?;
        Ok(())
    }

    fn access(
        &mut self,
        key: i64,
        list: AccessList,
        entry: &BareJid,
        present: bool,
    ) -> rusqlite::Result<()> {
        let sql = if present {
            "INSERT OR IGNORE INTO channel_access (channel, list, entry) VALUES (?1, ?2, ?3)"
        } else {
            "DELETE FROM channel_access WHERE channel = ?1 AND list = ?2 AND entry = ?3"
        };
        self.tx
            .prepare_cached(sql)?
            .execute(params![key, list as i64, entry.as_str()])?;
        Ok(())
    }

    fn mute(&mut self, key: i64, jid: &BareJid, until: Micros) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE participants SET muted_until = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, jid.as_str(), until])?;
        Ok(())
    }

    fn add_pending(&mut self, key: i64, p: &Pending) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO pending (channel, jid, kind, by, at, dialect) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![key, p.jid.as_str(), p.kind as i64, p.by.as_str(), p.at, p.dialect as i64])?;
        Ok(())
    }

    fn remove_pending(&mut self, key: i64, jid: &BareJid) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("DELETE FROM pending WHERE channel = ?1 AND jid = ?2")?
            .execute(params![key, jid.as_str()])?;
        Ok(())
    }

    fn nick(&mut self, key: i64, jid: &BareJid, nick: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("UPDATE participants SET nick = ?3 WHERE channel = ?1 AND jid = ?2")?
            .execute(params![key, jid.as_str(), nick])?;
        Ok(())
    }

    fn role(&mut self, key: i64, jid: &BareJid, role: Role) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("UPDATE participants SET role = ?3 WHERE channel = ?1 AND jid = ?2")?
            .execute(params![key, jid.as_str(), role as i64])?;
        Ok(())
    }

    fn owner(&mut self, key: i64, jid: &BareJid, owner: bool) -> rusqlite::Result<()> {
        let sql = if owner {
            "INSERT OR IGNORE INTO channel_owners (channel, jid) VALUES (?1, ?2)"
        } else {
            "DELETE FROM channel_owners WHERE channel = ?1 AND jid = ?2"
        };
        self.tx
            .prepare_cached(sql)?
            .execute(params![key, jid.as_str()])?;
        Ok(())
    }

    fn subscription(&mut self, key: i64, jid: &BareJid, nodes: Nodes) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("UPDATE participants SET nodes = ?3 WHERE channel = ?1 AND jid = ?2")?
            .execute(params![key, jid.as_str(), nodes.0])?;
        Ok(())
    }

    fn info(&mut self, key: i64, info: &Info) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE channels SET info_name = ?2, info_description = ?3, info_contacts = ?4,
                 info_updated_at = ?5, info_avatar = ?6, info_thumbnail = ?7, info_history = ?8,
                 info_avatar_type = ?9
                 WHERE key = ?1",
            )?
            .execute(params![
                key,
                info.name,
                info.description,
                contacts_text(&info.contacts),
                info.updated_at,
                info.avatar,
                info.thumbnail,
                info.history_visible,
                info.avatar_type
            ])?;
        Ok(())
    }

    fn notice(&mut self, notice: &'a Notice) -> rusqlite::Result<()> {
        self.archived.row(notice.channel);
        Ok(())
    }

    fn configured(&mut self, key: i64, at: Micros) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE channels SET config_updated_at = max(config_updated_at, ?2) WHERE key = ?1",
            )?
            .execute(params![key, at])?;
        Ok(())
    }

    fn clear_history(&mut self, key: i64, member: &BareJid, upto: i64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE participants SET cleared_upto = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, member.as_str(), upto])?;
        Ok(())
    }

    fn retract(&mut self, r: &'a Retracted) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE messages SET content = '', edited_at = NULL, retracted_at = ?2, retracted_by = ?3,
                 moderated = ?4, moderation_reason = ?5, retraction = ?6 WHERE id = ?1",
            )?
            .execute(params![
                r.message,
                r.at,
                r.by.as_str(),
                r.moderated.is_some(),
                r.moderated.clone().flatten(),
                r.id
            ])?;
        self.tx
            .prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, content, moderated, moderation_reason,
                 action, action_target) VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                r.id,
                r.channel,
                r.at,
                r.by.as_str(),
                r.by_nick,
                r.moderated.is_some(),
                r.moderated.clone().flatten(),
                ACTION_RETRACTION,
                r.message
            ])?;
        self.archived.counted_row(r.channel);
        self.erased = true;
        Ok(())
    }

    fn correct(&mut self, c: &Corrected) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE messages SET content = ?2, media = ?3, edited_at = ?4 WHERE id = ?1",
            )?
            .execute(params![
                c.message,
                c.submission.content,
                c.submission.media,
                c.at
            ])?;
        Ok(())
    }

    fn delete_reactions(&mut self, message: i64, member: Option<&BareJid>) -> rusqlite::Result<()> {
        match member {
            Some(member) => self
                .tx
                .prepare_cached("DELETE FROM reactions WHERE message = ?1 AND member = ?2")?
                .execute(params![message, member.as_str()])?,
            None => self
                .tx
                .prepare_cached("DELETE FROM reactions WHERE message = ?1")?
                .execute([message])?,
        };
        Ok(())
    }

    fn store_reactions(&mut self, r: &Reacted) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO reactions (message, member, reactions, at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![r.message, r.member.as_str(), r.reactions.join("\n"), r.at])?;
        Ok(())
    }

    fn archive_reactions(&mut self, r: &'a Reacted) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, content, action, action_target)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                r.id,
                r.channel,
                r.at,
                r.member.as_str(),
                r.nick,
                r.reactions.join("\n"),
                ACTION_REACTIONS,
                r.message
            ])?;
        self.archived.counted_row(r.channel);
        Ok(())
    }

    fn offline(&mut self, key: i64, client: &FullJid) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "DELETE FROM presence WHERE channel = ?1 AND jid = ?2 AND resource = ?3",
            )?
            .execute(params![
                key,
                client.to_bare().as_str(),
                client.resource().as_str()
            ])?;
        Ok(())
    }
}

/// SQLite's statements for [`crate::store::receipt::record`].
impl ReceiptRows for Batch<'_, '_, '_> {
    type Error = rusqlite::Error;

    fn times(&mut self, message: i64, member: &str) -> rusqlite::Result<Option<Times>> {
        self.tx
            .prepare_cached(
                "SELECT delivered_at, displayed_at FROM receipts WHERE message = ?1 AND member = ?2",
            )?
            .query_row(params![message, member], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
    }

    fn store(&mut self, message: i64, member: &str, times: Times) -> rusqlite::Result<()> {
        let (delivered, displayed) = times;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO receipts (message, member, delivered_at, displayed_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![message, member, delivered, displayed])?;
        Ok(())
    }

    fn count(&mut self, message: i64, column: &str, author: &str) -> rusqlite::Result<i64> {
        self.tx
            .prepare_cached(&format!(
                "SELECT count(*) FROM receipts WHERE message = ?1 AND {column} IS NOT NULL AND member != ?2"
            ))?
            .query_row(params![message, author], |row| row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::core::testing::{jid, text};
    use crate::core::{Groups, Nodes, NoticeKind, ReceiptKind, Submission};
    use crate::store::{HistoryQuery, Page, Reader};

    #[test]
    fn a_run_of_posts_that_follows_the_archive_has_no_point_where_it_aborts() {
        // As the fill's (`deferred.rs`): an abort point gives the multi-row insert a
        // statement journal. The explicit id is one (its integer check), so only the run
        // that leaves the id to SQLite has none.
        let (_dir, w, _r, _g) = coven();
        for rows in (0..super::SIZES).map(|size| 1 << size) {
            let appended = abort_points(&w.conn, &super::APPENDED.sql(rows));
            assert!(appended.is_empty(), "{rows} rows: {appended:?}");
            let explicit = abort_points(&w.conn, &super::POSTS.sql(rows));
            assert_eq!(explicit, ["MustBeInt"], "{rows} rows");
            // The run's entries into the tail's table, in the same batch: none either.
            let tail = abort_points(&w.conn, &super::TAIL.sql(rows));
            assert!(tail.is_empty(), "{rows} rows: {tail:?}");
        }
    }

    /// A batch that ends with the fill inserts its posts entered: the fill rewrites only the
    /// rows earlier batches left above the watermark, and every row ends entered below it.
    #[test]
    fn the_fill_rewrites_only_the_rows_of_earlier_batches() {
        use super::super::deferred::CHANNEL_TAIL;
        let (_dir, mut w, _r, mut g) = coven();
        // The coven's three notices and 50 posts above the watermark, short of the bound.
        post_many(&mut w, &mut g, 50);
        w.conn
            .execute_batch(
                "CREATE TEMP TABLE rewritten (id INTEGER);
                 CREATE TEMP TRIGGER rewrite AFTER UPDATE OF deferred ON messages
                 BEGIN INSERT INTO rewritten VALUES (new.id); END;",
            )
            .unwrap();
        let mut facts = Vec::new();
        for i in 51..=CHANNEL_TAIL as i64 {
            facts.extend(
                g.post("coven", &jid("bob@localhost"), text(&i.to_string()), i * 10)
                    .unwrap(),
            );
        }
        commit(&mut w, facts);
        let rewritten: Vec<i64> = w
            .conn
            .prepare("SELECT id FROM rewritten ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rewritten, (abs(1)..=abs(50)).collect::<Vec<_>>());
        let (deferred, upto): (i64, i64) = w
            .conn
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM messages WHERE deferred = 1), {}",
                    super::super::deferred::INDEXED_UPTO
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((deferred, upto), (0, abs(CHANNEL_TAIL as i64)));
    }

    #[test]
    fn a_run_of_notices_that_follows_the_archive_has_no_point_where_it_aborts() {
        // The joins' notices, as the posts above: `OR FAIL`, and no id column.
        let (_dir, w, _r, _g) = coven();
        for rows in (0..super::SIZES).map(|size| 1 << size) {
            let appended = abort_points(&w.conn, &super::NOTICES_APPENDED.sql(rows));
            assert!(appended.is_empty(), "{rows} rows: {appended:?}");
            let explicit = abort_points(&w.conn, &super::NOTICES.sql(rows));
            assert_eq!(explicit, ["MustBeInt"], "{rows} rows");
        }
    }

    #[test]
    fn a_run_of_newcomers_and_their_clients_has_no_point_where_it_aborts() {
        // Their foreign keys are checked at the commit (schema 14), the newcomers need no
        // upsert; joining again keeps the upsert, whose update checks `NOT NULL` by aborting.
        let (_dir, w, _r, _g) = coven();
        for rows in (0..super::SIZES).map(|size| 1 << size) {
            for (name, statement) in [("newcomers", &super::NEWCOMERS), ("online", &super::ONLINE)]
            {
                let aborts = abort_points(&w.conn, &statement.sql(rows));
                assert!(aborts.is_empty(), "{name}, {rows} rows: {aborts:?}");
            }
            let again = abort_points(&w.conn, &super::REJOINED.sql(rows));
            assert!(!again.is_empty(), "{rows} rows");
            assert!(!again.iter().any(|op| op == "FkCounter"), "{again:?}");
        }
    }

    #[test]
    fn notices_whose_ids_do_not_follow_the_archive_keep_their_ids() {
        // A post between two joins is written before the joins' run (at the second join),
        // so the run's notices are one below it and one above.
        let (_dir, mut w, r, mut g) = coven();
        let mut batch = g
            .join("coven", &jid("carol@localhost"), None, Nodes::ALL, 10)
            .unwrap()
            .1;
        batch.extend(
            g.post("coven", &jid("bob@localhost"), text("between"), 20)
                .unwrap(),
        );
        batch.extend(
            g.join("coven", &jid("dave@localhost"), None, Nodes::ALL, 30)
                .unwrap()
                .1,
        );
        commit(&mut w, batch);
        let with_notices = HistoryQuery {
            with_notices: true,
            ..query(Page::First, 10)
        };
        let page = r.history(&with_notices).unwrap();
        let stored: Vec<(i64, bool)> = page
            .messages
            .iter()
            .filter(|m| m.posted.id > abs(0))
            .map(|m| (m.posted.id, m.notice.is_some()))
            .collect();
        assert_eq!(stored, [(abs(1), true), (abs(2), false), (abs(3), true)]);
    }

    #[test]
    fn posts_whose_ids_do_not_follow_the_archive_keep_their_ids() {
        let (_dir, mut w, r, mut g) = coven();
        let first = g
            .post("coven", &jid("bob@localhost"), text("first"), 10)
            .unwrap();
        let second = g
            .post("coven", &jid("bob@localhost"), text("second"), 20)
            .unwrap();
        // The second first: its id is one past the one SQLite gives next, and the first's
        // then is below the newest row's.
        commit(&mut w, second);
        commit(&mut w, first);
        let page = r.history(&query(Page::First, 10)).unwrap();
        let stored: Vec<(i64, String)> = page
            .messages
            .iter()
            .map(|m| (m.posted.id, m.posted.submission.content.clone()))
            .collect();
        assert_eq!(
            stored,
            [
                (abs(1), text("first").content),
                (abs(2), text("second").content)
            ]
        );
    }

    #[test]
    fn posts_of_one_batch_are_stored_in_order_across_statements_of_every_size() {
        let (_dir, mut w, r, mut g) = coven();
        // 32 + 16 + 8 + 4 + 2 + 1: a statement of each size.
        let posts = 2 * super::MANY_ROWS as i64 - 1;
        let mut facts = Vec::new();
        for i in 1..=posts {
            facts.extend(
                g.post("coven", &jid("bob@localhost"), text(&i.to_string()), i * 10)
                    .unwrap(),
            );
        }
        // A fact that is not a post in the middle: the run before it is written first.
        facts.extend(
            g.set_nick("coven", &jid("bob@localhost"), Some("robert"))
                .unwrap()
                .1,
        );
        facts.extend(
            g.post("coven", &jid("bob@localhost"), text("last"), 1000)
                .unwrap(),
        );
        commit(&mut w, facts);
        let page = r.history(&query(Page::First, 100)).unwrap();
        let bodies: Vec<String> = page
            .messages
            .iter()
            .map(|m| m.posted.submission.content.clone())
            .collect();
        let mut expected: Vec<String> = (1..=posts).map(|i| text(&i.to_string()).content).collect();
        expected.push(text("last").content);
        assert_eq!(bodies, expected);
    }

    #[test]
    fn retraction_erases_content_from_the_files() {
        let (dir, mut w, r, mut g) = coven();
        let secret = Submission {
            content: "<body>SECRET-PAYLOAD-42</body>".into(),
            ..Submission::default()
        };
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), secret, 1).unwrap(),
        );
        let m = target(&r, "1");
        commit(
            &mut w,
            g.retract("coven", &jid("bob@localhost"), Some(&m), None, 5)
                .unwrap(),
        );
        let page = r.history(&query(Page::First, 10)).unwrap();
        let tombstone = page.messages[0].retraction.as_ref().unwrap();
        assert_eq!((tombstone.at, tombstone.moderated.clone()), (5, None));
        assert_eq!(page.messages[0].posted.submission.content, "");
        assert!(target(&r, "1").retracted);
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(!bytes.windows(17).any(|w| w == b"SECRET-PAYLOAD-42"));
        }
    }

    #[test]
    fn receipts_complete_once_every_member_has_the_message() {
        let (_dir, mut w, r, mut g) = coven();
        commit(
            &mut w,
            g.join("coven", &jid("carol@localhost"), None, Nodes::ALL, 4)
                .unwrap()
                .1,
        );
        commit(
            &mut w,
            g.post("coven", &jid("alice@localhost"), text("hi"), 5)
                .unwrap(),
        );
        let m = target(&r, "o-hi");
        let receipt = |g: &mut Groups, who: &str, kind| {
            g.receipt("coven", &jid(who), Some(&m), kind, 6).unwrap()
        };
        assert!(commit(
            &mut w,
            receipt(&mut g, "bob@localhost", ReceiptKind::Delivered)
        )
        .is_empty());
        // Carol's "seen" implies delivered: delivered to everyone, not yet seen by everyone.
        let done = commit(
            &mut w,
            receipt(&mut g, "carol@localhost", ReceiptKind::Displayed),
        );
        assert_eq!(
            done.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [ReceiptKind::Delivered]
        );
        assert_eq!(done[0].author, jid("alice@localhost"));
        assert!(commit(
            &mut w,
            receipt(&mut g, "carol@localhost", ReceiptKind::Displayed)
        )
        .is_empty());
        let done = commit(
            &mut w,
            receipt(&mut g, "bob@localhost", ReceiptKind::Displayed),
        );
        assert_eq!(
            done.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [ReceiptKind::Displayed]
        );
        let state = r.receipts(m.id).unwrap();
        assert_eq!(state.len(), 2);
        assert!(state
            .iter()
            .all(|s| s.delivered_at.is_some() && s.displayed_at.is_some()));
    }

    /// A batch of joins is written as runs of many rows (`Joins`); whatever else the batch
    /// holds between them must still see them in order. Stored, the batch loads back as the
    /// core has it.
    #[test]
    fn a_batch_of_joins_with_other_facts_between_them_loads_back_as_decided() {
        let (_dir, mut w, r, mut g) = coven();
        g.rules.max_members = 1000;
        let alice = jid("alice@localhost");
        let users: Vec<jid::Jid> = (0..40)
            .map(|n| format!("user{n}@localhost/phone").parse().unwrap())
            .collect();
        let invited = users[3].to_bare();
        // Invited too, but not joining: the joins settle the invitation of the one who
        // joins, and only it.
        let waiting = jid("user99@localhost");
        commit(
            &mut w,
            g.invite("coven", &alice, &[invited.clone(), waiting.clone()], 3)
                .unwrap()
                .1,
        );
        let mut batch = Vec::new();
        // More joins than one multi-row statement takes, each client online with its join.
        // At times in the order of joining, as the store loads them back.
        for (at, user) in (10..).zip(&users) {
            let joined = g.join_from("coven", user, None, Nodes::MESSAGES, at);
            batch.extend(joined.unwrap().1);
        }
        // One joins again (the same row twice in a run), one leaves (which ends the run),
        // one more joins after the leave, and a client goes offline.
        let again = &users[5];
        batch.extend(
            g.join_from("coven", again, Some("fifth"), Nodes::ALL, 60)
                .unwrap()
                .1,
        );
        batch.extend(g.leave("coven", &users[7].to_bare(), 61).unwrap());
        batch.extend(
            g.join("coven", &users[7].to_bare(), None, Nodes::ALL, 62)
                .unwrap()
                .1,
        );
        let offline = users[9].try_as_full().unwrap().clone();
        batch.extend(g.presence("coven", &offline, false).unwrap());
        commit(&mut w, batch);
        let stored = r.snapshot().unwrap();
        let decided = g.channel("coven").unwrap();
        assert_eq!(stored.channels[0].participants, decided.participants);
        assert_eq!(
            stored.channels[0]
                .participants
                .iter()
                .map(|p| p.online.len())
                .sum::<usize>(),
            users.len() - 2,
            "the leaver's client went with it, and one went offline"
        );
        assert!(stored.channels[0].pending(&invited).is_none());
        assert!(stored.channels[0].pending(&waiting).is_some());
        let mut notices = query(Page::First, 100);
        notices.with_notices = true;
        let added = r
            .history(&notices)
            .unwrap()
            .messages
            .iter()
            .filter(|m| matches!(m.notice, Some((NoticeKind::Added, _))))
            .count();
        assert_eq!(
            added,
            2 + users.len() + 1,
            "alice, bob, the users, the one back"
        );
    }

    #[test]
    fn presence_is_kept_and_goes_with_its_participant() {
        let (_dir, mut w, r, mut g) = coven();
        let online = |r: &crate::store::sqlite::SqliteReader, who: &str| {
            let snap = r.snapshot().unwrap();
            snap.channels[0]
                .participant(&jid(who))
                .map(|p| p.online.iter().cloned().collect::<Vec<_>>())
        };
        let phone = jid::FullJid::new("bob@localhost/phone").unwrap();
        let pc = jid::FullJid::new("bob@localhost/pc").unwrap();
        let mut facts = g.presence("coven", &phone, true).unwrap();
        facts.extend(g.presence("coven", &pc, true).unwrap());
        commit(&mut w, facts);
        assert_eq!(
            online(&r, "bob@localhost"),
            Some(vec![pc.clone(), phone.clone()])
        );
        commit(&mut w, g.bounced(&pc));
        assert_eq!(online(&r, "bob@localhost"), Some(vec![phone.clone()]));
        // Joining again keeps the row; leaving takes it away.
        commit(
            &mut w,
            g.join("coven", &jid("bob@localhost"), None, Nodes::MESSAGES, 5)
                .unwrap()
                .1,
        );
        assert_eq!(online(&r, "bob@localhost"), Some(vec![phone.clone()]));
        commit(&mut w, g.leave("coven", &jid("bob@localhost"), 6).unwrap());
        assert_eq!(online(&r, "bob@localhost"), None);
        commit(
            &mut w,
            g.join("coven", &jid("bob@localhost"), None, Nodes::ALL, 7)
                .unwrap()
                .1,
        );
        assert_eq!(online(&r, "bob@localhost"), Some(vec![]));
        // And the channel's deletion takes every row.
        let alice = jid::FullJid::new("alice@localhost/laptop").unwrap();
        commit(&mut w, g.presence("coven", &alice, true).unwrap());
        commit(
            &mut w,
            g.destroy(&jid("alice@localhost"), "coven", 9).unwrap(),
        );
        assert!(r.snapshot().unwrap().channels.is_empty());
        let rows: i64 = w
            .conn
            .query_row("SELECT count(*) FROM presence", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn destroy_removes_the_archive() {
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 2);
        commit(
            &mut w,
            g.destroy(&jid("alice@localhost"), "coven", 9).unwrap(),
        );
        assert!(r.snapshot().unwrap().channels.is_empty());
        assert_eq!(r.history(&query(Page::First, 5)).unwrap().count, 0);
        assert_eq!(r.snapshot().unwrap().last_message_id, abs(2));
    }

    #[test]
    fn a_kept_archive_outlives_its_channel() {
        let (_dir, mut w, r, mut g) = coven();
        g.rules.keep_archive = true;
        post_many(&mut w, &mut g, 2);
        commit(
            &mut w,
            g.destroy(&jid("alice@localhost"), "coven", 9).unwrap(),
        );
        assert!(r.snapshot().unwrap().channels.is_empty());
        let mut all = query(Page::First, 10);
        all.with_notices = true;
        let kept = r.history(&all).unwrap();
        assert_eq!(
            kept.messages.len(),
            6,
            "created, two joins, two messages, deleted"
        );
        assert!(matches!(
            kept.messages.last().unwrap().notice,
            Some((NoticeKind::Deleted, _))
        ));
    }
}
