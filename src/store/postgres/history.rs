//! Reading the archive: history pages (MAM and FlyChat history), the message a retraction,
//! correction, reaction or receipt names, and the receipts recorded for a message. A page's
//! logic is `store/history.rs`, shared with SQLite; here its statements in PostgreSQL's SQL.

use std::collections::HashMap;

use anyhow::Context;

use postgres::types::ToSql;
use postgres::Row;

use super::{bare, Conn, PgReader};
use crate::core::MessageRef;
use crate::store::columns::{archived, ARCHIVED_COLUMNS};
use crate::store::history::{self, Archive, Bounds, Counted, Counting, Order, PageRows};
use crate::store::time_search;
use crate::store::{
    Archived, HistoryError, HistoryPage, HistoryQuery, MemberReceipt, PageReceipts,
};

/// A statement's text and its parameters, numbered as they are added. Every statement is
/// prepared once per connection and kept with its generic plan.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Whether the rows are read in `messages_by_sender`'s order (a query `with` a sender).
    by_sender: bool,
    /// The number of the parameter that holds the channel, for the parts that refer to it.
    channel: usize,
}

/// The kinds of parameter a history query takes.
enum Arg {
    Int(i64),
    Ints(Vec<i64>),
    Text(String),
}

impl Arg {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Int(v) => v,
            Arg::Ints(v) => v,
            Arg::Text(v) => v,
        }
    }
}

impl Sql {
    /// Appends `before`, a new parameter, then `after`.
    fn bind(&mut self, before: &str, arg: Arg, after: &str) {
        self.args.push(arg);
        self.text
            .push_str(&format!("{before}${}{after}", self.args.len()));
    }

    /// Runs the statement in one round trip, prepared once per connection.
    fn query(&self, conn: &mut Conn) -> anyhow::Result<Vec<Row>> {
        let statement = conn.prepare(&self.text)?;
        let params: Vec<_> = self.args.iter().map(Arg::as_sql).collect();
        Ok(conn.client.query(&statement, &params)?)
    }

    /// The `ORDER BY` that reads the rows in id order (`order`) along the index the
    /// conditions bound.
    fn order_by(&self, order: Order) -> String {
        let o = order.sql();
        match self.by_sender {
            true => format!(" ORDER BY channel {o}, sender {o}, id {o}"),
            false => format!(" ORDER BY id {o}"),
        }
    }

    /// `SELECT {columns} FROM messages WHERE` the conditions of `q` within `bounds`, its
    /// parameters numbered on from `args`, those of the statement's parts before it.
    fn select(columns: &str, q: &HistoryQuery, bounds: Bounds, args: Vec<Arg>) -> Sql {
        let mut sql = Sql {
            text: format!("SELECT {columns} FROM messages WHERE "),
            channel: args.len() + 1,
            args,
            by_sender: q.with.is_some(),
        };
        match &q.with {
            // A generic plan (the readers keep nothing else, `mod.rs`) does not know how rare
            // `sender = $2` is: with the sender and the channel as equalities it walked the
            // channel in id order, 82 ms instead of 0.16 ms for a page `with` a rare sender
            // at 1 M messages (docs/benchmarks.md, `pghist`), 40 ms at 10 M. Bounded as a
            // range of `messages_by_sender`'s keys and read in its order (`order_by`), the
            // rows come in order from that index alone, and every generic plan scans it
            // (docs/benchmarks.md, `pgwith2`).
            Some(with) => {
                sql.bind("(channel, sender, id) > (", Arg::Int(q.channel), "");
                sql.bind(", ", Arg::Text(with.as_str().to_owned()), "");
                sql.bind(", ", Arg::Int(bounds.floor), ")");
                let (channel, sender) = (sql.channel, sql.channel + 1);
                sql.bind(
                    &format!(" AND (channel, sender, id) < (${channel}, ${sender}, "),
                    Arg::Int(bounds.ceiling),
                    ")",
                );
            }
            None => {
                sql.bind("channel = ", Arg::Int(q.channel), "");
                sql.bind(" AND id > ", Arg::Int(bounds.floor), "");
                sql.bind(" AND id < ", Arg::Int(bounds.ceiling), "");
            }
        }
        if !q.with_notices {
            sql.text.push_str(" AND notice = 0");
        }
        if !q.with_actions {
            sql.text.push_str(" AND action = 0");
        }
        // A literal, so that the partial index `messages_with_media` serves it.
        if q.media_only {
            sql.text.push_str(" AND media");
        }
        // Kept beside the ids they bound: a row outside the times is never shown.
        if let Some(start) = q.start {
            sql.bind(" AND at >= ", Arg::Int(start), "");
        }
        if let Some(end) = q.end {
            sql.bind(" AND at <= ", Arg::Int(end), "");
        }
        if !q.ids.is_empty() {
            sql.bind(" AND id = ANY(", Arg::Ints(q.ids.clone()), ")");
        }
        sql
    }
}

/// How many ids one statement of the time search probes for each time: each statement is a
/// round trip and a plan, and each probe a step into the index of a few buffers, so a read of
/// eight takes an archive of 10 M to its time in one or two reads after its ends where one
/// probe a statement took about four. A window's start and end are probed in the same
/// statement (up to sixteen ids), one round trip where they took two.
const PROBE_WIDTH: usize = 8;

/// A page's row's reactions, a column after [`ARCHIVED_COLUMNS`]: each member's, by time
/// then member (the order SQLite's page reads them in), as the member's bare JID
/// and its reactions, one a line (a bare JID holds no line break); NULL when none. Read with
/// the rows, not in a statement after them: every statement is a round trip, and round
/// trips were most of mixd's CPU a page (docs/benchmarks.md, `pgcpu`); a row's reactions
/// cost the server one step into their primary key. An aggregate, not `ARRAY(SELECT …
/// ORDER BY …)`, whose sort node a row made the page several times slower to run.
const REACTIONS: &str =
    "(SELECT array_agg(r.member || E'\\n' || r.reactions ORDER BY r.at, r.member)
                         FROM reactions r WHERE r.message = messages.id)";

/// A page's row's receipts, a column after [`REACTIONS`] when asked for (a FlyChat page):
/// each member's, by member (`receipts_of`'s order), as the member's bare JID, the delivered
/// and the displayed time, a line each (empty when none). Read with the rows for the same
/// reason as the reactions: a statement of their own was a second round trip a page.
const RECEIPTS: &str = "(SELECT array_agg(r.member || E'\\n' || coalesce(r.delivered_at::text, '')
                                   || E'\\n' || coalesce(r.displayed_at::text, '') ORDER BY r.member)
                         FROM receipts r WHERE r.message = messages.id)";

/// The history statements on one PostgreSQL connection, and with `receipts` a page's rows'
/// receipts ([`RECEIPTS`]) read with them into it.
struct PgArchive<'c> {
    conn: &'c mut Conn,
    receipts: Option<HashMap<i64, Vec<MemberReceipt>>>,
}

impl PgArchive<'_> {
    /// The one row, if any, of a statement prepared once per connection.
    fn row(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Option<Row>> {
        let statement = self.conn.prepare(sql)?;
        Ok(self.conn.client.query_opt(&statement, params)?)
    }

    /// A page's rows with `q`'s conditions all in the SQL, each row's reactions
    /// ([`REACTIONS`]), and with `receipts` theirs, in the same statement, and what
    /// [`Beside`] asks for too.
    fn read_rows(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        order: Order,
        limit: usize,
        offset: usize,
        Beside {
            anchor,
            total,
            count,
        }: Beside,
    ) -> anyhow::Result<Result<Read, HistoryError>> {
        let receipts = match self.receipts {
            Some(_) => format!(", {RECEIPTS}"),
            None => String::new(),
        };
        let columns = format!("{ARCHIVED_COLUMNS}, {REACTIONS}{receipts}");
        let mut sql = Sql::select(&columns, q, bounds, Vec::new());
        // The limit a literal and no offset unless there is one: with `LIMIT $n OFFSET $m`
        // PostgreSQL's generic plan expects a tenth of the rows it estimates, costs more than
        // the custom one, and `auto` planned the page at each run (0.12 ms of planning for
        // 0.03 ms of running at 1 M messages); with these, it kept the generic plan
        // (0.007 ms), the plan the readers now always keep (`mod.rs`). The literal is the
        // limit rounded up to a multiple of eight, the rows beyond the limit dropped here:
        // each reader connection keeps every statement text it prepared, so a client cycling
        // through every page size makes it prepare one text of each shape for eight sizes,
        // and a page `with` a sender, whose every row is a heap visit of its own, reads at
        // most seven rows more (a page of 50: 56 rows).
        let fetched = limit.next_multiple_of(8);
        sql.text.push_str(&sql.order_by(order));
        sql.text.push_str(&format!(" LIMIT {fetched}"));
        if offset > 0 {
            sql.bind(" OFFSET ", Arg::Int(offset as i64), "");
        }
        // The anchor's look-up, the total, the count and the rows in one round trip: the
        // rows joined to the one row that holds the others, so that the statement returns
        // one row (of NULLs in the page's columns) when the anchor is not there, or when no
        // row is.
        let reactions_column = ARCHIVED_COLUMNS.split(',').count();
        let page_columns = reactions_column + 1 + usize::from(self.receipts.is_some());
        let mut head = Vec::new();
        if let Some(id) = anchor {
            let mut found = Sql {
                args: std::mem::take(&mut sql.args),
                ..Sql::default()
            };
            found.bind(
                "EXISTS (SELECT 1 FROM messages WHERE id = ",
                Arg::Int(id),
                &format!(" AND channel = ${}) AS anchor", sql.channel),
            );
            sql.args = found.args;
            head.push(found.text);
        }
        if total {
            head.push(format!(
                "(SELECT message_count FROM channels WHERE key = ${}) AS total",
                sql.channel
            ));
        }
        let mut parts = Vec::new();
        let mut columns = vec!["page.*"];
        if !head.is_empty() {
            parts.push(format!("(SELECT {}) AS head", head.join(", ")));
            columns.push("head.*");
        }
        if let Some(count) = count {
            let counted = count.sql(std::mem::take(&mut sql.args));
            sql.args = counted.args;
            parts.push(format!("({}) AS tally", counted.text));
            columns.push("tally.*");
        }
        if !parts.is_empty() {
            let join = match anchor {
                Some(_) => "head.anchor",
                None => "true",
            };
            sql.text = format!(
                "SELECT {} FROM {} LEFT JOIN ({}) AS page ON {join}",
                columns.join(", "),
                parts.join(" CROSS JOIN "),
                sql.text
            );
        }
        let rows = sql.query(self.conn)?;
        // The head's columns, then the count's, after the page's: one row at least then.
        let first = || rows.first().context("a page's statement without its head");
        let mut column = page_columns;
        if let Some(id) = anchor {
            if !first()?.try_get::<_, bool>(column)? {
                return Ok(Err(HistoryError::UnknownId(id)));
            }
            column += 1;
        }
        let total = match total {
            true => {
                column += 1;
                Some(first()?.try_get::<_, Option<i64>>(column - 1)?.unwrap_or(0) as usize)
            }
            false => None,
        };
        let tally = match count {
            Some(_) => Some(Tally::read(first()?, column)?),
            None => None,
        };
        let mut messages = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            // The head's row when no row of the page is there.
            if row.try_get::<_, Option<i64>>(0)?.is_none() {
                continue;
            }
            let mut message = archived(row)?;
            let given = row.try_get::<_, Option<Vec<&str>>>(reactions_column)?;
            for given in given.into_iter().flatten() {
                let (member, reactions) = given
                    .split_once('\n')
                    .context("a reactions row without its member")?;
                history::add_reaction(&mut message, &bare(member.to_owned())?, reactions);
            }
            if let Some(found) = &mut self.receipts {
                let given = row.try_get::<_, Option<Vec<&str>>>(reactions_column + 1)?;
                if let (Some(given), None) = (given, &message.notice) {
                    found.insert(message.posted.id, member_receipts(&given)?);
                }
            }
            messages.push(message);
        }
        Ok(Ok(Read {
            rows: messages,
            total,
            tally,
        }))
    }

    /// `count` in one statement of its own: a count read with the rows and found outside
    /// `q`'s times read again ([`PgArchive::checked`]).
    fn counted(&mut self, count: CountOf) -> anyhow::Result<Tally> {
        let sql = count.sql(Vec::new());
        Tally::read(&sql.query(self.conn)?[0], 0)
    }

    /// `tally`, a count of `count`, if it was read without `q`'s times and its rows lie
    /// within them, or it was read with them; else `q` counted again with its times.
    fn checked(&mut self, q: &HistoryQuery, count: CountOf, tally: Tally) -> anyhow::Result<Tally> {
        let within = |(first, last)| within_times(q, first) && within_times(q, last);
        if !count.times || tally.times.is_none_or(within) {
            return Ok(tally);
        }
        self.counted(CountOf {
            q,
            times: false,
            ..count
        })
    }
}

/// A count of `q`'s rows within `bounds` up to `limit` ([`Counting::Upto`]), with
/// `times` the earliest and latest time of the rows counted (read only to be checked), with
/// `newest` the channel's newest id (one step down `messages_by_channel`).
#[derive(Clone, Copy)]
struct CountOf<'q> {
    q: &'q HistoryQuery,
    bounds: Bounds,
    limit: usize,
    times: bool,
    newest: bool,
}

impl<'q> CountOf<'q> {
    /// The count of `q`, by the id bounds alone (`untimed`, its times to be checked) when
    /// `q` has times.
    fn of(
        q: &'q HistoryQuery,
        untimed: Option<&'q HistoryQuery>,
        bounds: Bounds,
        limit: usize,
        newest: bool,
    ) -> Self {
        CountOf {
            q: untimed.unwrap_or(q),
            bounds,
            limit,
            times: untimed.is_some(),
            newest,
        }
    }

    /// The count's one-row statement, its parameters numbered on from `args`. The limit a
    /// literal (always [`history::COUNTED_EXACTLY`] + 1), so that the count keeps its
    /// generic plan as a page does (`read_rows`).
    fn sql(self, args: Vec<Arg>) -> Sql {
        let (columns, mut aggregates) = match self.times {
            true => (
                "id, at",
                String::from("count(*), max(id), min(at), max(at)"),
            ),
            false => (
                "id",
                String::from("count(*), max(id), NULL::bigint, NULL::bigint"),
            ),
        };
        let sql = Sql::select(columns, self.q, self.bounds, args);
        if self.newest {
            aggregates.push_str(&format!(
                ", (SELECT id FROM messages WHERE channel = ${} ORDER BY id DESC LIMIT 1)",
                sql.channel
            ));
        }
        Sql {
            text: format!(
                "SELECT {aggregates} FROM ({}{} LIMIT {}) AS counted",
                sql.text,
                sql.order_by(Order::Ascending),
                self.limit
            ),
            ..sql
        }
    }
}

/// What a page's statement reads beside its rows: with `anchor` (an id the page reads after
/// or before) the look-up of that id ([`HistoryError::UnknownId`] if it is not in the
/// archive), with `total` the channel's running total ([`Counting::Total`]), and a `count`.
#[derive(Clone, Copy)]
struct Beside<'q> {
    anchor: Option<i64>,
    total: bool,
    count: Option<CountOf<'q>>,
}

/// What a page's statement read: its rows, and what [`Beside`] asked for.
struct Read {
    rows: Vec<Archived>,
    total: Option<usize>,
    tally: Option<Tally>,
}

/// What a count read: how many rows, the last id counted, if asked for the earliest and
/// latest time of the rows counted (none when none were), and if asked for the channel's
/// newest id.
struct Tally {
    rows: usize,
    last: Option<i64>,
    times: Option<(i64, i64)>,
    newest: Option<i64>,
}

impl Tally {
    /// The count's columns ([`CountOf::sql`]) of `row` from column `from` on.
    fn read(row: &Row, from: usize) -> anyhow::Result<Tally> {
        Ok(Tally {
            rows: row.try_get::<_, i64>(from)? as usize,
            last: row.try_get(from + 1)?,
            times: row
                .try_get::<_, Option<i64>>(from + 2)?
                .zip(row.try_get(from + 3)?),
            newest: match row.len() > from + 4 {
                true => row.try_get(from + 4)?,
                false => None,
            },
        })
    }
}

impl Archive for PgArchive<'_> {
    fn exists(&mut self, channel: i64, id: i64) -> anyhow::Result<bool> {
        let sql = "SELECT 1 FROM messages WHERE id = $1 AND channel = $2";
        Ok(self.row(sql, &[&id, &channel])?.is_some())
    }

    fn probe_width(&self) -> usize {
        PROBE_WIDTH
    }

    /// The ends and, in the same statement, the first row from each of `times`' first
    /// guesses ([`time_search::Ends::probed`]: interpolated between the ends, and the id
    /// before; the division in `numeric`, as `time_search` divides in `i128`): a start-end
    /// page's search and its first probe read in one round trip, where they took two, and on
    /// an archive whose pace holds (the benchmark's) the whole search. The ends' row comes
    /// once for each guess (or once, its guess NULL, when there is none).
    fn ends(
        &mut self,
        channel: i64,
        floor: i64,
        ceiling: i64,
        times: &[i64],
    ) -> anyhow::Result<Option<time_search::Ends>> {
        let statement = self.conn.prepare(
            "SELECT e.first_id, e.first_at, e.last_id, e.last_at, f.id, probe.id, probe.at
             FROM (SELECT first.id AS first_id, first.at AS first_at,
                          last.id AS last_id, last.at AS last_at
                   FROM (SELECT id, at FROM messages WHERE channel = $1 AND id > $2 AND id < $3
                         ORDER BY id LIMIT 1) AS first,
                        (SELECT id, at FROM messages WHERE channel = $1 AND id > $2 AND id < $3
                         ORDER BY id DESC LIMIT 1) AS last) AS e
             LEFT JOIN LATERAL (
                 SELECT DISTINCT greatest(e.first_id + 1, least(e.last_id - 1, guess.id - back.by)) AS id
                 FROM unnest($4::bigint[]) AS t (time),
                      LATERAL (SELECT e.first_id
                                      + div((t.time - e.first_at)::numeric * (e.last_id - e.first_id)
                                              + (e.last_at - e.first_at) - 1,
                                            e.last_at - e.first_at)::bigint) AS guess (id),
                      (VALUES (0), (1)) AS back (by)
                 WHERE e.first_at < t.time AND t.time <= e.last_at
                   AND e.first_id + 1 < e.last_id) AS f ON true
             LEFT JOIN LATERAL (SELECT id, at FROM messages
                                WHERE channel = $1 AND id >= f.id AND id < e.last_id
                                ORDER BY id LIMIT 1) AS probe ON true
             ORDER BY f.id",
        )?;
        let rows = self
            .conn
            .client
            .query(&statement, &[&channel, &floor, &ceiling, &times])?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut probed = Vec::new();
        for row in &rows {
            let Some(from) = row.try_get::<_, Option<i64>>(4)? else {
                continue;
            };
            let id: Option<i64> = row.try_get(5)?;
            probed.push((
                from,
                match id {
                    Some(id) => Some((id, row.try_get(6)?)),
                    None => None,
                },
            ));
        }
        Ok(Some(time_search::Ends {
            first: (row.try_get(0)?, row.try_get(1)?),
            last: (row.try_get(2)?, row.try_get(3)?),
            probed,
        }))
    }

    fn first_from_each(
        &mut self,
        channel: i64,
        froms: &[i64],
        below: i64,
    ) -> anyhow::Result<Vec<Option<time_search::Row>>> {
        let statement = self.conn.prepare(
            "SELECT probe.id, probe.at FROM unnest($2::bigint[]) WITH ORDINALITY AS f (id, n)
             LEFT JOIN LATERAL (SELECT id, at FROM messages
                                WHERE channel = $1 AND id >= f.id AND id < $3
                                ORDER BY id LIMIT 1) AS probe ON true
             ORDER BY f.n",
        )?;
        self.conn
            .client
            .query(&statement, &[&channel, &froms, &below])?
            .iter()
            .map(|row| {
                let id: Option<i64> = row.try_get(0)?;
                Ok(match id {
                    Some(id) => Some((id, row.try_get(1)?)),
                    None => None,
                })
            })
            .collect()
    }

    /// The anchor looked up, the rows and their reactions read, and what `counting` asks
    /// for, in one statement ([`PgArchive::read_rows`]); when `q` has times, the rows and the
    /// count read by the id bounds alone and checked against the times ([`untimed`]).
    fn page_rows(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        order: Order,
        limit: usize,
        offset: usize,
        counting: Counting,
    ) -> anyhow::Result<Result<PageRows, HistoryError>> {
        let untimed = untimed(q);
        let count = match counting {
            Counting::Upto {
                bounds,
                limit,
                newest,
            } => Some(CountOf::of(q, untimed.as_ref(), bounds, limit, newest)),
            Counting::Nothing | Counting::Total => None,
        };
        let beside = Beside {
            anchor: history::anchor(&q.page),
            total: counting == Counting::Total,
            count,
        };
        // Only when nothing is skipped: skipped rows would go unchecked.
        let read = match untimed.as_ref().filter(|_| offset == 0) {
            Some(untimed) => self.read_rows(untimed, bounds, order, limit, 0, beside)?,
            None => self.read_rows(q, bounds, order, limit, offset, beside)?,
        };
        let mut read = match read {
            Ok(read) => read,
            Err(unknown) => return Ok(Err(unknown)),
        };
        if !read.rows.iter().all(|m| within_times(q, m.posted.at)) {
            // Read again with the times in the SQL; the anchor was found and the count read.
            let only_rows = Beside {
                anchor: None,
                total: false,
                count: None,
            };
            match self.read_rows(q, bounds, order, limit, offset, only_rows)? {
                Ok(again) => read.rows = again.rows,
                Err(unknown) => return Ok(Err(unknown)),
            }
        }
        let counted = match (read.total, read.tally, count) {
            (Some(total), _, _) => Some(Counted::Total(total)),
            (None, Some(tally), Some(count)) => {
                let tally = self.checked(q, count, tally)?;
                Some(Counted::Upto(tally.rows, tally.last, tally.newest))
            }
            _ => None,
        };
        Ok(Ok((read.rows, counted)))
    }
}

/// `q` without its times, if it has any. With `at >= $n AND at <= $m` beside the id bounds a
/// statement was planned at each run under `auto` (before the readers forced generic plans,
/// `mod.rs`; its custom plan, estimating one row, always costs less
/// than the generic one: 0.05–0.2 ms of planning for 0.03–0.09 ms of running, at 10 M
/// messages), yet the bounds the time search found (`history::Bounds`) hold only rows within
/// the times while times grow with ids. So a page or a count reads by the bounds alone, and
/// mixd checks the times of the rows it read: only when one lies outside them (a clock
/// stepped back across a restart) is it read again with the times in the SQL. The first
/// rows of a read that are all within the times are the first rows within them.
fn untimed(q: &HistoryQuery) -> Option<HistoryQuery> {
    (q.start.is_some() || q.end.is_some()).then(|| HistoryQuery {
        start: None,
        end: None,
        ..q.clone()
    })
}

/// Whether a row of time `at` lies within `q`'s times.
fn within_times(q: &HistoryQuery, at: i64) -> bool {
    q.start.is_none_or(|start| at >= start) && q.end.is_none_or(|end| at <= end)
}

/// Each of [`RECEIPTS`]'s lines of one row, parsed.
fn member_receipts(given: &[&str]) -> anyhow::Result<Vec<MemberReceipt>> {
    let time = |t: &str| -> anyhow::Result<Option<i64>> {
        Ok(match t {
            "" => None,
            t => Some(t.parse().context("a receipt's time")?),
        })
    };
    given
        .iter()
        .map(|given| {
            let mut parts = given.split('\n');
            let (Some(member), Some(delivered), Some(displayed), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                anyhow::bail!("a receipts row not of three lines");
            };
            Ok(MemberReceipt {
                member: bare(member.to_owned())?,
                delivered_at: time(delivered)?,
                displayed_at: time(displayed)?,
            })
        })
        .collect()
}

/// The ends of `channel`'s rows within `floor < id < ceiling` and the first guesses for
/// `times` probed with them, as a page's time search reads them.
#[cfg(test)]
pub(super) fn ends(
    reader: &PgReader,
    channel: i64,
    (floor, ceiling): (i64, i64),
    times: &[i64],
) -> anyhow::Result<Option<time_search::Ends>> {
    reader.with_conn(|conn| {
        let mut archive = PgArchive {
            conn,
            receipts: None,
        };
        archive.ends(channel, floor, ceiling, times)
    })
}

/// One page of `q`.
pub(super) fn page(reader: &PgReader, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
    reader.with_conn(|conn| {
        let mut archive = PgArchive {
            conn,
            receipts: None,
        };
        history::page(&mut archive, q)
    })?
}

/// One page of `q` and its rows' receipts, read in the page's statement.
pub(super) fn page_with_receipts(
    reader: &PgReader,
    q: &HistoryQuery,
) -> Result<PageReceipts, HistoryError> {
    reader.with_conn(|conn| {
        let mut archive = PgArchive {
            conn,
            receipts: Some(HashMap::new()),
        };
        let page = match history::page(&mut archive, q)? {
            Ok(page) => page,
            Err(unknown) => return Ok(Err(unknown)),
        };
        // Only the page's own rows': the row read beyond it (whether more follow) is not
        // shown, nor a page read before a second one (times, `page_rows`).
        let mut found = archive.receipts.unwrap_or_default();
        let receipts = page
            .messages
            .iter()
            .filter_map(|m| Some((m.posted.id, found.remove(&m.posted.id)?)))
            .collect();
        Ok(Ok((page, receipts)))
    })?
}

/// By archive id first (what the client's reference decoded to, if anything), else the
/// newest message whose origin-id or client id is the reference as sent; notices are never
/// the target. A number the client sends is not an archive id: those are never shown.
pub(super) fn find_message(
    conn: &mut Conn,
    channel: i64,
    by_id: Option<i64>,
    reference: &str,
) -> anyhow::Result<Option<MessageRef>> {
    let found = |row: Row| -> anyhow::Result<MessageRef> {
        Ok(MessageRef {
            id: row.try_get(0)?,
            channel: row.try_get(1)?,
            sender: bare(row.try_get(2)?)?,
            retracted: row.try_get::<_, Option<i64>>(3)?.is_some(),
            client_id: row.try_get(4)?,
        })
    };
    if let Some(id) = by_id {
        let statement = conn.prepare(
            "SELECT id, channel, sender, retracted_at, client_id FROM messages
             WHERE id = $1 AND channel = $2 AND notice = 0 AND action = 0",
        )?;
        if let Some(row) = conn.client.query_opt(&statement, &[&id, &channel])? {
            return found(row).map(Some);
        }
    }
    let statement = conn.prepare(
        "SELECT id, channel, sender, retracted_at, client_id FROM messages
         WHERE channel = $1 AND notice = 0 AND action = 0 AND (origin_id = $2 OR client_id = $2)
         ORDER BY id DESC LIMIT 1",
    )?;
    conn.client
        .query_opt(&statement, &[&channel, &reference])?
        .map(found)
        .transpose()
}

/// The receipts of each of `messages` (a history page's rows) with one query: by message,
/// each by member.
pub(super) fn receipts_of(
    conn: &mut Conn,
    messages: &[i64],
) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
    let mut found: HashMap<i64, Vec<MemberReceipt>> = HashMap::new();
    if messages.is_empty() {
        return Ok(found);
    }
    let statement = conn.prepare(
        "SELECT message, member, delivered_at, displayed_at FROM receipts
         WHERE message = ANY($1) ORDER BY message, member",
    )?;
    for row in conn.client.query(&statement, &[&messages])? {
        found
            .entry(row.try_get(0)?)
            .or_default()
            .push(MemberReceipt {
                member: bare(row.try_get(1)?)?,
                delivered_at: row.try_get(2)?,
                displayed_at: row.try_get(3)?,
            });
    }
    Ok(found)
}
