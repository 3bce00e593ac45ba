//! Reading the archive: history pages (MAM and FlyChat history), the message a retraction,
//! correction, reaction or receipt names, and the receipts recorded for messages.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use super::{bare, SqliteReader};
use crate::core::MessageRef;
use crate::store::columns::{archived, ARCHIVED_COLUMNS};
use crate::store::time_search::{first_at_or_after, Probe, Row};
use crate::store::{Archived, HistoryError, HistoryPage, HistoryQuery, MemberReceipt, Page};

/// Fills in the reactions of a page's messages with one query.
fn add_reactions(conn: &Connection, messages: &mut [Archived]) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    let (low, high) = (
        first.posted.id.min(last.posted.id),
        first.posted.id.max(last.posted.id),
    );
    let mut stmt = conn.prepare_cached(
        "SELECT message, member, reactions FROM reactions WHERE message BETWEEN ?1 AND ?2 ORDER BY at, member",
    )?;
    let mut rows = stmt.query(params![low, high])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let Some(message) = messages.iter_mut().find(|m| m.posted.id == id) else {
            continue;
        };
        let member = bare(row.get(1)?)?;
        let reactions: String = row.get(2)?;
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

/// Up to how many matches a filtered `<count/>` counts; beyond, it is estimated from how
/// densely those matches lie (XEP-0059 §2.1: the count MAY be approximate), so that no query
/// reads more of the archive than a few pages, whatever its size.
pub(crate) const COUNTED_EXACTLY: usize = 256;

/// Where a query's rows are read: named for the filters that have an index of their own, so
/// that SQLite never walks the whole channel in id order to find a rare sender's messages
/// (without statistics, which mixd does not gather, its planner sometimes did).
fn source(q: &HistoryQuery) -> &'static str {
    if q.with.is_some() {
        "messages INDEXED BY messages_by_sender"
    } else if q.media_only {
        "messages INDEXED BY messages_with_media"
    } else {
        "messages"
    }
}

/// The conditions of `q` other than its bounds on `id`: SQL and its parameters.
fn conditions(q: &HistoryQuery) -> (String, Vec<Value>) {
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
    (sql, args)
}

/// The archive ids a query's rows lie strictly between. One lower and one upper bound in the
/// SQL, never two on a side: SQLite would range-scan from the looser one (that cost 34 ms
/// a page at 1 M messages once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    floor: i64,
    ceiling: i64,
}

impl Bounds {
    /// What the requester cleared, `after-id`, `before-id` and the times `start` and `end`,
    /// the last two found by interpolation search on the `(channel, id)` index
    /// (`store::time_search`). That takes archive times
    /// to grow with archive ids, as mixd assigns both (the service's clock never goes back
    /// while it runs; only a clock stepped back across a restart can break it, and then the
    /// times' own conditions (in [`conditions`]) still keep every row outside them out).
    fn of(conn: &Connection, q: &HistoryQuery) -> anyhow::Result<Bounds> {
        let mut bounds = Bounds {
            floor: q.hidden_upto.max(q.after_id.unwrap_or(0)),
            ceiling: q.before_id.unwrap_or(i64::MAX),
        };
        if q.start.is_none() && q.end.is_none() {
            return Ok(bounds);
        }
        let mut index = IdIndex {
            conn,
            channel: q.channel,
        };
        if let Some(start) = q.start {
            match first_at_or_after(&mut index, bounds.floor, bounds.ceiling, start)? {
                Some(first) => bounds.floor = first - 1,
                None => bounds.floor = bounds.ceiling,
            }
        }
        if let Some(end) = q.end {
            let after = first_at_or_after(
                &mut index,
                bounds.floor,
                bounds.ceiling,
                end.saturating_add(1),
            )?;
            if let Some(after) = after {
                bounds.ceiling = after;
            }
        }
        Ok(bounds)
    }

    /// The same bounds, narrowed by the page: after one id, or before one.
    fn paged(self, page: &Page) -> Bounds {
        match *page {
            Page::After(id) => Bounds {
                floor: self.floor.max(id),
                ..self
            },
            Page::Before(id) => Bounds {
                ceiling: self.ceiling.min(id),
                ..self
            },
            Page::First | Page::Last | Page::Index(_) => self,
        }
    }

    fn args(self) -> [Value; 2] {
        [self.floor.into(), self.ceiling.into()]
    }
}

/// The channel's newest archive id, one step down the `(channel, id)` index.
fn newest_id(conn: &Connection, channel: i64) -> anyhow::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM messages WHERE channel = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([channel], |r| r.get(0))
        .optional()?)
}

/// The archive's id index as the time search probes it (`store::time_search`).
struct IdIndex<'c> {
    conn: &'c Connection,
    channel: i64,
}

impl Probe for IdIndex<'_> {
    fn first_from(&mut self, from: i64, below: i64) -> anyhow::Result<Option<Row>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, at FROM messages WHERE channel = ?1 AND id >= ?2 AND id < ?3 ORDER BY id LIMIT 1",
            )?
            .query_row(params![self.channel, from, below], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn last_below(&mut self, above: i64, below: i64) -> anyhow::Result<Option<Row>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, at FROM messages WHERE channel = ?1 AND id > ?2 AND id < ?3 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![self.channel, above, below], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

/// One page of `q`. It takes the reader, not a connection, because the reader's connection
/// scope speaks storage errors only: an unknown paging id (the requester's error) is carried
/// out beside it and reported once the connection is back in the pool.
pub(super) fn page(reader: &SqliteReader, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
    let mut unknown = None;
    let page = reader.with_conn(|conn| {
        let exists = |id: i64| -> anyhow::Result<bool> {
            Ok(conn
                .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND channel = ?2")?
                .query_row(params![id, q.channel], |_| Ok(()))
                .optional()?
                .is_some())
        };
        // XEP-0313 §4.1.4: an id the form names that is not in the archive is an error, and
        // so is an RSM id.
        let paging_id = match q.page {
            Page::After(id) | Page::Before(id) => Some(id),
            Page::First | Page::Last | Page::Index(_) => None,
        };
        let named = q.after_id.iter().chain(&q.before_id).chain(&q.ids);
        for &id in named.chain(&paging_id) {
            if !exists(id)? {
                unknown = Some(id);
                return Ok(HistoryPage::default());
            }
        }
        let (conditions, args) = conditions(q);
        let bounds = Bounds::of(conn, q)?;
        let (order, offset) = match q.page {
            Page::First | Page::After(_) => ("ASC", 0),
            Page::Index(i) => ("ASC", i),
            Page::Before(_) | Page::Last => ("DESC", 0),
        };
        // The limit is written into the statement, not bound: SQLite prepares a statement
        // again whenever a `LIMIT ?` is bound (it plans for the value), which took a tenth
        // of a reader's time (docs/benchmarks.md, issue 16); a page size is one of a few.
        let sql = format!(
            "SELECT {ARCHIVED_COLUMNS} FROM {}
             WHERE {conditions} AND id > ? AND id < ? ORDER BY id {order} LIMIT {} OFFSET ?",
            source(q),
            q.max + 1
        );
        let all = args
            .iter()
            .cloned()
            .chain(bounds.paged(&q.page).args())
            .chain([(offset as i64).into()]);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(all))?;
        let mut messages = Vec::new();
        while let Some(row) = rows.next()? {
            messages.push(archived(row)?);
        }
        let complete = messages.len() <= q.max;
        messages.truncate(q.max);
        if order == "DESC" {
            messages.reverse();
        }
        add_reactions(conn, &mut messages)?;
        // Only where it is known without counting: after an arbitrary id it would take a
        // scan of everything before it.
        let first_index = match q.page {
            Page::First => Some(0),
            Page::Index(i) => Some(i),
            Page::After(_) | Page::Before(_) | Page::Last => None,
        };
        let count = match first_index {
            _ if !q.counted => 0,
            // A first page that holds all there is has counted them.
            Some(first) if complete && !messages.is_empty() => first + messages.len(),
            // An estimate never says that a page with more after it is the last.
            Some(first) if !complete => {
                count(conn, q, &conditions, &args, bounds)?.max(first + messages.len() + 1)
            }
            _ => count(conn, q, &conditions, &args, bounds)?,
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

/// How many rows match `q` on all its pages: the channel's running total when nothing is
/// filtered out; else counted up to [`COUNTED_EXACTLY`], and beyond that estimated from
/// where the last one counted lies within the bounds.
fn count(
    conn: &Connection,
    q: &HistoryQuery,
    conditions: &str,
    args: &[Value],
    bounds: Bounds,
) -> anyhow::Result<usize> {
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
    if !filtered {
        let total: Option<i64> = conn
            .prepare_cached("SELECT message_count FROM channels WHERE key = ?1")?
            .query_row([q.channel], |r| r.get(0))
            .optional()?;
        return Ok(total.unwrap_or(0) as usize);
    }
    let sql = format!(
        "SELECT count(*), max(id) FROM (SELECT id FROM {}
         WHERE {conditions} AND id > ? AND id < ? ORDER BY id LIMIT {})",
        source(q),
        COUNTED_EXACTLY + 1
    );
    let all = args.iter().cloned().chain(bounds.args());
    let (counted, last): (i64, Option<i64>) = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(all), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let counted = counted as usize;
    let (Some(last), true) = (last, counted > COUNTED_EXACTLY) else {
        return Ok(counted);
    };
    let newest = newest_id(conn, q.channel)?.unwrap_or(last);
    let span = (bounds.ceiling.min(newest + 1) - bounds.floor - 1) as f64;
    let sampled = (last - bounds.floor) as f64;
    Ok(((counted as f64 * span / sampled).round() as usize).max(counted))
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
/// channel's whole archive.
const REFERENCE_LOOKUP: &str = "SELECT id, channel, sender, retracted_at, client_id FROM (
     SELECT id, channel, sender, retracted_at, client_id
       FROM messages INDEXED BY messages_by_origin_id
      WHERE channel = ?1 AND origin_id = ?2 AND notice = 0 AND action = 0
     UNION ALL
     SELECT id, channel, sender, retracted_at, client_id
       FROM messages INDEXED BY messages_by_client_id
      WHERE channel = ?1 AND client_id = ?2 AND notice = 0 AND action = 0)
     ORDER BY id DESC LIMIT 1";

/// The receipts of `messages`, each message's by member: one statement for a whole page,
/// its ids bound as one JSON array so that the statement is prepared once whatever their
/// number; each id is a lookup on the `(message, member)` key.
pub(super) fn receipts_of(
    conn: &Connection,
    messages: &[i64],
) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
    let mut found: HashMap<i64, Vec<MemberReceipt>> = HashMap::new();
    if messages.is_empty() {
        return Ok(found);
    }
    let ids = format!(
        "[{}]",
        messages
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
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
                && !plan.iter().any(|p| p.contains("SCAN messages")),
            "{plan:?}"
        );
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
