//! Filling a database directly, for scenarios about what mixd does with large state: the
//! schema comes from mixd itself (`store::sqlite::open`, `store::postgres::prepare`), the rows
//! from bulk inserts (on PostgreSQL, from `generate_series` in the server).

use std::path::Path;

use mixd::store::sqlite::{open, Durability};
use mixd::store::Database;
use rusqlite::{params, Connection};

pub const NOW: i64 = 1_700_000_000_000_000;

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

/// How many channels each bench user takes part in (about): a service's users are each in a
/// handful of its groups, not all in every one.
pub const CHANNELS_PER_USER: usize = 10;

/// `channels` channels `c0`… with `memberships` participants spread over them: the members of
/// channel `k` (counted from 0) are the users `u{k·m}`… `u{k·m + m − 1}` (`m` members each),
/// wrapping around `memberships / CHANNELS_PER_USER` users, so that each user is in about
/// [`CHANNELS_PER_USER`] channels (`c0` has `u0`, who owns it); each channel's first member
/// owns it.
///
/// With `MIXD_BENCH_SEEDS=<dir>` the database is made once in that directory and copied for
/// each run (seeding ten million memberships takes minutes); on PostgreSQL, made by the server
/// (`seed_postgres.rs`), and kept in the database itself for the next run.
pub fn channels(database: &Database, channels: usize, memberships: usize) -> anyhow::Result<()> {
    match database {
        Database::Sqlite(path) => kept_or_filled(
            path,
            &format!("channels-{channels}-{memberships}"),
            |path| fill_channels(path, channels, memberships),
        ),
        Database::Postgres(url) => crate::seed_postgres::channels(url, channels, memberships),
    }
}

/// `fill` run on `path`; or, with `MIXD_BENCH_SEEDS=<dir>`, on a file `name` in that
/// directory the first time (per schema: `MIXD_BENCH_SCHEMA`), copied to `path` every time.
fn kept_or_filled(
    path: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("MIXD_BENCH_SEEDS") else {
        return fill(path);
    };
    let schema = std::env::var("MIXD_BENCH_SCHEMA").unwrap_or_default();
    let kept = Path::new(&dir).join(format!("{name}{schema}.db"));
    if !kept.exists() {
        let partial = kept.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        fill(&partial)?;
        // On the disk before it is measured against, as `Mixd::launch` does its copy.
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &kept)?;
    }
    std::fs::copy(&kept, path)?;
    Ok(())
}

fn fill_channels(path: &Path, channels: usize, memberships: usize) -> anyhow::Result<()> {
    let mut conn = connect(path)?;
    let tx = conn.transaction()?;
    {
        let mut channel = tx.prepare(
            "INSERT INTO channels (key, name, created_by, created_at, info_updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        )?;
        let mut owner = tx.prepare("INSERT INTO channel_owners (channel, jid) VALUES (?1, ?2)")?;
        let mut member = tx.prepare(
            "INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
        )?;
        let per_channel = (memberships / channels.max(1)).max(1);
        let users = (memberships / CHANNELS_PER_USER).max(per_channel);
        for key in 1..=channels as i64 {
            let first = (key as usize - 1) * per_channel;
            let owner_jid = format!("u{}@bench", first % users);
            channel.execute(params![key, format!("c{}", key - 1), owner_jid, NOW])?;
            owner.execute(params![key, owner_jid])?;
            for i in 0..per_channel {
                let user = (first + i) % users;
                let role = if i == 0 { 2 } else { 0 };
                member.execute(params![
                    key,
                    format!("u{user}@bench"),
                    format!("{key:08x}{i:08x}"),
                    format!("u{user}"),
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
/// [`MEDIA`] sharing a file, one in [`RARE`] a notice (a member added). The same rows on
/// PostgreSQL, made by the server itself.
pub fn archive(database: &Database, messages: usize) -> anyhow::Result<()> {
    match database {
        Database::Sqlite(path) => kept_or_filled(path, &format!("archive-{messages}"), |path| {
            fill_archive(path, messages)
        }),
        Database::Postgres(url) => off_runtime(|| archive_postgres(url, messages)),
    }
}

fn fill_archive(path: &Path, messages: usize) -> anyhow::Result<()> {
    fill_channels(path, 1, 1)?;
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

/// Whatever the schema keeps beside the rows (counters, and the watermark of look-up entries:
/// the rows were inserted with theirs, as `deferred = 0`) is brought up to date. No ANALYZE:
/// mixd never runs it, and its statistics make SQLite prepare a statement again whenever a
/// bound id changes (STAT4), which cost the bisection of a time window a millisecond a page.
pub fn finish(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "UPDATE channels SET message_count = (SELECT count(*) FROM messages WHERE channel = channels.key AND notice = 0);
         UPDATE meta SET value = (SELECT coalesce(max(id), 0) FROM messages) WHERE name = 'indexed_upto';",
    )?;
    Ok(())
}

/// [`archive`] into an empty PostgreSQL database, made by the server itself.
fn archive_postgres(url: &str, messages: usize) -> anyhow::Result<()> {
    mixd::store::postgres::prepare(url)?;
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SET LOCAL synchronous_commit = off;
         INSERT INTO channels (key, name, created_by, created_at, info_updated_at)
           VALUES (1, 'c0', 'u0@bench', {NOW}, {NOW});
         INSERT INTO channel_owners (channel, jid) VALUES (1, 'u0@bench');
         INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at)
           VALUES (1, 'u0@bench', '0000000100000000', 'u0', 1, 2, {NOW});
         INSERT INTO messages (id, channel, at, sender, nick, content, media, notice, notice_target)
           SELECT id, 1, {NOW} + id,
             CASE WHEN id % {RARE} = {RARE_AT} THEN '{RARE_SENDER}' ELSE 'u0@bench' END,
             CASE WHEN id % {RARE} = {RARE_AT} THEN 'u1' ELSE 'u0' END,
             CASE WHEN id % {MEDIA} = {MEDIA_AT}
               THEN '<body>file ' || id || '</body><x xmlns=''jabber:x:oob''><url>https://bench/' || id || '.jpg</url></x>'
               ELSE '<body>archived message number ' || id || '</body>' END,
             id % {MEDIA} = {MEDIA_AT},
             CASE WHEN id % {RARE} = {NOTICE_AT} THEN 2 ELSE 0 END,
             CASE WHEN id % {RARE} = {NOTICE_AT} THEN '{RARE_SENDER}' END
           FROM generate_series(1, {messages}::bigint) id;
         UPDATE sequences SET last = 1 WHERE name = 'channels';
         UPDATE sequences SET last = {messages} WHERE name = 'messages';
         UPDATE channels SET message_count = (SELECT count(*) FROM messages WHERE channel = 1 AND notice = 0);"
    ))?;
    tx.commit()?;
    // Outside a transaction: the planner's statistics, and the visibility map that lets
    // index-only reads skip the heap.
    client.batch_execute("VACUUM ANALYZE")?;
    Ok(())
}

/// The bytes `database` takes: the SQLite file and its WAL, or the PostgreSQL database.
pub fn size(database: &Database) -> anyhow::Result<u64> {
    match database {
        Database::Sqlite(path) => {
            let wal = path.with_extension("db-wal");
            Ok(std::fs::metadata(path)?.len() + std::fs::metadata(wal).map_or(0, |m| m.len()))
        }
        Database::Postgres(url) => off_runtime(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            let bytes: i64 = client
                .query_one("SELECT pg_database_size(current_database())", &[])?
                .get(0);
            Ok(bytes as u64)
        }),
    }
}

/// Runs `f` on a thread of its own: the PostgreSQL client blocks on a runtime of its own,
/// which tokio forbids inside the bench's.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .map_err(|_| anyhow::anyhow!("seeding panicked"))?
    })
}
