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
    // 2 → 3: whether a channel is listed in discovery, and owners who just left a channel.
    // Channels that existed before cannot say how they were made: those named the way mixd
    // names ad-hoc channels (16 hex digits) and those whose creator takes part through
    // FlyChat are taken as unlisted, the rest as listed.
    "ALTER TABLE channels ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
     UPDATE channels SET listed = 0
      WHERE (length(name) = 16 AND name NOT GLOB '*[^0-9a-f]*')
         OR EXISTS (SELECT 1 FROM participants p
                     WHERE p.channel = channels.key AND p.jid = channels.created_by
                       AND p.dialect = 1);
     CREATE TABLE departed_owners (
         channel INTEGER NOT NULL,
         name    TEXT    NOT NULL,
         jid     TEXT    NOT NULL,
         at      INTEGER NOT NULL,
         PRIMARY KEY (channel, jid)
     ) WITHOUT ROWID;",
    // 3 → 4: clients online in each channel, kept across restarts.
    "CREATE TABLE presence (
         channel  INTEGER NOT NULL,
         jid      TEXT    NOT NULL,
         resource TEXT    NOT NULL,
         PRIMARY KEY (channel, jid, resource),
         FOREIGN KEY (channel, jid) REFERENCES participants (channel, jid) ON DELETE CASCADE
     ) WITHOUT ROWID;",
    // 4 → 5: the table that keeps the secret of the opaque ids (src/dialect/ids.rs); the key
    // itself is made when the database is opened (`sqlite::SqliteWriter::id_key`).
    "CREATE TABLE meta (
         name  TEXT PRIMARY KEY,
         value BLOB NOT NULL
     ) WITHOUT ROWID;",
    // 5 → 6: retractions and reactions archived as the messages they are (XEP-0424 §6,
    // XEP-0444), and the retraction a tombstone names.
    "ALTER TABLE messages ADD COLUMN action INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE messages ADD COLUMN action_target INTEGER;
     ALTER TABLE messages ADD COLUMN retraction INTEGER;",
    // 6 → 7: JID-hidden channels (XEP-0404); every channel that existed shows JIDs, as before.
    "ALTER TABLE channels ADD COLUMN jids_hidden INTEGER NOT NULL DEFAULT 0;",
    // 7 → 8: when the configuration last changed (the XEP-0406 configuration item's id),
    // taken for existing channels from the last notice of a role, settings or mute change
    // (`NoticeKind::changes_configuration`).
    "ALTER TABLE channels ADD COLUMN config_updated_at INTEGER NOT NULL DEFAULT 0;
     UPDATE channels SET config_updated_at = coalesce(
         (SELECT max(at) FROM messages
           WHERE messages.channel = channels.key AND notice IN (5, 6, 7, 8, 13, 14)), 0);",
    // 8 → 9: indexes for history filtered by sender and for media-only history, and for a
    // message named by its sender's id, which read the whole channel without them. Each
    // reads the archive once (about a minute at 10 M messages on the benchmark machine;
    // docs/benchmarks.md).
    "CREATE INDEX messages_by_sender ON messages (channel, sender);
     CREATE INDEX messages_with_media ON messages (channel, id) WHERE media = 1;
     CREATE INDEX messages_by_origin_id ON messages (channel, origin_id)
         WHERE origin_id IS NOT NULL;
     CREATE INDEX messages_by_client_id ON messages (channel, client_id)
         WHERE client_id IS NOT NULL;",
    // 9 → 10: posts' look-up entries (by sender, client id, origin-id) entered in bulk after
    // the post (src/store/sqlite/deferred.rs): the three indexes hold only rows no longer
    // deferred, and an origin-id equal to the client id is found by the client id's entry.
    // Rows that existed keep `deferred = 0` (the column's default: no row is rewritten) and
    // the watermark starts at the newest. The indexes are built again from the archive, as
    // schema 9's were (about a minute at 10 M messages: docs/benchmarks.md, issue 16,
    // branch `defer`).
    "ALTER TABLE messages ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0;
     DROP INDEX messages_by_sender;
     DROP INDEX messages_by_origin_id;
     DROP INDEX messages_by_client_id;
     CREATE INDEX messages_by_sender ON messages (channel, sender) WHERE deferred = 0;
     CREATE INDEX messages_by_origin_id ON messages (channel, origin_id)
         WHERE deferred = 0 AND origin_id IS NOT NULL AND origin_id IS NOT client_id;
     CREATE INDEX messages_by_client_id ON messages (channel, client_id)
         WHERE deferred = 0 AND client_id IS NOT NULL;
     INSERT INTO meta (name, value)
         VALUES ('indexed_upto', (SELECT coalesce(max(id), 0) FROM messages));",
    // 10 → 11: a sender's messages and its notices in two indexes, so that a page `with` a
    // sender is counted from the index alone (src/store/sqlite/history.rs). Both are built
    // from the archive (35–50 s at 10 M messages, 10–11 s of it CPU, on a loaded machine:
    // docs/benchmarks.md, issue 16, branch `histhop`).
    "DROP INDEX messages_by_sender;
     CREATE INDEX messages_by_sender ON messages (channel, sender)
         WHERE deferred = 0 AND notice = 0;
     CREATE INDEX notices_by_sender ON messages (channel, sender)
         WHERE deferred = 0 AND notice != 0;",
    // 11 → 12: a channel's `message_count` counts its messages at or below the watermark of
    // deferred look-up entries, the fill adding those above it (src/store/sqlite/deferred.rs):
    // what was counted above the watermark is taken back out, for the next fill to count
    // (`NOT INDEXED`: the rows from the watermark by rowid, as the fill's count reads them).
    "UPDATE channels SET message_count = message_count - tail.n
       FROM (SELECT channel, count(*) AS n FROM messages NOT INDEXED
              WHERE id > (SELECT value FROM meta WHERE name = 'indexed_upto') AND notice = 0
              GROUP BY channel) AS tail
      WHERE channels.key = tail.channel;",
    // 12 → 13: posts not yet entered are found through a table of their own instead of
    // `(channel, id)`, which holds only the entered rows (src/store/sqlite/deferred.rs). Every
    // row above the watermark is entered first, as the fill does (counted into its channel's
    // total, flagged, the watermark raised): then no row is deferred, the full index holds
    // exactly what its partial form holds, and only its definition in the schema changes —
    // building it again from the archive took 6 minutes at 10 M messages on the loaded
    // benchmark machine (docs/benchmarks.md, issue 16, branch `tail`). `writable_schema =
    // RESET` makes this connection read the schema again; creating `tail` after it changes
    // the schema cookie, so every other connection does too.
    "UPDATE OR FAIL channels SET message_count = message_count + tail.n
       FROM (SELECT channel, count(*) AS n FROM messages NOT INDEXED
              WHERE id > (SELECT value FROM meta WHERE name = 'indexed_upto') AND notice = 0
              GROUP BY channel) AS tail
      WHERE channels.key = tail.channel;
     UPDATE OR FAIL messages SET deferred = 0
      WHERE id > (SELECT value FROM meta WHERE name = 'indexed_upto') AND deferred = 1;
     UPDATE meta SET value = max(value, (SELECT coalesce(max(id), 0) FROM messages))
      WHERE name = 'indexed_upto';
     PRAGMA writable_schema = ON;
     UPDATE sqlite_schema
        SET sql = 'CREATE INDEX messages_by_channel ON messages (channel, id) WHERE deferred = 0'
      WHERE type = 'index' AND name = 'messages_by_channel';
     PRAGMA writable_schema = RESET;
     CREATE TABLE tail (
         channel INTEGER NOT NULL,
         id      INTEGER NOT NULL,
         PRIMARY KEY (channel, id)
     ) WITHOUT ROWID;",
    // 13 → 14: the foreign keys of participants and presence checked at the commit
    // (`DEFERRABLE INITIALLY DEFERRED`), so that a run of joins' multi-row inserts keep no
    // statement journal (src/store/sqlite/write.rs, `NEWCOMERS`). Deferral changes no stored
    // row or page, only the tables' text in the schema, so that text is edited in place (the
    // procedure SQLite's documentation gives for changes of constraints, "Making Other Kinds
    // Of Table Schema Changes") rather than ten million memberships copied into new tables;
    // RESET reads the schema again for this connection (mixd opens its others after). A text
    // already deferred is left alone: edited twice, it would no longer parse.
    "PRAGMA writable_schema = ON;
     UPDATE sqlite_schema
        SET sql = replace(sql, 'ON DELETE CASCADE', 'ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED')
      WHERE type = 'table' AND name IN ('participants', 'presence')
        AND sql NOT LIKE '%DEFERRABLE%';
     PRAGMA writable_schema = RESET;",
    // 14 → 15: presence without its foreign key to the participant: the key's probe of the
    // participants' primary key, made for every client row even with the check deferred, was
    // a B-tree seek on a text key at every join (docs/benchmarks.md, issue 16, branch
    // `joins8`); the writer deletes a participant's presence rows with it instead of the
    // cascade. Only the table's text changes (its columns and primary key, hence its stored
    // format, are the same in every version since 4), edited in place as in 13 → 14.
    "PRAGMA writable_schema = ON;
     UPDATE sqlite_schema
        SET sql = 'CREATE TABLE presence (
    channel  INTEGER NOT NULL,
    jid      TEXT    NOT NULL,
    resource TEXT    NOT NULL,
    PRIMARY KEY (channel, jid, resource)
) WITHOUT ROWID'
      WHERE type = 'table' AND name = 'presence';
     PRAGMA writable_schema = RESET;",
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

    /// Every index: name, table and its statement with its spacing made even.
    fn indexes(conn: &Connection) -> Vec<(String, String, String)> {
        conn.prepare(
            "SELECT name, tbl_name, sql FROM sqlite_master
             WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| {
            let sql: String = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                sql.split_whitespace().collect::<Vec<_>>().join(" "),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Every table's foreign keys: (table, referenced table, from, to, on delete).
    fn foreign_keys(conn: &Connection) -> Vec<(String, String, String, String, String)> {
        conn.prepare(
            "SELECT m.name, f.\"table\", f.\"from\", f.\"to\", f.on_delete
             FROM sqlite_master m, pragma_foreign_key_list(m.name) f
             WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_version_1_database_migrates_to_the_schema_and_keeps_its_rows() {
        let mut old = crate::store::sqlite::testing::in_memory();
        old.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute(
            "INSERT INTO channels (name, created_by, created_at, info_updated_at) VALUES ('coven', 'alice@localhost', 1, 1)",
            [],
        )
        .unwrap();
        old.execute(
            "INSERT INTO channels (name, created_by, created_at, info_updated_at) VALUES ('0f3a9c2e71b4d856', 'alice@localhost', 1, 1)",
            [],
        )
        .unwrap();
        // Alice made an admin at 7 and posted at 9: the configuration last changed at 7.
        old.execute_batch(
            "INSERT INTO messages (id, channel, at, sender, nick, content, notice)
             VALUES (1, 1, 7, 'alice@localhost', '', '', 5), (2, 1, 9, 'alice@localhost', '', 'hi', 0);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        let configured: Vec<i64> = old
            .prepare("SELECT config_updated_at FROM channels ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(configured, [7, 0]);
        let mut fresh = crate::store::sqlite::testing::in_memory();
        migrate(&mut fresh).unwrap();
        assert_eq!(columns(&old), columns(&fresh));
        assert_eq!(indexes(&old), indexes(&fresh));
        // The rows that were there keep their look-up entries, and the watermark says so.
        let upto: i64 = old
            .query_row(
                "SELECT value FROM meta WHERE name = 'indexed_upto'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(upto, 2);
        // Alice's post in her messages' index, her notice in her notices'.
        let by_alice = |index: &str, notice: &str| -> Vec<i64> {
            old.prepare(&format!(
                "SELECT id FROM messages INDEXED BY {index}
                 WHERE deferred = 0 AND {notice} AND channel = 1 AND sender = 'alice@localhost'
                 ORDER BY id"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        assert_eq!(by_alice("messages_by_sender", "notice = 0"), [2]);
        assert_eq!(by_alice("notices_by_sender", "notice != 0"), [1]);
        assert_eq!(foreign_keys(&old), foreign_keys(&fresh));
        assert!(!foreign_keys(&old)
            .iter()
            .any(|(table, ..)| table.as_str() == "presence"));
        let policy: i64 = old
            .query_row(
                "SELECT join_policy FROM channels WHERE name = 'coven'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(policy, 0);
        // A channel named as mixd names ad-hoc ones is taken as unlisted, the others listed.
        let listed: Vec<(String, bool)> = old
            .prepare("SELECT name, listed FROM channels ORDER BY key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            listed,
            [("coven".into(), true), ("0f3a9c2e71b4d856".into(), false)]
        );
        let version: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, LATEST);
    }

    /// What version 12 left above the watermark is entered (counted, flagged), so that the
    /// index, now partial, holds every row; the connection that migrated and another one
    /// both keep it so (SQLite's integrity check compares the index with its condition).
    #[test]
    fn version_13_enters_what_is_above_the_watermark_and_makes_the_index_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        // As version 12 left an archive: rows 1 and 2 counted and entered, the watermark at
        // 2, row 3 above it and not entered.
        conn.execute_batch(
            "DROP TABLE tail;
             DROP INDEX messages_by_channel;
             CREATE INDEX messages_by_channel ON messages (channel, id);
             INSERT INTO channels (key, name, created_by, created_at, info_updated_at, message_count)
               VALUES (1, 'coven', 'alice@localhost', 1, 1, 2);
             INSERT INTO messages (id, channel, at, sender, nick, content, deferred)
               VALUES (1, 1, 1, 'alice@localhost', '', 'hi', 0),
                      (2, 1, 2, 'alice@localhost', '', 'you', 0),
                      (3, 1, 3, 'alice@localhost', '', 'there', 1);
             UPDATE meta SET value = 2 WHERE name = 'indexed_upto';
             PRAGMA user_version = 12;",
        )
        .unwrap();
        let mut other = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut other).unwrap();
        let state = |c: &Connection| -> (i64, i64, i64) {
            c.query_row(
                "SELECT (SELECT message_count FROM channels), (SELECT sum(deferred) FROM messages),
                        (SELECT value FROM meta WHERE name = 'indexed_upto')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        assert_eq!(state(&conn), (3, 0, 3));
        // A row not entered, from each connection: neither goes into the index.
        for (c, id) in [(&conn, 4), (&other, 5)] {
            c.execute(
                "INSERT INTO messages (id, channel, at, sender, nick, content, deferred)
                 VALUES (?1, 1, 4, 'alice@localhost', '', 'more', 1)",
                [id],
            )
            .unwrap();
        }
        for c in [&conn, &other] {
            let check: String = c
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok");
            let indexed: i64 = c
                .query_row(
                    "SELECT count(*) FROM messages INDEXED BY messages_by_channel
                     WHERE channel = 1 AND deferred = 0",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(indexed, 3);
        }
    }

    #[test]
    fn version_14_checks_the_joins_foreign_keys_at_the_commit() {
        let mut conn = crate::store::sqlite::testing::in_memory();
        conn.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        migrate(&mut conn).unwrap();
        let deferred = |conn: &Connection| -> Vec<String> {
            conn.prepare(
                "SELECT name FROM sqlite_schema
                 WHERE type = 'table' AND sql LIKE '%DEFERRABLE INITIALLY DEFERRED%' ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        // Presence has no foreign key from version 15 on.
        assert_eq!(deferred(&conn), ["participants"]);
        let mut fresh = crate::store::sqlite::testing::in_memory();
        migrate(&mut fresh).unwrap();
        assert_eq!(deferred(&fresh), ["participants"]);
        // The migrating connection itself uses them deferred: a participant of no channel
        // is refused at the commit, not by its statement.
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at)
             VALUES (7, 'bob@localhost', 'b', 'bob', 1, 0, 1)",
            [],
        )
        .unwrap();
        assert!(tx.commit().is_err());
    }

    #[test]
    fn version_15_keeps_the_clients_online_without_their_foreign_key() {
        let mut conn = crate::store::sqlite::testing::in_memory();
        conn.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        for step in &MIGRATIONS[..13] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 14).unwrap();
        conn.execute_batch(
            "INSERT INTO channels (name, created_by, created_at, info_updated_at)
             VALUES ('coven', 'alice@localhost', 1, 1);
             INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at)
             VALUES (1, 'bob@localhost', 'b', 'bob', 1, 0, 1);
             INSERT INTO presence (channel, jid, resource) VALUES (1, 'bob@localhost', 'phone');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let fresh = {
            let mut fresh = crate::store::sqlite::testing::in_memory();
            migrate(&mut fresh).unwrap();
            fresh
        };
        assert_eq!(columns(&conn), columns(&fresh));
        assert_eq!(foreign_keys(&conn), foreign_keys(&fresh));
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let rows: Vec<(i64, String, String)> = conn
            .prepare("SELECT channel, jid, resource FROM presence")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(1, "bob@localhost".into(), "phone".into())]);
        // A client row naming no participant is no longer refused at the commit: the writer
        // deletes clients with their participant (`sqlite/write.rs`).
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO presence (channel, jid, resource) VALUES (1, 'eve@localhost', 'x')",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn version_12_takes_what_was_counted_above_the_watermark_out_of_the_totals() {
        let mut conn = crate::store::sqlite::testing::in_memory();
        migrate(&mut conn).unwrap();
        // As version 11 left a channel: two messages and a notice, the last message and the
        // notice above the watermark, both messages in the running total.
        conn.execute_batch(
            "INSERT INTO channels (key, name, created_by, created_at, info_updated_at, message_count)
               VALUES (1, 'coven', 'alice@localhost', 1, 1, 2);
             INSERT INTO messages (id, channel, at, sender, nick, content, notice)
               VALUES (1, 1, 1, 'alice@localhost', '', 'hi', 0),
                      (2, 1, 2, 'alice@localhost', '', '', 5),
                      (3, 1, 3, 'alice@localhost', '', 'there', 0);
             UPDATE meta SET value = 1 WHERE name = 'indexed_upto';
             DROP TABLE tail;
             DROP INDEX messages_by_channel;
             CREATE INDEX messages_by_channel ON messages (channel, id);
             PRAGMA user_version = 11;",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        // Taken out by version 12, counted in once by version 13's fill: both messages.
        let total: i64 = conn
            .query_row("SELECT message_count FROM channels", [], |r| r.get(0))
            .unwrap();
        assert_eq!(total, 2);
    }
}
