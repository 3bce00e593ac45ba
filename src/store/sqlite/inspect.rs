//! `mixd admin`'s reads on SQLite ([`Inspector`]), beside a running mixd: SQLite in WAL mode
//! lets a read-only connection read the last commit while the writer goes on.

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::deferred::{channel_total, CHANNEL_NOTICES};
use super::{load, open_connection, SqliteReader};
use crate::core::Channel;
use crate::store::columns::id_key_from;
use crate::store::inspect::{
    contains_pattern, counts, counts_query, exported, named, summary, summary_columns,
    ChannelSummary, Counts, Each, Inspector, EXPORTED_COLUMNS,
};

/// A read-only connection to a database, for the operator.
pub struct SqliteInspector {
    pub(super) conn: Connection,
}

/// Opens the database at `path` read-only; it must exist.
pub fn inspect(path: &Path) -> anyhow::Result<SqliteInspector> {
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    Ok(SqliteInspector {
        conn: open_connection(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
    })
}

/// The archive reads of the database at `path`, which must exist, beside a running mixd.
pub fn read_only(path: &Path) -> anyhow::Result<SqliteReader> {
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    Ok(SqliteReader::new(path))
}

impl Inspector for SqliteInspector {
    fn channels(&self, matching: Option<&str>) -> anyhow::Result<Vec<ChannelSummary>> {
        // SQLite's LIKE ignores the case of ASCII letters.
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM channels
             WHERE name LIKE ?1 ESCAPE '\\' OR info_name LIKE ?1 ESCAPE '\\'
                   OR info_description LIKE ?1 ESCAPE '\\'
             ORDER BY name",
            summary_columns(channel_total!())
        ))?;
        let rows = stmt.query_and_then([contains_pattern(matching)], |row| summary(row))?;
        rows.collect()
    }

    fn channel(&self, name: &str) -> anyhow::Result<Option<(Channel, Counts)>> {
        let Some(channel) = named(load::snapshot(&self.conn)?, name) else {
            return Ok(None);
        };
        let counts = self.conn.query_row_and_then(
            &counts_query("?1", CHANNEL_NOTICES),
            [channel.key],
            |row| counts(row),
        )?;
        Ok(Some((*channel, counts)))
    }

    fn archive(&self, name: &str, notices: bool, each: Each) -> anyhow::Result<bool> {
        let key: Option<i64> = self
            .conn
            .query_row("SELECT key FROM channels WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(key) = key else { return Ok(false) };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EXPORTED_COLUMNS} FROM messages
             WHERE id IN (SELECT id FROM messages WHERE channel = ?1 AND deferred = 0
                          UNION ALL SELECT id FROM tail WHERE channel = ?1)
               AND (?2 OR notice = 0) ORDER BY id"
        ))?;
        let mut rows = stmt.query(params![key, notices])?;
        while let Some(row) = rows.next()? {
            each(exported(row)?)?;
        }
        Ok(true)
    }

    fn id_key(&self) -> anyhow::Result<[u8; 16]> {
        let key: Vec<u8> = self
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'id_key'", [], |r| {
                r.get(0)
            })
            .context("the database has no id key: has mixd ever run on it?")?;
        id_key_from(key)
    }

    fn check(&self) -> anyhow::Result<Vec<String>> {
        self.findings()
    }
}
