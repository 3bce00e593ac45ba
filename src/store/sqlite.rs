//! The SQLite backend: one file, WAL, one writing connection and a pool of readers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use jid::BareJid;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{FactWriter, HistoryError, HistoryPage, HistoryQuery, Page, Reader};
use crate::core::{Channel, Fact, Info, Nodes, Participant, Posted, Role, Snapshot};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=NORMAL`: a commit survives a crash of mixd (the WAL is in the OS), not a
    /// power cut. What the benchmarks assume.
    #[default]
    Normal,
    /// `synchronous=FULL`: every (group) commit is fsynced and survives a power cut too.
    Full,
}

fn open_connection(path: &Path, flags: OpenFlags) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// Opens (creating and migrating if needed) the database at `path`.
pub fn open(path: &Path, durability: Durability) -> anyhow::Result<(SqliteWriter, SqliteReader)> {
    let mut conn = open_connection(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "could not switch {} to WAL",
        path.display()
    );
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    super::migrate::migrate(&mut conn)?;
    let reader = SqliteReader {
        path: path.to_owned(),
        pool: Mutex::new(Vec::new()),
    };
    Ok((SqliteWriter { conn }, reader))
}

pub struct SqliteWriter {
    conn: Connection,
}

impl FactWriter for SqliteWriter {
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        for fact in batch {
            persist(&tx, fact)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn contacts_text(contacts: &[BareJid]) -> String {
    contacts
        .iter()
        .map(|j| j.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn persist(tx: &rusqlite::Transaction, fact: &Fact) -> rusqlite::Result<()> {
    match fact {
        Fact::Posted(p) => {
            tx.prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, origin_id, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                p.id,
                p.channel,
                p.at,
                p.sender.as_str(),
                p.nick,
                p.origin_id,
                p.content
            ])?;
        }
        Fact::ChannelCreated {
            key,
            name,
            owner,
            at,
        } => {
            tx.prepare_cached(
                "INSERT INTO channels (key, name, created_by, created_at, info_updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![key, name, owner.as_str(), at])?;
            tx.prepare_cached("INSERT INTO channel_owners (channel, jid) VALUES (?1, ?2)")?
                .execute(params![key, owner.as_str()])?;
        }
        Fact::ChannelDestroyed { channel } => {
            tx.prepare_cached("DELETE FROM messages WHERE channel = ?1")?
                .execute([channel.key])?;
            tx.prepare_cached("DELETE FROM channels WHERE key = ?1")?
                .execute([channel.key])?;
        }
        Fact::Joined {
            key,
            participant: p,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO participants (channel, jid, id, nick, nodes, role, joined_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![key, p.jid.as_str(), p.id, p.nick, p.nodes.0, p.role as i64, p.joined_at])?;
        }
        Fact::Left { key, participant } => {
            tx.prepare_cached("DELETE FROM participants WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, participant.jid.as_str()])?;
        }
        Fact::NickChanged { key, jid, nick } => {
            tx.prepare_cached("UPDATE participants SET nick = ?3 WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, jid.as_str(), nick])?;
        }
        Fact::SubscriptionChanged { key, jid, nodes } => {
            tx.prepare_cached(
                "UPDATE participants SET nodes = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, jid.as_str(), nodes.0])?;
        }
        Fact::InfoChanged { key, info } => {
            tx.prepare_cached(
                "UPDATE channels SET info_name = ?2, info_description = ?3, info_contacts = ?4,
                 info_updated_at = ?5 WHERE key = ?1",
            )?
            .execute(params![
                key,
                info.name,
                info.description,
                contacts_text(&info.contacts),
                info.updated_at
            ])?;
        }
        Fact::PresenceChanged { .. } => {}
    }
    Ok(())
}

pub struct SqliteReader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| anyhow::anyhow!("reader pool poisoned"))?
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(conn);
        }
        result
    }
}

fn bare(text: String) -> rusqlite::Result<BareJid> {
    BareJid::new(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn posted(row: &rusqlite::Row) -> rusqlite::Result<Posted> {
    Ok(Posted {
        id: row.get(0)?,
        channel: row.get(1)?,
        at: row.get(2)?,
        sender: bare(row.get(3)?)?,
        nick: row.get(4)?,
        origin_id: row.get(5)?,
        content: row.get(6)?,
    })
}

impl Reader for SqliteReader {
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        self.with_conn(|conn| {
            let mut channels = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT key, name, created_by, created_at, info_name, info_description,
                        info_contacts, info_updated_at FROM channels ORDER BY key",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let contacts: String = row.get(6)?;
                channels.push(Channel {
                    key: row.get(0)?,
                    name: row.get(1)?,
                    created_by: bare(row.get(2)?)?,
                    created_at: row.get(3)?,
                    info: Info {
                        name: row.get(4)?,
                        description: row.get(5)?,
                        contacts: contacts
                            .split_whitespace()
                            .filter_map(|j| BareJid::new(j).ok())
                            .collect(),
                        updated_at: row.get(7)?,
                    },
                    participants: Vec::new(),
                    owners: Vec::new(),
                });
            }
            let index: std::collections::HashMap<i64, usize> = channels
                .iter()
                .enumerate()
                .map(|(i, c)| (c.key, i))
                .collect();
            let mut stmt = conn.prepare("SELECT channel, jid FROM channel_owners")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    channels[i].owners.push(bare(row.get(1)?)?);
                }
            }
            let mut stmt = conn.prepare(
                "SELECT channel, jid, id, nick, nodes, role, joined_at FROM participants
                 ORDER BY channel, joined_at, jid",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    channels[i].participants.push(Participant {
                        jid: bare(row.get(1)?)?,
                        id: row.get(2)?,
                        nick: row.get(3)?,
                        nodes: Nodes(row.get(4)?),
                        role: Role::from_i64(row.get(5)?),
                        joined_at: row.get(6)?,
                        online: Vec::new(),
                    });
                }
            }
            let sequence = |table: &str| -> anyhow::Result<i64> {
                Ok(conn
                    .query_row(
                        "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                        [table],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0))
            };
            Ok(Snapshot {
                channels,
                last_channel_key: sequence("channels")?,
                last_message_id: sequence("messages")?,
            })
        })
    }

    fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
        let mut unknown = None;
        let page = self.with_conn(|conn| {
            // The filters shared by every statement of this query, as SQL and parameters.
            let mut filter = String::from("channel = ?");
            let mut args: Vec<rusqlite::types::Value> = vec![q.channel.into()];
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
            let count_where = |extra: &str, extra_args: &[i64]| -> anyhow::Result<usize> {
                let sql = format!("SELECT count(*) FROM messages WHERE {filter}{extra}");
                let mut all = args.clone();
                all.extend(extra_args.iter().map(|&v| rusqlite::types::Value::from(v)));
                let n: i64 = conn
                    .prepare_cached(&sql)?
                    .query_row(rusqlite::params_from_iter(all), |r| r.get(0))?;
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
             -> anyhow::Result<Vec<Posted>> {
                let sql = format!(
                    "SELECT id, channel, at, sender, nick, origin_id, content FROM messages
                     WHERE {filter}{extra} ORDER BY id {order} LIMIT ? OFFSET ?"
                );
                let mut all = args.clone();
                all.extend(extra_args.iter().map(|&v| rusqlite::types::Value::from(v)));
                all.push(((q.max + 1) as i64).into());
                all.push((offset as i64).into());
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(all), posted)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            };
            let count = count_where("", &[])?;
            let (mut messages, backward) = match q.page {
                Page::First => (fetch("", "ASC", 0, &[])?, false),
                Page::Index(i) => (fetch("", "ASC", i, &[])?, false),
                Page::After(id) => {
                    if !exists(id)? {
                        unknown = Some(id);
                        return Ok(HistoryPage::default());
                    }
                    (fetch(" AND id > ?", "ASC", 0, &[id])?, false)
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
            let first_index = match (&q.page, messages.first()) {
                (Page::First, _) => Some(0),
                (Page::Index(i), _) => Some(*i),
                (Page::After(_), Some(first)) => Some(count_where(" AND id < ?", &[first.id])?),
                (Page::After(_), None) => Some(count),
                (Page::Before(_) | Page::Last, _) => None,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::jid;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, SqliteWriter, SqliteReader) {
        let dir = tempfile::tempdir().unwrap();
        let (w, r) = open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        (dir, w, r)
    }

    fn post(id: i64, channel: i64, sender: &str) -> Fact {
        Fact::Posted(Arc::new(Posted {
            id,
            channel,
            sender: jid(sender),
            nick: "n".into(),
            at: id * 10,
            origin_id: None,
            content: format!("<body>{id}</body>"),
        }))
    }

    fn query(page: Page, max: usize) -> HistoryQuery {
        HistoryQuery {
            channel: 1,
            page,
            max,
            ..HistoryQuery::default()
        }
    }

    #[test]
    fn snapshot_round_trips_channels_and_participants() {
        let (_dir, mut w, r) = store();
        let mut g = crate::core::testing::coven();
        let mut facts = Vec::new();
        g.create(&jid("alice@localhost"), Some("other"), 1)
            .map(|(_, f)| facts.extend(f))
            .unwrap();
        // Re-run the coven's history into the store.
        let mut fresh = crate::core::testing::groups();
        let (_, f) = fresh
            .create(&jid("alice@localhost"), Some("coven"), 1)
            .unwrap();
        facts.splice(0..0, f);
        let (_, f) = fresh
            .join(
                "coven",
                &jid("alice@localhost"),
                Some("alice"),
                Nodes::ALL,
                2,
            )
            .unwrap();
        facts.extend(f);
        let refs: Vec<&Fact> = facts
            .iter()
            .filter(|f| !matches!(f, Fact::ChannelCreated { name, .. } if name == "other"))
            .collect();
        w.commit(&refs).unwrap();
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.channels.len(), 1);
        assert_eq!(snap.channels[0].participants[0].nick, "alice");
        assert_eq!(snap.channels[0].owners, vec![jid("alice@localhost")]);
        assert_eq!(snap.last_channel_key, 1);
    }

    #[test]
    fn history_pages_forward_backward_and_by_index() {
        let (_dir, mut w, r) = store();
        let facts: Vec<Fact> = (1..=7)
            .map(|i| post(i, 1, if i % 2 == 0 { "a@x" } else { "b@x" }))
            .chain([post(8, 2, "a@x")])
            .collect();
        w.commit(&facts.iter().collect::<Vec<_>>()).unwrap();
        let ids = |p: &HistoryPage| p.messages.iter().map(|m| m.id).collect::<Vec<_>>();

        let first = r.history(&query(Page::First, 3)).unwrap();
        assert_eq!(
            (ids(&first), first.count, first.first_index, first.complete),
            (vec![1, 2, 3], 7, Some(0), false)
        );
        let next = r.history(&query(Page::After(6), 3)).unwrap();
        assert_eq!(
            (ids(&next), next.first_index, next.complete),
            (vec![7], Some(6), true)
        );
        let last = r.history(&query(Page::Last, 3)).unwrap();
        assert_eq!(
            (ids(&last), last.first_index, last.complete),
            (vec![5, 6, 7], None, false)
        );
        let before = r.history(&query(Page::Before(3), 3)).unwrap();
        assert_eq!((ids(&before), before.complete), (vec![1, 2], true));
        let index = r.history(&query(Page::Index(5), 3)).unwrap();
        assert_eq!(ids(&index), vec![6, 7]);

        let mut with = query(Page::First, 10);
        with.with = Some(jid("a@x"));
        with.start = Some(30);
        assert_eq!(ids(&r.history(&with).unwrap()), vec![4, 6]);

        assert!(matches!(
            r.history(&query(Page::After(8), 3)),
            Err(HistoryError::UnknownId(8))
        ));
    }

    #[test]
    fn destroy_removes_the_archive() {
        let (_dir, mut w, r) = store();
        let mut g = crate::core::testing::groups();
        let (_, mut facts) = g.create(&jid("alice@localhost"), Some("c"), 1).unwrap();
        facts.push(post(1, 1, "alice@localhost"));
        facts.extend(g.destroy(&jid("alice@localhost"), "c").unwrap());
        w.commit(&facts.iter().collect::<Vec<_>>()).unwrap();
        assert!(r.snapshot().unwrap().channels.is_empty());
        assert_eq!(r.history(&query(Page::First, 5)).unwrap().count, 0);
        assert_eq!(r.snapshot().unwrap().last_message_id, 1);
    }
}
