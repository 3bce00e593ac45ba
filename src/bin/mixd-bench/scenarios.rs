//! The scenarios. Each prints one line of results; stanzas are written by hand here, exactly
//! as a server would route them to the component.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mixd::dialect::ids::Ids;
use mixd::store::{inspector, read_only, Database, HistoryQuery, Page, Reader};

use crate::client::{login, Shared};
use crate::peer::{wait_for, Counters, Peer, Tracker};
use crate::{
    cpu_seconds_of, seed, FairnessPhase, Faults, Mixd, Scenario, SchedTotals, ThreadsSince,
};

pub async fn run(binary: &Path, scenario: Scenario) -> anyhow::Result<()> {
    match scenario {
        Scenario::Fanout {
            members,
            messages,
            window,
            threads,
        } => fanout(binary, members, messages, window, threads).await,
        Scenario::SmallChannels {
            channels,
            messages,
            window,
            threads,
        } => small_channels(binary, channels, messages, window, threads).await,
        Scenario::History { archive, queries } => history(binary, archive, queries).await,
        Scenario::Joins { members, threads } => joins(binary, members, threads).await,
        Scenario::Create { channels } => create(binary, channels).await,
        Scenario::Startup {
            channels,
            memberships,
        } => startup(binary, channels, memberships).await,
        Scenario::MyGroups {
            channels,
            memberships,
            queries,
        } => my_groups(binary, channels, memberships, queries).await,
        Scenario::Backup { archive, window } => backup(binary, archive, window).await,
        Scenario::Fairness {
            quiet,
            quiet_members,
            flood_rate,
            resources,
            rounds,
            phase_seconds,
            phases,
        } => {
            let shape = Fairness {
                quiet,
                quiet_members,
                flood_rate,
                resources,
                rounds,
                phase_limit: Duration::from_secs(phase_seconds),
                floods: phases
                    .into_iter()
                    .map(|p| Flood::of(p, resources))
                    .collect(),
            };
            fairness(binary, shape).await
        }
        Scenario::Idle => idle(binary).await,
        Scenario::Parse { stanzas } => crate::parse::parse(stanzas),
        Scenario::Store {
            channels,
            messages,
            batch,
            without,
        } => crate::store::store(channels, messages, batch, &without),
        Scenario::E2e {
            server,
            domain,
            mix,
            members,
            posters,
            messages,
            window,
            pam,
            watched,
            json,
        } => {
            let target = Target {
                server: &server,
                domain: &domain,
                mix: &mix,
                pam,
            };
            let report = Report { watched, json };
            e2e(target, members, posters, messages, window, report).await
        }
        Scenario::Smoke => {
            fanout(binary, 10, 200, 16, true).await?;
            small_channels(binary, 10, 500, 64, true).await?;
            history(binary, HISTORY_MIN_ARCHIVE, 20).await?;
            joins(binary, 100, false).await?;
            create(binary, 100).await?;
            startup(binary, 100, 1000).await?;
            my_groups(binary, 100, 1000, 20).await?;
            backup(binary, 1000, 16).await?;
            let shape = Fairness {
                quiet: 50,
                quiet_members: 5,
                flood_rate: 2000,
                resources: 100,
                rounds: 1,
                phase_limit: Duration::from_secs(60),
                floods: Flood::every(100),
            };
            fairness(binary, shape).await?;
            crate::parse::parse(10_000)?;
            crate::store::store(10, 1000, 64, &[])?;
            idle(binary).await
        }
    }
}

fn create_stanza(channel: usize) -> String {
    format!("<iq type='set' id='c{channel}' from='u0@bench/r' to='mix.bench'><create xmlns='urn:xmpp:mix:core:1' channel='c{channel}'/></iq>")
}

fn join_stanza(user: usize, channel: usize) -> String {
    format!(
        "<iq type='set' id='j{user}' from='u{user}@bench/r' to='c{channel}@mix.bench'><join xmlns='urn:xmpp:mix:core:1'>\
         <subscribe node='urn:xmpp:mix:nodes:messages'/><nick>u{user}</nick></join></iq>"
    )
}

fn presence_stanza(user: usize, channel: usize) -> String {
    format!("<presence from='u{user}@bench/r' to='c{channel}@mix.bench'/>")
}

fn message_stanza(user: usize, channel: usize, seq: usize) -> String {
    format!("<message type='groupchat' id='s{seq}' from='u{user}@bench/r' to='c{channel}@mix.bench'><body>m{seq}</body></message>")
}

/// MAM query number `i` on `c0`: `form` (the filters' fields) and the RSM `set`'s inside.
fn mam_query(i: usize, form: &str, set: &str) -> String {
    let form = match form {
        "" => String::new(),
        fields => format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>urn:xmpp:mam:2</value></field>{fields}</x>"
        ),
    };
    format!(
        "<iq type='set' id='q{i}' from='u0@bench/r' to='c0@mix.bench'><query xmlns='urn:xmpp:mam:2'>\
         {form}<set xmlns='http://jabber.org/protocol/rsm'><max>50</max>{set}</set></query></iq>"
    )
}

/// The FlyChat SDK's history query (getChatMessages, or with `status='group_chat_media'`
/// its media list), as a server module forwards it to the service.
fn flychat_query(i: usize, attributes: &str) -> String {
    format!(
        "<iq type='get' id='f{i}' from='u0@bench/r' to='mix.bench'><query xmlns='jabber:iq:user_activities' \
         to_user='c0@mix.bench' {attributes}/></iq>"
    )
}

/// A FlyChat `group_chat` page of 50 rows `position` (`up`, older; `down`, newer) from
/// `anchor`.
fn flychat_page(i: usize, ids: &Ids, position: &str, anchor: i64) -> String {
    flychat_query(
        i,
        &format!(
            "status='group_chat' position='{position}' row_id='{}' limit='50'",
            ids.encode_digits(anchor)
        ),
    )
}

/// One kind of history query in the `history` scenario: the stanza for query `i` next to
/// archive id `anchor` (named by the opaque id clients are shown), and what the service
/// reads from the store for it.
struct HistoryKind {
    label: &'static str,
    stanza: fn(usize, &Ids, i64) -> String,
    read: fn(&dyn Reader, i64) -> anyhow::Result<usize>,
    /// FlyChat rows (`<row_id>`) each reply carries, where the generator can count them.
    rows: Option<u64>,
}

/// A MAM page as `mix/mam.rs` asks it of the store, around `anchor`.
fn mam_read(reader: &dyn Reader, query: HistoryQuery) -> anyhow::Result<usize> {
    let query = HistoryQuery {
        channel: 1,
        max: 50,
        with_actions: true,
        counted: true,
        ..query
    };
    Ok(reader.history(&query)?.messages.len())
}

/// A MAM page of the whole archive (no filter) before or after `anchor`.
fn mam_page(reader: &dyn Reader, page: Page) -> anyhow::Result<usize> {
    mam_read(
        reader,
        HistoryQuery {
            page,
            ..HistoryQuery::default()
        },
    )
}

/// A FlyChat page as `flychat/history.rs` reads it: its rows with their receipts
/// (`Reader::history_with_receipts`, one statement on PostgreSQL).
fn flychat_read(reader: &dyn Reader, page: Page) -> anyhow::Result<usize> {
    let query = HistoryQuery {
        channel: 1,
        max: 50,
        page,
        with_notices: true,
        ..HistoryQuery::default()
    };
    let (page, _receipts) = reader.history_with_receipts(&query)?;
    Ok(page.messages.len())
}

/// MAM's `with` filter: the rare sender's messages before `anchor`.
fn with_rare_sender() -> String {
    format!(
        "<field var='with'><value>{}</value></field>",
        seed::RARE_SENDER
    )
}

/// MAM's `start` and `end`: the first page of the 2,000 messages from `anchor` on.
fn time_window(anchor: i64) -> String {
    format!(
        "<field var='start'><value>{}</value></field><field var='end'><value>{}</value></field>",
        mixd::core::iso_time(seed::at(anchor)),
        mixd::core::iso_time(seed::at(anchor + 2000)),
    )
}

const HISTORY_KINDS: [HistoryKind; 7] = [
    HistoryKind {
        label: "MAM before",
        stanza: |i, ids, anchor| {
            mam_query(i, "", &format!("<before>{}</before>", ids.encode(anchor)))
        },
        read: |r, anchor| mam_page(r, Page::Before(anchor)),
        rows: None,
    },
    HistoryKind {
        label: "MAM after",
        stanza: |i, ids, anchor| {
            mam_query(i, "", &format!("<after>{}</after>", ids.encode(anchor)))
        },
        read: |r, anchor| mam_page(r, Page::After(anchor)),
        rows: None,
    },
    HistoryKind {
        label: "MAM with",
        stanza: |i, ids, anchor| {
            mam_query(
                i,
                &with_rare_sender(),
                &format!("<before>{}</before>", ids.encode(anchor)),
            )
        },
        read: |r, anchor| {
            let with = Some(jid::BareJid::new(seed::RARE_SENDER)?);
            mam_read(
                r,
                HistoryQuery {
                    page: Page::Before(anchor),
                    with,
                    ..HistoryQuery::default()
                },
            )
        },
        rows: None,
    },
    HistoryKind {
        label: "MAM start-end",
        stanza: |i, _, anchor| mam_query(i, &time_window(anchor), ""),
        read: |r, anchor| {
            let (start, end) = (Some(seed::at(anchor)), Some(seed::at(anchor + 2000)));
            mam_read(
                r,
                HistoryQuery {
                    start,
                    end,
                    ..HistoryQuery::default()
                },
            )
        },
        rows: None,
    },
    HistoryKind {
        label: "FlyChat up",
        stanza: |i, ids, anchor| flychat_page(i, ids, "up", anchor),
        read: |r, anchor| flychat_read(r, Page::Before(anchor)),
        rows: Some(50),
    },
    HistoryKind {
        label: "FlyChat down",
        stanza: |i, ids, anchor| flychat_page(i, ids, "down", anchor),
        read: |r, anchor| flychat_read(r, Page::After(anchor)),
        rows: Some(50),
    },
    HistoryKind {
        label: "FlyChat media",
        stanza: |i, ids, anchor| {
            flychat_query(
                i,
                &format!(
                    "status='group_chat_media' message_id='{}'",
                    ids.encode_digits(seed::media_before(anchor))
                ),
            )
        },
        read: |r, anchor| {
            let Some(named) = r.find_message(1, Some(seed::media_before(anchor)), "")? else {
                anyhow::bail!("no media message at {anchor}");
            };
            let query = HistoryQuery {
                channel: 1,
                max: 10,
                page: Page::Before(named.id),
                media_only: true,
                ..HistoryQuery::default()
            };
            Ok(r.history(&query)?.messages.len())
        },
        rows: None,
    },
];

fn ping_stanza(channel: usize) -> String {
    format!("<iq type='get' id='ping' from='u0@bench/r' to='c{channel}@mix.bench'><ping xmlns='urn:xmpp:ping'/></iq>")
}

fn results(c: &Counters) -> u64 {
    c.results.load(Ordering::Relaxed)
}

/// Requests one sender may have unanswered: mixd refuses a sender's stanzas beyond 1,024
/// waiting (`service.rs`), and a real client would not have more in flight.
const REQUEST_WINDOW: u64 = 512;

/// Sends `stanzas`, then waits for `replies` more iq results than there were. Where every
/// stanza is answered (`replies` > 1), at most [`REQUEST_WINDOW`] are unanswered at a time.
async fn request_all(
    peer: &mut Peer,
    stanzas: impl Iterator<Item = String>,
    replies: u64,
) -> anyhow::Result<()> {
    let before = results(&peer.counters);
    for (sent, stanza) in stanzas.enumerate() {
        let sent = sent as u64;
        if replies > 1 && sent >= REQUEST_WINDOW && sent.is_multiple_of(64) {
            peer.flush().await?;
            peer.wait_for(results, before + sent - REQUEST_WINDOW)
                .await?;
        }
        peer.send(&stanza).await?;
    }
    peer.flush().await?;
    peer.wait_for(results, before + replies).await
}

/// Channels `c0..channels`, each with `members` members online (users `u{offset}`…); the
/// member lists of different channels are disjoint.
async fn populate(peer: &mut Peer, channels: usize, members: usize) -> anyhow::Result<()> {
    request_all(peer, (0..channels).map(create_stanza), channels as u64).await?;
    let joins =
        (0..channels).flat_map(|c| (0..members).map(move |m| join_stanza(c * members + m, c)));
    request_all(peer, joins, (channels * members) as u64).await?;
    let presences =
        (0..channels).flat_map(|c| (0..members).map(move |m| presence_stanza(c * members + m, c)));
    // A ping after the presences proves they were all processed.
    request_all(peer, presences.chain((0..1).map(|_| ping_stanza(0))), 1).await
}

/// Seconds until all `count` requests are answered.
async fn timed_requests(
    peer: &mut Peer,
    stanzas: impl Iterator<Item = String>,
    count: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    request_all(peer, stanzas, count as u64).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// Sends each stanza once the previous one is answered; returns the round trips in ms,
/// sorted.
async fn round_trips(peer: &mut Peer, stanzas: Vec<String>) -> anyhow::Result<Vec<f64>> {
    let mut latencies: Vec<f64> = round_trips_in_order(peer, stanzas, None)
        .await?
        .into_iter()
        .map(|trip| trip.latency)
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(latencies)
}

/// One stanza's round trip: when it was sent, the trip in ms, and with a process to watch,
/// where that process's and this program's threads' time went meanwhile.
struct Trip {
    start: Instant,
    latency: f64,
    sched: Option<SchedTotals>,
}

/// Each stanza sent alone and its result awaited, in order: when each was sent and its round
/// trip in ms (what a trace of the spikes needs: which query, and when), up to the read that
/// brought the result (`Counters::result_at`), not the waiting task's wake-up. With `watched`
/// (mixd's pid), its threads' times are read before and after each trip, outside the timed
/// span.
async fn round_trips_in_order(
    peer: &mut Peer,
    stanzas: Vec<String>,
    watched: Option<u32>,
) -> anyhow::Result<Vec<Trip>> {
    let mut trips = Vec::with_capacity(stanzas.len());
    for stanza in stanzas {
        let before = results(&peer.counters);
        let sched = watched.map(SchedTotals::of);
        let start = Instant::now();
        peer.send(&stanza).await?;
        peer.flush().await?;
        peer.wait_for(results, before + 1).await?;
        let end = peer
            .counters
            .result_at
            .lock()
            .unwrap()
            .unwrap_or_else(Instant::now);
        let sched = watched
            .zip(sched)
            .map(|(pid, at)| SchedTotals::of(pid).since(at));
        let latency = end.saturating_duration_since(start).as_secs_f64() * 1e3;
        trips.push(Trip {
            start,
            latency,
            sched,
        });
    }
    Ok(trips)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Posts `messages` messages (sender and channel chosen by `route`), keeping at most `window`
/// unfinished; returns wall seconds and per-message latencies in ms, sorted.
async fn post_and_track(
    peer: &mut Peer,
    messages: usize,
    expected: u32,
    window: usize,
    route: impl Fn(usize) -> (usize, usize),
) -> anyhow::Result<(f64, Vec<f64>)> {
    let tracker = Arc::new(Tracker::new(messages, expected));
    peer.track(Some(tracker.clone()));
    let mut sent_at = vec![0u64; messages];
    let start = Instant::now();
    for (seq, sent) in sent_at.iter_mut().enumerate() {
        if seq - tracker.completed.load(Ordering::Relaxed) as usize >= window {
            peer.flush().await?;
            let target = (seq + 1 - window) as u64;
            peer.wait_for(|_| tracker.completed.load(Ordering::Relaxed), target)
                .await?;
        }
        let (user, channel) = route(seq);
        *sent = tracker.now();
        peer.send(&message_stanza(user, channel, seq)).await?;
        if seq % 16 == 15 {
            peer.flush().await?;
        }
    }
    peer.flush().await?;
    peer.wait_for(
        |_| tracker.completed.load(Ordering::Relaxed),
        messages as u64,
    )
    .await?;
    let wall = start.elapsed().as_secs_f64();
    peer.track(None);
    let mut latencies: Vec<f64> = (0..messages)
        .map(|s| {
            (tracker.done_at[s]
                .load(Ordering::Relaxed)
                .saturating_sub(sent_at[s])) as f64
                / 1e6
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok((wall, latencies))
}

/// Messages posted per round while the backup runs; each round's latencies are kept.
const BACKUP_ROUND: usize = 500;

async fn backup(binary: &Path, archive: usize, window: usize) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |db| seed::archive(db, archive)).await?;
    // u0, the seeded channel's member, online so that its posts come back to it.
    let online = [presence_stanza(0, 0), ping_stanza(0)].into_iter();
    request_all(&mut mixd.peer, online, 1).await?;
    let route = |_| (0, 0);
    let (_, before) = post_and_track(&mut mixd.peer, 5 * BACKUP_ROUND, 1, window, route).await?;
    let acknowledged = archive + 5 * BACKUP_ROUND;
    let Database::Sqlite(path) = &mixd.database else {
        anyhow::bail!("`mixd admin backup` copies SQLite files: this scenario runs without MIXD_BENCH_DATABASE");
    };
    let copy = path.with_file_name("copy.db");
    let admin = |args: Vec<std::ffi::OsString>| {
        let binary = binary.to_owned();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let status = std::process::Command::new(binary)
                .arg("admin")
                .args(args)
                .stdout(std::process::Stdio::null())
                .status();
            (status, started.elapsed().as_secs_f64())
        })
    };
    let database = path.clone().into_os_string();
    let copying = admin(vec![
        "--database".into(),
        database,
        "backup".into(),
        copy.clone().into_os_string(),
    ]);
    let mut during = Vec::new();
    let mut posted = 0;
    while !copying.is_finished() {
        let (_, round) = post_and_track(&mut mixd.peer, BACKUP_ROUND, 1, window, route).await?;
        during.extend(round);
        posted += BACKUP_ROUND;
    }
    let (status, copy_seconds) = copying.await?;
    anyhow::ensure!(status?.success(), "mixd admin backup failed");
    during.sort_by(|a, b| a.total_cmp(b));
    let (status, check_seconds) = admin(vec![
        "--database".into(),
        copy.clone().into_os_string(),
        "check".into(),
    ])
    .await?;
    anyhow::ensure!(
        status?.success(),
        "mixd admin check found something in the copy"
    );
    let held: i64 =
        rusqlite::Connection::open(&copy)?
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
    anyhow::ensure!(
        held as usize >= acknowledged,
        "the copy holds {held} messages, {acknowledged} were acknowledged before it began"
    );
    println!(
        "backup archive={archive} window={window}: copy of {:.1} MB in {copy_seconds:.2} s, check {check_seconds:.2} s; \
         {posted} messages posted in rounds begun during it, post p50 {:.2} ms p99 {:.2} ms (before: {:.2} / {:.2} ms); \
         the copy holds {held} messages, every one of the {acknowledged} acknowledged before it began",
        std::fs::metadata(&copy)?.len() as f64 / 1e6,
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        percentile(&before, 0.5),
        percentile(&before, 0.99),
    );
    mixd.stop();
    Ok(())
}

async fn fanout(
    binary: &Path,
    members: usize,
    messages: usize,
    window: usize,
    threads: bool,
) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |_| Ok(())).await?;
    populate(&mut mixd.peer, 1, members).await?;
    let per_thread = ThreadsSince::start(mixd.pid());
    let cpu = mixd.cpu_seconds();
    let (wall, latencies) =
        post_and_track(&mut mixd.peer, messages, members as u32, window, |_| (0, 0)).await?;
    let cpu = mixd.cpu_seconds() - cpu;
    println!(
        "fanout members={members} messages={messages} window={window}: {:.0} messages/s, {:.0} deliveries/s, \
         post-to-last-delivery p50 {:.2} ms p99 {:.2} ms, mixd CPU {:.2} cores ({:.0} deliveries per CPU-second), \
         peak RSS {:.1} MB",
        messages as f64 / wall,
        (messages * members) as f64 / wall,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        cpu / wall,
        (messages * members) as f64 / cpu,
        mixd.memory_mb("VmHWM"),
    );
    if threads {
        println!("{}", per_thread.line());
    }
    mixd.stop();
    Ok(())
}

async fn small_channels(
    binary: &Path,
    channels: usize,
    messages: usize,
    window: usize,
    threads: bool,
) -> anyhow::Result<()> {
    const MEMBERS: usize = 10;
    let mut mixd = Mixd::start(binary, |_| Ok(())).await?;
    populate(&mut mixd.peer, channels, MEMBERS).await?;
    let per_thread = ThreadsSince::start(mixd.pid());
    let cpu = mixd.cpu_seconds();
    let route = |seq: usize| {
        let channel = seq % channels;
        (channel * MEMBERS + seq / channels % MEMBERS, channel)
    };
    let (wall, latencies) =
        post_and_track(&mut mixd.peer, messages, MEMBERS as u32, window, route).await?;
    let cpu = mixd.cpu_seconds() - cpu;
    println!(
        "small-channels channels={channels}x{MEMBERS} messages={messages} window={window}: {:.0} stored messages/s, \
         {:.0} deliveries/s, p50 {:.2} ms p99 {:.2} ms, mixd CPU {:.2} cores ({:.2} µs per message), peak RSS {:.1} MB",
        messages as f64 / wall,
        (messages * MEMBERS) as f64 / wall,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        cpu / wall,
        cpu * 1e6 / messages as f64,
        mixd.memory_mb("VmHWM"),
    );
    if threads {
        println!("{}", per_thread.line());
    }
    mixd.stop();
    Ok(())
}

/// The smallest archive whose every kind of page is full somewhere: 50 of the rare sender's
/// messages before the anchors, 2,000 after them for the time window.
const HISTORY_MIN_ARCHIVE: usize = 50 * seed::RARE as usize + 2_100 + 1_000;

async fn history(binary: &Path, archive: usize, queries: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        archive >= HISTORY_MIN_ARCHIVE,
        "history needs an archive of at least {HISTORY_MIN_ARCHIVE} messages"
    );
    let seeding = Instant::now();
    let mut mixd = Mixd::start(binary, |db| seed::archive(db, archive)).await?;
    let seeded = seeding.elapsed().as_secs_f64();
    // The service's id key, which mixd made when it opened the database; the store read
    // beside the running mixd as `mixd admin` reads it (on the blocking pool, where mixd
    // reads its store: the PostgreSQL client blocks).
    let database = mixd.database.clone();
    let (ids, reader) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((
            Ids::new(&inspector(&database)?.id_key()?),
            read_only(&database)?,
        ))
    })
    .await??;
    let pid = mixd.pid();
    let peer = &mut mixd.peer;
    let mut random = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    // Anchors far enough from both ends that every kind's page is full: 50 of the rare
    // sender's messages before it, 2,000 after it for the time window.
    let (low, high) = (50 * seed::RARE + 1, archive as i64 - 2100);
    let mut lines = Vec::new();
    // `MIXD_BENCH_TRACE=<file>`: every query's kind, anchor, start (ms from the first) and
    // round trip, with the store alone's time for the same read, and what mixd's threads
    // did meanwhile (its readers' and its other threads' time on a core, and all of them
    // runnable without one), and how long this program's threads waited for a core: to tell
    // where the slow ones lie (in time, in the archive, in a kind) and what made them slow
    // (the store's work, mixd's other work, the machine).
    let mut trace = std::env::var_os("MIXD_BENCH_TRACE").map(|_| {
        String::from(
            "kind\tquery\tanchor\tstart_ms\tround_trip_ms\tstore_ms\treaders_ms\tothers_ms\twaiting_ms\tbench_waiting_ms\n",
        )
    });
    let began = Instant::now();
    // Every query ends with one iq result, which is what the clock waits for.
    for kind in HISTORY_KINDS {
        let mut draw = || -> Vec<i64> {
            (0..queries)
                .map(|_| low.min(high) + (next() % (high - low).max(1) as u64) as i64)
                .collect()
        };
        let (first_anchors, anchors) = (draw(), draw());
        let pages = |anchors: &[i64]| -> Vec<String> {
            anchors
                .iter()
                .enumerate()
                .map(|(i, &a)| (kind.stanza)(i, &ids, a))
                .collect()
        };
        // A first pass at other anchors, timed apart, then the measured one. The seeded rows
        // are in the OS's cache but not yet in the store's own (PostgreSQL's shared buffers,
        // SQLite's page cache): the first pass is a server's first reads of them since it
        // started, the measured pass a server that has read them before, as a running one
        // has (the rare sender's 10,000 rows are one a heap page: the first 300 `with` pages
        // on PostgreSQL read most of theirs from the OS). An error reply fails the round
        // trips (`Peer::wait_for`).
        let mut first: Vec<f64> = round_trips_in_order(peer, pages(&first_anchors), None)
            .await?
            .iter()
            .map(|trip| trip.latency)
            .collect();
        first.sort_by(|a, b| a.total_cmp(b));
        let rows = peer.counters.rows.load(Ordering::Relaxed);
        let (faults, cpu) = (Faults::of(pid), cpu_seconds_of(pid));
        let trips =
            round_trips_in_order(peer, pages(&anchors), trace.as_ref().map(|_| pid)).await?;
        let (faults, cpu) = (Faults::of(pid).since(faults), cpu_seconds_of(pid) - cpu);
        let mut latencies: Vec<f64> = trips.iter().map(|trip| trip.latency).collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        let rows = peer.counters.rows.load(Ordering::Relaxed) - rows;
        if let Some(per_page) = kind.rows {
            anyhow::ensure!(
                rows == per_page * queries as u64,
                "{}: {rows} rows in {queries} pages of {per_page}",
                kind.label
            );
        }
        // The same reads straight from the store, without the link and the rendering (off the
        // runtime's workers: the PostgreSQL client blocks).
        let mut direct = tokio::task::block_in_place(|| -> anyhow::Result<Vec<f64>> {
            let mut direct = Vec::with_capacity(queries);
            for &anchor in &anchors {
                let start = Instant::now();
                let read = (kind.read)(&*reader, anchor)?;
                direct.push(start.elapsed().as_secs_f64() * 1e3);
                anyhow::ensure!(
                    read > 0 || archive < 100_000,
                    "{}: an empty page",
                    kind.label
                );
            }
            Ok(direct)
        })?;
        if let Some(trace) = &mut trace {
            for (i, (trip, store)) in trips.iter().zip(&direct).enumerate() {
                let sched = trip.sched.unwrap_or_default();
                let ms = |ns: u64| ns as f64 / 1e6;
                trace.push_str(&format!(
                    "{}\t{i}\t{}\t{:.3}\t{:.3}\t{store:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\n",
                    kind.label,
                    anchors[i],
                    trip.start.duration_since(began).as_secs_f64() * 1e3,
                    trip.latency,
                    ms(sched.readers),
                    ms(sched.others),
                    ms(sched.waiting),
                    ms(sched.bench_waiting),
                ));
            }
        }
        direct.sort_by(|a, b| a.total_cmp(b));
        lines.push(format!(
            "  {:<14} round trip p50 {:.3} ms p99 {:.3} ms (first pass {:.3} / {:.3}); store alone p50 {:.3} ms p99 {:.3} ms; \
             mixd CPU {:.0} µs a page, page faults {} minor, {} major",
            kind.label,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&first, 0.5),
            percentile(&first, 0.99),
            percentile(&direct, 0.5),
            percentile(&direct, 0.99),
            cpu * 1e6 / queries as f64,
            faults.minor,
            faults.major,
        ));
    }
    println!(
        "history archive={archive}, {queries} queries of each kind (seeding took {seeded:.1} s, mixd CPU {:.2} s, \
         database {:.0} MB, mixd RSS {:.1} MB):\n{}",
        mixd.cpu_seconds(),
        seed::size(&mixd.database)? as f64 / 1e6,
        mixd.memory_mb("VmRSS"),
        lines.join("\n")
    );
    if let (Some(trace), Some(path)) = (trace, std::env::var_os("MIXD_BENCH_TRACE")) {
        std::fs::write(path, trace)?;
    }
    mixd.stop();
    Ok(())
}

/// `members` joins to one channel, at most [`REQUEST_WINDOW`] unanswered: the rate. Then as
/// many to a second channel, its first and last thousand (at most half each) one at a time: whether the last
/// join of a large channel costs what its first did.
async fn joins(binary: &Path, members: usize, threads: bool) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |_| Ok(())).await?;
    request_all(&mut mixd.peer, (0..2).map(create_stanza), 2).await?;
    let per_thread = ThreadsSince::start(mixd.pid());
    let cpu = mixd.cpu_seconds();
    let wall = timed_requests(
        &mut mixd.peer,
        (0..members).map(|m| join_stanza(m, 0)),
        members,
    )
    .await?;
    let cpu = mixd.cpu_seconds() - cpu;
    let per_thread = threads.then(|| per_thread.line());
    let ends = (members / 2).min(1_000);
    let middle = members.saturating_sub(2 * ends);
    let first = round_trips(
        &mut mixd.peer,
        (0..ends).map(|m| join_stanza(m, 1)).collect(),
    )
    .await?;
    let rest = (ends..ends + middle).map(|m| join_stanza(m, 1));
    request_all(&mut mixd.peer, rest, middle as u64).await?;
    let last = (ends + middle..members)
        .map(|m| join_stanza(m, 1))
        .collect();
    let last = round_trips(&mut mixd.peer, last).await?;
    println!(
        "joins members={members} to one channel: {wall:.2} s, {:.0} joins/s, mixd CPU {cpu:.2} s ({:.0} joins per CPU-second), peak RSS {:.1} MB; \
         one at a time, first {ends} p50 {:.3} ms p99 {:.3} ms, last {} p50 {:.3} ms p99 {:.3} ms",
        members as f64 / wall,
        members as f64 / cpu,
        mixd.memory_mb("VmHWM"),
        percentile(&first, 0.5),
        percentile(&first, 0.99),
        last.len(),
        percentile(&last, 0.5),
        percentile(&last, 0.99),
    );
    if let Some(line) = per_thread {
        println!("{line}");
    }
    mixd.stop();
    Ok(())
}

async fn create(binary: &Path, channels: usize) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |_| Ok(())).await?;
    let wall = timed_requests(&mut mixd.peer, (0..channels).map(create_stanza), channels).await?;
    println!(
        "create channels={channels}: {wall:.2} s, {:.0} channels/s, peak RSS {:.1} MB",
        channels as f64 / wall,
        mixd.memory_mb("VmHWM")
    );
    mixd.stop();
    Ok(())
}

async fn startup(binary: &Path, channels: usize, memberships: usize) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |db| seed::channels(db, channels, memberships)).await?;
    let connected = mixd.connected_after.as_secs_f64();
    // On a loaded machine the wall time is the scheduler's; the CPU time is mixd's own.
    let cpu = mixd.cpu_seconds();
    request_all(&mut mixd.peer, std::iter::once(ping_stanza(0)), 1).await?;
    println!(
        "startup channels={channels} memberships={memberships}: connected {connected:.2} s after start ({cpu:.2} s of mixd CPU), RSS {:.1} MB, peak {:.1} MB",
        mixd.memory_mb("VmRSS"),
        mixd.memory_mb("VmHWM")
    );
    mixd.stop();
    Ok(())
}

/// "My groups" at `channels` channels: for a user in none of them, then for members (each in
/// about [`seed::CHANNELS_PER_USER`]) in MIX (`urn:mixd:admin:0`) and in FlyChat
/// (`get_user_groups`); one query in flight at a time. None may look at every channel.
async fn my_groups(
    binary: &Path,
    channels: usize,
    memberships: usize,
    queries: usize,
) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |db| seed::channels(db, channels, memberships)).await?;
    let users = (memberships / seed::CHANNELS_PER_USER).max(1);
    // Members spread over the users (a prime stride), so that the answers are not cached.
    let member = |i: usize| format!("u{}", (i * 7_919) % users);
    type Query<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let askers: [(&str, Query); 3] = [
        (
            "stranger, MIX",
            Box::new(|i| {
                format!("<iq type='get' id='g{i}' from='stranger@bench/r' to='mix.bench'><groups xmlns='urn:mixd:admin:0'/></iq>")
            }),
        ),
        (
            "member, MIX",
            Box::new(|i| {
                format!("<iq type='get' id='g{i}' from='{}@bench/r' to='mix.bench'><groups xmlns='urn:mixd:admin:0'/></iq>", member(i))
            }),
        ),
        (
            "member, FlyChat",
            Box::new(|i| {
                format!("<iq type='get' id='g{i}' from='{}@bench/r' to='mix.bench'><query xmlns='jabber:iq:mixgroupchat' status='get_user_groups'/></iq>", member(i))
            }),
        ),
    ];
    for (who, stanza) in askers {
        let latencies = round_trips(&mut mixd.peer, (0..queries).map(&stanza).collect()).await?;
        println!(
            "my-groups channels={channels} memberships={memberships} queries={queries} ({who}): round trip p50 {:.3} ms p99 {:.3} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    mixd.stop();
    Ok(())
}

/// What the fairness scenario runs (see `Scenario::Fairness`).
struct Fairness {
    quiet: usize,
    quiet_members: usize,
    flood_rate: usize,
    resources: usize,
    rounds: usize,
    /// The longest a phase floods: a quiet side starved for longer is cut there.
    phase_limit: Duration,
    /// The phases of each round, in order.
    floods: Vec<Flood>,
}

/// What the flooding user sends into its own channel (`c1`) during a phase.
#[derive(Clone, Copy)]
enum Flood {
    Nothing,
    /// Nothing, while the quiet side reads as in the history phase: that phase's baseline.
    NothingWhileReading,
    /// Posts from one client.
    Posts,
    /// Presence from `resources` clients, then posts from each in turn.
    Clients(usize),
    /// Chat states (composing) from one client: each is relayed to every participant.
    ChatStates,
    /// FlyChat history queries (pages of 50) from one client; the quiet side then reads
    /// too (MAM pages of `c0`, one at a time) instead of posting.
    History,
}

impl Flood {
    fn of(phase: FairnessPhase, resources: usize) -> Flood {
        match phase {
            FairnessPhase::Alone => Flood::Nothing,
            FairnessPhase::Posts => Flood::Posts,
            FairnessPhase::Clients => Flood::Clients(resources),
            FairnessPhase::ChatStates => Flood::ChatStates,
            FairnessPhase::ReadsAlone => Flood::NothingWhileReading,
            FairnessPhase::History => Flood::History,
        }
    }

    /// Every phase, in the order a round runs them by default.
    fn every(resources: usize) -> Vec<Flood> {
        [
            FairnessPhase::Alone,
            FairnessPhase::Posts,
            FairnessPhase::Clients,
            FairnessPhase::ChatStates,
            FairnessPhase::ReadsAlone,
            FairnessPhase::History,
        ]
        .into_iter()
        .map(|phase| Flood::of(phase, resources))
        .collect()
    }

    /// Whether the quiet side reads (MAM pages of `c0`) in this phase instead of posting.
    fn quiet_reads(self) -> bool {
        match self {
            Flood::NothingWhileReading | Flood::History => true,
            Flood::Nothing | Flood::Posts | Flood::Clients(_) | Flood::ChatStates => false,
        }
    }

    /// Whether the flooder sends anything.
    fn floods(self) -> bool {
        match self {
            Flood::Nothing | Flood::NothingWhileReading => false,
            Flood::Posts | Flood::Clients(_) | Flood::ChatStates | Flood::History => true,
        }
    }

    fn label(self) -> String {
        match self {
            Flood::Nothing => "alone".into(),
            Flood::NothingWhileReading => "alone (quiet side reads)".into(),
            Flood::Posts => "posts flood, one client".into(),
            Flood::Clients(n) => format!("posts flood, {n} clients"),
            Flood::ChatStates => "chat-state flood, one client".into(),
            Flood::History => "history flood, one client (quiet side reads)".into(),
        }
    }

    fn stanza(self, flooder: usize, i: usize) -> String {
        match self {
            Flood::Nothing | Flood::NothingWhileReading => String::new(),
            Flood::Posts => format!(
                "<message type='groupchat' id='f{i}' from='u{flooder}@bench/r' to='c1@mix.bench'><body>f{i}</body></message>"
            ),
            Flood::Clients(n) if i < n => {
                format!("<presence from='u{flooder}@bench/r{i}' to='c1@mix.bench'/>")
            }
            Flood::Clients(n) => format!(
                "<message type='groupchat' id='f{i}' from='u{flooder}@bench/r{}' to='c1@mix.bench'><body>f{i}</body></message>",
                i % n
            ),
            Flood::ChatStates => format!(
                "<message type='groupchat' id='f{i}' from='u{flooder}@bench/r' to='c1@mix.bench'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
            ),
            Flood::History => format!(
                "<iq type='get' id='h{i}' from='u{flooder}@bench/r' to='mix.bench'><query xmlns='jabber:iq:user_activities' \
                 to_user='c1@mix.bench' status='group_chat' limit='50'/></iq>"
            ),
        }
    }
}

/// What one phase measured.
struct Phase {
    /// Of the quiet side's posts (or reads) that completed, sorted.
    latencies: Vec<f64>,
    flood_sent: usize,
    seconds: f64,
    refused: u64,
    /// Whether the phase was cut at its limit with quiet posts (or reads) still waiting.
    cut: bool,
}

/// Fairness: channel `c0` (quiet, `quiet_members` members taking turns) and `c1` (as many
/// members, the first of whom floods it). Each phase posts `quiet` messages into `c0`, one at
/// a time with at least 2 ms between them, and times each from the write to the link until
/// its last copy came back; meanwhile the flooder sends at `flood_rate` a second into `c1`.
/// Phases alternate (by default alone, posts, posts from many clients, chat states, reads
/// alone, history) so that the machine's load falls on all of them alike. In the history phase
/// the flooder reads its channel's history and the quiet side reads too: a MAM page of `c0` at
/// a time, timed from the write to its `<fin/>`; the reads-alone phase times the same reads
/// with no flood, and each flood's p99 is given over its own kind's quiet p99. Both channels
/// get [`SEEDED_POSTS`] first. A phase that runs past `phase_limit` is cut there and says so.
/// mixd runs with its default quotas.
async fn fairness(binary: &Path, shape: Fairness) -> anyhow::Result<()> {
    let mut mixd = Mixd::start_with_quotas(binary).await?;
    let pid = mixd.child.id();
    let peer = &mut mixd.peer;
    populate(peer, 2, shape.quiet_members).await?;
    seed_archives(peer, shape.quiet_members).await?;
    let flooder = shape.quiet_members;
    let floods = &shape.floods;
    let mut rows: Vec<(String, Vec<(f64, f64)>)> =
        floods.iter().map(|f| (f.label(), Vec::new())).collect();
    for round in 0..shape.rounds {
        for (index, flood) in floods.iter().enumerate() {
            let cpu_before = cpu_seconds_of(pid);
            let phase = quiet_phase(peer, &shape, flooder, *flood).await?;
            // mixd's CPU over the phase, its drain included: what each flood stanza cost.
            let cpu = cpu_seconds_of(pid) - cpu_before;
            let (p50, p99) = (
                percentile(&phase.latencies, 0.5),
                percentile(&phase.latencies, 0.99),
            );
            if phase.cut {
                println!(
                    "fairness round {} {}: PHASE CUT after {:.0} s (--phase-seconds): only {} of {} \
                     quiet {} completed; the figures below are of those alone",
                    round + 1,
                    flood.label(),
                    phase.seconds,
                    phase.latencies.len(),
                    if flood.quiet_reads() { shape.quiet.min(QUIET_READS) } else { shape.quiet },
                    if flood.quiet_reads() { "reads" } else { "posts" },
                );
            }
            println!(
                "fairness round {} {}: quiet channel p50 {p50:.2} ms p99 {p99:.2} ms max {:.2} ms; \
                 flood {} stanzas in {:.2} s ({:.0}/s), {} refused; mixd CPU {cpu:.2} s{}",
                round + 1,
                flood.label(),
                phase.latencies.last().copied().unwrap_or(0.0),
                phase.flood_sent,
                phase.seconds,
                phase.flood_sent as f64 / phase.seconds,
                phase.refused,
                match phase.flood_sent {
                    0 => String::new(),
                    sent => format!(" ({:.2} µs per flood stanza)", cpu * 1e6 / sent as f64),
                },
            );
            rows[index].1.push((p50, p99));
        }
    }
    // Each flood's worst p99 over the worst of the quiet phase of its kind (posts or reads).
    let worst = |runs: &[(f64, f64)]| runs.iter().map(|r| r.1).fold(0.0, f64::max);
    let baseline = |reads: bool| {
        floods
            .iter()
            .zip(&rows)
            .filter(|(flood, _)| !flood.floods() && flood.quiet_reads() == reads)
            .map(|(_, (_, runs))| worst(runs))
            .fold(0.0, f64::max)
    };
    let summary: Vec<String> = floods
        .iter()
        .zip(&rows)
        .map(|(flood, (label, runs))| {
            let (p99, alone) = (worst(runs), baseline(flood.quiet_reads()));
            if alone > 0.0 {
                format!("{label} p99 {p99:.2} ms ({:.1}x)", p99 / alone)
            } else {
                format!("{label} p99 {p99:.2} ms")
            }
        })
        .collect();
    println!(
        "fairness quiet={} members={} flood-rate={}/s resources={} rounds={}: worst p99s {}, peak RSS {:.1} MB",
        shape.quiet,
        shape.quiet_members,
        shape.flood_rate,
        shape.resources,
        shape.rounds,
        summary.join(", "),
        mixd.memory_mb("VmHWM")
    );
    mixd.stop();
    Ok(())
}

/// The quiet reads of a read phase (as many as the history phase has always timed).
const QUIET_READS: usize = 250;

/// Posts archived in each channel of [`fairness`] before its phases, so that both read phases
/// read full pages whichever phases run before them.
const SEEDED_POSTS: usize = 500;

/// [`SEEDED_POSTS`] into `c0` and `c1`, from their members in turn (not the flooder, whose
/// message quota the posts phase measures); returns once every copy is delivered.
async fn seed_archives(peer: &mut Peer, members: usize) -> anyhow::Result<()> {
    let before = peer.counters.deliveries.load(Ordering::Relaxed);
    let posters = members.saturating_sub(1).max(1);
    for seq in 0..SEEDED_POSTS {
        peer.send(&message_stanza(seq % members, 0, seq)).await?;
        let poster = members + 1 + seq % posters;
        peer.send(&message_stanza(poster.min(2 * members - 1), 1, seq))
            .await?;
    }
    peer.flush().await?;
    let copies = (2 * SEEDED_POSTS * members) as u64;
    peer.wait_for(|c| c.deliveries.load(Ordering::Relaxed), before + copies)
        .await
}

/// One phase of [`fairness`]; returns when every quiet message is delivered (or quiet read
/// answered), or at the phase's limit, and mixd has answered everything the flooder sent
/// (its ping, behind its flood, is answered).
async fn quiet_phase(
    peer: &mut Peer,
    shape: &Fairness,
    flooder: usize,
    flood: Flood,
) -> anyhow::Result<Phase> {
    const GAP: Duration = Duration::from_millis(2);
    let tracker = Arc::new(Tracker::new(shape.quiet, shape.quiet_members as u32));
    // The quiet side reads in the read phases (each read done at its `<fin/>`: the
    // flooder's FlyChat pages have none), else posts (done when its last copy is back). Its
    // members take turns reading, as they take turns posting, so that no quiet reader's own
    // history quota (300 at once, then 10 a second) is what a phase times.
    let reads = flood.quiet_reads();
    let quiet = if reads {
        shape.quiet.min(QUIET_READS)
    } else {
        shape.quiet
    };
    if !reads {
        peer.track(Some(tracker.clone()));
    }
    let counters = peer.counters.clone();
    let errors = counters.errors.load(Ordering::Relaxed);
    let fins = counters.fins.load(Ordering::Relaxed);
    let mut sent_at = vec![0u64; shape.quiet];
    let mut next = 0usize;
    let mut last_sent: Option<Instant> = None;
    let mut flood_sent = 0usize;
    let mut progress = (0u64, Instant::now());
    let mut cut = false;
    let start = Instant::now();
    loop {
        let changed = counters.changed.notified();
        let completed = if reads {
            let done = counters.fins.load(Ordering::Relaxed) - fins;
            if done as usize > next.saturating_sub(1) && next > 0 {
                let done_at = &tracker.done_at[next - 1];
                if done_at.load(Ordering::Relaxed) == 0 {
                    done_at.store(tracker.now(), Ordering::Relaxed);
                }
            }
            done
        } else {
            tracker.completed.load(Ordering::Relaxed)
        };
        if completed as usize == quiet {
            break;
        }
        if start.elapsed() > shape.phase_limit {
            cut = true;
            break;
        }
        if completed != progress.0 {
            progress = (completed, Instant::now());
        } else if progress.1.elapsed() > Duration::from_secs(60) {
            let error = peer.first_error.lock().unwrap().clone();
            println!("quiet channel stalled at {completed} for 60 s; first error: {error:?}");
            cut = true;
            break;
        }
        if next == completed as usize
            && next < quiet
            && last_sent.is_none_or(|t| t.elapsed() >= GAP)
        {
            sent_at[next] = tracker.now();
            let quiet = if reads {
                format!(
                    "<iq type='set' id='r{next}' from='u{}@bench/r' to='c0@mix.bench'><query xmlns='urn:xmpp:mam:2'>\
                     <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set></query></iq>",
                    next % shape.quiet_members
                )
            } else {
                message_stanza(next % shape.quiet_members, 0, next)
            };
            peer.send(&quiet).await?;
            next += 1;
            last_sent = Some(Instant::now());
        }
        if flood.floods() {
            let due = (start.elapsed().as_secs_f64() * shape.flood_rate as f64) as usize;
            while flood_sent < due {
                peer.send(&flood.stanza(flooder, flood_sent)).await?;
                flood_sent += 1;
            }
        }
        peer.flush().await?;
        let _ = tokio::time::timeout(Duration::from_millis(1), changed).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    peer.track(None);
    // The flooder's own ping comes after its flood: once answered, mixd is quiet again. While
    // too many of its stanzas wait, the ping itself is refused: then it is sent again. After
    // reads, the flooder reads once more instead (every read answers with a result; its own
    // reads are answered in order): its `<fin/>` comes after its flood's pages.
    let (drain, answered): (String, fn(&Counters) -> u64) = if reads {
        (
            format!(
                "<iq type='set' id='drain' from='u{flooder}@bench/r' to='c1@mix.bench'><query xmlns='urn:xmpp:mam:2'>\
                 <set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></query></iq>"
            ),
            |counters| counters.fins.load(Ordering::Relaxed),
        )
    } else {
        (
            format!(
                "<iq type='get' id='drain' from='u{flooder}@bench/r' to='c1@mix.bench'><ping xmlns='urn:xmpp:ping'/></iq>"
            ),
            results,
        )
    };
    let before = answered(&peer.counters);
    // A cut phase waits for the flood's backlog no longer than the phase itself ran.
    let patience = if cut {
        shape.phase_limit
    } else {
        Duration::from_secs(600)
    };
    let deadline = Instant::now() + patience;
    'drained: loop {
        peer.send(&drain).await?;
        peer.flush().await?;
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_secs(1) {
            if answered(&peer.counters) > before {
                break 'drained;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if Instant::now() >= deadline {
            anyhow::ensure!(cut, "mixd never worked through the flood");
            println!(
                "mixd had not worked through the flood {:.0} s after the phase was cut; \
                 what follows runs beside its backlog",
                patience.as_secs_f64()
            );
            break;
        }
    }
    let refused = peer.counters.errors.load(Ordering::Relaxed) - errors;
    let mut latencies: Vec<f64> = (0..quiet)
        .filter_map(|s| match tracker.done_at[s].load(Ordering::Relaxed) {
            0 => None,
            done => Some(done.saturating_sub(sent_at[s]) as f64 / 1e6),
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Phase {
        latencies,
        flood_sent,
        seconds,
        refused,
        cut,
    })
}

async fn idle(binary: &Path) -> anyhow::Result<()> {
    let mut mixd = Mixd::start(binary, |_| Ok(())).await?;
    request_all(&mut mixd.peer, std::iter::once(create_stanza(0)), 1).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle: RSS {:.1} MB, connected {:.2} s after start",
        mixd.memory_mb("VmRSS"),
        mixd.connected_after.as_secs_f64()
    );
    mixd.stop();
    Ok(())
}

/// Where the end-to-end clients go, and how they join.
struct Target<'a> {
    server: &'a str,
    domain: &'a str,
    mix: &'a str,
    pam: bool,
}

/// What the end-to-end mode reports besides rates: the CPU of the watched processes (the
/// server's, mixd's) over the posting phase, and in which form.
struct Report {
    watched: Vec<(String, u32)>,
    json: bool,
}

/// Through the server: `members` client connections join one channel (MIX join and
/// presence), `posters` of them post `messages` messages; every delivery is counted at the
/// clients, per message and per member, and every member must have received every message.
async fn e2e(
    target: Target<'_>,
    members: usize,
    posters: usize,
    messages: usize,
    window: usize,
    report: Report,
) -> anyhow::Result<()> {
    let Target {
        server,
        domain,
        mix,
        pam,
    } = target;
    anyhow::ensure!(members > 0, "no members");
    // Posters are members: at most all of them, at least one.
    let posters = posters.clamp(1, members);
    let shared = Shared::default();
    let mut users = Vec::with_capacity(members);
    for i in 0..members {
        users.push(login(server, domain, &format!("u{i}"), &shared).await?);
    }
    let wait = |target| wait_for(&shared.counters, &shared.first_error, results, target);
    let channel = format!("e2e{}", std::process::id());
    let jid = format!("{channel}@{mix}");
    let before = results(&shared.counters);
    users[0]
        .send(&format!("<iq type='set' id='c' to='{mix}'><create xmlns='urn:xmpp:mix:core:1' channel='{channel}'/></iq>"))
        .await?;
    wait(before + 1).await?;
    let before = results(&shared.counters);
    for user in &mut users {
        let name = user.name.clone();
        let join = format!(
            "<join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:xmpp:mix:nodes:messages'/><nick>{name}</nick></join>"
        );
        let stanza = if pam {
            format!(
                "<iq type='set' id='j' to='{name}@{domain}'><client-join xmlns='urn:xmpp:mix:pam:2' channel='{jid}'>{join}</client-join></iq>"
            )
        } else {
            format!("<iq type='set' id='j' to='{jid}'>{join}</iq><presence to='{jid}'/>")
        };
        user.send(&stanza).await?;
    }
    wait(before + members as u64).await?;
    if !pam {
        // A ping after the presences proves the channel has seen them all.
        let before = results(&shared.counters);
        users[0]
            .send(&format!(
                "<iq type='get' id='p' to='{jid}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await?;
        wait(before + 1).await?;
    }

    let tracker = Arc::new(Tracker::new(messages, members as u32));
    *shared.tracker.lock().unwrap() = Some(tracker.clone());
    let mut sent_at = vec![0u64; messages];
    let cpu_at_start: Vec<f64> = report
        .watched
        .iter()
        .map(|(_, pid)| crate::cpu_seconds_of(*pid))
        .collect();
    let start = Instant::now();
    for (seq, sent) in sent_at.iter_mut().enumerate() {
        if seq - tracker.completed.load(Ordering::Relaxed) as usize >= window {
            let target = (seq + 1 - window) as u64;
            wait_for(
                &shared.counters,
                &shared.first_error,
                |_| tracker.completed.load(Ordering::Relaxed),
                target,
            )
            .await?;
        }
        *sent = tracker.now();
        users[seq % posters]
            .send(&format!(
                "<message type='groupchat' id='s{seq}' to='{jid}'><body>m{seq}</body></message>"
            ))
            .await?;
    }
    wait_for(
        &shared.counters,
        &shared.first_error,
        |_| tracker.completed.load(Ordering::Relaxed),
        messages as u64,
    )
    .await?;
    let wall = start.elapsed().as_secs_f64();
    let cpu: Vec<(&str, f64)> = report
        .watched
        .iter()
        .zip(cpu_at_start)
        .map(|((name, pid), at_start)| (name.as_str(), crate::cpu_seconds_of(*pid) - at_start))
        .collect();
    let received: Vec<u64> = users
        .iter()
        .map(|user| user.received.load(Ordering::Relaxed))
        .collect();
    let short = received.iter().filter(|&&n| n != messages as u64).count();
    anyhow::ensure!(
        short == 0,
        "{short} of {members} members did not receive exactly {messages} messages \
         (fewest {:?}, most {:?})",
        received.iter().min(),
        received.iter().max()
    );
    let copies_off = tracker
        .copies
        .iter()
        .filter(|copies| copies.load(Ordering::Relaxed) != members as u64)
        .count();
    anyhow::ensure!(
        copies_off == 0,
        "{copies_off} messages did not arrive exactly once at each of the {members} members"
    );
    let mut latencies: Vec<f64> = (0..messages)
        .map(|s| {
            tracker.done_at[s]
                .load(Ordering::Relaxed)
                .saturating_sub(sent_at[s]) as f64
                / 1e6
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let deliveries: u64 = received.iter().sum();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    if report.json {
        let cpu: serde_json::Map<String, serde_json::Value> = cpu
            .iter()
            .map(|&(name, seconds)| (name.to_owned(), seconds.into()))
            .collect();
        let result = serde_json::json!({
            "server": server, "mix": mix, "pam": pam, "members": members, "posters": posters,
            "messages": messages, "window": window, "deliveries": deliveries, "wall_s": wall,
            "cpu_s": cpu, "p50_ms": p50, "p99_ms": p99,
        });
        println!("{result}");
        return Ok(());
    }
    let cpu: String = cpu
        .iter()
        .map(|(name, seconds)| {
            format!(
                ", {name} {:.1} CPU ms per 1,000 deliveries",
                seconds * 1e6 / deliveries as f64
            )
        })
        .collect();
    println!(
        "e2e via {server} to {mix}{}: members={members} posters={posters} messages={messages} window={window}: {:.0} messages/s, \
         {:.0} deliveries/s, post-to-last-delivery p50 {p50:.2} ms p99 {p99:.2} ms{cpu}",
        if pam { " (client-join)" } else { "" },
        messages as f64 / wall,
        deliveries as f64 / wall,
    );
    Ok(())
}
