//! Deferred look-up entries. A post is stored with its row and an entry in the tail's
//! table (`tail (channel, id)`) only (`messages.deferred = 1`); its entries in the indexes
//! that find a message by channel (`(channel, id)`, partial: `deferred = 0`), by sender
//! (history `with`), by client id and by origin-id (`find_message`) are entered later, many
//! at once, by an `UPDATE` of the rows above the watermark (`meta.indexed_upto`) in the
//! transaction of a group commit, which empties the tail's table. Entered one post at a
//! time, each post dirtied a page of each of those indexes in its channel: a commit of posts
//! into many channels a leaf of `(channel, id)` a post, each a WAL frame and its checkpoint's
//! copy (docs/benchmarks.md, "Posts into many small channels without a `(channel, id)` page
//! each"); the tail's table is a few dozen pages, which every commit shares; entered together,
//! a channel's new entries share their page.
//!
//! Readers find every row: the indexes for the rows entered (`deferred = 0`), and a channel's
//! rows not yet entered (`deferred = 1`) through the tail's table, which holds exactly those
//! (they change in the same statements' transaction). Rows above the watermark may be entered
//! already (notices and actions; and the posts of a batch that ends with the fill anyway,
//! inserted entered so that the fill does not rewrite each in the same transaction,
//! `write.rs`): those are in the indexes, not the tail. The writer keeps the tail short: it
//! enters the entries as soon as one channel has [`CHANNEL_TAIL`] rows above the watermark
//! or the service [`TOTAL_TAIL`], so no reader walks more than a few dozen rows of it.
//! Counted are every row a channel's archive gains (notices and actions too, which are
//! entered at once), since the tail's walk passes them all. The watermark, the rows' flags and
//! the tail's table change in the same transaction: a crash leaves rows above the watermark,
//! which the next fill enters (at the latest when the writer opens).
//!
//! The channels' message totals move with the watermark too: `channels.message_count`
//! counts a channel's messages at or below it, the fill adds those above it, and a reader's
//! total adds the channel's messages above it: the entered ones through `(channel, id)`, the
//! tail's through its table (a few dozen rows at most).

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

/// A channel's rows above the watermark from which the writer enters the deferred entries.
pub(super) const CHANNEL_TAIL: u32 = 64;
/// The service's rows above the watermark from which the writer enters them. Each fill
/// dirties a leaf of each look-up index in every channel it enters rows of (into 1,000 small
/// channels, ~8 entries a leaf a fill), and the commit that fills holds up every post behind
/// it: 16,384 rows made the writer 6 % cheaper a post into small channels but the posts' p99
/// a third higher (50 against 38 ms), 32,768 higher by half again (docs/benchmarks.md, "The
/// writer's cost a post into small channels, accounted"): a post's wait is worth more.
pub(super) const TOTAL_TAIL: u32 = 8192;

/// The watermark as an expression for a statement: every row at or below it is entered. A
/// macro too, for statements that are constants (`concat!`).
macro_rules! indexed_upto {
    () => {
        "(SELECT value FROM meta WHERE name = 'indexed_upto')"
    };
}
pub(super) use indexed_upto;
#[cfg(test)]
pub(super) const INDEXED_UPTO: &str = indexed_upto!();

/// A channel's message total, in a statement over `channels`: its running total (the rows
/// at or below the watermark) and its messages above the watermark: those entered, counted
/// through `(channel, id)`, and the tail's (posts, never notices).
macro_rules! channel_total {
    () => {
        concat!(
            "(message_count + (SELECT count(*) FROM messages WHERE channel = channels.key AND deferred = 0 AND id > ",
            $crate::store::sqlite::deferred::indexed_upto!(),
            " AND notice = 0) + (SELECT count(*) FROM tail WHERE channel = channels.key))"
        )
    };
}
pub(super) use channel_total;

/// The messages a channel's archive holds, over a row of `channels`: its entered ones,
/// through `(channel, id)`, and its tail's (posts, never notices). For `mixd admin check`.
pub(super) const CHANNEL_HELD: &str =
    "((SELECT count(*) FROM messages WHERE channel = key AND deferred = 0 AND notice = 0)
      + (SELECT count(*) FROM tail WHERE channel = key))";
/// A channel's rows' `notice` column, `{key}` its key: the entered rows through `(channel,
/// id)` and the tail's (posts). For `mixd admin show`.
pub(super) const CHANNEL_NOTICES: &str =
    "(SELECT notice FROM messages WHERE channel = {key} AND deferred = 0
      UNION ALL SELECT 0 FROM tail WHERE channel = {key})";

/// The channels whose rows the fill enters ([`enter`]): the tail's, in key order.
const FILLED: &str = "SELECT DISTINCT channel FROM tail";
/// The fill of one channel: its rows not entered (`deferred = 1`), which are the ones the
/// tail's table names for it, get their look-up entries.
const FILL: &str =
    "UPDATE OR FAIL messages SET deferred = 0 WHERE id IN (SELECT id FROM tail WHERE channel = ?1)";

/// The channels' running totals (`channels.message_count`: messages, retractions and
/// reactions, not notices) raised by what each channel's archive holds above the watermark,
/// read from the archive ([`Totals::Unknown`]): run by the fill before the watermark moves,
/// so that a total always counts the rows at or below the watermark and a reader adds the
/// channel's tail (`sqlite/history.rs`). `OR FAIL` as the fill below: the sum is never NULL,
/// and an error fails the whole batch. `NOT INDEXED`, so that the rows are found by the rowid
/// from the watermark and grouped in a small sort: SQLite otherwise walks the whole archive
/// through `(channel, id)` to have them in the group's order.
const COUNT: &str = concat!(
    "UPDATE OR FAIL channels SET message_count = message_count + tail.n
     FROM (SELECT channel, count(*) AS n FROM messages NOT INDEXED WHERE id > ",
    indexed_upto!(),
    " AND notice = 0 GROUP BY channel) AS tail
     WHERE channels.key = tail.channel"
);

/// [`COUNT`] with each channel's rows as the writer counted them ([`Totals::Counted`]).
const RAISE: &str = "UPDATE OR FAIL channels SET message_count = message_count + ?2 WHERE key = ?1";

/// The rows each channel's archive gained above the watermark, as the writer counts them.
#[derive(Default)]
pub(super) struct Tail {
    channels: HashMap<i64, u32>,
    total: u32,
    /// Of the rows committed above the watermark, each channel's that its total counts
    /// (messages, retractions and reactions: not notices). Unlike `channels`, raised only
    /// once their batch has committed: the fill adds exactly these to the totals.
    counted: HashMap<i64, u32>,
}

impl Tail {
    /// Whether the deferred entries must be entered once the archive gains `rows` (rows by
    /// channel) above the watermark.
    pub(super) fn reached<'r>(&self, rows: impl Iterator<Item = (&'r i64, &'r u32)>) -> bool {
        let mut total = self.total;
        let mut reached = false;
        for (channel, &rows) in rows {
            let held = self.channels.get(channel).copied().unwrap_or(0) + rows;
            total += rows;
            reached |= held >= CHANNEL_TAIL;
        }
        reached || total >= TOTAL_TAIL
    }

    /// Counts `rows` (rows by channel) more rows above the watermark; says whether the
    /// deferred entries must now be entered ([`Tail::reached`]). Counted before the batch
    /// commits: if it does not, the count is only higher than the rows are, and the entries
    /// are entered early.
    pub(super) fn add<'r>(
        &mut self,
        rows: impl Iterator<Item = (&'r i64, &'r u32)> + Clone,
    ) -> bool {
        let reached = self.reached(rows.clone());
        for (&channel, &rows) in rows {
            *self.channels.entry(channel).or_default() += rows;
            self.total += rows;
        }
        reached
    }

    /// What the fill adds to each channel's total in a batch that counted `batch` (rows that
    /// count, by channel): the committed rows above the watermark and the batch's.
    pub(super) fn counted_with(&self, batch: &BTreeMap<i64, u32>) -> HashMap<i64, u32> {
        let mut counted = self.counted.clone();
        for (&channel, &rows) in batch {
            *counted.entry(channel).or_default() += rows;
        }
        counted
    }

    /// A batch that did not fill committed `batch` (rows that count, by channel).
    pub(super) fn committed(&mut self, batch: &BTreeMap<i64, u32>) {
        for (&channel, &rows) in batch {
            *self.counted.entry(channel).or_default() += rows;
        }
    }

    /// The entries were entered and committed: no row is above the watermark.
    pub(super) fn entered(&mut self) {
        self.channels.clear();
        self.total = 0;
        self.counted.clear();
    }
}

/// What the fill adds to the channels' totals.
pub(super) enum Totals<'c> {
    /// Each channel's rows above the watermark that count, as the writer counted them while
    /// writing them: one `UPDATE` of a channel's row. Reading them back ([`COUNT`]) was a
    /// walk of every row above the watermark with a sort, ~6 % of the writer's CPU in one
    /// channel's fan-out, which fills at nearly every commit (docs/benchmarks.md, "A group
    /// commit's last rows in a few statements, its totals as counted").
    Counted(&'c HashMap<i64, u32>),
    /// Not known: what a crash left above the watermark, entered as the writer opens; read
    /// from the archive ([`COUNT`]).
    Unknown,
}

/// Enters the look-up entries of every row above the watermark, counts those rows into their
/// channels' totals, empties the tail's table and raises the watermark to the newest row.
///
/// The rows not yet entered are the tail's, and they are entered channel by channel: one
/// statement walking them in the rowid's order went from channel to channel at every row,
/// each row's entries into other leaves of each index than the last row's, a few thousand
/// pages visited again and again and cold by then; a channel's rows enter the same leaf one
/// after the other (−9 % of the writer's CPU a post with 200,000 posts into 1,000 channels,
/// −30 to −40 % with 600,000: docs/benchmarks.md, "The writer's cost a post into small
/// channels, accounted").
///
/// `OR FAIL`, not the default `OR ABORT`: SQLite gives a statement that may abort after
/// changing rows a statement journal, a copy of every page it is about to change, so that
/// it can undo that statement alone (the `NOT NULL` check on `deferred` is such an abort
/// point). The fill changes a few thousand rows and an index page of each channel: those
/// copies were a sixth of its cost (docs/benchmarks.md, "Less CPU per message posted into
/// many small channels"). The check cannot fail (the value is a constant 0), and an error
/// of the statement (I/O, a full disk) fails the whole batch's transaction, which the writer
/// rolls back; nothing ever needs this statement undone alone.
pub(super) fn enter(conn: &Connection, totals: Totals) -> rusqlite::Result<()> {
    match totals {
        Totals::Counted(counted) => {
            let mut raise = conn.prepare_cached(RAISE)?;
            for (channel, rows) in counted {
                raise.execute([channel, &i64::from(*rows)])?;
            }
        }
        Totals::Unknown => {
            conn.prepare_cached(COUNT)?.execute([])?;
        }
    }
    let channels: Vec<i64> = conn
        .prepare_cached(FILLED)?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut fill = conn.prepare_cached(FILL)?;
    for channel in channels {
        fill.execute([channel])?;
    }
    conn.prepare_cached("DELETE FROM tail")?.execute([])?;
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
    use crate::core::Nodes;

    fn deferred(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM messages WHERE deferred = 1 ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The tail's table: the ids it names.
    fn tail(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM tail ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Every commit leaves the tail's table holding exactly the posts not entered, which is
    /// all a crash can leave; the store reopened finds every post, before and after the fill.
    #[test]
    fn the_tail_table_holds_the_posts_not_entered_at_every_commit() {
        use crate::store::{Page, Reader};
        let (dir, mut w, r, mut g) = coven();
        for n in 1..=CHANNEL_TAIL as i64 + 5 {
            post_many(&mut w, &mut g, 1);
            assert_eq!(tail(&w.conn), deferred(&w.conn), "after post {n}");
            let page = r.history(&query(Page::First, 200)).unwrap();
            assert_eq!(ids(&page), (1..=n).collect::<Vec<_>>());
        }
        assert!(!tail(&w.conn).is_empty());
        drop((w, r));
        let (w, r) = super::super::open(&dir.path().join("t.db"), Default::default()).unwrap();
        assert!(tail(&w.conn).is_empty() && deferred(&w.conn).is_empty());
        let page = r.history(&query(Page::First, 200)).unwrap();
        assert_eq!(ids(&page).len(), CHANNEL_TAIL as usize + 5);
    }

    /// The totals the fill raises by the writer's own counts are those read from the archive:
    /// messages, retractions and reactions, not notices, in batches that fill and batches that
    /// do not, and what a reopen's fill adds.
    #[test]
    fn the_totals_as_counted_are_the_totals_read() {
        let (dir, mut w, r, mut g) = coven();
        let total = |w: &super::super::SqliteWriter| -> (i64, i64) {
            w.conn
                .query_row(
                    "SELECT message_count, (SELECT count(*) FROM messages WHERE notice = 0)
                     FROM channels",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap()
        };
        post_many(&mut w, &mut g, 10);
        let m = target(&r, "1");
        let mut facts = g
            .retract(
                "coven",
                &jid("bob@localhost").to_bare(),
                Some(&m),
                None,
                200,
            )
            .unwrap();
        facts.extend(
            g.react(
                "coven",
                &jid("alice@localhost"),
                Some(&m),
                vec!["👍".into()],
                210,
            )
            .unwrap(),
        );
        facts.extend(
            g.join(
                "coven",
                &jid("carol@localhost"),
                Some("carol"),
                Nodes::ALL,
                220,
            )
            .unwrap()
            .1,
        );
        commit(&mut w, facts);
        assert_eq!(total(&w).0, 0, "nothing entered yet");
        // 10 posts, a retraction, a reaction, the coven's three notices and the join's: the
        // bound is reached by posts in a batch of their own.
        let rows = CHANNEL_TAIL as i64 - 16;
        let facts = (0..rows)
            .flat_map(|i| {
                g.post("coven", &jid("alice@localhost"), text("more"), 300 + i)
                    .unwrap()
            })
            .collect();
        commit(&mut w, facts);
        assert!(watermark(&w.conn) > 0 && deferred(&w.conn).is_empty());
        let (counted, read) = total(&w);
        assert_eq!((counted, read), (10 + 2 + rows, 10 + 2 + rows));
        // What a crash leaves above the watermark, counted from the archive at the reopen.
        post_many(&mut w, &mut g, 3);
        drop((w, r));
        let (w, _) = super::super::open(&dir.path().join("t.db"), Default::default()).unwrap();
        let (counted, read) = total(&w);
        assert_eq!(counted, read);
        assert_eq!(counted, 10 + 2 + rows + 3);
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

    /// A batch's posts are inserted entered when the batch ends with the fill (`write.rs`):
    /// what [`Tail::reached`] says of the rows so far must be what [`Tail::add`] then says.
    #[test]
    fn the_bound_reached_is_the_bound_that_fills() {
        let mut tail = Tail::default();
        let rows = |pairs: &[(i64, u32)]| pairs.iter().copied().collect::<HashMap<_, _>>();
        let short = rows(&[(1, CHANNEL_TAIL - 1), (2, 5)]);
        assert!(!tail.reached(short.iter()));
        assert!(!tail.add(short.iter()));
        let one_more = rows(&[(1, 1)]);
        assert!(tail.reached(one_more.iter()));
        assert!(tail.add(one_more.iter()));
        tail.entered();
        let many = rows(&(0..TOTAL_TAIL as i64).map(|c| (c, 1)).collect::<Vec<_>>());
        assert!(tail.reached(many.iter()));
        assert!(tail.add(many.iter()));
    }

    /// The plan's lines, its parameters (if any) bound to a channel's key.
    fn plan(conn: &Connection, statement: &str) -> Vec<String> {
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
            .unwrap();
        let keys = std::iter::repeat_n(1, explain.parameter_count());
        explain
            .query_map(rusqlite::params_from_iter(keys), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn walks_messages(plan: &[String]) -> bool {
        plan.iter().any(|p| {
            p.contains("messages") && (p.starts_with("SCAN messages") || p.contains("INDEX"))
        })
    }

    #[test]
    fn the_count_walks_only_the_rows_above_the_watermark() {
        let (_dir, w, _r, _g) = coven();
        let plan = plan(&w.conn, COUNT);
        assert!(
            plan.iter()
                .any(|p| p.contains("SEARCH messages USING INTEGER PRIMARY KEY (rowid>?)"))
                && !walks_messages(&plan),
            "{plan:?}"
        );
    }

    /// A channel's fill reads the channel's part of the tail and each of its rows by id.
    #[test]
    fn the_fill_reads_only_the_tail_and_its_rows() {
        let (_dir, w, _r, _g) = coven();
        let plan = plan(&w.conn, FILL);
        assert!(
            plan.iter()
                .any(|p| p == "SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)")
                && plan
                    .iter()
                    .any(|p| p == "SEARCH tail USING PRIMARY KEY (channel=?)")
                && !walks_messages(&plan),
            "{plan:?}"
        );
    }

    #[test]
    fn the_fill_has_no_point_where_it_aborts_and_so_no_statement_journal() {
        let (_dir, w, _r, _g) = coven();
        for statement in [FILL, COUNT] {
            let aborts = abort_points(&w.conn, statement);
            assert!(aborts.is_empty(), "{statement}: {aborts:?}");
        }
    }

    /// The channel's running total and the total a reader reads (the running total and the
    /// messages above the watermark).
    fn totals(conn: &Connection) -> (i64, i64) {
        let sql = concat!(
            "SELECT message_count, ",
            channel_total!(),
            " FROM channels WHERE name = 'coven'"
        );
        conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    }

    #[test]
    fn a_channels_total_counts_its_tail_until_the_fill_counts_it_in() {
        let (dir, mut w, _r, mut g) = coven();
        // 60 posts, the coven's three notices not counted: all above the watermark.
        post_many(&mut w, &mut g, CHANNEL_TAIL as i64 - 4);
        assert_eq!(totals(&w.conn), (0, 60));
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("one more"), 700)
                .unwrap(),
        );
        assert_eq!(totals(&w.conn), (61, 61));
        // Rows a crash leaves above the watermark are counted when the writer opens.
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("after"), 710)
                .unwrap(),
        );
        assert_eq!(totals(&w.conn), (61, 62));
        drop(w);
        let (w, _) = super::super::open(&dir.path().join("t.db"), Default::default()).unwrap();
        assert_eq!(totals(&w.conn), (62, 62));
    }
}
