//! Reading the archive: history pages (MAM and FlyChat history), the message a retraction,
//! correction, reaction or receipt names, and the receipts recorded for a message. The same
//! queries as the SQLite backend's (`sqlite/history.rs`), keyset pages on `(channel, id)`.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::Row;

use super::{bare, Conn, PgReader};
use crate::core::MessageRef;
use crate::store::columns::{archived, ARCHIVED_COLUMNS};
use crate::store::{Archived, HistoryError, HistoryPage, HistoryQuery, MemberReceipt, Page};

/// Fills in the reactions of a page's messages with one query.
fn add_reactions(conn: &mut Conn, messages: &mut [Archived]) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    let (low, high) = (
        first.posted.id.min(last.posted.id),
        first.posted.id.max(last.posted.id),
    );
    let statement = conn.prepare(
        "SELECT message, member, reactions FROM reactions WHERE message BETWEEN $1 AND $2 ORDER BY at, member",
    )?;
    for row in conn.client.query(&statement, &[&low, &high])? {
        let id: i64 = row.try_get(0)?;
        let Some(message) = messages.iter_mut().find(|m| m.posted.id == id) else {
            continue;
        };
        let member = bare(row.try_get(1)?)?;
        let reactions: String = row.try_get(2)?;
        for reaction in reactions.split('\n') {
            match message.reactions.iter_mut().find(|(r, _)| r == reaction) {
                Some((_, members)) => members.push(member.clone()),
                None => message
                    .reactions
                    .push((reaction.to_owned(), vec![member.clone()])),
            }
        }
    }
    Ok(())
}

/// A statement's text and its parameters, numbered as they are added.
#[derive(Clone, Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

/// The kinds of parameter a history query takes.
#[derive(Clone)]
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

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args.iter().map(Arg::as_sql).collect()
    }

    fn query(&self, conn: &mut Conn) -> anyhow::Result<Vec<Row>> {
        let statement = conn.prepare(&self.text)?;
        Ok(conn.client.query(&statement, &self.params())?)
    }
}

/// One page of `q`. An unknown paging id is the requester's error, told apart from a storage
/// error.
pub(super) fn page(reader: &PgReader, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
    let mut unknown = None;
    let page = reader.with_conn(|conn| {
        // The filters of this query; `id > …` (what the requester cleared) comes last so that
        // a page can replace it with its own lower bound.
        let mut filter = Sql::default();
        filter.bind("channel = ", Arg::Int(q.channel), "");
        if !q.with_notices {
            filter.text.push_str(" AND notice = 0");
        }
        if !q.with_actions {
            filter.text.push_str(" AND action = 0");
        }
        if q.media_only {
            filter.text.push_str(" AND media");
        }
        if let Some(with) = &q.with {
            filter.bind(" AND sender = ", Arg::Text(with.as_str().to_owned()), "");
        }
        if let Some(start) = q.start {
            filter.bind(" AND at >= ", Arg::Int(start), "");
        }
        if let Some(end) = q.end {
            filter.bind(" AND at <= ", Arg::Int(end), "");
        }
        if let Some(before) = q.before_id {
            filter.bind(" AND id < ", Arg::Int(before), "");
        }
        if !q.ids.is_empty() {
            filter.bind(" AND id = ANY(", Arg::Ints(q.ids.clone()), ")");
        }
        // `after-id` is a lower bound, like what the requester cleared: the higher one.
        let floor = q.hidden_upto.max(q.after_id.unwrap_or(0));
        let with_floor = |floor: i64| {
            let mut sql = filter.clone();
            sql.bind(" AND id > ", Arg::Int(floor), "");
            sql
        };
        // Paging after an id raises the lower bound rather than adding a second one.
        let count_filter = with_floor(floor);
        let filter = match q.page {
            Page::After(after) => with_floor(floor.max(after)),
            _ => with_floor(floor),
        };
        let filtered = q.with_notices
            || !q.with_actions
            || q.after_id.is_some()
            || q.before_id.is_some()
            || !q.ids.is_empty()
            || q.with.is_some()
            || q.start.is_some()
            || q.end.is_some()
            || q.media_only
            || q.hidden_upto > 0;
        let exists = |conn: &mut Conn, id: i64| -> anyhow::Result<bool> {
            let statement =
                conn.prepare("SELECT 1 FROM messages WHERE id = $1 AND channel = $2")?;
            Ok(conn
                .client
                .query_opt(&statement, &[&id, &q.channel])?
                .is_some())
        };
        // XEP-0313 §4.1.4: an id the form names that is not in the archive is an error.
        let named = q.after_id.iter().chain(&q.before_id).chain(&q.ids);
        for &id in named {
            if !exists(conn, id)? {
                unknown = Some(id);
                return Ok(HistoryPage::default());
            }
        }
        let count = if !q.counted {
            0
        } else if filtered {
            let mut sql = count_filter;
            sql.text = format!("SELECT count(*) FROM messages WHERE {}", sql.text);
            sql.query(conn)?[0].try_get::<_, i64>(0)? as usize
        } else {
            // The channel's running total answers unfiltered queries without a scan.
            let statement = conn.prepare("SELECT message_count FROM channels WHERE key = $1")?;
            conn.client
                .query_opt(&statement, &[&q.channel])?
                .map(|row| row.try_get::<_, i64>(0))
                .transpose()?
                .unwrap_or(0) as usize
        };
        let fetch = |conn: &mut Conn,
                     before: Option<i64>,
                     order: &str,
                     offset: usize|
         -> anyhow::Result<Vec<Archived>> {
            let mut sql = filter.clone();
            sql.text = format!("SELECT {ARCHIVED_COLUMNS} FROM messages WHERE {}", sql.text);
            if let Some(before) = before {
                sql.bind(" AND id < ", Arg::Int(before), "");
            }
            sql.text.push_str(&format!(" ORDER BY id {order}"));
            sql.bind(" LIMIT ", Arg::Int((q.max + 1) as i64), "");
            sql.bind(" OFFSET ", Arg::Int(offset as i64), "");
            sql.query(conn)?.iter().map(archived).collect()
        };
        let (mut messages, backward) = match q.page {
            Page::First => (fetch(conn, None, "ASC", 0)?, false),
            Page::Index(i) => (fetch(conn, None, "ASC", i)?, false),
            Page::After(id) => {
                if !exists(conn, id)? {
                    unknown = Some(id);
                    return Ok(HistoryPage::default());
                }
                (fetch(conn, None, "ASC", 0)?, false)
            }
            Page::Before(id) => {
                if !exists(conn, id)? {
                    unknown = Some(id);
                    return Ok(HistoryPage::default());
                }
                (fetch(conn, Some(id), "DESC", 0)?, true)
            }
            Page::Last => (fetch(conn, None, "DESC", 0)?, true),
        };
        let complete = messages.len() <= q.max;
        messages.truncate(q.max);
        if backward {
            messages.reverse();
        }
        add_reactions(conn, &mut messages)?;
        let first_index = match q.page {
            Page::First => Some(0),
            Page::Index(i) => Some(i),
            Page::After(_) | Page::Before(_) | Page::Last => None,
        };
        Ok(HistoryPage {
            messages,
            count,
            first_index,
            complete,
        })
    })?;
    match unknown {
        Some(id) => Err(HistoryError::UnknownId(id)),
        None => Ok(page),
    }
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
