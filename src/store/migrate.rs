//! Schema versions. `schema.sql` is the whole current schema; `MIGRATIONS[n]` brings a
//! database at version `n + 1` to `n + 2`. The version lives in `PRAGMA user_version`.

use anyhow::{bail, Context};
use rusqlite::Connection;

const SCHEMA: &str = include_str!("../../schema.sql");

/// Steps from each older version to the next; empty while version 1 is the only one.
const MIGRATIONS: &[&str] = &[];

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
