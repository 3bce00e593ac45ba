//! Deferred look-up entries. A post is stored with its row and its `(channel, id)` entry
//! only (`messages.deferred = 1`); its entries in the indexes that find a message by sender
//! (history `with`), by client id and by origin-id (`find_message`) are entered later, many
//! at once, by an `UPDATE` of the rows above the watermark (`meta.indexed_upto`) in the
//! transaction of a group commit. Entered one post at a time, each post dirtied a page of
//! each of those indexes in its channel (most of the store's CPU once channels hold a few
//! hundred messages: docs/benchmarks.md, "Storing posts into many small channels"); entered
//! together, a channel's new entries share their page.
//!
//! Readers find every row: the indexes for the rows entered (`deferred = 0`), and a channel's
//! rows above the watermark through `(channel, id)`. The writer keeps that tail short: it
//! enters the entries as soon as one channel has [`CHANNEL_TAIL`] rows above the watermark
//! or the service [`TOTAL_TAIL`], so no reader walks more than a few dozen rows of it.
//! Counted are every row a channel's archive gains (notices and actions too, which are
//! entered at once), since the tail's walk passes them all. The watermark and the rows'
//! flags change in the same transaction: a crash leaves rows above the watermark, which the
//! next fill enters (at the latest when the writer opens).

use std::collections::HashMap;

use rusqlite::Connection;

/// A channel's rows above the watermark from which the writer enters the deferred entries.
pub(super) const CHANNEL_TAIL: u32 = 64;
/// The service's rows above the watermark from which the writer enters them.
pub(super) const TOTAL_TAIL: u32 = 8192;

/// The watermark as an expression for a statement: every row at or below it is entered. A
/// macro too, for statements that are constants (`concat!`).
macro_rules! indexed_upto {
    () => {
        "(SELECT value FROM meta WHERE name = 'indexed_upto')"
    };
}
pub(super) use indexed_upto;
pub(super) const INDEXED_UPTO: &str = indexed_upto!();

/// The fill: every row above the watermark gets its look-up entries ([`enter`]).
const FILL: &str = concat!(
    "UPDATE OR FAIL messages SET deferred = 0 WHERE id > ",
    indexed_upto!(),
    " AND deferred = 1"
);

/// The rows each channel's archive gained above the watermark, as the writer counts them.
#[derive(Default)]
pub(super) struct Tail {
    channels: HashMap<i64, u32>,
    total: u32,
}

impl Tail {
    /// Counts `rows` more rows of `channel`'s archive above the watermark; says whether the
    /// deferred entries must now be entered. Counted before the batch commits: if it does
    /// not, the count is only higher than the rows are, and the entries are entered early.
    pub(super) fn add(&mut self, channel: i64, rows: u32) -> bool {
        let held = self.channels.entry(channel).or_default();
        *held += rows;
        self.total += rows;
        *held >= CHANNEL_TAIL || self.total >= TOTAL_TAIL
    }

    /// The entries were entered and committed: no row is above the watermark.
    pub(super) fn entered(&mut self) {
        self.channels.clear();
        self.total = 0;
    }
}

/// Enters the look-up entries of every row above the watermark (a walk of the rowid from
/// it: the rows are the archive's last), and raises the watermark to the newest row.
///
/// `OR FAIL`, not the default `OR ABORT`: SQLite gives a statement that may abort after
/// changing rows a statement journal, a copy of every page it is about to change, so that
/// it can undo that statement alone (the `NOT NULL` check on `deferred` is such an abort
/// point). The fill changes a few thousand rows and an index page of each channel: those
/// copies were a sixth of its cost (docs/benchmarks.md, "Less CPU per message posted into
/// many small channels"). The check cannot fail (the value is a constant 0), and an error
/// of the statement (I/O, a full disk) fails the whole batch's transaction, which the writer
/// rolls back; nothing ever needs this statement undone alone.
pub(super) fn enter(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(FILL)?.execute([])?;
    conn.prepare_cached(
        "UPDATE meta SET value = max(value, (SELECT coalesce(max(id), 0) FROM messages))
         WHERE name = 'indexed_upto'",
    )?
    .execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::testing::{jid, text};

    fn watermark(conn: &Connection) -> i64 {
        conn.query_row(&format!("SELECT {INDEXED_UPTO}"), [], |r| r.get(0))
            .unwrap()
    }

    fn deferred(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM messages WHERE deferred = 1 ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_channels_tail_is_entered_once_it_reaches_its_bound() {
        let (dir, mut w, _r, mut g) = coven();
        // The coven's three notices and 60 posts: 63 rows, one short of the bound.
        post_many(&mut w, &mut g, CHANNEL_TAIL as i64 - 4);
        assert_eq!(watermark(&w.conn), 0);
        assert_eq!(deferred(&w.conn), (abs(1)..=abs(60)).collect::<Vec<_>>());
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("one more"), 700)
                .unwrap(),
        );
        assert_eq!(watermark(&w.conn), abs(61));
        assert!(deferred(&w.conn).is_empty());
        // What a crash leaves (rows above the watermark) is entered when the writer opens.
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("after"), 710)
                .unwrap(),
        );
        assert_eq!(deferred(&w.conn), [abs(62)]);
        drop(w);
        let (w, _) = super::super::open(&dir.path().join("t.db"), Default::default()).unwrap();
        assert_eq!((watermark(&w.conn), deferred(&w.conn)), (abs(62), vec![]));
    }

    #[test]
    fn the_fill_walks_only_the_rows_above_the_watermark() {
        let (_dir, w, _r, _g) = coven();
        let plan: Vec<String> = w
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FILL}"))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("SEARCH messages USING INTEGER PRIMARY KEY (rowid>?)")),
            "{plan:?}"
        );
    }

    #[test]
    fn the_fill_has_no_point_where_it_aborts_and_so_no_statement_journal() {
        // SQLite opens a statement journal for a statement that may abort (`OE_Abort`, 2, in
        // a halting opcode's P2) after it changed rows; the fill's checks fail instead.
        let (_dir, w, _r, _g) = coven();
        let aborts: Vec<String> = w
            .conn
            .prepare(&format!("EXPLAIN {FILL}"))
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .filter(|(op, p2)| op.starts_with("Halt") && op != "Halt" && *p2 == 2)
            .map(|(op, _)| op)
            .collect();
        assert!(aborts.is_empty(), "{aborts:?}");
    }
}
