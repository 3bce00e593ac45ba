use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use mixd::config::{LogFormat, Options, Place, Settings};
use mixd::reload::{Reload, SetLogFilter};

// jemalloc, not glibc's malloc: 13-34 % more fan-out deliveries and stored messages per mixd
// CPU-second, because the rules task allocates a stanza's buffers and the link's thread frees
// them, which glibc answered by handing pages back and faulting them in again (docs/benchmarks.md,
// "Global allocator"). The binary's choice; the library keeps the default. Two arenas (two
// cores' worth), freed pages returned after a second, by jemalloc's own background threads
// (one an arena): without them jemalloc returns pages only when it is called, so an idle mixd
// kept a burst's memory (a 1,000-member fan-out's peak of 73 MB stayed at 34-54 MB; with them
// it is back to 15 MB within a second, at the same CPU per delivery: "Memory after a burst").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read by it at start (its `malloc_conf`).
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] =
    b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true\0";

/// mixd: MIX group chat (XEP-0369) for an XMPP server, as an external component.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to the XMPP server and serve channels.
    Run(Options),
    /// Validate the settings and explain where each came from; connects nowhere.
    CheckConfig(Options),
    /// Inspect and administer the database and the running service (docs/operations.md).
    Admin(Admin),
}

#[derive(Args)]
struct Admin {
    #[command(flatten)]
    place: Place,
    #[command(subcommand)]
    command: mixd::admin::Command,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    let (options, check_only) = match cli.command {
        Command::Run(options) => (options, false),
        Command::CheckConfig(options) => (options, true),
        Command::Admin(admin) => return run_admin(admin),
    };
    let (settings, sources) = match options.resolve(sub) {
        Ok(resolved) => resolved,
        Err(error) => {
            eprintln!("mixd {name}: invalid configuration: {error:#}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        print!("{}", settings.explain(&sources));
        return ExitCode::SUCCESS;
    }
    let log_filter = init_logging(settings.log_format, &settings.log_level);
    let reload = Reload {
        settings: Box::new(resolve_again),
        log_filter,
    };
    mixd::dialect::payload::set_namespaces(settings.payload_namespaces.clone());
    tracing::info!(?settings, "starting");
    mixd::host::warn_of_slow_settings(std::path::Path::new("/sys"));
    // One worker: the link is one task (its reading and writing `select!`ed), and the rules
    // run on this thread (`block_on`), the writer and the archive's readers on threads of their
    // own, so a second worker had nothing to run beside the link but the control socket, the
    // metrics and the SDK's REST. It was woken to look for work at the link's wake-ups, and
    // the link's task moved between the two: a join cost about 6 % more of mixd's CPU, for
    // the same instructions, than on one (docs/benchmarks.md, issue 16, branch `joins9`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mixd: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mixd::service::run(settings, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("mixd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_admin(admin: Admin) -> ExitCode {
    match mixd::admin::run(admin.place, admin.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("mixd admin: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The settings of `mixd run` resolved again from the same command line and environment and
/// the configuration file as it is now (SIGHUP).
fn resolve_again() -> anyhow::Result<Settings> {
    let matches = Cli::command().try_get_matches_from(std::env::args_os())?;
    let (_, sub) = matches.subcommand().expect("a subcommand is required");
    match Cli::from_arg_matches(&matches)?.command {
        Command::Run(options) => Ok(options.resolve(sub)?.0),
        _ => anyhow::bail!("not running"),
    }
}

/// Starts logging; returns what sets the filter anew (`log_level`, on SIGHUP), which refuses
/// while MIXD_LOG, which overrides the setting, is set.
fn init_logging(format: LogFormat, level: &str) -> SetLogFilter {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, reload, EnvFilter, Layer};

    let overridden = std::env::var_os("MIXD_LOG").is_some();
    let filter = EnvFilter::try_from_env("MIXD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    // Under systemd, stderr goes to the journal, which timestamps each line itself and shows
    // escape codes verbatim: plain lines without a time of their own.
    let journald = stderr_is_journal();
    let layer = fmt::layer()
        .with_ansi(!journald && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let layer = match (format, journald) {
        (LogFormat::Human, false) => layer.boxed(),
        (LogFormat::Human, true) => layer.without_time().boxed(),
        (LogFormat::Json, _) => layer.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .init();
    Box::new(move |level| {
        if overridden {
            anyhow::bail!("MIXD_LOG is set and overrides log_level");
        }
        Ok(handle.reload(EnvFilter::try_new(level)?)?)
    })
}

/// Whether stderr is connected to the journal: systemd then sets `JOURNAL_STREAM` to the
/// device and inode of that stream (`DEV:INODE`), which a redirected stderr no longer matches.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(stderr).metadata() {
        Ok(meta) => dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino()),
        Err(_) => false,
    }
}
