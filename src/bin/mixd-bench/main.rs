//! mixd-bench: measures mixd through its real component link, with this program playing the
//! XMPP server (so the server is not part of the figures). Each scenario starts a fresh mixd
//! on a fresh database, seeds what it needs, drives the load and prints one result line.
//! docs/benchmarks.md lists the figures and the commands that produced them.

mod client;
mod parse;
mod peer;
mod scenarios;
mod seed;
mod seed_postgres;
mod settle;
mod store;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use mixd::store::Database;
use tokio::net::TcpListener;

use peer::Peer;

#[derive(Parser)]
#[command(about = "Benchmarks mixd through its component link")]
struct Cli {
    /// The mixd binary [default: the one beside this program].
    #[arg(long, global = true)]
    mixd: Option<PathBuf>,
    /// Leave mixd idle this many seconds after the load, reading its RSS each second,
    /// before stopping it (what a burst's memory comes down to).
    #[arg(long, global = true, default_value_t = 0)]
    settle_seconds: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

/// A phase of the fairness scenario: what the flooding user sends while the quiet side posts
/// (or, in the two read phases, reads).
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FairnessPhase {
    /// Nobody floods; the quiet side posts.
    Alone,
    /// Posts from one client.
    Posts,
    /// Posts from `--resources` clients.
    Clients,
    /// Chat states from one client.
    ChatStates,
    /// Nobody floods; the quiet side reads (the history flood's baseline).
    ReadsAlone,
    /// FlyChat history queries from one client; the quiet side reads.
    History,
}

#[derive(Subcommand)]
pub enum Scenario {
    /// Fan-out: one channel of N members, M messages from one member, W in flight.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Also print each thread's CPU over the posting phase, mixd's and this program's.
        #[arg(long)]
        threads: bool,
    },
    /// Steady posting into many channels of 10 members: stored messages per second.
    SmallChannels {
        #[arg(long, default_value_t = 1000)]
        channels: usize,
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        #[arg(long, default_value_t = 512)]
        window: usize,
        /// Also print each thread's CPU over the posting phase, mixd's and this program's.
        #[arg(long)]
        threads: bool,
    },
    /// History pages of 50 in a channel whose archive holds N messages: each kind's N queries
    /// at random anchors, after a first pass of as many at others (its figures in brackets).
    History {
        #[arg(long, default_value_t = 1_000_000)]
        archive: usize,
        #[arg(long, default_value_t = 2000)]
        queries: usize,
    },
    /// N joins to one channel.
    Joins {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        /// Also print each thread's CPU over the timed joins, mixd's and this program's.
        #[arg(long)]
        threads: bool,
    },
    /// Creating N channels.
    Create {
        #[arg(long, default_value_t = 100_000)]
        channels: usize,
    },
    /// Start-up time and memory with N channels and M memberships in the database.
    Startup {
        #[arg(long, default_value_t = 100_000)]
        channels: usize,
        #[arg(long, default_value_t = 1_000_000)]
        memberships: usize,
    },
    /// End to end through a running XMPP server with mixd attached (`scripts/bench-e2e` starts
    /// both): N client connections in one channel, P of them posting.
    E2e {
        /// The server's client port.
        #[arg(long, default_value = "127.0.0.1:16222")]
        server: String,
        #[arg(long, default_value = "localhost")]
        domain: String,
        /// mixd's component domain.
        #[arg(long, default_value = "mix.localhost")]
        mix: String,
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        posters: usize,
        #[arg(long, default_value_t = 5000)]
        messages: usize,
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Join through the user's own server (XEP-0405 `client-join`), as ejabberd's own
        /// `mod_mix` wants, instead of joining the channel directly with presence.
        #[arg(long)]
        pam: bool,
        /// A process whose CPU time (user + system) over the posting phase is reported, as
        /// `NAME=PID` (e.g. `server=1234`, `mixd=1235`); repeat for each. The generator's own
        /// CPU is never counted.
        #[arg(long = "cpu", value_name = "NAME=PID", value_parser = parse_watched)]
        watched: Vec<(String, u32)>,
        /// Print the result as one JSON object (for `scripts/bench-compare`).
        #[arg(long)]
        json: bool,
    },
    /// "My groups" queries against N channels and M memberships (a user in none of them).
    MyGroups {
        #[arg(long, default_value_t = 100_000)]
        channels: usize,
        #[arg(long, default_value_t = 1_000_000)]
        memberships: usize,
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
    /// `mixd admin backup` of a database whose archive holds N messages while a member posts
    /// with W in flight: the copy's time, and the posts' latency before and during it.
    Backup {
        #[arg(long, default_value_t = 1_000_000)]
        archive: usize,
        #[arg(long, default_value_t = 16)]
        window: usize,
    },
    /// Fairness: a quiet channel's post-to-reflection latency alone, then while one user
    /// floods another channel (from one client, then from many), in alternation; mixd runs
    /// with its default quotas (every other scenario turns them off).
    Fairness {
        /// Messages posted into the quiet channel per phase, one at a time.
        #[arg(long, default_value_t = 2000)]
        quiet: usize,
        /// Members of the quiet channel, who take turns posting.
        #[arg(long, default_value_t = 50)]
        quiet_members: usize,
        /// Stanzas per second the flooding user sends (the issue measured 100,000 in 1.8 s).
        #[arg(long, default_value_t = 55_000)]
        flood_rate: usize,
        /// Clients of the flooding user in the many-clients phase.
        #[arg(long, default_value_t = 10_000)]
        resources: usize,
        /// Rounds of (alone, flood from one client, flood from many clients).
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// The longest one phase floods; a phase whose quiet side is starved for longer is
        /// cut there, with a line saying so.
        #[arg(long, default_value_t = 300)]
        phase_seconds: u64,
        /// The phases to run in each round, in this order (comma-separated), e.g.
        /// `reads-alone,history` for the history flood and its own quiet baseline alone.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "alone,posts,clients,chat-states,reads-alone,history"
        )]
        phases: Vec<FairnessPhase>,
    },
    /// Memory of an idle mixd with an empty database.
    Idle,
    /// The link's reading alone, in this process (no mixd): CPU per stanza read from the
    /// wire into a tree, for N fan-out posts.
    Parse {
        #[arg(long, default_value_t = 1_000_000)]
        stanzas: usize,
    },
    /// The store alone, in this process (no mixd): posts into C channels of 10 members,
    /// committed B to a batch straight to the writer; CPU per message and bytes written.
    Store {
        #[arg(long, default_value_t = 1000)]
        channels: usize,
        #[arg(long, default_value_t = 200_000)]
        messages: usize,
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// An index of the SQLite schema to drop before measuring (repeat for more): what
        /// keeping it costs a post.
        #[arg(long = "without-index", value_name = "INDEX")]
        without: Vec<String>,
    },
    /// A small run of every scenario (CI's smoke test).
    Smoke,
}

/// One mixd under test, attached to this program's listener.
pub struct Mixd {
    child: Child,
    pub peer: Peer,
    pub connected_after: Duration,
    pub database: Database,
    _dir: tempfile::TempDir,
}

impl Mixd {
    /// Starts mixd on the database `prepare` fills, with its quotas off: the scenarios
    /// measure throughput, one bench user doing all the work.
    pub async fn start(
        binary: &std::path::Path,
        prepare: impl FnOnce(&Database) -> anyhow::Result<()>,
    ) -> anyhow::Result<Mixd> {
        Self::launch(binary, prepare, false).await
    }

    /// Starts mixd with its default quotas.
    pub async fn start_with_quotas(binary: &std::path::Path) -> anyhow::Result<Mixd> {
        Self::launch(binary, |_| Ok(()), true).await
    }

    async fn launch(
        binary: &std::path::Path,
        prepare: impl FnOnce(&Database) -> anyhow::Result<()>,
        quotas: bool,
    ) -> anyhow::Result<Mixd> {
        let dir = tempfile::tempdir()?;
        // `MIXD_BENCH_DATABASE=postgres://…` (an empty database) runs mixd on PostgreSQL
        // instead of a new SQLite file.
        let database = match std::env::var("MIXD_BENCH_DATABASE") {
            Ok(url) => Database::Postgres(url),
            Err(_) => Database::Sqlite(dir.path().join("bench.db")),
        };
        prepare(&database)?;
        match &database {
            // The seed (10 M messages: 1.3 GB, written or copied just now) goes to the disk
            // before mixd starts: left in the OS's cache, the kernel writes it back 30 s later,
            // in the middle of the measured queries, whose tail then measures that write-back
            // and not mixd (docs/benchmarks.md, "Main before and after the session of 2026-12-02
            // midnight", "The seed synced before mixd starts").
            Database::Sqlite(path) if path.exists() => std::fs::File::open(path)?.sync_all()?,
            _ => {}
        }
        let setting = match &database {
            Database::Sqlite(path) => path.clone().into_os_string(),
            Database::Postgres(url) => url.into(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let started = Instant::now();
        let mut command = Command::new(binary);
        if !quotas {
            // Through the environment, which a mixd from before the quotas ignores, so that
            // older builds can be measured with this generator.
            for variable in [
                "MIXD_MESSAGE_BURST",
                "MIXD_SIGNALS_PER_MINUTE",
                "MIXD_CHANNELS_PER_HOUR",
                "MIXD_JOINS_PER_MINUTE",
                "MIXD_ADDS_PER_HOUR",
                "MIXD_HISTORY_BURST",
            ] {
                command.env(variable, "0");
            }
        }
        let child = command
            .current_dir(dir.path())
            .args([
                "run",
                "--jid",
                "mix.bench",
                "--secret",
                "bench",
                "--user-domain",
                "bench",
                // One bench user creates every channel.
                "--max-groups-per-creator",
                "0",
            ])
            .arg("--server")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database")
            .arg(&setting)
            .env("MIXD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let peer =
            tokio::time::timeout(Duration::from_secs(600), Peer::accept(&listener)).await??;
        Ok(Mixd {
            child,
            peer,
            connected_after: started.elapsed(),
            database,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds mixd has used so far (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.child.id())
    }

    /// A `/proc/<pid>/status` memory figure in MB (`VmRSS`, `VmHWM`).
    pub fn memory_mb(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub fn stop(mut self) {
        settle::report(&self);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A scenario that fails (an error or a panic) still takes its mixd down: left running, it
/// would try to reconnect to the gone generator every 30 s for ever.
impl Drop for Mixd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU seconds process `pid` has used so far (user + system, all its threads), 0 if it is gone.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let ticks = stat_of(pid);
    (ticks(11) + ticks(12)) / 100.0
}

/// The numeric fields of `/proc/<pid>/stat` after the command name (which is in
/// parentheses), by index from the state's (0) on; 0 for one that cannot be read.
fn stat_of(pid: u32) -> impl Fn(usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    move |i| fields.get(i).copied().unwrap_or(0.0)
}

/// A process's page faults so far: minor (a page mapped from the OS's cache) and major (read
/// from the disk).
#[derive(Clone, Copy)]
pub struct Faults {
    pub minor: u64,
    pub major: u64,
}

impl Faults {
    pub fn of(pid: u32) -> Faults {
        let field = stat_of(pid);
        Faults {
            minor: field(7) as u64,
            major: field(9) as u64,
        }
    }

    pub fn since(self, earlier: Faults) -> Faults {
        Faults {
            minor: self.minor - earlier.minor,
            major: self.major - earlier.major,
        }
    }
}

/// One thread's time so far, from `/proc/<pid>/task/<tid>/schedstat`: on a core, and
/// runnable but waiting for one (nanoseconds).
struct ThreadTime {
    tid: u32,
    name: String,
    running: u64,
    waiting: u64,
}

fn thread_times(pid: u32) -> Vec<ThreadTime> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads: Vec<ThreadTime> = tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid = task.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let mut fields = schedstat.split_whitespace().map(|f| f.parse::<u64>());
            Some(ThreadTime {
                tid,
                name: name.trim_end().to_owned(),
                running: fields.next()?.ok()?,
                waiting: fields.next()?.ok()?,
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// Where a process's threads' time went so far (nanoseconds): on a core in mixd's readers
/// of the archive, on a core in its other threads, and runnable but waiting for a core, with
/// what this program's threads waited. Read before and after one history page, it splits
/// that page's round trip into the store's work, the rest of mixd's work, and the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedTotals {
    pub readers: u64,
    pub others: u64,
    pub waiting: u64,
    pub bench_waiting: u64,
}

impl SchedTotals {
    pub fn of(mixd: u32) -> Self {
        let mut totals = SchedTotals::default();
        for thread in thread_times(mixd) {
            match thread.name.starts_with("mixd-reader") {
                true => totals.readers += thread.running,
                false => totals.others += thread.running,
            }
            totals.waiting += thread.waiting;
        }
        totals.bench_waiting = thread_times(std::process::id())
            .iter()
            .map(|t| t.waiting)
            .sum();
        totals
    }

    pub fn since(self, earlier: SchedTotals) -> SchedTotals {
        SchedTotals {
            readers: self.readers.saturating_sub(earlier.readers),
            others: self.others.saturating_sub(earlier.others),
            waiting: self.waiting.saturating_sub(earlier.waiting),
            bench_waiting: self.bench_waiting.saturating_sub(earlier.bench_waiting),
        }
    }
}

/// The threads of mixd and of this program, measured from `start` on: each one's share of a
/// core tells a thread at 100 % (the bottleneck) from a pipeline that waits on itself, and
/// its time runnable but off a core tells a machine that is full.
pub struct ThreadsSince {
    mixd: u32,
    started: Instant,
    at_start: Vec<ThreadTime>,
}

impl ThreadsSince {
    pub fn start(mixd: u32) -> Self {
        ThreadsSince {
            mixd,
            started: Instant::now(),
            at_start: [mixd, std::process::id()]
                .into_iter()
                .flat_map(thread_times)
                .collect(),
        }
    }

    /// One line: each thread's share of a core since the start and (in parentheses) of the
    /// time it waited for one, mixd's threads then this program's.
    pub fn line(&self) -> String {
        let wall = self.started.elapsed().as_nanos() as f64;
        let shares = |pid: u32| {
            thread_times(pid)
                .into_iter()
                .filter_map(|now| {
                    let (running, waiting) = self
                        .at_start
                        .iter()
                        .find(|t| t.tid == now.tid)
                        .map_or((0, 0), |t| (t.running, t.waiting));
                    let share = |to: u64, from: u64| to.saturating_sub(from) as f64 / wall * 100.0;
                    let ran = share(now.running, running);
                    (ran >= 0.5).then(|| {
                        format!(
                            "{} {ran:.0}% ({:.0}%)",
                            now.name,
                            share(now.waiting, waiting)
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "threads, % of a core running (waiting for a core): mixd: {}; generator: {}",
            shares(self.mixd),
            shares(std::process::id())
        )
    }
}

/// `NAME=PID`, a process the end-to-end mode watches.
fn parse_watched(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=PID"))?;
    let pid: u32 = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    if !std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
        return Err(format!("no process {pid}"));
    }
    Ok((name.to_owned(), pid))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    settle::set(cli.settle_seconds);
    let binary = match cli.mixd {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("mixd"),
    };
    anyhow::ensure!(
        binary.exists(),
        "no mixd binary at {} (build it, or give --mixd)",
        binary.display()
    );
    scenarios::run(&binary, cli.scenario).await
}
