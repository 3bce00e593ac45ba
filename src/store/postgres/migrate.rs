//! Schema versions for PostgreSQL. `schema.postgres.sql` is the whole current schema;
//! `MIGRATIONS[n]` brings a database at version `n + 1` to `n + 2`. The version lives in the
//! one row of `schema_version` (PostgreSQL has no `user_version`). Its numbers are the
//! PostgreSQL schema's own: version `n` holds what SQLite's version `n + 1` holds.
//!
//! Only the active instance migrates (it holds the lock, see `mod.rs`), and DDL is
//! transactional in PostgreSQL: a migration is applied whole or not at all.

use anyhow::{bail, Context};
use postgres::Client;

const SCHEMA: &str = include_str!("../../../schema.postgres.sql");

/// Steps from each older version to the next: SQLite's steps from its version 2 on
/// (`store/migrate.rs`), in PostgreSQL's words, one for one.
const MIGRATIONS: &[&str] = &[
    // 1 → 2 (SQLite 2 → 3): whether a channel is listed in discovery, and owners who just
    // left a channel. Channels that existed before cannot say how they were made: those named
    // the way mixd names ad-hoc channels (16 hex digits) and those whose creator takes part
    // through FlyChat are taken as unlisted, the rest as listed.
    "ALTER TABLE channels ADD COLUMN listed BOOLEAN NOT NULL DEFAULT TRUE;
     UPDATE channels SET listed = FALSE
      WHERE (length(name) = 16 AND name !~ '[^0-9a-f]')
         OR EXISTS (SELECT 1 FROM participants p
                     WHERE p.channel = channels.key AND p.jid = channels.created_by
                       AND p.dialect = 1);
     CREATE TABLE departed_owners (
         channel BIGINT NOT NULL,
         name    TEXT   COLLATE \"C\" NOT NULL,
         jid     TEXT   COLLATE \"C\" NOT NULL,
         at      BIGINT NOT NULL,
         PRIMARY KEY (channel, jid)
     );",
    // 2 → 3 (SQLite 3 → 4): clients online in each channel, kept across restarts.
    "CREATE TABLE presence (
         channel  BIGINT NOT NULL,
         jid      TEXT   COLLATE \"C\" NOT NULL,
         resource TEXT   COLLATE \"C\" NOT NULL,
         PRIMARY KEY (channel, jid, resource),
         FOREIGN KEY (channel, jid) REFERENCES participants (channel, jid) ON DELETE CASCADE
     );",
    // 3 → 4 (SQLite 4 → 5): the table that keeps the secret of the opaque ids
    // (src/dialect/ids.rs); the key itself is made when the database is opened
    // (`PgWriter::id_key`).
    "CREATE TABLE meta (
         name  TEXT  COLLATE \"C\" PRIMARY KEY,
         value BYTEA NOT NULL
     );",
    // 4 → 5 (SQLite 5 → 6): retractions and reactions archived as the messages they are
    // (XEP-0424 §6, XEP-0444), and the retraction a tombstone names.
    "ALTER TABLE messages ADD COLUMN action BIGINT NOT NULL DEFAULT 0;
     ALTER TABLE messages ADD COLUMN action_target BIGINT;
     ALTER TABLE messages ADD COLUMN retraction BIGINT;",
    // 5 → 6 (SQLite 6 → 7): JID-hidden channels (XEP-0404); every channel that existed shows
    // JIDs, as before.
    "ALTER TABLE channels ADD COLUMN jids_hidden BOOLEAN NOT NULL DEFAULT FALSE;",
    // 6 → 7 (SQLite 7 → 8): when the configuration last changed (the XEP-0406 configuration
    // item's id), taken for existing channels from the last notice of a role, settings or
    // mute change (`NoticeKind::changes_configuration`).
    "ALTER TABLE channels ADD COLUMN config_updated_at BIGINT NOT NULL DEFAULT 0;
     UPDATE channels SET config_updated_at = coalesce(
         (SELECT max(at) FROM messages
           WHERE messages.channel = channels.key AND notice IN (5, 6, 7, 8, 13, 14)), 0);",
    // 7 → 8 (SQLite 8 → 9): indexes for history filtered by sender and for media-only
    // history, and for a message named by its sender's id.
    "CREATE INDEX messages_by_sender ON messages (channel, sender, id);
     CREATE INDEX messages_with_media ON messages (channel, id) WHERE media;
     CREATE INDEX messages_by_origin_id ON messages (channel, origin_id)
         WHERE origin_id IS NOT NULL;
     CREATE INDEX messages_by_client_id ON messages (channel, client_id)
         WHERE client_id IS NOT NULL;",
];

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
