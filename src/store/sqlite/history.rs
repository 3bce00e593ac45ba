//! Reading the archive: history pages (MAM and FlyChat history), the message a retraction,
//! correction, reaction or receipt names, and the receipts recorded for messages.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{bare, SqliteReader};
use crate::core::MessageRef;
use crate::store::columns::{archived, ARCHIVED_COLUMNS};
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

/// One page of `q`. It takes the reader, not a connection, because the reader's connection
/// scope speaks storage errors only: an unknown paging id (the requester's error) is carried
/// out beside it and reported once the connection is back in the pool.
pub(super) fn page(reader: &SqliteReader, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
    let mut unknown = None;
    let page = reader.with_conn(|conn| {
        // The filters of this query, as SQL and parameters; `id > ?` (what the requester
        // cleared) comes last so that a page can replace it with its own lower bound.
        let mut filter = String::from("channel = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![q.channel.into()];
        if !q.with_notices {
            filter.push_str(" AND notice = 0");
        }
        if !q.with_actions {
            filter.push_str(" AND action = 0");
        }
        if q.media_only {
            filter.push_str(" AND media = 1");
        }
        if let Some(with) = &q.with {
            filter.push_str(" AND sender = ?");
            args.push(with.as_str().to_owned().into());
        }
        if let Some(start) = q.start {
            filter.push_str(" AND at >= ?");
            args.push(start.into());
        }
        if let Some(end) = q.end {
            filter.push_str(" AND at <= ?");
            args.push(end.into());
        }
        if let Some(before) = q.before_id {
            filter.push_str(" AND id < ?");
            args.push(before.into());
        }
        if !q.ids.is_empty() {
            filter.push_str(" AND id IN (");
            filter.push_str(&vec!["?"; q.ids.len()].join(", "));
            filter.push(')');
            args.extend(q.ids.iter().map(|&id| rusqlite::types::Value::from(id)));
        }
        // `after-id` is a lower bound, like what the requester cleared: the higher one.
        let floor = q.hidden_upto.max(q.after_id.unwrap_or(0));
        let with_floor = |floor: i64| {
            let mut args = args.clone();
            args.push(floor.into());
            (format!("{filter} AND id > ?"), args)
        };
        // Paging after an id raises the lower bound: two lower bounds on `id` would let
        // SQLite range-scan from the smaller one.
        let (count_filter, count_args) = with_floor(floor);
        let (filter, args) = match q.page {
            Page::After(after) => with_floor(floor.max(after)),
            _ => with_floor(floor),
        };
        let count_filtered = || -> anyhow::Result<usize> {
            let sql = format!("SELECT count(*) FROM messages WHERE {count_filter}");
            let n: i64 = conn
                .prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(count_args.clone()), |r| r.get(0))?;
            Ok(n as usize)
        };
        let exists = |id: i64| -> anyhow::Result<bool> {
            Ok(conn
                .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND channel = ?2")?
                .query_row(params![id, q.channel], |_| Ok(()))
                .optional()?
                .is_some())
        };
        let fetch = |extra: &str,
                     order: &str,
                     offset: usize,
                     extra_args: &[i64]|
         -> anyhow::Result<Vec<Archived>> {
            let sql = format!(
                "SELECT {ARCHIVED_COLUMNS} FROM messages
                 WHERE {filter}{extra} ORDER BY id {order} LIMIT ? OFFSET ?"
            );
            let mut all = args.clone();
            all.extend(extra_args.iter().map(|&v| rusqlite::types::Value::from(v)));
            all.push(((q.max + 1) as i64).into());
            all.push((offset as i64).into());
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(all))?;
            let mut page = Vec::new();
            while let Some(row) = rows.next()? {
                page.push(archived(row)?);
            }
            Ok(page)
        };
        // XEP-0313 §4.1.4: an id the form names that is not in the archive is an error.
        let named = q.after_id.iter().chain(&q.before_id).chain(&q.ids);
        for &id in named {
            if !exists(id)? {
                unknown = Some(id);
                return Ok(HistoryPage::default());
            }
        }
        // The channel's running total answers unfiltered queries without a scan.
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
        let count = if !q.counted {
            0
        } else if filtered {
            count_filtered()?
        } else {
            let total: Option<i64> = conn
                .prepare_cached("SELECT message_count FROM channels WHERE key = ?1")?
                .query_row([q.channel], |r| r.get(0))
                .optional()?;
            total.unwrap_or(0) as usize
        };
        let (mut messages, backward) = match q.page {
            Page::First => (fetch("", "ASC", 0, &[])?, false),
            Page::Index(i) => (fetch("", "ASC", i, &[])?, false),
            Page::After(id) => {
                if !exists(id)? {
                    unknown = Some(id);
                    return Ok(HistoryPage::default());
                }
                (fetch("", "ASC", 0, &[])?, false)
            }
            Page::Before(id) => {
                if !exists(id)? {
                    unknown = Some(id);
                    return Ok(HistoryPage::default());
                }
                (fetch(" AND id < ?", "DESC", 0, &[id])?, true)
            }
            Page::Last => (fetch("", "DESC", 0, &[])?, true),
        };
        let complete = messages.len() <= q.max;
        messages.truncate(q.max);
        if backward {
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
        .prepare_cached(
            "SELECT id, channel, sender, retracted_at, client_id FROM messages
             WHERE channel = ?1 AND notice = 0 AND action = 0 AND (origin_id = ?2 OR client_id = ?2)
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![channel, reference], row)
        .optional()?)
}

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
    use crate::core::testing::{jid, text};
    use crate::core::Submission;
    use crate::store::{Action, HistoryError, HistoryQuery, Page, Reader};

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
