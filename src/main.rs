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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
