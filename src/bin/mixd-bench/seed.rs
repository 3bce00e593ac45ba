//! Filling a database directly, for scenarios about what mixd does with large state: the
//! schema comes from mixd itself (`store::sqlite::open`, `store::postgres::prepare`), the rows
//! from bulk inserts (on PostgreSQL, from `generate_series` in the server).

use std::path::Path;

use mixd::store::sqlite::{open, Durability};
use mixd::store::Database;
use rusqlite::{params, Connection};

const NOW: i64 = 1_700_000_000_000_000;

fn connect(path: &Path) -> anyhow::Result<Connection> {
    drop(open(path, Durability::Normal)?);
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    Ok(conn)
}

/// The SQLite file `database` names; the scenarios that seed through this refuse PostgreSQL.
fn sqlite(database: &Database) -> anyhow::Result<&Path> {
    match database {
        Database::Sqlite(path) => Ok(path),
        Database::Postgres(_) => {
            anyhow::bail!(
                "this scenario seeds an SQLite database: it runs without MIXD_BENCH_DATABASE"
            )
        }
    }
}

/// `channels` channels `c0`… with `memberships` participants spread over them; user `u0` is
/// in every channel.
pub fn channels(database: &Database, channels: usize, memberships: usize) -> anyhow::Result<()> {
    let path = sqlite(database)?;
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

/// Channel `c0` with member `u0` and an archive of `messages` messages, in either store.
pub fn archive(database: &Database, messages: usize) -> anyhow::Result<()> {
    let path = match database {
        Database::Sqlite(path) => path,
        Database::Postgres(url) => return off_runtime(|| archive_postgres(url, messages)),
    };
    channels(database, 1, 1)?;
    let mut conn = connect(path)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO messages (id, channel, at, sender, nick, origin_id, content) VALUES (?1, 1, ?2, 'u0@bench', 'u0', NULL, ?3)",
        )?;
        for id in 1..=messages as i64 {
            insert.execute(params![
                id,
                NOW + id,
                format!("<body>archived message number {id}</body>")
            ])?;
        }
    }
    tx.commit()?;
    crate::seed::finish(&conn)
}

/// Whatever the schema keeps beside the rows (counters) is brought up to date.
pub fn finish(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "UPDATE channels SET message_count = (SELECT count(*) FROM messages WHERE channel = channels.key); ANALYZE;",
    )?;
    Ok(())
}

/// [`archive`] into an empty PostgreSQL database: the same rows, made by the server itself.
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
         INSERT INTO messages (id, channel, at, sender, nick, content)
           SELECT id, 1, {NOW} + id, 'u0@bench', 'u0', '<body>archived message number ' || id || '</body>'
           FROM generate_series(1, {messages}::bigint) id;
         UPDATE sequences SET last = 1 WHERE name = 'channels';
         UPDATE sequences SET last = {messages} WHERE name = 'messages';
         UPDATE channels SET message_count = {messages};"
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
fn off_runtime<T: Send>(f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .map_err(|_| anyhow::anyhow!("seeding panicked"))?
    })
}
