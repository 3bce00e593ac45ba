//! The channels and memberships of [`seed::channels`] in PostgreSQL, made by the server itself
//! (`generate_series`, one statement a table), not row by row: ten million memberships take
//! minutes even so, so with `MIXD_BENCH_SEEDS` set a database seeded before with the same
//! shape (its comment says which) is used again as it is.

use crate::seed::{self, CHANNELS_PER_USER, NOW};

/// [`seed::channels`] into the PostgreSQL database `url`: empty, or seeded before with the
/// same shape (then kept, with `MIXD_BENCH_SEEDS` set).
pub fn channels(url: &str, channels: usize, memberships: usize) -> anyhow::Result<()> {
    let shape = format!("mixd-bench channels-{channels}-{memberships}");
    seed::off_runtime(|| {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let database: String = client.query_one("SELECT current_database()", &[])?.get(0);
        let comment: Option<String> = client
            .query_one(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                &[&database],
            )?
            .get(0);
        if comment.as_deref() == Some(shape.as_str())
            && std::env::var_os("MIXD_BENCH_SEEDS").is_some()
        {
            return Ok(());
        }
        mixd::store::postgres::prepare(url)?;
        fill(&mut client, channels, memberships)?;
        // Outside a transaction: the planner's statistics and the visibility map, as a
        // database that has been running a while has them.
        client.batch_execute("VACUUM ANALYZE")?;
        client.batch_execute(&format!("COMMENT ON DATABASE \"{database}\" IS '{shape}'"))?;
        Ok(())
    })
}

/// The rows, as `seed::fill_channels` writes them into SQLite: channel `k` (from 1) is `c{k-1}`,
/// its members the users from `(k-1)·m` on (`m` a channel), wrapping around the users, the
/// first of them its owner.
fn fill(client: &mut postgres::Client, channels: usize, memberships: usize) -> anyhow::Result<()> {
    let per_channel = (memberships / channels.max(1)).max(1);
    let users = (memberships / CHANNELS_PER_USER).max(per_channel);
    let last_member = per_channel - 1;
    let mut tx = client.transaction()?;
    // `replica`: the foreign keys' triggers do not run (every row refers to a channel made
    // just before); a check per membership would double the time.
    tx.batch_execute(&format!(
        "SET LOCAL synchronous_commit = off;
         SET LOCAL session_replication_role = replica;
         INSERT INTO channels (key, name, created_by, created_at, info_updated_at)
           SELECT k, 'c' || (k - 1), 'u' || ((k - 1) * {per_channel} % {users}) || '@bench', {NOW}, {NOW}
           FROM generate_series(1, {channels}::bigint) k;
         INSERT INTO channel_owners (channel, jid) SELECT key, created_by FROM channels;
         INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at)
           SELECT k, 'u' || u || '@bench', lpad(to_hex(k), 8, '0') || lpad(to_hex(i), 8, '0'),
             'u' || u, 1, CASE WHEN i = 0 THEN 2 ELSE 0 END, {NOW} + i
           FROM generate_series(1, {channels}::bigint) k,
             generate_series(0, {last_member}::bigint) i,
             LATERAL (SELECT ((k - 1) * {per_channel} + i) % {users} AS u) member;
         UPDATE sequences SET last = {channels} WHERE name = 'channels';"
    ))?;
    tx.commit()?;
    Ok(())
}
