//! Filling a database directly, for scenarios about what mixd does with large state: the
//! schema comes from mixd itself (`store::sqlite::open`), the rows from bulk inserts.

use std::path::Path;

use mixd::store::sqlite::{open, Durability};
use rusqlite::{params, Connection};

const NOW: i64 = 1_700_000_000_000_000;

fn connect(path: &Path) -> anyhow::Result<Connection> {
    drop(open(path, Durability::Normal)?);
    let conn = Connection::open(path)?;
    // `MIXD_BENCH_SCHEMA=8`: the database as schema 8 had it, without schema 9's history
    // indexes, for a mixd from before them (docs/benchmarks.md, issue 16).
    if std::env::var("MIXD_BENCH_SCHEMA").as_deref() == Ok("8") {
        conn.execute_batch(
            "DROP INDEX IF EXISTS messages_by_sender; DROP INDEX IF EXISTS messages_with_media;
             PRAGMA user_version = 8;",
        )?;
    }
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    Ok(conn)
}

/// `channels` channels `c0`… with `memberships` participants spread over them; user `u0` is
/// in every channel.
pub fn channels(path: &Path, channels: usize, memberships: usize) -> anyhow::Result<()> {
    let mut conn = connect(path)?;
    let tx = conn.transaction()?;
    {
        let mut channel = tx.prepare(
            "INSERT INTO channels (key, name, created_by, created_at, info_updated_at) VALUES (?1, ?2, 'u0@bench', ?3, ?3)",
        )?;
        let mut owner =
            tx.prepare("INSERT INTO channel_owners (channel, jid) VALUES (?1, 'u0@bench')")?;
        let mut member = tx.prepare(
            "INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
        )?;
        let per_channel = (memberships / channels.max(1)).max(1);
        for key in 1..=channels as i64 {
            channel.execute(params![key, format!("c{}", key - 1), NOW])?;
            owner.execute([key])?;
            for i in 0..per_channel {
                let role = if i == 0 { 2 } else { 0 };
                member.execute(params![
                    key,
                    format!("u{i}@bench"),
                    format!("{key:08x}{i:08x}"),
                    format!("u{i}"),
                    role,
                    NOW + i as i64
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Channel `c0` with member `u0` and an archive of `messages` messages, archive id `n` at
/// time `NOW + n` µs, mostly from `u0`, with what history filters on spread through it: one
/// in [`RARE`] from [`RARE_SENDER`] (history `with` a sender who seldom speaks), one in
/// [`MEDIA`] sharing a file, one in [`RARE`] a notice (a member added).
pub fn archive(path: &Path, messages: usize) -> anyhow::Result<()> {
    channels(path, 1, 1)?;
    let mut conn = connect(path)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO messages (id, channel, at, sender, nick, origin_id, content, media, notice, notice_target)
             VALUES (?1, 1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8)",
        )?;
        for id in 1..=messages as i64 {
            let (sender, nick) = match id % RARE {
                RARE_AT => (RARE_SENDER, "u1"),
                _ => ("u0@bench", "u0"),
            };
            let media = id % MEDIA == MEDIA_AT;
            let content = if media {
                format!("<body>file {id}</body><x xmlns='jabber:x:oob'><url>https://bench/{id}.jpg</url></x>")
            } else {
                format!("<body>archived message number {id}</body>")
            };
            let (notice, target) = match id % RARE == NOTICE_AT {
                true => (2, Some(RARE_SENDER)),
                false => (0, None),
            };
            insert.execute(params![
                id,
                at(id),
                sender,
                nick,
                content,
                media,
                notice,
                target
            ])?;
        }
    }
    tx.commit()?;
    crate::seed::finish(&conn)
}

/// The archive's rare sender and notices come once in this many messages.
pub const RARE: i64 = 1000;
const RARE_AT: i64 = 500;
const NOTICE_AT: i64 = 999;
pub const RARE_SENDER: &str = "u1@bench";
/// One message in this many shares a file.
pub const MEDIA: i64 = 100;
const MEDIA_AT: i64 = 50;

/// The time of archive id `id` in [`archive`].
pub fn at(id: i64) -> i64 {
    NOW + id
}

/// The media message at or before archive id `id` in [`archive`] (one at least `MEDIA`).
pub fn media_before(id: i64) -> i64 {
    id - id.rem_euclid(MEDIA) + MEDIA_AT
        - if id.rem_euclid(MEDIA) < MEDIA_AT {
            MEDIA
        } else {
            0
        }
}

/// Whatever the schema keeps beside the rows (counters) is brought up to date. No ANALYZE:
/// mixd never runs it, and its statistics make SQLite prepare a statement again whenever a
/// bound id changes (STAT4), which cost the bisection of a time window a millisecond a page.
pub fn finish(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "UPDATE channels SET message_count = (SELECT count(*) FROM messages WHERE channel = channels.key AND notice = 0);",
    )?;
    Ok(())
}
