//! The SQLite backend: one file, WAL, one writing connection and a pool of readers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use jid::BareJid;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{
    Archived, Completion, FactWriter, HistoryError, HistoryPage, HistoryQuery, MemberReceipt, Page,
    Reader, Tombstone,
};
use crate::core::{
    Administration, Channel, Dialect, Fact, Info, JoinPolicy, MessageRef, Nodes, NoticeKind,
    Participant, Pending, PendingKind, Posted, Receipt, ReceiptKind, Role, Settings, Snapshot,
    Submission,
};

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
    // Erased content (retractions) is overwritten on disk, not left in free pages.
    conn.pragma_update(None, "secure_delete", true)?;
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
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
        let tx = self.conn.transaction()?;
        let mut completions = Vec::new();
        for fact in batch {
            persist(&tx, fact, &mut completions)?;
        }
        tx.commit()?;
        if batch.iter().any(|f| matches!(f, Fact::Retracted(_))) {
            // The old page versions holding retracted content live on in the WAL until a
            // checkpoint overwrites the database and truncates the log.
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(completions)
    }
}

fn contacts_text(contacts: &[BareJid]) -> String {
    contacts
        .iter()
        .map(|j| j.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn persist(
    tx: &rusqlite::Transaction,
    fact: &Fact,
    completions: &mut Vec<Completion>,
) -> rusqlite::Result<()> {
    match fact {
        Fact::Posted(p) => {
            let s = &p.submission;
            tx.prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, origin_id, client_id, media, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![p.id, p.channel, p.at, p.sender.as_str(), p.nick, s.origin_id, s.client_id, s.media, s.content])?;
            tx.prepare_cached(
                "UPDATE channels SET message_count = message_count + 1 WHERE key = ?1",
            )?
            .execute([p.channel])?;
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
        Fact::ChannelDestroyed {
            channel,
            archive_kept,
            ..
        } => {
            // A kept archive stays under the channel's key, which is never used again.
            if !archive_kept {
                for table in ["receipts", "reactions"] {
                    tx.prepare_cached(&format!(
                        "DELETE FROM {table} WHERE message IN (SELECT id FROM messages WHERE channel = ?1)"
                    ))?
                    .execute([channel.key])?;
                }
                tx.prepare_cached("DELETE FROM messages WHERE channel = ?1")?
                    .execute([channel.key])?;
            }
            tx.prepare_cached("DELETE FROM channels WHERE key = ?1")?
                .execute([channel.key])?;
        }
        Fact::Joined {
            key,
            participant: p,
            ..
        } => {
            // Joining again updates the row and keeps what the join does not say (a mute).
            tx.prepare_cached(
                "INSERT INTO participants (channel, jid, id, nick, nodes, role, dialect, joined_at, cleared_upto)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (channel, jid) DO UPDATE SET id = excluded.id, nick = excluded.nick,
                 nodes = excluded.nodes, role = excluded.role, dialect = excluded.dialect,
                 joined_at = excluded.joined_at, cleared_upto = excluded.cleared_upto",
            )?
            .execute(params![key, p.jid.as_str(), p.id.to_string(), p.nick, p.nodes.0, p.role as i64, p.dialect as i64, p.joined_at, p.cleared_upto])?;
            tx.prepare_cached("DELETE FROM pending WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, p.jid.as_str()])?;
        }
        Fact::Left {
            key, participant, ..
        } => {
            tx.prepare_cached("DELETE FROM participants WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, participant.jid.as_str()])?;
            tx.prepare_cached("DELETE FROM channel_owners WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, participant.jid.as_str()])?;
        }
        Fact::SettingsChanged { key, settings, .. } => {
            tx.prepare_cached(
                "UPDATE channels SET join_policy = ?2, muted = ?3, max_members = ?4 WHERE key = ?1",
            )?
            .execute(params![
                key,
                settings.policy as i64,
                settings.muted,
                settings.max_members.map(|m| m as i64)
            ])?;
        }
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            ..
        } => {
            let sql = if *present {
                "INSERT OR IGNORE INTO channel_access (channel, list, entry) VALUES (?1, ?2, ?3)"
            } else {
                "DELETE FROM channel_access WHERE channel = ?1 AND list = ?2 AND entry = ?3"
            };
            tx.prepare_cached(sql)?
                .execute(params![key, *list as i64, entry.as_str()])?;
        }
        Fact::Muted {
            key, jid, until, ..
        } => {
            tx.prepare_cached(
                "UPDATE participants SET muted_until = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, jid.as_str(), until])?;
        }
        Fact::PendingAdded { key, pending: p } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO pending (channel, jid, kind, by, at, dialect) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![key, p.jid.as_str(), p.kind as i64, p.by.as_str(), p.at, p.dialect as i64])?;
        }
        Fact::PendingResolved { key, pending, .. } => {
            tx.prepare_cached("DELETE FROM pending WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, pending.jid.as_str()])?;
        }
        Fact::NickChanged { key, jid, nick } => {
            tx.prepare_cached("UPDATE participants SET nick = ?3 WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, jid.as_str(), nick])?;
        }
        Fact::RoleChanged { key, jid, role, .. } => {
            tx.prepare_cached("UPDATE participants SET role = ?3 WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, jid.as_str(), *role as i64])?;
            let owners = if *role == Role::Owner {
                "INSERT OR IGNORE INTO channel_owners (channel, jid) VALUES (?1, ?2)"
            } else {
                "DELETE FROM channel_owners WHERE channel = ?1 AND jid = ?2"
            };
            tx.prepare_cached(owners)?
                .execute(params![key, jid.as_str()])?;
        }
        Fact::SubscriptionChanged { key, jid, nodes } => {
            tx.prepare_cached(
                "UPDATE participants SET nodes = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, jid.as_str(), nodes.0])?;
        }
        Fact::InfoChanged { key, info, .. } => {
            tx.prepare_cached(
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
        }
        Fact::Noticed(n) => {
            tx.prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, content, notice, notice_target)
                 VALUES (?1, ?2, ?3, ?4, '', '', ?5, ?6)",
            )?
            .execute(params![n.id, n.channel, n.at, n.actor.as_str(), n.kind as i64, n.target.as_ref().map(|t| t.as_str())])?;
        }
        Fact::HistoryCleared { key, member, upto } => {
            tx.prepare_cached(
                "UPDATE participants SET cleared_upto = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, member.as_str(), upto])?;
        }
        Fact::Retracted(r) => {
            tx.prepare_cached(
                "UPDATE messages SET content = '', edited_at = NULL, retracted_at = ?2, retracted_by = ?3,
                 moderated = ?4, moderation_reason = ?5 WHERE id = ?1",
            )?
            .execute(params![
                r.message,
                r.at,
                r.by.as_str(),
                r.moderated.is_some(),
                r.moderated.clone().flatten()
            ])?;
            tx.prepare_cached("DELETE FROM reactions WHERE message = ?1")?
                .execute([r.message])?;
        }
        Fact::Corrected(c) => {
            tx.prepare_cached(
                "UPDATE messages SET content = ?2, media = ?3, edited_at = ?4 WHERE id = ?1",
            )?
            .execute(params![
                c.message,
                c.submission.content,
                c.submission.media,
                c.at
            ])?;
        }
        Fact::Reacted(r) => {
            if r.reactions.is_empty() {
                tx.prepare_cached("DELETE FROM reactions WHERE message = ?1 AND member = ?2")?
                    .execute(params![r.message, r.member.as_str()])?;
            } else {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO reactions (message, member, reactions, at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![r.message, r.member.as_str(), r.reactions.join("\n"), r.at])?;
            }
        }
        Fact::Receipt(r) => record_receipt(tx, r, completions)?,
        Fact::PresenceChanged { .. } | Fact::ChatState { .. } => {}
    }
    Ok(())
}

/// Records a receipt, and notes a completion when it is the one that makes the message
/// delivered to (or seen by) as many members as were expected.
fn record_receipt(
    tx: &rusqlite::Transaction,
    r: &Receipt,
    completions: &mut Vec<Completion>,
) -> rusqlite::Result<()> {
    let existing: Option<(Option<i64>, Option<i64>)> = tx
        .prepare_cached(
            "SELECT delivered_at, displayed_at FROM receipts WHERE message = ?1 AND member = ?2",
        )?
        .query_row(params![r.message, r.member.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let (delivered, displayed) = existing.unwrap_or((None, None));
    let new_delivered = delivered.or(Some(r.at));
    let new_displayed = match r.kind {
        ReceiptKind::Displayed => displayed.or(Some(r.at)),
        ReceiptKind::Delivered => displayed,
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO receipts (message, member, delivered_at, displayed_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![r.message, r.member.as_str(), new_delivered, new_displayed])?;
    for (kind, before, after, column) in [
        (
            ReceiptKind::Delivered,
            delivered,
            new_delivered,
            "delivered_at",
        ),
        (
            ReceiptKind::Displayed,
            displayed,
            new_displayed,
            "displayed_at",
        ),
    ] {
        if before.is_none() && after.is_some() {
            let count: i64 = tx
                .prepare_cached(&format!(
                    "SELECT count(*) FROM receipts WHERE message = ?1 AND {column} IS NOT NULL AND member != ?2"
                ))?
                .query_row(params![r.message, r.author.as_str()], |row| row.get(0))?;
            if count as usize == r.expected {
                completions.push(Completion {
                    channel: r.channel,
                    message: r.message,
                    client_id: r.client_id.clone(),
                    author: r.author.clone(),
                    kind,
                });
            }
        }
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

/// The columns [`archived`] reads, in its order.
const ARCHIVED_COLUMNS: &str =
    "id, channel, at, sender, nick, origin_id, client_id, media, content,
     edited_at, retracted_at, retracted_by, moderated, moderation_reason, notice, notice_target";

fn archived(row: &rusqlite::Row) -> rusqlite::Result<Archived> {
    let retracted_at: Option<i64> = row.get(10)?;
    let retraction = match retracted_at {
        Some(at) => Some(Tombstone {
            at,
            by: bare(row.get(11)?)?,
            moderated: row.get::<_, bool>(12)?.then(|| row.get(13)).transpose()?,
        }),
        None => None,
    };
    Ok(Archived {
        posted: Posted {
            id: row.get(0)?,
            channel: row.get(1)?,
            at: row.get(2)?,
            sender: bare(row.get(3)?)?,
            nick: row.get(4)?,
            submission: Submission {
                origin_id: row.get(5)?,
                client_id: row.get(6)?,
                media: row.get(7)?,
                content: row.get(8)?,
            },
        },
        edited_at: row.get(9)?,
        retraction,
        reactions: Vec::new(),
        notice: match NoticeKind::from_i64(row.get(14)?) {
            Some(kind) => Some((
                kind,
                row.get::<_, Option<String>>(15)?.map(bare).transpose()?,
            )),
            None => None,
        },
    })
}

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

impl Reader for SqliteReader {
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        self.with_conn(|conn| {
            let mut channels = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT key, name, created_by, created_at, info_name, info_description,
                        info_contacts, info_updated_at, info_avatar, info_thumbnail, info_history,
                        join_policy, muted, max_members, info_avatar_type FROM channels ORDER BY key",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let contacts: String = row.get(6)?;
                let settings = Settings {
                    policy: JoinPolicy::from_i64(row.get(11)?),
                    muted: row.get(12)?,
                    max_members: row.get::<_, Option<i64>>(13)?.map(|m| m as usize),
                };
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
                        avatar: row.get(8)?,
                        avatar_type: row.get(14)?,
                        thumbnail: row.get(9)?,
                        history_visible: row.get(10)?,
                    },
                    participants: Vec::new(),
                    owners: Vec::new(),
                    administration: (settings != Settings::default()).then(|| {
                        Box::new(Administration {
                            settings,
                            ..Administration::default()
                        })
                    }),
                });
            }
            let index: std::collections::HashMap<i64, usize> = channels
                .iter()
                .enumerate()
                .map(|(i, c)| (c.key, i))
                .collect();
            // Sized up front: grown one push at a time, the lists of a million memberships
            // would carry a third more capacity than they use.
            let mut stmt = conn.prepare("SELECT channel, count(*) FROM participants GROUP BY channel")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    channels[i].participants.reserve_exact(row.get::<_, i64>(1)? as usize);
                }
            }
            let mut stmt = conn.prepare("SELECT channel, jid FROM channel_owners")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    channels[i].owners.push(bare(row.get(1)?)?);
                }
            }
            let mut stmt = conn.prepare("SELECT channel, list, entry FROM channel_access ORDER BY channel, list, entry")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    let entry = bare(row.get(2)?)?;
                    let access = &mut channels[i].administration_mut().access;
                    match row.get::<_, i64>(1)? {
                        0 => access.allowed.push(entry),
                        _ => access.banned.push(entry),
                    }
                }
            }
            let mut stmt = conn.prepare("SELECT channel, jid, kind, by, at, dialect FROM pending ORDER BY at")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    channels[i].administration_mut().pending.push(Pending {
                        jid: bare(row.get(1)?)?,
                        kind: PendingKind::from_i64(row.get(2)?),
                        by: bare(row.get(3)?)?,
                        at: row.get(4)?,
                        dialect: Dialect::from_i64(row.get(5)?),
                    });
                }
            }
            let mut stmt = conn.prepare(
                "SELECT channel, jid, id, nick, nodes, role, joined_at, cleared_upto, dialect, muted_until FROM participants
                 ORDER BY channel, joined_at, jid",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
                    channels[i].participants.push(Participant {
                        jid: bare(row.get(1)?)?,
                        id: row
                            .get::<_, String>(2)?
                            .parse()
                            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
                        nick: row.get(3)?,
                        nodes: Nodes(row.get(4)?),
                        role: Role::from_i64(row.get(5)?),
                        joined_at: row.get(6)?,
                        cleared_upto: row.get(7)?,
                        dialect: Dialect::from_i64(row.get(8)?),
                        online: Vec::new(),
                    });
                    let muted_until: i64 = row.get(9)?;
                    if muted_until > 0 {
                        let jid = bare(row.get(1)?)?;
                        channels[i].administration_mut().mutes.push((jid, muted_until));
                    }
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
            // The filters of this query, as SQL and parameters; `id > ?` (what the requester
            // cleared) comes last so that a page can replace it with its own lower bound.
            let mut filter = String::from("channel = ?");
            let mut args: Vec<rusqlite::types::Value> = vec![q.channel.into()];
            if !q.with_notices {
                filter.push_str(" AND notice = 0");
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
            let with_floor = |floor: i64| {
                let mut args = args.clone();
                args.push(floor.into());
                (format!("{filter} AND id > ?"), args)
            };
            // Paging after an id raises the lower bound: two lower bounds on `id` would let
            // SQLite range-scan from the smaller one.
            let (count_filter, count_args) = with_floor(q.hidden_upto);
            let (filter, args) = match q.page {
                Page::After(after) => with_floor(q.hidden_upto.max(after)),
                _ => with_floor(q.hidden_upto),
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
                let rows = stmt.query_map(rusqlite::params_from_iter(all), archived)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            };
            // The channel's running total answers unfiltered queries without a scan.
            let filtered = q.with_notices
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

    fn find_message(&self, channel: i64, reference: &str) -> anyhow::Result<Option<MessageRef>> {
        self.with_conn(|conn| {
            let by_id = reference.parse::<i64>().ok();
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
                     WHERE id = ?1 AND channel = ?2 AND notice = 0",
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
                     WHERE channel = ?1 AND notice = 0 AND (origin_id = ?2 OR client_id = ?2)
                     ORDER BY id DESC LIMIT 1",
                )?
                .query_row(params![channel, reference], row)
                .optional()?)
        })
    }

    fn receipts(&self, message: i64) -> anyhow::Result<Vec<MemberReceipt>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT member, delivered_at, displayed_at FROM receipts WHERE message = ?1 ORDER BY member",
            )?;
            let rows = stmt.query_map([message], |row| {
                Ok(MemberReceipt {
                    member: bare(row.get(0)?)?,
                    delivered_at: row.get(1)?,
                    displayed_at: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{groups, jid, text};
    use crate::core::Groups;

    /// A store holding channel `coven` (key 1) where alice (owner) and bob joined, and the
    /// core that decided it.
    fn coven() -> (tempfile::TempDir, SqliteWriter, SqliteReader, Groups) {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        let mut g = groups();
        let mut facts = g
            .create(&jid("alice@localhost"), Some("coven"), 1)
            .unwrap()
            .1;
        facts.extend(
            g.join(
                "coven",
                &jid("alice@localhost"),
                Some("alice"),
                Nodes::ALL,
                2,
            )
            .unwrap()
            .1,
        );
        facts.extend(
            g.join("coven", &jid("bob@localhost"), Some("bob"), Nodes::ALL, 3)
                .unwrap()
                .1,
        );
        commit(&mut w, facts);
        (dir, w, r, g)
    }

    fn commit(w: &mut SqliteWriter, facts: Vec<Fact>) -> Vec<Completion> {
        w.commit(&facts.iter().collect::<Vec<_>>()).unwrap()
    }

    /// Posts `n` messages, alternately by bob and alice, at times 10, 20, ….
    fn post_many(w: &mut SqliteWriter, g: &mut Groups, n: i64) {
        for i in 1..=n {
            let who = if i % 2 == 0 {
                "alice@localhost"
            } else {
                "bob@localhost"
            };
            let facts = g
                .post("coven", &jid(who), text(&i.to_string()), i * 10)
                .unwrap();
            commit(w, facts);
        }
    }

    fn query(page: Page, max: usize) -> HistoryQuery {
        HistoryQuery {
            channel: 1,
            page,
            max,
            counted: true,
            ..HistoryQuery::default()
        }
    }

    /// The coven's creation and two joins took the first archive ids, as notices: tests
    /// count messages from there.
    const NOTICES: i64 = 3;

    fn abs(n: i64) -> i64 {
        n + NOTICES
    }

    fn ids(page: &HistoryPage) -> Vec<i64> {
        page.messages
            .iter()
            .map(|m| m.posted.id - NOTICES)
            .collect()
    }

    /// The message `reference` names; a number counts messages like [`ids`].
    fn target(r: &SqliteReader, reference: &str) -> MessageRef {
        let reference = match reference.parse::<i64>() {
            Ok(n) => abs(n).to_string(),
            Err(_) => reference.to_owned(),
        };
        r.find_message(1, &reference).unwrap().unwrap()
    }

    #[test]
    fn snapshot_round_trips_channels_and_participants() {
        let (_dir, _w, r, _g) = coven();
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.channels.len(), 1);
        let names: Vec<_> = snap.channels[0]
            .participants
            .iter()
            .map(|p| p.nick.as_str())
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(snap.channels[0].owners, vec![jid("alice@localhost")]);
        assert_eq!(snap.last_channel_key, 1);
    }

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
        assert!(r.find_message(1, "nothing").unwrap().is_none());
        assert!(r.find_message(2, &abs(1).to_string()).unwrap().is_none());
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
    fn administration_survives_a_restart() {
        use crate::core::{AccessList, JoinPolicy, SettingsChange};
        let (_dir, mut w, r, mut g) = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let change = SettingsChange {
            policy: Some(JoinPolicy::Request),
            muted: Some(true),
            max_members: Some(Some(50)),
        };
        let mut facts = g.change_settings("coven", &alice, change, 10).unwrap();
        facts.extend(
            g.set_access(
                "coven",
                &alice,
                AccessList::Banned,
                &jid("spam.example"),
                true,
                11,
            )
            .unwrap(),
        );
        facts.extend(
            g.set_access(
                "coven",
                &alice,
                AccessList::Allowed,
                &jid("localhost"),
                true,
                11,
            )
            .unwrap(),
        );
        facts.extend(g.mute("coven", &alice, &bob, 1_000, 12).unwrap());
        facts.extend(
            g.invite("coven", &alice, &[jid("erin@localhost")], 13)
                .unwrap()
                .1,
        );
        facts.extend(
            g.request_join("coven", &jid("frank@localhost"), Dialect::FlyChat, 14)
                .unwrap(),
        );
        facts.extend(g.transfer("coven", &alice, &bob, 15).unwrap());
        commit(&mut w, facts);
        let snap = r.snapshot().unwrap();
        let (stored, live) = (&snap.channels[0], g.channel("coven").unwrap());
        assert_eq!(stored.participants, live.participants);
        assert_eq!(stored.owners, vec![bob.clone()]);
        assert_eq!(stored.administration, live.administration);
        assert_eq!(stored.muted_until(&bob), 1_000);
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
