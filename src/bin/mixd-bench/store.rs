//! The store alone, in this process (no mixd, no link): what committing posts costs the
//! writer. Channels of ten members are made and joined through the core, as mixd makes them;
//! then the posts of the `small-channels` scenario (the same senders, channels, bodies and
//! stanza ids, in the same order) are decided by the core ahead of time and committed in
//! batches of `batch`, as group commit would take them with that many in flight. Only the
//! commits are measured: CPU per message, and what reached the files (bytes and write calls,
//! from `/proc/self/io`; WAL frames and checkpoints both). `--without-index` drops indexes of
//! the SQLite schema first, to measure what keeping each costs a post (the reads that need it
//! are not run here).

use std::path::Path;
use std::time::Instant;

use mixd::core::{Fact, Groups, Nodes, Rules, Snapshot, Submission};
use mixd::store::sqlite::Durability;
use mixd::store::{Database, FactWriter};

use crate::cpu_seconds_of;

/// Members per channel, as in `small-channels`.
const MEMBERS: usize = 10;

/// Bytes and write calls this process has handed to the kernel so far.
fn written() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("syscw:"))
}

fn jid(user: usize) -> jid::BareJid {
    jid::BareJid::new(&format!("u{user}@bench")).expect("a bench JID")
}

pub fn store(
    channels: usize,
    messages: usize,
    batch: usize,
    without: &[String],
) -> anyhow::Result<()> {
    anyhow::ensure!(batch > 0, "a batch holds at least one message");
    let dir = tempfile::tempdir()?;
    let database = match std::env::var("MIXD_BENCH_DATABASE") {
        Ok(url) => Database::Postgres(url),
        Err(_) => Database::Sqlite(dir.path().join("bench.db")),
    };
    let mut writer = mixd::store::open(&database, Durability::Normal)?.writer;
    if !without.is_empty() {
        let Database::Sqlite(path) = &database else {
            anyhow::bail!(
                "--without-index drops SQLite indexes: run it without MIXD_BENCH_DATABASE"
            );
        };
        let conn = rusqlite::Connection::open(path)?;
        for index in without {
            conn.execute_batch(&format!("DROP INDEX {index}"))?;
        }
    }
    let rules = Rules {
        user_domains: vec!["bench".into()],
        max_groups_per_creator: 0,
        message_burst: 0,
        signals_per_minute: 0,
        channels_per_hour: 0,
        joins_per_minute: 0,
        adds_per_hour: 0,
        history_burst: 0,
        ..Rules::default()
    };
    let mut groups = Groups::new(rules, Snapshot::default());
    let mut now = 1_700_000_000_000_000;
    let mut tick = || {
        now += 1;
        now
    };
    let refused = |r: mixd::core::Refusal| anyhow::anyhow!("the core refused: {r:?}");
    for channel in 0..channels {
        let name = format!("c{channel}");
        let mut facts = groups
            .create(&jid(channel * MEMBERS), Some(&name), tick())
            .map_err(refused)?
            .1;
        for member in 0..MEMBERS {
            let user = jid(channel * MEMBERS + member);
            let joined = groups.join(&name, &user, None, Nodes::MESSAGES, tick());
            facts.extend(joined.map_err(refused)?.1);
        }
        writer.commit(&facts.iter().collect::<Vec<_>>())?;
    }
    let mut batches: Vec<Vec<Fact>> = Vec::new();
    for seq in 0..messages {
        let channel = seq % channels;
        let user = channel * MEMBERS + seq / channels % MEMBERS;
        let submission = Submission {
            content: format!("<body>m{seq}</body>"),
            client_id: Some(format!("s{seq}")),
            ..Submission::default()
        };
        let posted = groups.post(&format!("c{channel}"), &jid(user), submission, tick());
        if seq % batch == 0 {
            batches.push(Vec::with_capacity(batch));
        }
        batches
            .last_mut()
            .expect("a batch begun")
            .extend(posted.map_err(refused)?);
    }
    let (bytes, calls) = written();
    let cpu = cpu_seconds_of(std::process::id());
    let started = Instant::now();
    for facts in &batches {
        writer.commit(&facts.iter().collect::<Vec<_>>())?;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds_of(std::process::id()) - cpu;
    let (bytes_after, calls_after) = written();
    let per_batch = |n: u64| n as f64 / batches.len() as f64;
    let files = match &database {
        Database::Sqlite(path) => {
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
            format!(
                "; database {:.1} MB, WAL {:.1} MB",
                size(path),
                size(&path.with_file_name("bench.db-wal"))
            )
        }
        Database::Postgres(_) => "; the server's own work not counted".into(),
    };
    println!(
        "store channels={channels}x{MEMBERS} messages={messages} batch={batch}: {:.0} stored messages/s, \
         {:.2} µs of CPU per message ({:.0} per CPU-second), {:.0} bytes and {:.1} write calls per batch \
         ({:.0} bytes per message){files}",
        messages as f64 / wall,
        cpu * 1e6 / messages as f64,
        messages as f64 / cpu.max(1e-9),
        per_batch(bytes_after - bytes),
        per_batch(calls_after - calls),
        (bytes_after - bytes) as f64 / messages as f64,
    );
    Ok(())
}
