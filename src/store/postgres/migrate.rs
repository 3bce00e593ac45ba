//! Schema versions for PostgreSQL. `schema.postgres.sql` is the whole current schema;
//! `MIGRATIONS[n]` brings a database at version `n + 1` to `n + 2`. The version lives in the
//! one row of `schema_version` (PostgreSQL has no `user_version`). Its numbers are the
//! PostgreSQL schema's own: version 1 holds what SQLite's version 2 holds.
//!
//! Only the active instance migrates (it holds the lock, see `mod.rs`), and DDL is
//! transactional in PostgreSQL: a migration is applied whole or not at all.

use anyhow::{bail, Context};
use postgres::Client;

const SCHEMA: &str = include_str!("../../../schema.postgres.sql");

/// Steps from each older version to the next.
const MIGRATIONS: &[&str] = &[];

pub const LATEST: i32 = 1 + MIGRATIONS.len() as i32;

pub(super) fn migrate(client: &mut Client) -> anyhow::Result<()> {
    let mut tx = client.transaction()?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    let version: i32 = if exists {
        tx.query_one("SELECT version FROM schema_version", &[])
            .context("reading the schema version")?
            .get(0)
    } else {
        0
    };
    if version > LATEST {
        bail!("the database is at schema version {version}, newer than this mixd ({LATEST})");
    }
    if version == LATEST {
        return Ok(());
    }
    if version == 0 {
        tx.batch_execute(SCHEMA)
            .context("applying schema.postgres.sql")?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&LATEST],
        )?;
    } else {
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(version as usize - 1) {
            tx.batch_execute(sql)
                .with_context(|| format!("migrating to schema version {}", step + 2))?;
        }
        tx.execute("UPDATE schema_version SET version = $1", &[&LATEST])?;
    }
    tx.commit()?;
    tracing::info!(version = LATEST, from = version, "database schema ready");
    Ok(())
}
