use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use mixd::config::{LogFormat, Options};

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
    init_logging(settings.log_format);
    mixd::dialect::payload::set_namespaces(settings.payload_namespaces.clone());
    tracing::info!(?settings, "starting");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mixd: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mixd::service::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("mixd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIXD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd, stderr goes to the journal, which timestamps each line itself and shows
    // escape codes verbatim: plain lines without a time of their own.
    let journald = stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!journald && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match (format, journald) {
        (LogFormat::Human, false) => builder.init(),
        (LogFormat::Human, true) => builder.without_time().init(),
        (LogFormat::Json, _) => builder.json().init(),
    }
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
