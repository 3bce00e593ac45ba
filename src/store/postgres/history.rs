//! Reading the archive: history pages (MAM and FlyChat history), the message a retraction,
//! correction, reaction or receipt names, and the receipts recorded for a message. A page's
//! logic is `store/history.rs`, shared with SQLite; here its statements in PostgreSQL's SQL.

use std::collections::HashMap;

use postgres::types::{ToSql, Type};
use postgres::Row;

use super::{bare, Conn, PgReader};
use crate::core::MessageRef;
use crate::store::columns::{archived, ARCHIVED_COLUMNS};
use crate::store::history::{
    self, Archive, Bounds, Order, PageRead, PageRows, Tallied, Tally, COUNTED_EXACTLY,
};
use crate::store::time_search;
use crate::store::{HistoryError, HistoryPage, HistoryQuery, MemberReceipt};

/// A statement's text and its parameters, numbered as they are added.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Whether a parameter's value changes the best plan: a sender, rare or not. A generic
    /// plan (what `auto` keeps for a prepared statement after five runs) does not know how
    /// rare `sender = $2` is, and walked the channel in id order: 82 ms instead of 0.16 ms
    /// for a page `with` one at 1 M messages (docs/benchmarks.md, `pghist`).
    planned_each_run: bool,
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

    fn sql_type(&self) -> Type {
        match self {
            Arg::Int(_) => Type::INT8,
            Arg::Ints(_) => Type::INT8_ARRAY,
            Arg::Text(_) => Type::TEXT,
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

    /// Runs the statement in one round trip: prepared once per connection, or, planned at
    /// each run, unnamed (parsed, planned for these parameters and run in one exchange).
    fn query(&self, conn: &mut Conn) -> anyhow::Result<Vec<Row>> {
        if self.planned_each_run {
            let typed: Vec<_> = self
                .args
                .iter()
                .map(|a| (a.as_sql(), a.sql_type()))
                .collect();
            return Ok(conn.client.query_typed(&self.text, &typed)?);
        }
        let statement = conn.prepare(&self.text)?;
        let params: Vec<_> = self.args.iter().map(Arg::as_sql).collect();
        Ok(conn.client.query(&statement, &params)?)
    }

    /// Appends `SELECT {columns} FROM messages WHERE` the conditions of `q` within `bounds`.
    fn select(&mut self, columns: &str, q: &HistoryQuery, bounds: Bounds) {
        self.planned_each_run |= q.with.is_some();
        self.text
            .push_str(&format!("SELECT {columns} FROM messages WHERE "));
        let sql = self;
        sql.bind("channel = ", Arg::Int(q.channel), "");
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
        if let Some(with) = &q.with {
            sql.bind(" AND sender = ", Arg::Text(with.as_str().to_owned()), "");
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
        sql.bind(" AND id > ", Arg::Int(bounds.floor), "");
        sql.bind(" AND id < ", Arg::Int(bounds.ceiling), "");
    }

    /// Appends the count of `q`'s first `limit` rows in id order within `bounds` and the last
    /// of them: one row, `counted` and `last`.
    fn count_upto(&mut self, q: &HistoryQuery, bounds: Bounds, limit: usize) {
        self.text
            .push_str("SELECT count(*) AS counted, max(id) AS last FROM (");
        self.select("id", q, bounds);
        self.text.push_str(" ORDER BY id");
        self.bind(" LIMIT ", Arg::Int(limit as i64), ") AS upto");
    }
}

/// How many ids one statement of the time search probes: each statement is a round trip and
/// a plan, and each probe a step into the index of a few buffers, so a read of eight takes
/// an archive of 10 M to its time in one or two reads after its ends where one probe a
/// statement took about four.
const PROBE_WIDTH: usize = 8;

/// The history statements on one PostgreSQL connection.
struct PgArchive<'c>(&'c mut Conn);

impl PgArchive<'_> {
    /// The one row, if any, of a statement prepared once per connection.
    fn row(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Option<Row>> {
        let statement = self.0.prepare(sql)?;
        Ok(self.0.client.query_opt(&statement, params)?)
    }
}

impl Archive for PgArchive<'_> {
    fn newest_id(&mut self, channel: i64) -> anyhow::Result<Option<i64>> {
        let sql = "SELECT id FROM messages WHERE channel = $1 ORDER BY id DESC LIMIT 1";
        Ok(self
            .row(sql, &[&channel])?
            .map(|row| row.try_get(0))
            .transpose()?)
    }

    fn probe_width(&self) -> usize {
        PROBE_WIDTH
    }

    fn ends(
        &mut self,
        channel: i64,
        floor: i64,
        ceiling: i64,
    ) -> anyhow::Result<Option<(time_search::Row, time_search::Row)>> {
        let sql = "SELECT first.id, first.at, last.id, last.at
                   FROM (SELECT id, at FROM messages WHERE channel = $1 AND id > $2 AND id < $3
                         ORDER BY id LIMIT 1) AS first,
                        (SELECT id, at FROM messages WHERE channel = $1 AND id > $2 AND id < $3
                         ORDER BY id DESC LIMIT 1) AS last";
        let Some(row) = self.row(sql, &[&channel, &floor, &ceiling])? else {
            return Ok(None);
        };
        Ok(Some((
            (row.try_get(0)?, row.try_get(1)?),
            (row.try_get(2)?, row.try_get(3)?),
        )))
    }

    fn first_from_each(
        &mut self,
        channel: i64,
        froms: &[i64],
        below: i64,
    ) -> anyhow::Result<Vec<Option<time_search::Row>>> {
        let statement = self.0.prepare(
            "SELECT probe.id, probe.at FROM unnest($2::bigint[]) WITH ORDINALITY AS f (id, n)
             LEFT JOIN LATERAL (SELECT id, at FROM messages
                                WHERE channel = $1 AND id >= f.id AND id < $3
                                ORDER BY id LIMIT 1) AS probe ON true
             ORDER BY f.n",
        )?;
        self.0
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

    /// One statement: the page's rows in a `LATERAL` read beside a one-row head, so that
    /// an empty page still answers, and each row's reactions aggregated from the `reactions`
    /// key beside it; in the head, the first id named that is not the channel's, and what
    /// the page's count reads (the running total, or the rows counted and the newest id).
    fn page_rows(
        &mut self,
        q: &HistoryQuery,
        read: &PageRead,
    ) -> anyhow::Result<Result<PageRows, i64>> {
        let mut sql = Sql::default();
        // `$1`: the channel, bound first.
        sql.select(ARCHIVED_COLUMNS, q, read.bounds);
        sql.text
            .push_str(&format!(" ORDER BY id {}", read.order.sql()));
        sql.bind(" LIMIT ", Arg::Int(read.limit as i64), "");
        sql.bind(" OFFSET ", Arg::Int(read.offset as i64), "");
        let page = std::mem::take(&mut sql.text);
        if !read.named.is_empty() {
            sql.bind(
                "(SELECT named.id FROM unnest(",
                Arg::Ints(read.named.to_vec()),
                "::bigint[]) WITH ORDINALITY AS named (id, n)
                  WHERE NOT EXISTS (SELECT 1 FROM messages WHERE id = named.id AND channel = $1)
                  ORDER BY named.n LIMIT 1)",
            );
        }
        let missing = std::mem::take(&mut sql.text);
        let newest = "(SELECT id FROM messages WHERE channel = $1 ORDER BY id DESC LIMIT 1)";
        let (total, newest) = match read.tally {
            Tally::Total => (
                "(SELECT message_count FROM channels WHERE key = $1)",
                "NULL",
            ),
            Tally::Upto(bounds) if bounds.ceiling == i64::MAX => ("NULL", newest),
            Tally::Upto(_) | Tally::Nothing => ("NULL", "NULL"),
        };
        match read.tally {
            Tally::Upto(bounds) => sql.count_upto(q, bounds, COUNTED_EXACTLY + 1),
            Tally::Total | Tally::Nothing => sql
                .text
                .push_str("SELECT NULL::bigint AS counted, NULL::bigint AS last"),
        }
        let head = std::mem::take(&mut sql.text);
        let missing = if missing.is_empty() { "NULL" } else { &missing };
        sql.text = format!(
            "SELECT page.*, reacted.members, reacted.reactions, {missing}::bigint, {total}::bigint,
                    head.counted, head.last, {newest}::bigint
             FROM ({head}) AS head
             LEFT JOIN LATERAL ({page}) AS page ON true
             LEFT JOIN LATERAL (SELECT array_agg(member ORDER BY at, member) AS members,
                                       array_agg(reactions ORDER BY at, member) AS reactions
                                FROM reactions WHERE message = page.id) AS reacted ON true"
        );
        let rows = sql.query(self.0)?;
        let columns = ARCHIVED_COLUMNS.split(',').count();
        let Some(first) = rows.first() else {
            anyhow::bail!("a history page's statement answered no row");
        };
        let head = |i: usize| first.try_get::<_, Option<i64>>(columns + i);
        if let Some(unknown) = head(2)? {
            return Ok(Err(unknown));
        }
        let tallied = match read.tally {
            Tally::Nothing => None,
            Tally::Total => Some(Tallied::Total(head(3)?.unwrap_or(0) as usize)),
            Tally::Upto(_) => Some(Tallied::Upto {
                counted: head(4)?.unwrap_or(0) as usize,
                last: head(5)?,
                newest: head(6)?,
            }),
        };
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            // The head alone: the page is empty.
            if row.try_get::<_, Option<i64>>(0)?.is_none() {
                continue;
            }
            let mut message = archived(row)?;
            let members: Option<Vec<String>> = row.try_get(columns)?;
            let reactions: Option<Vec<&str>> = row.try_get(columns + 1)?;
            for (member, reactions) in members
                .into_iter()
                .flatten()
                .zip(reactions.into_iter().flatten())
            {
                history::add_reaction(&mut message, &bare(member)?, reactions);
            }
            messages.push(message);
        }
        // A `LATERAL` join keeps its rows' order in PostgreSQL's nested loop, but SQL does
        // not promise it: the page's order is made certain here (a page is 51 rows).
        match read.order {
            Order::Ascending => messages.sort_by_key(|m| m.posted.id),
            Order::Descending => messages.sort_by_key(|m| std::cmp::Reverse(m.posted.id)),
        }
        Ok(Ok(PageRows { messages, tallied }))
    }

    fn count_upto(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        limit: usize,
    ) -> anyhow::Result<(usize, Option<i64>)> {
        let mut sql = Sql::default();
        sql.count_upto(q, bounds, limit);
        let row = &sql.query(self.0)?[0];
        Ok((row.try_get::<_, i64>(0)? as usize, row.try_get(1)?))
    }

    fn total(&mut self, channel: i64) -> anyhow::Result<usize> {
        let sql = "SELECT message_count FROM channels WHERE key = $1";
        Ok(self
            .row(sql, &[&channel])?
            .map(|row| row.try_get::<_, i64>(0))
            .transpose()?
            .unwrap_or(0) as usize)
    }
}

/// One page of `q`.
pub(super) fn page(reader: &PgReader, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
    reader.with_conn(|conn| history::page(&mut PgArchive(conn), q))?
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
