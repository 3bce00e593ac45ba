//! Schema versions. `schema.sql` is the whole current schema; `MIGRATIONS[n]` brings a
//! database at version `n + 1` to `n + 2`. The version lives in `PRAGMA user_version`.

use anyhow::{bail, Context};
use rusqlite::Connection;

const SCHEMA: &str = include_str!("../../schema.sql");

/// Steps from each older version to the next.
const MIGRATIONS: &[&str] = &[
    // 1 → 2: group administration (membership settings, access lists, pending invitations
    // and requests, member mutes) and the avatar's media type.
    "ALTER TABLE channels ADD COLUMN join_policy INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE channels ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE channels ADD COLUMN max_members INTEGER;
     ALTER TABLE channels ADD COLUMN info_avatar_type TEXT NOT NULL DEFAULT '';
     ALTER TABLE participants ADD COLUMN muted_until INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE channel_access (
         channel INTEGER NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
         list    INTEGER NOT NULL,
         entry   TEXT    NOT NULL,
         PRIMARY KEY (channel, list, entry)
     ) WITHOUT ROWID;
     CREATE TABLE pending (
         channel INTEGER NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
         jid     TEXT    NOT NULL,
         kind    INTEGER NOT NULL,
         by      TEXT    NOT NULL,
         at      INTEGER NOT NULL,
         dialect INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (channel, jid)
     ) WITHOUT ROWID;",
    // "4: id key" — 2 → 3 on this branch; the presence step comes before it once both are
    // in. The table that keeps the secret of the opaque ids (src/dialect/ids.rs); the key
    // itself is made when the database is opened (`sqlite::SqliteWriter::id_key`).
    "CREATE TABLE meta (
         name  TEXT PRIMARY KEY,
         value BLOB NOT NULL
     ) WITHOUT ROWID;",
];

pub const LATEST: i64 = 1 + MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > LATEST {
        bail!("the database is at schema version {version}, newer than this mixd ({LATEST})");
    }
    if version == LATEST {
        return Ok(());
    }
    let tx = conn.transaction()?;
    if version == 0 {
        tx.execute_batch(SCHEMA).context("applying schema.sql")?;
    } else {
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(version as usize - 1) {
            tx.execute_batch(sql)
                .with_context(|| format!("migrating to schema version {}", step + 2))?;
        }
    }
    tx.pragma_update(None, "user_version", LATEST)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column as `PRAGMA table_info` describes it: name, type, not null, default, key
    /// position.
    type Column = (String, String, bool, Option<String>, i64);

    /// Every table's columns, in order.
    fn columns(conn: &Connection) -> Vec<(String, Vec<Column>)> {
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.retain(|t| t != "sqlite_sequence");
        tables
            .into_iter()
            .map(|table| {
                let cols = conn
                    .prepare(&format!("PRAGMA table_info({table})"))
                    .unwrap()
                    .query_map([], |r| {
                        Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                (table, cols)
            })
            .collect()
    }

    #[test]
    fn a_version_1_database_migrates_to_the_schema_and_keeps_its_rows() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute(
            "INSERT INTO channels (name, created_by, created_at, info_updated_at) VALUES ('coven', 'alice@localhost', 1, 1)",
            [],
        )
        .unwrap();
        migrate(&mut old).unwrap();
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(columns(&old), columns(&fresh));
        let policy: i64 = old
            .query_row(
                "SELECT join_policy FROM channels WHERE name = 'coven'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(policy, 0);
        let version: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, LATEST);
    }
}
