//! What `mixd admin` reads, beside a running mixd: SQLite in WAL mode lets a read-only
//! connection read the last commit while the writer goes on. Channels listed and searched,
//! one shown whole (decoded as the core knows it, by the start-up load), a channel's archive
//! read in order for export.

use std::path::Path;

use anyhow::Context;
use jid::BareJid;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{bare, load, open_connection};
use crate::core::Channel;

/// A read-only connection to a database, for the operator.
pub struct Inspector {
    pub(super) conn: Connection,
}

/// One line of the channel list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    pub name: String,
    pub created_by: BareJid,
    pub created_at: i64,
    pub participants: i64,
    pub messages: i64,
}

/// What `show` tells beyond the channel itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: i64,
    pub notices: i64,
    pub online_clients: i64,
}

/// One archived message or group event, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// The archive id (clients see its opaque form, `dialect::ids`).
    pub id: i64,
    pub at: i64,
    pub sender: String,
    pub nick: String,
    pub origin_id: Option<String>,
    pub content: String,
    pub edited_at: Option<i64>,
    pub retracted_at: Option<i64>,
    pub retracted_by: Option<String>,
    /// The notice's kind (`core::NoticeKind`), 0 for a message.
    pub notice: i64,
    pub notice_target: Option<String>,
}

/// Opens the database at `path` read-only; it must exist.
pub fn inspect(path: &Path) -> anyhow::Result<Inspector> {
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    Ok(Inspector {
        conn: open_connection(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
    })
}

impl Inspector {
    /// Every channel whose name, information name or description contains `matching`
    /// (case-insensitive; all of them without it), by name.
    pub fn channels(&self, matching: Option<&str>) -> anyhow::Result<Vec<ChannelSummary>> {
        let pattern = format!(
            "%{}%",
            matching
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut stmt = self.conn.prepare(
            "SELECT name, created_by, created_at,
                    (SELECT count(*) FROM participants WHERE channel = key), message_count
             FROM channels
             WHERE name LIKE ?1 ESCAPE '\\' OR info_name LIKE ?1 ESCAPE '\\'
                   OR info_description LIKE ?1 ESCAPE '\\'
             ORDER BY name",
        )?;
        let rows = stmt.query_map([pattern], |row| {
            Ok(ChannelSummary {
                name: row.get(0)?,
                created_by: bare(row.get(1)?)?,
                created_at: row.get(2)?,
                participants: row.get(3)?,
                messages: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Channel `name` as the core would load it, with its counts.
    pub fn channel(&self, name: &str) -> anyhow::Result<Option<(Channel, Counts)>> {
        let Some(channel) = load::snapshot(&self.conn)?
            .channels
            .into_iter()
            .find(|c| c.name == name)
        else {
            return Ok(None);
        };
        let counts = self.conn.query_row(
            "SELECT (SELECT count(*) FROM messages WHERE channel = ?1 AND notice = 0),
                    (SELECT count(*) FROM messages WHERE channel = ?1 AND notice != 0),
                    (SELECT count(*) FROM presence WHERE channel = ?1)",
            [channel.key],
            |row| {
                Ok(Counts {
                    messages: row.get(0)?,
                    notices: row.get(1)?,
                    online_clients: row.get(2)?,
                })
            },
        )?;
        Ok(Some((channel, counts)))
    }

    /// Channel `name`'s archive in order, its group events too if `notices`, each handed to
    /// `each`; false if there is no such channel.
    pub fn archive(
        &self,
        name: &str,
        notices: bool,
        mut each: impl FnMut(Archived) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let key: Option<i64> = self
            .conn
            .query_row("SELECT key FROM channels WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(key) = key else { return Ok(false) };
        let mut stmt = self.conn.prepare(
            "SELECT id, at, sender, nick, origin_id, content, edited_at, retracted_at,
                    retracted_by, notice, notice_target
             FROM messages WHERE channel = ?1 AND (?2 OR notice = 0) ORDER BY id",
        )?;
        let mut rows = stmt.query(params![key, notices])?;
        while let Some(row) = rows.next()? {
            each(Archived {
                id: row.get(0)?,
                at: row.get(1)?,
                sender: row.get(2)?,
                nick: row.get(3)?,
                origin_id: row.get(4)?,
                content: row.get(5)?,
                edited_at: row.get(6)?,
                retracted_at: row.get(7)?,
                retracted_by: row.get(8)?,
                notice: row.get(9)?,
                notice_target: row.get(10)?,
            })?;
        }
        Ok(true)
    }

    /// The secret of the opaque ids clients see (`dialect::ids`), so that an export names
    /// messages as clients know them.
    pub fn id_key(&self) -> anyhow::Result<[u8; 16]> {
        let key: Vec<u8> = self
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'id_key'", [], |r| {
                r.get(0)
            })
            .context("the database has no id key: has mixd ever run on it?")?;
        key.try_into()
            .map_err(|_| anyhow::anyhow!("the stored id key is not 16 bytes"))
    }
}
