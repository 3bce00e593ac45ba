//! SIGHUP: the settings are read again (the same flags and environment, the configuration
//! file as it is now) and what can change while mixd runs is applied: the limits, quotas and
//! user domains the rules enforce, and the log level. Every other setting (the server, the
//! database, the wire's limits, …) is read once at start; one that changed is reported as
//! waiting for a restart. One log line per changed setting says which it was.

use crate::config::Settings;
use crate::core::Rules;

/// Sets the log filter (`log_level`); an error says why it was not applied.
pub type SetLogFilter = Box<dyn Fn(&str) -> anyhow::Result<()> + Send>;

/// What the service needs to reload, given by `main`, which knows the command line and the
/// logger.
pub struct Reload {
    /// The settings resolved again from the same flags and environment and the file as it is.
    pub settings: Box<dyn Fn() -> anyhow::Result<Settings> + Send>,
    pub log_filter: SetLogFilter,
}

/// The rules the core enforces, from the settings and the database's key for participant ids
/// (not a setting: it belongs to the data, so a reload keeps it).
pub fn rules(settings: &Settings, participant_key: [u8; 16]) -> Rules {
    Rules {
        user_domains: settings.user_domains.clone(),
        max_message_bytes: settings.max_message_bytes,
        max_members: settings.max_members,
        max_groups_per_creator: settings.max_groups_per_creator,
        max_resources_per_participant: settings.max_resources_per_participant,
        keep_archive: settings.keep_archive,
        message_burst: settings.message_burst,
        messages_per_minute: settings.messages_per_minute,
        signals_per_minute: settings.signals_per_minute,
        channels_per_hour: settings.channels_per_hour,
        joins_per_minute: settings.joins_per_minute,
        adds_per_hour: settings.adds_per_hour,
        history_burst: settings.history_burst,
        history_per_minute: settings.history_per_minute,
        participant_key,
        ..Rules::default()
    }
}

/// Whether a setting can change while mixd runs, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Through the core's rules.
    Rules,
    /// Through the logger's filter.
    Log,
    /// Read once at start.
    AtRestart,
}

/// A setting's name, how it applies, and its value, to compare.
type Row = (&'static str, Applies, fn(&Settings) -> String);

/// Every setting with how it applies and its value (the secret's is compared, never shown).
fn table() -> [Row; 30] {
    use Applies::*;
    [
        ("server", AtRestart, |s| s.server.clone()),
        ("jid", AtRestart, |s| s.domain.clone()),
        // Compared, never shown: only applied settings' values are (see `apply`).
        ("secret", AtRestart, |s| s.secret.clone()),
        ("database", AtRestart, |s| s.database.to_string()),
        ("control_socket", AtRestart, |s| {
            s.control_socket.display().to_string()
        }),
        ("user_domains", Rules, |s| s.user_domains.join(",")),
        ("log_format", AtRestart, |s| format!("{:?}", s.log_format)),
        ("log_level", Log, |s| s.log_level.clone()),
        ("durability", AtRestart, |s| format!("{:?}", s.durability)),
        ("keepalive", AtRestart, |s| {
            s.keepalive.as_secs().to_string()
        }),
        ("max_message_bytes", Rules, |s| {
            s.max_message_bytes.to_string()
        }),
        ("max_members", Rules, |s| s.max_members.to_string()),
        ("max_groups_per_creator", Rules, |s| {
            s.max_groups_per_creator.to_string()
        }),
        ("max_resources_per_participant", Rules, |s| {
            s.max_resources_per_participant.to_string()
        }),
        ("keep_archive", Rules, |s| s.keep_archive.to_string()),
        ("message_burst", Rules, |s| s.message_burst.to_string()),
        ("messages_per_minute", Rules, |s| {
            s.messages_per_minute.to_string()
        }),
        ("signals_per_minute", Rules, |s| {
            s.signals_per_minute.to_string()
        }),
        ("channels_per_hour", Rules, |s| {
            s.channels_per_hour.to_string()
        }),
        ("joins_per_minute", Rules, |s| {
            s.joins_per_minute.to_string()
        }),
        ("adds_per_hour", Rules, |s| s.adds_per_hour.to_string()),
        ("history_burst", Rules, |s| s.history_burst.to_string()),
        ("history_per_minute", Rules, |s| {
            s.history_per_minute.to_string()
        }),
        ("max_stanza_bytes", AtRestart, |s| {
            s.max_stanza_bytes.to_string()
        }),
        ("max_stanza_depth", AtRestart, |s| {
            s.max_stanza_depth.to_string()
        }),
        ("max_outbox_bytes", AtRestart, |s| {
            s.max_outbox_bytes.to_string()
        }),
        ("write_timeout", AtRestart, |s| {
            s.write_timeout.as_secs().to_string()
        }),
        ("payload_namespaces", AtRestart, |s| {
            s.payload_namespaces.join(",")
        }),
        ("bootstrap", AtRestart, |s| format!("{:?}", s.bootstrap)),
        ("metrics", AtRestart, |s| format!("{:?}", s.metrics)),
    ]
}

/// What became of one reload.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Settings now in force, with their old and new values.
    pub applied: Vec<(&'static str, String, String)>,
    /// Settings that changed but are not in force, with why.
    pub not_applied: Vec<(&'static str, String)>,
}

/// Applies what can change live from `new` over `running`; returns the settings now in force
/// and what became of each change. `set_log_filter` is the logger's.
pub fn apply(
    running: &Settings,
    new: &Settings,
    set_log_filter: &dyn Fn(&str) -> anyhow::Result<()>,
) -> (Settings, Outcome) {
    let mut now = running.clone();
    let mut outcome = Outcome::default();
    for (name, applies, value) in table() {
        let (from, to) = (value(running), value(new));
        if from == to {
            continue;
        }
        // Values are told only of what is applied, which the secret never is.
        match applies {
            Applies::Rules => outcome.applied.push((name, from, to)),
            Applies::Log => match set_log_filter(&new.log_level) {
                Ok(()) => {
                    now.log_level = new.log_level.clone();
                    outcome.applied.push((name, from, to));
                }
                Err(why) => outcome.not_applied.push((name, format!("{why:#}"))),
            },
            Applies::AtRestart => outcome
                .not_applied
                .push((name, "read at start only: restart mixd to apply it".into())),
        }
    }
    now.user_domains = new.user_domains.clone();
    now.max_message_bytes = new.max_message_bytes;
    now.max_members = new.max_members;
    now.max_groups_per_creator = new.max_groups_per_creator;
    now.max_resources_per_participant = new.max_resources_per_participant;
    now.keep_archive = new.keep_archive;
    now.message_burst = new.message_burst;
    now.messages_per_minute = new.messages_per_minute;
    now.signals_per_minute = new.signals_per_minute;
    now.channels_per_hour = new.channels_per_hour;
    now.joins_per_minute = new.joins_per_minute;
    now.adds_per_hour = new.adds_per_hour;
    now.history_burst = new.history_burst;
    now.history_per_minute = new.history_per_minute;
    (now, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: crate::config::Options,
    }

    fn settings(extra: &[&str]) -> Settings {
        let secret = if extra.contains(&"--secret") {
            &[][..]
        } else {
            &["--secret", "x"][..]
        };
        let args = [&["t", "--jid", "mix.localhost"][..], secret, extra].concat();
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        cli.options.resolve(&matches).unwrap().0
    }

    #[test]
    fn limits_apply_live_and_the_rest_waits_for_a_restart() {
        let running = settings(&[]);
        let new = settings(&[
            "--max-message-bytes",
            "2048",
            "--user-domain",
            "example.org",
            "--keepalive",
            "5",
            "--secret",
            "changed",
        ]);
        let (now, outcome) = apply(&running, &new, &|_| Ok(()));
        assert_eq!(now.max_message_bytes, 2048);
        assert_eq!(rules(&now, [0; 16]).user_domains, vec!["example.org"]);
        assert_eq!(now.keepalive, running.keepalive, "not applied");
        assert_eq!(now.secret, "x");
        let applied: Vec<_> = outcome.applied.iter().map(|a| a.0).collect();
        assert_eq!(applied, ["user_domains", "max_message_bytes"]);
        let waiting: Vec<_> = outcome.not_applied.iter().map(|a| a.0).collect();
        assert_eq!(waiting, ["secret", "keepalive"]);
        assert!(
            !format!("{outcome:?}").contains("changed"),
            "the secret is not shown"
        );
        let (_, again) = apply(&now, &new, &|_| Ok(()));
        assert!(again.applied.is_empty(), "nothing new to apply");
        assert_eq!(again.not_applied.len(), 2, "still waiting for a restart");
    }

    #[test]
    fn a_log_level_the_logger_refuses_is_reported_not_applied() {
        let running = settings(&[]);
        let new = settings(&["--log-level", "debug"]);
        let (now, outcome) = apply(&running, &new, &|_| anyhow::bail!("MIXD_LOG overrides it"));
        assert_eq!(now.log_level, running.log_level);
        assert_eq!(
            outcome.not_applied,
            vec![("log_level", "MIXD_LOG overrides it".to_string())]
        );
        let (now, outcome) = apply(&running, &new, &|_| Ok(()));
        assert_eq!(now.log_level, "debug");
        assert_eq!(outcome.applied[0].0, "log_level");
    }
}
