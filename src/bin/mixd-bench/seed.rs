//! Filling a database directly, for scenarios about what mixd does with large state: the
//! schema comes from mixd itself (`store::sqlite::open`), the rows from bulk inserts.

use std::path::Path;

use mixd::store::sqlite::{open, Durability};
use rusqlite::{params, Connection};

const NOW: i64 = 1_700_000_000_000_000;

fn connect(path: &Path) -> anyhow::Result<Connection> {
    drop(open(path, Durability::Normal)?);
    let conn = Connection::open(path)?;
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

/// Channel `c0` with member `u0` and an archive of `messages` messages.
pub fn archive(path: &Path, messages: usize) -> anyhow::Result<()> {
    channels(path, 1, 1)?;
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
