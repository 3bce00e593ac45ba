//! Reading the archive: history pages (MAM and FlyChat history), the message a retraction,
//! correction, reaction or receipt names, and the receipts recorded for messages. A page's
//! logic is `store/history.rs`, shared with PostgreSQL; here its statements in SQLite's SQL.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use super::deferred::channel_total;
use super::{bare, in_one_read, SqliteReader};
use crate::core::MessageRef;
use crate::store::columns::{archived, ARCHIVED_COLUMNS};
use crate::store::history::{self, Archive, Bounds, Counted, Counting, Order, PageRows};
use crate::store::time_search;
use crate::store::{Archived, HistoryError, HistoryPage, HistoryQuery, MemberReceipt};

/// The first or last row (`$order`) of channel `?1` within `$ids` (conditions on `id`) as
/// `id$columns`: the ends of its entered rows, through `(channel, id)`, and of its tail's,
/// through the tail's table (`deferred.rs`), each a bounded probe.
macro_rules! channel_end {
    ($columns:literal, $ids:literal, $order:literal) => {
        concat!(
            "SELECT id",
            $columns,
            " FROM messages WHERE id IN (
               SELECT id FROM (SELECT id FROM messages INDEXED BY messages_by_channel
                 WHERE deferred = 0 AND channel = ?1 AND ",
            $ids,
            " ORDER BY id ",
            $order,
            " LIMIT 1)
               UNION ALL
               SELECT id FROM (SELECT id FROM tail WHERE channel = ?1 AND ",
            $ids,
            " ORDER BY id ",
            $order,
            " LIMIT 1))
             ORDER BY id ",
            $order,
            " LIMIT 1"
        )
    };
}

/// The history statements on one SQLite connection.
struct SqliteArchive<'c>(&'c Connection);

/// Which of a query's rows a statement reads. Each is read through an index named in its
/// statement, so that SQLite never walks the whole channel in id order to find a rare
/// sender's messages (without statistics, which mixd does not gather, its planner sometimes
/// did). A query through indexes whose entries are deferred (`deferred.rs`: `(channel, id)`
/// and a sender's) reads several arms, each ordered and limited on its own and merged by the
/// caller: the entered rows from those indexes, and the channel's rows not yet entered
/// through the tail's table (fewer than `deferred::CHANNEL_TAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    /// Every row, through the media index, which holds the rows not yet entered too: a
    /// media-only query.
    Media,
    /// The channel's rows whose look-up entries are entered, through `(channel, id)`.
    Channel,
    /// The sender's messages whose look-up entries are entered, through
    /// `messages_by_sender`. Its statement names `notice = 0`, which that partial index
    /// implies: so SQLite reads neither column from the table, and a statement of ids (a
    /// count) is answered from the index alone.
    Entered,
    /// The sender's notices whose look-up entries are entered, through `notices_by_sender`:
    /// read only when the query keeps notices.
    EnteredNotices,
    /// The rows not yet entered, through the tail's table.
    Tail,
}

/// The arms that read `q`'s rows.
fn arms(q: &HistoryQuery) -> &'static [Arm] {
    match (&q.with, q.with_notices) {
        (Some(_), false) => &[Arm::Entered, Arm::Tail],
        (Some(_), true) => &[Arm::Entered, Arm::EnteredNotices, Arm::Tail],
        (None, _) if q.media_only => &[Arm::Media],
        (None, _) => &[Arm::Channel, Arm::Tail],
    }
}

/// The conditions of `q` within `bounds`: SQL and its parameters.
fn conditions(q: &HistoryQuery, bounds: Bounds) -> (String, Vec<Value>) {
    let mut sql = String::from("channel = ?");
    let mut args: Vec<Value> = vec![q.channel.into()];
    if !q.with_notices {
        sql.push_str(" AND notice = 0");
    }
    if !q.with_actions {
        sql.push_str(" AND action = 0");
    }
    // A literal, so that the partial index `messages_with_media` serves it.
    if q.media_only {
        sql.push_str(" AND media = 1");
    }
    if let Some(with) = &q.with {
        sql.push_str(" AND sender = ?");
        args.push(with.as_str().to_owned().into());
    }
    // Kept beside the ids they bound (see [`Bounds`]): a row outside the times is never shown.
    if let Some(start) = q.start {
        sql.push_str(" AND at >= ?");
        args.push(start.into());
    }
    if let Some(end) = q.end {
        sql.push_str(" AND at <= ?");
        args.push(end.into());
    }
    if !q.ids.is_empty() {
        sql.push_str(" AND id IN (");
        sql.push_str(&vec!["?"; q.ids.len()].join(", "));
        sql.push(')');
        args.extend(q.ids.iter().map(|&id| Value::from(id)));
    }
    sql.push_str(" AND id > ? AND id < ?");
    args.extend([bounds.floor.into(), bounds.ceiling.into()]);
    (sql, args)
}

/// The statement of `arm` of `q`'s rows within `bounds` as `columns` (which name `id`), in
/// `order`, up to `limit` and a number more, after skipping a number: its parameters but
/// those two, which the caller binds last ([`Reach`]). The limit is written into the
/// statement: a page size is one of a few, each a statement that stays prepared. The deferred
/// flag keeps the arms apart: the tail's table holds exactly the rows not entered. The tail's
/// rows are found by their ids (`NOT INDEXED`: rowid look-ups only), so that no index of the
/// channel's whole archive is walked.
fn select(
    q: &HistoryQuery,
    bounds: Bounds,
    arm: Arm,
    columns: &str,
    order: Order,
    limit: usize,
) -> (String, Vec<Value>) {
    let order = order.sql();
    let (from, flag) = match arm {
        Arm::Media => ("messages INDEXED BY messages_with_media", ""),
        Arm::Channel => (
            "messages INDEXED BY messages_by_channel",
            "deferred = 0 AND ",
        ),
        Arm::Entered => (
            "messages INDEXED BY messages_by_sender",
            "deferred = 0 AND notice = 0 AND ",
        ),
        Arm::EnteredNotices => (
            "messages INDEXED BY notices_by_sender",
            "deferred = 0 AND notice != 0 AND ",
        ),
        Arm::Tail => (
            "messages NOT INDEXED",
            "id IN (SELECT id FROM tail WHERE channel = ?) AND ",
        ),
    };
    let (conditions, mut args) = conditions(q, bounds);
    if arm == Arm::Tail {
        args.insert(0, q.channel.into());
    }
    let sql = format!(
        "SELECT {columns} FROM {from} WHERE {flag}{conditions} ORDER BY id {order} LIMIT {limit} + ? OFFSET ?"
    );
    (sql, args)
}

/// What an arm's statement ([`select`]) reads beyond its limit, and skips first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reach {
    more: usize,
    skipped: usize,
}

impl Reach {
    const PAGE: Reach = Reach {
        more: 0,
        skipped: 0,
    };

    fn bind(self, args: &mut Vec<Value>) {
        args.extend([
            Value::from(self.more as i64),
            Value::from(self.skipped as i64),
        ]);
    }
}

impl Archive for SqliteArchive<'_> {
    fn exists(&mut self, channel: i64, id: i64) -> anyhow::Result<bool> {
        Ok(self
            .0
            .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND channel = ?2")?
            .query_row(params![id, channel], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// One at a time: a probe is a call into SQLite, no round trip, and the time search
    /// then makes the fewest.
    fn probe_width(&self) -> usize {
        1
    }

    /// Nothing probed besides: a probe is a call into SQLite, as cheap in a read of its own.
    fn ends(
        &mut self,
        channel: i64,
        floor: i64,
        ceiling: i64,
        _times: &[i64],
    ) -> anyhow::Result<Option<time_search::Ends>> {
        let row = |sql: &str| {
            self.0
                .prepare_cached(sql)?
                .query_row(params![channel, floor, ceiling], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
        };
        let Some(first) = row(channel_end!(", at", "id > ?2 AND id < ?3", "ASC"))? else {
            return Ok(None);
        };
        let last = row(channel_end!(", at", "id > ?2 AND id < ?3", "DESC"))?;
        Ok(Some(time_search::Ends {
            first,
            last: last.unwrap_or(first),
            probed: Vec::new(),
        }))
    }

    fn first_from_each(
        &mut self,
        channel: i64,
        froms: &[i64],
        below: i64,
    ) -> anyhow::Result<Vec<Option<time_search::Row>>> {
        let mut statement =
            self.0
                .prepare_cached(channel_end!(", at", "id >= ?2 AND id < ?3", "ASC"))?;
        froms
            .iter()
            .map(|&from| {
                Ok(statement
                    .query_row(params![channel, from, below], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?)
            })
            .collect()
    }

    /// The RSM id looked up, the rows read, their reactions, then the count: calls into
    /// SQLite, no round trip to spare by joining them.
    fn page_rows(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        order: Order,
        limit: usize,
        offset: usize,
        counting: Counting,
    ) -> anyhow::Result<Result<PageRows, HistoryError>> {
        if let Some(id) = history::anchor(&q.page) {
            if !self.exists(q.channel, id)? {
                return Ok(Err(HistoryError::UnknownId(id)));
            }
        }
        let mut rows = self.rows(q, bounds, order, limit, offset)?;
        let shown = rows.len().min(q.max);
        self.add_reactions(&mut rows[..shown])?;
        let counted = match counting {
            Counting::Nothing => None,
            Counting::Total => Some(Counted::Total(self.total(q.channel)?)),
            Counting::Upto {
                bounds,
                limit,
                newest,
            } => {
                let (counted, last) = self.count_upto(q, bounds, limit)?;
                let newest = match newest && counted >= limit {
                    true => self.newest_id(q.channel)?,
                    false => None,
                };
                Some(Counted::Upto(counted, last, newest))
            }
        };
        Ok(Ok((rows, counted)))
    }
}

impl SqliteArchive<'_> {
    /// The channel's newest archive id: one step down the `(channel, id)` index.
    fn newest_id(&mut self, channel: i64) -> anyhow::Result<Option<i64>> {
        Ok(self
            .0
            .prepare_cached(channel_end!("", "id > 0", "DESC"))?
            .query_row([channel], |r| r.get(0))
            .optional()?)
    }

    /// How many of `q`'s first rows in id order there are, up to `limit`, and the last of
    /// those counted.
    fn count_upto(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        limit: usize,
    ) -> anyhow::Result<(usize, Option<i64>)> {
        // The first `limit` of the arms' ids in order: each arm's first `limit`, merged. A
        // tail that holds none of the query's rows (the sender posted nothing since the last
        // fill: most often) is left out, and the entered arms counted alone: without notices
        // (MAM's default), one, from the sender's index alone, with no merge.
        let tail_holds_some = self.tail_rows(q, bounds, 1)? > 0;
        let counted = arms(q)
            .iter()
            .filter(|&&arm| tail_holds_some || arm != Arm::Tail);
        let mut union = Vec::new();
        let mut args = Vec::new();
        for &arm in counted {
            let (sql, arm_args) = select(q, bounds, arm, "id", Order::Ascending, limit);
            union.push(format!("SELECT id FROM ({sql})"));
            args.extend(arm_args);
            Reach::PAGE.bind(&mut args);
        }
        let sql = match union.as_slice() {
            [whole] => format!("SELECT count(*), max(id) FROM ({whole})"),
            arms => format!(
                "SELECT count(*), max(id) FROM ({} ORDER BY id LIMIT {limit})",
                arms.join(" UNION ALL ")
            ),
        };
        let (counted, last): (i64, Option<i64>) = self
            .0
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok((counted as usize, last))
    }

    /// [`Counting::Total`]: the channel's running total.
    fn total(&mut self, channel: i64) -> anyhow::Result<usize> {
        let total: Option<i64> = self
            .0
            .prepare_cached(concat!(
                "SELECT ",
                channel_total!(),
                " FROM channels WHERE key = ?1"
            ))?
            .query_row([channel], |r| r.get(0))
            .optional()?;
        Ok(total.unwrap_or(0) as usize)
    }

    /// Up to `limit` of `q`'s rows in `order` after skipping `offset`.
    fn rows(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        order: Order,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<Archived>> {
        // Each arm up to the offset and the page, merged in `order` (every arm is in it), then
        // what is left of the offset skipped. Where one arm beside the tail's holds the rows
        // (a query without a sender or with one but no notices), SQLite skips in it all of
        // the offset but as many as the tail holds: however the two interleave, that arm's
        // first `offset - tail` rows come before the page. Then an RSM page by `<index>`
        // neither decodes nor returns the rows before it, only steps over them; where
        // the tail holds none, the offset is all skipped there. Arms that interleave
        // (a sender's messages and notices) each read the offset and the page.
        let arms = arms(q);
        let skipped = match arms {
            [Arm::Media] => offset,
            [_, Arm::Tail] if offset > 0 => {
                offset.saturating_sub(self.tail_rows(q, bounds, offset)?)
            }
            _ => 0,
        };
        let rest = offset - skipped;
        let mut merged = Vec::new();
        for &arm in arms {
            let reach = Reach {
                more: rest,
                skipped: if arm == Arm::Tail { 0 } else { skipped },
            };
            let (sql, mut args) = select(q, bounds, arm, ARCHIVED_COLUMNS, order, limit);
            reach.bind(&mut args);
            let mut stmt = self.0.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            while let Some(row) = rows.next()? {
                merged.push(archived(row)?);
            }
        }
        if arms.len() > 1 {
            match order {
                Order::Ascending => merged.sort_by_key(|m| m.posted.id),
                Order::Descending => merged.sort_by_key(|m| std::cmp::Reverse(m.posted.id)),
            }
        }
        Ok(merged.into_iter().skip(rest).take(limit).collect())
    }

    /// How many of `q`'s rows within `bounds` the tail's table holds, up to `upto` (a few
    /// dozen at most: `deferred::CHANNEL_TAIL`); none where the query does not read the tail.
    fn tail_rows(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        upto: usize,
    ) -> anyhow::Result<usize> {
        if !arms(q).contains(&Arm::Tail) {
            return Ok(0);
        }
        let (sql, mut args) = select(q, bounds, Arm::Tail, "id", Order::Ascending, upto);
        Reach::PAGE.bind(&mut args);
        let counted: i64 = self
            .0
            .prepare_cached(&format!("SELECT count(*) FROM ({sql})"))?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(counted as usize)
    }

    /// Fills in the reactions of a page's messages with one read, by time then member: those
    /// recorded for the ids between the first and the last where the page's rows lie close
    /// (a run of the channel's), else those of its rows' ids, each a look-up on the
    /// `(message, member)` key. A range over a page whose rows lie far apart (a rare sender's,
    /// the media) would read the reactions of every message between them, which the page
    /// does not show: at one reaction in ten messages, 5,000 for a page of 51 of a sender's
    /// one in a thousand, and such a page took 1.1 ms in the store at 10 M against 0.2 with
    /// its ids looked up (docs/benchmarks.md, issue 16, branch `hist8`).
    fn add_reactions(&mut self, messages: &mut [Archived]) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return Ok(());
        };
        let (low, high) = (
            first.posted.id.min(last.posted.id),
            first.posted.id.max(last.posted.id),
        );
        let close = high - low < 2 * messages.len() as i64;
        let mut stmt;
        let mut rows = match close {
            true => {
                stmt = self.0.prepare_cached(
                    "SELECT message, member, reactions FROM reactions WHERE message BETWEEN ?1 AND ?2
                     ORDER BY at, member",
                )?;
                stmt.query(params![low, high])?
            }
            false => {
                stmt = self.0.prepare_cached(
                    "SELECT message, member, reactions FROM reactions
                     WHERE message IN (SELECT value FROM json_each(?1)) ORDER BY at, member",
                )?;
                stmt.query([ids_json(messages.iter().map(|m| m.posted.id))])?
            }
        };
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if let Some(message) = messages.iter_mut().find(|m| m.posted.id == id) {
                history::add_reaction(message, &bare(row.get(1)?)?, &row.get::<_, String>(2)?);
            }
        }
        Ok(())
    }
}

/// `ids` as one JSON array, bound as one parameter so that a statement over a page's ids is
/// prepared once whatever their number.
fn ids_json(ids: impl Iterator<Item = i64>) -> String {
    format!(
        "[{}]",
        ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    )
}

/// One page of `q`, read on one of the reader's connections; an unknown id the query names
/// is reported once the connection is back in the pool.
pub(super) fn page(reader: &SqliteReader, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
    reader.with_conn(|conn| in_one_read(conn, || history::page(&mut SqliteArchive(conn), q)))??
}

/// By archive id first (what the client's reference decoded to, if anything), else the
/// newest message whose origin-id or client id is the reference as sent; notices are never
/// the target. A number the client sends is not an archive id: those are never shown.
pub(super) fn find_message(
    conn: &Connection,
    channel: i64,
    by_id: Option<i64>,
    reference: &str,
) -> anyhow::Result<Option<MessageRef>> {
    let row = |row: &rusqlite::Row| -> rusqlite::Result<MessageRef> {
        Ok(MessageRef {
            id: row.get(0)?,
            channel: row.get(1)?,
            sender: bare(row.get(2)?)?,
            retracted: row.get::<_, Option<i64>>(3)?.is_some(),
            client_id: row.get(4)?,
        })
    };
    let found = match by_id {
        Some(id) => conn
            .prepare_cached(
                "SELECT id, channel, sender, retracted_at, client_id FROM messages
             WHERE id = ?1 AND channel = ?2 AND notice = 0 AND action = 0",
            )?
            .query_row(params![id, channel], row)
            .optional()?,
        None => None,
    };
    if found.is_some() {
        return Ok(found);
    }
    Ok(conn
        .prepare_cached(REFERENCE_LOOKUP)?
        .query_row(params![channel, reference], row)
        .optional()?)
}

/// The newest message of channel `?1` whose origin-id or client id is `?2`: one probe of each
/// id's index, named because SQLite would otherwise walk the channel's `(channel, id)` index
/// from its newest row, and a reference to no message (anyone can send one) would read the
/// channel's whole archive; and the channel's rows whose entries are not yet entered
/// (`deferred.rs`: a few dozen at most), through the tail's table. An origin-id equal to the
/// client id has no entry of its own: the client id's finds it.
const REFERENCE_LOOKUP: &str = "SELECT id, channel, sender, retracted_at, client_id FROM (
     SELECT id, channel, sender, retracted_at, client_id
       FROM messages INDEXED BY messages_by_origin_id
      WHERE deferred = 0 AND channel = ?1 AND origin_id = ?2 AND origin_id IS NOT client_id
        AND notice = 0 AND action = 0
     UNION ALL
     SELECT id, channel, sender, retracted_at, client_id
       FROM messages INDEXED BY messages_by_client_id
      WHERE deferred = 0 AND channel = ?1 AND client_id = ?2 AND notice = 0 AND action = 0
     UNION ALL
     SELECT id, channel, sender, retracted_at, client_id
       FROM messages NOT INDEXED
      WHERE id IN (SELECT id FROM tail WHERE channel = ?1)
        AND (origin_id = ?2 OR client_id = ?2) AND notice = 0 AND action = 0)
     ORDER BY id DESC LIMIT 1";

/// The receipts of `messages`, each message's by member: one statement for a whole page,
/// its ids bound as one JSON array ([`ids_json`]); each id is a lookup on the `(message,
/// member)` key.
pub(super) fn receipts_of(
    conn: &Connection,
    messages: &[i64],
) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
    let mut found: HashMap<i64, Vec<MemberReceipt>> = HashMap::new();
    if messages.is_empty() {
        return Ok(found);
    }
    let ids = ids_json(messages.iter().copied());
    let mut stmt = conn.prepare_cached(
        "SELECT message, member, delivered_at, displayed_at FROM receipts
         WHERE message IN (SELECT value FROM json_each(?1)) ORDER BY message, member",
    )?;
    let rows = stmt.query_map([ids], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            MemberReceipt {
                member: bare(row.get(1)?)?,
                delivered_at: row.get(2)?,
                displayed_at: row.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (message, receipt) = row?;
        found.entry(message).or_default().push(receipt);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::REFERENCE_LOOKUP;
    use crate::core::testing::{jid, text};
    use crate::core::Submission;
    use crate::store::{Action, HistoryError, HistoryQuery, Page, Reader};
    use rusqlite::params;

    #[test]
    fn history_pages_forward_backward_and_by_index() {
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 7);

        let first = r.history(&query(Page::First, 3)).unwrap();
        assert_eq!(
            (ids(&first), first.count, first.first_index, first.complete),
            (vec![1, 2, 3], 7, Some(0), false)
        );
        let next = r.history(&query(Page::After(abs(6)), 3)).unwrap();
        assert_eq!(
            (ids(&next), next.first_index, next.complete),
            (vec![7], None, true)
        );
        let last = r.history(&query(Page::Last, 3)).unwrap();
        assert_eq!(
            (ids(&last), last.first_index, last.complete),
            (vec![5, 6, 7], None, false)
        );
        let before = r.history(&query(Page::Before(abs(3)), 3)).unwrap();
        assert_eq!((ids(&before), before.complete), (vec![1, 2], true));
        assert_eq!(
            ids(&r.history(&query(Page::Index(5), 3)).unwrap()),
            vec![6, 7]
        );

        let mut with = query(Page::First, 10);
        with.with = Some(jid("alice@localhost"));
        with.start = Some(30);
        assert_eq!(ids(&r.history(&with).unwrap()), vec![4, 6]);
        let mut hidden = query(Page::First, 10);
        hidden.hidden_upto = abs(5);
        assert_eq!(ids(&r.history(&hidden).unwrap()), vec![6, 7]);

        assert!(matches!(
            r.history(&query(Page::After(99), 3)),
            Err(HistoryError::UnknownId(99))
        ));
    }

    #[test]
    fn a_time_window_pages_like_the_whole_archive_and_counts_exactly_when_small() {
        let (_dir, mut w, r, mut g) = coven();
        // Message n at time 10·n; then one whose clock stepped back, to time 15.
        post_many(&mut w, &mut g, 400);
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("late"), 15)
                .unwrap(),
        );
        let window = |page, start, end| HistoryQuery {
            start: Some(start),
            end: Some(end),
            ..query(page, 50)
        };
        let first = r.history(&window(Page::First, 1000, 3000)).unwrap();
        assert_eq!(ids(&first), (100..150).collect::<Vec<_>>());
        assert_eq!((first.count, first.complete), (201, false));
        let last = r.history(&window(Page::Last, 1000, 3000)).unwrap();
        assert_eq!(ids(&last), (251..=300).collect::<Vec<_>>());
        let next = r
            .history(&window(Page::After(abs(149)), 1000, 3000))
            .unwrap();
        assert_eq!(ids(&next), (150..200).collect::<Vec<_>>());
        // The message stamped back in time is never shown in a window it is not in.
        let tail = r.history(&window(Page::First, 3995, 10_000)).unwrap();
        assert_eq!((ids(&tail), tail.count), (vec![400], 1));
        let none = r.history(&window(Page::First, 5000, 6000)).unwrap();
        assert_eq!((ids(&none), none.count, none.complete), (vec![], 0, true));
    }

    #[test]
    fn a_cached_page_statement_is_not_prepared_again_for_new_values() {
        use super::{select, Arm, ARCHIVED_COLUMNS};
        use crate::store::history::{Bounds, Order};
        use rusqlite::StatementStatus;
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 300);
        // Bob's messages before three different ids: the same statement, other values.
        for before in [abs(290), abs(200), abs(100)] {
            let page = r
                .history(&HistoryQuery {
                    with: Some(jid("bob@localhost")),
                    ..query(Page::Before(before), 10)
                })
                .unwrap();
            assert_eq!(ids(&page).last(), Some(&(before - NOTICES - 1)));
        }
        let q = HistoryQuery {
            with: Some(jid("bob@localhost")),
            ..query(Page::Last, 10)
        };
        let bounds = Bounds {
            floor: 0,
            ceiling: 0,
        };
        let sql = select(
            &q,
            bounds,
            Arm::Entered,
            ARCHIVED_COLUMNS,
            Order::Descending,
            11,
        )
        .0;
        let (reprepared, runs) = r
            .with_conn(|conn| {
                let stmt = conn.prepare_cached(&sql)?;
                Ok((
                    stmt.get_status(StatementStatus::RePrepare),
                    stmt.get_status(StatementStatus::Run),
                ))
            })
            .unwrap();
        assert_eq!((reprepared, runs), (0, 3), "{sql}");
    }

    #[test]
    fn a_large_filtered_count_is_estimated_from_a_bounded_read() {
        let (_dir, mut w, r, mut g) = coven();
        // 1,000 messages, every other one bob's: 500 of his, more than are counted exactly.
        post_many(&mut w, &mut g, 1000);
        let bobs = HistoryQuery {
            with: Some(jid("bob@localhost")),
            ..query(Page::Last, 50)
        };
        let page = r.history(&bobs).unwrap();
        assert_eq!(ids(&page).first(), Some(&901));
        assert!(
            (490..=510).contains(&page.count),
            "an estimate near 500: {}",
            page.count
        );
        // A first page that does not hold all there is never counts as the last one.
        let mut late = query(Page::First, 50);
        late.with = Some(jid("bob@localhost"));
        late.start = Some(9_000);
        let page = r.history(&late).unwrap();
        assert_eq!((page.count, page.first_index), (50, Some(0)));
        assert!(page.complete, "bob's 50 messages from time 9,000 on");
        late.max = 20;
        let page = r.history(&late).unwrap();
        assert_eq!((page.count, page.complete), (50, false));
    }

    #[test]
    fn mam_id_fields_bound_and_pick_messages() {
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 7);
        let mut between = query(Page::First, 10);
        between.after_id = Some(abs(2));
        between.before_id = Some(abs(6));
        let page = r.history(&between).unwrap();
        assert_eq!((ids(&page), page.count), (vec![3, 4, 5], 3));
        between.page = Page::After(abs(3));
        assert_eq!(ids(&r.history(&between).unwrap()), vec![4, 5]);
        let mut picked = query(Page::First, 10);
        picked.ids = vec![abs(6), abs(2)];
        assert_eq!(ids(&r.history(&picked).unwrap()), vec![2, 6]);
        for unknown in [
            HistoryQuery {
                after_id: Some(99),
                ..query(Page::First, 10)
            },
            HistoryQuery {
                before_id: Some(99),
                ..query(Page::First, 10)
            },
            HistoryQuery {
                ids: vec![abs(1), 99],
                ..query(Page::First, 10)
            },
        ] {
            assert!(matches!(
                r.history(&unknown),
                Err(HistoryError::UnknownId(99))
            ));
        }
    }

    #[test]
    fn a_lookup_by_reference_probes_the_id_indexes() {
        let (_dir, _w, r, _g) = coven();
        let plan: Vec<String> = r
            .with_conn(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {REFERENCE_LOOKUP}"))?;
                let details = stmt.query_map(params![1, "x"], |row| row.get(3))?;
                Ok(details.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("messages_by_origin_id (channel=? AND origin_id=?)"))
                && plan
                    .iter()
                    .any(|p| p.contains("messages_by_client_id (channel=? AND client_id=?)"))
                && plan
                    .iter()
                    .any(|p| p.contains("SEARCH tail USING PRIMARY KEY (channel=?)"))
                && !plan.iter().any(|p| p.contains("SCAN")),
            "{plan:?}"
        );
    }

    /// Each arm of a page `with` a sender is a bounded search read in index order (no sort):
    /// the sender's indexes for the entered rows, `(channel, id)` above the watermark for the
    /// rest; a count of the sender's messages (actions kept, as MAM keeps them) reads its
    /// index alone, no row of the table.
    #[test]
    fn a_senders_page_reads_its_index_and_the_tail_both_bounded() {
        use super::{select, Arm, Reach, ARCHIVED_COLUMNS};
        use crate::store::history::{Bounds, Order};
        let (_dir, _w, r, _g) = coven();
        let bounds = Bounds {
            floor: 0,
            ceiling: i64::MAX,
        };
        let sender = "(channel=? AND sender=? AND rowid>? AND rowid<?)";
        let tail = "SEARCH tail USING PRIMARY KEY (channel=?)";
        let channel =
            "SEARCH messages USING INDEX messages_by_channel (channel=? AND id>? AND id<?)";
        for (with_notices, arm, rows, ids) in [
            (
                false,
                Arm::Entered,
                format!("SEARCH messages USING INDEX messages_by_sender {sender}"),
                format!("SEARCH messages USING COVERING INDEX messages_by_sender {sender}"),
            ),
            (
                true,
                Arm::Entered,
                format!("SEARCH messages USING INDEX messages_by_sender {sender}"),
                format!("SEARCH messages USING COVERING INDEX messages_by_sender {sender}"),
            ),
            // `notice != 0` is not a value SQLite can take from the index's condition: the
            // notices (few) are read from the table even to be counted.
            (
                true,
                Arm::EnteredNotices,
                format!("SEARCH messages USING INDEX notices_by_sender {sender}"),
                format!("SEARCH messages USING INDEX notices_by_sender {sender}"),
            ),
            (false, Arm::Tail, tail.to_owned(), tail.to_owned()),
            (false, Arm::Channel, channel.to_owned(), channel.to_owned()),
        ] {
            // As MAM asks: actions kept (their column is not in the indexes).
            let q = HistoryQuery {
                with: Some(jid("bob@localhost")),
                with_notices,
                with_actions: true,
                ..query(Page::Last, 50)
            };
            for (columns, order, search) in [
                (ARCHIVED_COLUMNS, Order::Descending, &rows),
                ("id", Order::Ascending, &ids),
            ] {
                let (sql, mut args) = select(&q, bounds, arm, columns, order, 51);
                Reach::PAGE.bind(&mut args);
                let plan: Vec<String> = r
                    .with_conn(|conn| {
                        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                        let details =
                            stmt.query_map(rusqlite::params_from_iter(&args), |row| row.get(3))?;
                        Ok(details.collect::<Result<_, _>>()?)
                    })
                    .unwrap();
                assert!(
                    plan.iter().any(|p| p == search)
                        && !plan
                            .iter()
                            .any(|p| p.contains("SCAN") || p.contains("TEMP")),
                    "{arm:?} {columns}: {plan:?}"
                );
            }
        }
    }

    /// An RSM page by `<index>` is the slice of the whole at that index, wherever the entered
    /// rows end and the tail's begin (before it, within it, after it), with and without a
    /// sender, with and without notices: SQLite skips the offset in the entered arm only as
    /// far as no tail row can come before it.
    #[test]
    fn an_index_page_is_the_slice_of_the_whole_across_the_tail() {
        use super::super::deferred::CHANNEL_TAIL;
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, CHANNEL_TAIL as i64 - NOTICES + 40);
        for with in [None, Some(jid("bob@localhost"))] {
            for with_notices in [false, true] {
                let q = |page, max| HistoryQuery {
                    with: with.clone(),
                    with_notices,
                    ..query(page, max)
                };
                let all = ids(&r.history(&q(Page::First, 500)).unwrap());
                for index in 0..all.len() + 2 {
                    let page = r.history(&q(Page::Index(index), 7)).unwrap();
                    let slice: Vec<i64> = all.iter().skip(index).take(7).copied().collect();
                    assert_eq!(
                        ids(&page),
                        slice,
                        "{with:?}, notices {with_notices}, {index}"
                    );
                }
            }
        }
    }

    /// Posts past the channel's bound of rows above the watermark are entered in the indexes;
    /// the newest are not yet. Pages `with` a sender, their counts and look-ups by the
    /// sender's ids find both, across the watermark, as if every row were indexed.
    #[test]
    fn a_senders_history_and_lookups_see_the_entered_rows_and_the_tail() {
        use super::super::deferred::CHANNEL_TAIL;
        let (_dir, mut w, r, mut g) = coven();
        // The watermark after the first fill: the coven's notices and the posts that
        // reached the bound; 40 posts above it.
        let entered = CHANNEL_TAIL as i64 - NOTICES;
        post_many(&mut w, &mut g, entered + 40);
        assert_eq!(watermark(&w.conn), abs(entered));
        let bobs = |page, max| HistoryQuery {
            with: Some(jid("bob@localhost")),
            ..query(page, max)
        };
        let odd = |from: i64, to: i64| (from..=to).filter(|n| n % 2 == 1).collect::<Vec<_>>();
        let all = r.history(&bobs(Page::First, 100)).unwrap();
        assert_eq!((ids(&all), all.count), (odd(1, entered + 40), 51));
        let last = r.history(&bobs(Page::Last, 30)).unwrap();
        assert_eq!(ids(&last), odd(entered + 40 - 59, entered + 40));
        assert_eq!((last.count, last.complete), (51, false));
        let before = r
            .history(&bobs(Page::Before(abs(entered + 10)), 10))
            .unwrap();
        assert_eq!(ids(&before), odd(entered - 10, entered + 9));
        let after = r.history(&bobs(Page::After(abs(entered - 6)), 5)).unwrap();
        assert_eq!(ids(&after), odd(entered - 5, entered + 4));
        let index = r.history(&bobs(Page::Index(30), 4)).unwrap();
        assert_eq!(ids(&index), odd(61, 67));
        // With notices: bob's join (entered, in the notices' index) before his posts, in
        // pages and in the count.
        let with_notices = |page, max| HistoryQuery {
            with_notices: true,
            ..bobs(page, max)
        };
        let all = r.history(&with_notices(Page::First, 100)).unwrap();
        let mut joined_then_posts = vec![0];
        joined_then_posts.extend(odd(1, entered + 40));
        assert_eq!((ids(&all), all.count), (joined_then_posts, 52));
        let first = r.history(&with_notices(Page::First, 2)).unwrap();
        assert_eq!((ids(&first), first.count), (vec![0, 1], 52));
        let last = r.history(&with_notices(Page::Last, 30)).unwrap();
        assert_eq!(ids(&last), odd(entered + 40 - 59, entered + 40));
        // Found by origin-id, entered and not: the newest post, one at the watermark, one
        // long before; a reference to none costs the tail's walk.
        for n in [entered + 40, entered, 1] {
            assert_eq!(target(&r, &format!("o-{n}")).id, abs(n));
        }
        assert!(r.find_message(1, None, "o-none").unwrap().is_none());
        // An origin-id equal to the stanza's id has one entry, the client id's.
        let same = Submission {
            origin_id: Some("same".into()),
            client_id: Some("same".into()),
            ..text("same")
        };
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), same, 9_000).unwrap(),
        );
        assert_eq!(target(&r, "same").id, abs(entered + 41));
        super::super::deferred::enter(&w.conn, super::super::deferred::Totals::Unknown).unwrap();
        assert_eq!(target(&r, "same").id, abs(entered + 41));
    }

    /// Rows entered above the watermark (a batch that ends with the fill inserts its posts
    /// entered, `write.rs`; the fill then moves the watermark over them) are read once,
    /// through their look-up entries, beside the tail not yet entered: by pages, `with` a
    /// sender, times, counts and look-ups, and the check finds nothing; so too once a
    /// reopen's fill has entered the rest.
    #[test]
    fn rows_entered_above_the_watermark_are_read_once() {
        use crate::store::inspect::Inspector;
        let (dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 20);
        // Posts 1 to 12 entered above the watermark (0), 13 to 20 not.
        w.conn
            .execute_batch(&format!(
                "UPDATE messages SET deferred = 0 WHERE id <= {0};
                 DELETE FROM tail WHERE id <= {0};",
                abs(12)
            ))
            .unwrap();
        let odd = |from: i64, to: i64| (from..=to).filter(|n| n % 2 == 1).collect::<Vec<_>>();
        let reads = |r: &super::super::SqliteReader| {
            let all = r.history(&query(Page::First, 100)).unwrap();
            assert_eq!((ids(&all), all.count), ((1..=20).collect(), 20));
            let bobs = |page, max| HistoryQuery {
                with: Some(jid("bob@localhost")),
                ..query(page, max)
            };
            let page = r.history(&bobs(Page::First, 100)).unwrap();
            assert_eq!((ids(&page), page.count), (odd(1, 20), 10));
            let before = r.history(&bobs(Page::Before(abs(16)), 3)).unwrap();
            assert_eq!(ids(&before), [11, 13, 15]);
            let times = HistoryQuery {
                start: Some(100),
                end: Some(160),
                ..bobs(Page::First, 100)
            };
            let page = r.history(&times).unwrap();
            assert_eq!((ids(&page), page.count), (vec![11, 13, 15], 3));
            for n in [1, 12, 13, 20] {
                assert_eq!(target(r, &format!("o-{n}")).id, abs(n));
            }
            let path = dir.path().join("t.db");
            let findings = super::super::inspect::inspect(&path)
                .unwrap()
                .check()
                .unwrap();
            assert_eq!(findings, Vec::<String>::new());
        };
        reads(&r);
        drop((w, r));
        let (w, r) = super::super::open(&dir.path().join("t.db"), Default::default()).unwrap();
        assert_eq!(watermark(&w.conn), abs(20));
        reads(&r);
    }

    #[test]
    fn media_filter_and_lookup_by_client_ids() {
        let (_dir, mut w, r, mut g) = coven();
        let photo = Submission {
            content: "<x xmlns='jabber:x:oob'><url>https://example.org/a.jpg</url></x>".into(),
            client_id: Some("client-7".into()),
            media: true,
            ..Submission::default()
        };
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("hi"), 1)
                .unwrap(),
        );
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), photo, 2).unwrap(),
        );
        let mut media = query(Page::First, 10);
        media.media_only = true;
        assert_eq!(ids(&r.history(&media).unwrap()), vec![2]);
        assert_eq!(target(&r, "client-7").id, abs(2));
        assert_eq!(target(&r, "o-hi").id, abs(1));
        assert_eq!(target(&r, "2").sender, jid("bob@localhost"));
        assert!(r.find_message(1, None, "nothing").unwrap().is_none());
        assert!(r.find_message(2, Some(abs(1)), "").unwrap().is_none());
        // A number as sent is an origin-id or client id like any other text, never an
        // archive id: those reach the store decoded.
        assert!(r
            .find_message(1, None, &abs(1).to_string())
            .unwrap()
            .is_none());
    }

    #[test]
    fn corrections_and_reactions_show_in_history() {
        let (_dir, mut w, r, mut g) = coven();
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), text("teh"), 1)
                .unwrap(),
        );
        let m = target(&r, "1");
        commit(
            &mut w,
            g.correct("coven", &jid("bob@localhost"), Some(&m), text("the"), 2)
                .unwrap(),
        );
        for (who, reactions) in [
            ("alice@localhost", vec!["👍", "🎉"]),
            ("bob@localhost", vec!["👍"]),
        ] {
            let chosen = reactions.into_iter().map(String::from).collect();
            commit(
                &mut w,
                g.react("coven", &jid(who), Some(&m), chosen, 3).unwrap(),
            );
        }
        let archived = &r.history(&query(Page::First, 10)).unwrap().messages[0];
        assert_eq!(archived.posted.submission.content, "<body>the</body>");
        assert_eq!(archived.edited_at, Some(2));
        let counts: Vec<_> = archived
            .reactions
            .iter()
            .map(|(r, who)| (r.as_str(), who.len()))
            .collect();
        assert_eq!(counts, [("🎉", 1), ("👍", 2)]);
        commit(
            &mut w,
            g.react("coven", &jid("alice@localhost"), Some(&m), vec![], 4)
                .unwrap(),
        );
        let archived = &r.history(&query(Page::First, 10)).unwrap().messages[0];
        assert_eq!(
            archived.reactions,
            vec![("👍".to_string(), vec![jid("bob@localhost")])]
        );
    }

    /// A page whose rows lie far apart has its rows' reactions, looked up by id, and none of
    /// the messages between them.
    #[test]
    fn reactions_of_rows_far_apart_are_found_by_their_ids() {
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 100);
        for n in [2, 50, 100] {
            let m = target(&r, &format!("o-{n}"));
            commit(
                &mut w,
                g.react(
                    "coven",
                    &jid("alice@localhost"),
                    Some(&m),
                    vec!["👍".into()],
                    2000,
                )
                .unwrap(),
            );
        }
        let picked = HistoryQuery {
            ids: vec![abs(2), abs(100)],
            ..query(Page::First, 10)
        };
        let page = r.history(&picked).unwrap();
        assert_eq!(ids(&page), [2, 100]);
        for message in &page.messages {
            assert_eq!(
                message.reactions,
                [("👍".to_string(), vec![jid("alice@localhost")])]
            );
        }
    }

    #[test]
    fn retractions_and_reactions_are_archived_as_messages_of_their_own() {
        let (_dir, mut w, r, mut g) = coven();
        let bob = jid("bob@localhost");
        for (body, at) in [("first", 1), ("second", 2)] {
            commit(&mut w, g.post("coven", &bob, text(body), at).unwrap());
        }
        let (first, second) = (target(&r, "1"), target(&r, "2"));
        let chosen = vec!["👍".to_string()];
        commit(
            &mut w,
            g.react("coven", &jid("alice@localhost"), Some(&first), chosen, 3)
                .unwrap(),
        );
        commit(
            &mut w,
            g.retract("coven", &bob, Some(&second), None, 4).unwrap(),
        );
        let reason = Some(Some("spam".to_string()));
        commit(
            &mut w,
            g.retract("coven", &jid("alice@localhost"), Some(&first), reason, 5)
                .unwrap(),
        );
        let mut mam = query(Page::First, 10);
        mam.with_actions = true;
        let page = r.history(&mam).unwrap();
        assert_eq!((ids(&page), page.count), (vec![1, 2, 3, 4, 5], 5));
        let actions: Vec<_> = page.messages.iter().map(|m| m.action.clone()).collect();
        assert_eq!(
            actions,
            [
                None,
                None,
                Some(Action::Reactions {
                    target: abs(1),
                    reactions: vec!["👍".into()]
                }),
                Some(Action::Retraction {
                    target: abs(2),
                    moderated: None
                }),
                Some(Action::Retraction {
                    target: abs(1),
                    moderated: Some(Some("spam".into()))
                }),
            ]
        );
        assert_eq!(page.messages[3].posted.sender, bob);
        // Each tombstone names its retraction.
        let named: Vec<_> = page.messages[..2]
            .iter()
            .map(|m| m.retraction.as_ref().and_then(|t| t.retraction))
            .collect();
        assert_eq!(named, [Some(abs(5)), Some(abs(4))]);
        // Without them (FlyChat's history), only the messages; and they are never the
        // target of a reference.
        assert_eq!(
            ids(&r.history(&query(Page::First, 10)).unwrap()),
            vec![1, 2]
        );
        assert!(r.find_message(1, Some(abs(3)), "").unwrap().is_none());
    }

    #[test]
    fn the_receipts_of_a_page_are_read_at_once_by_message_and_member() {
        use crate::core::{MessageRef, Nodes, ReceiptKind};
        let (_dir, mut w, r, mut g) = coven();
        let carol = jid("carol@localhost");
        commit(
            &mut w,
            g.join("coven", &carol, None, Nodes::ALL, 4).unwrap().1,
        );
        post_many(&mut w, &mut g, 3);
        let [first, second, third] = ["o-1", "o-2", "o-3"].map(|m| target(&r, m));
        let mut receipt = |who: &str, message, kind, at| {
            let facts = g
                .receipt("coven", &jid(who), Some(message), kind, at)
                .unwrap();
            commit(&mut w, facts);
        };
        receipt("carol@localhost", &first, ReceiptKind::Displayed, 40);
        receipt("alice@localhost", &first, ReceiptKind::Delivered, 50);
        receipt("alice@localhost", &third, ReceiptKind::Delivered, 60);

        let found = r
            .receipts_of(&[first.id, second.id, third.id, first.id + 1000])
            .unwrap();
        // The second message has none, and an id of no message names nothing.
        let mut messages: Vec<i64> = found.keys().copied().collect();
        messages.sort();
        assert_eq!(messages, [first.id, third.id]);
        let states = |message: &MessageRef| -> Vec<(String, Option<i64>, Option<i64>)> {
            found[&message.id]
                .iter()
                .map(|r| (r.member.to_string(), r.delivered_at, r.displayed_at))
                .collect()
        };
        assert_eq!(
            states(&first),
            [
                ("alice@localhost".into(), Some(50), None),
                ("carol@localhost".into(), Some(40), Some(40)),
            ]
        );
        assert_eq!(states(&third), [("alice@localhost".into(), Some(60), None)]);
        // One message's receipts are the same read.
        assert_eq!(r.receipts(first.id).unwrap(), found[&first.id]);
        assert!(r.receipts(second.id).unwrap().is_empty());
        assert!(r.receipts_of(&[]).unwrap().is_empty());
    }
}
