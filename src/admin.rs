//! `mixd admin`: the operator's commands, on a live database without stopping mixd. Reads
//! (list, search, show, export, check) open the database read-only beside the running mixd,
//! SQLite or PostgreSQL alike (`store::inspector`); changes (removing a participant, deleting a
//! channel) go through the running service's control socket (`control.rs`), so that the
//! service's rules make them and its participants are told. `backup` copies an SQLite file
//! online; `restore` is for a stopped mixd and refuses while one answers on the control
//! socket. On PostgreSQL those two are refused naming the PostgreSQL tool that does the job
//! ([`postgres_tool`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::config::Place;
use crate::control::{self, Answer, Request};
use crate::core::{iso_time, Dialect, NoticeKind};
use crate::dialect::ids::Ids;
use crate::store::inspect::Archived;
use crate::store::{inspector, sqlite, Database};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every channel: name, participants, messages, creator, creation time.
    List,
    /// List the channels whose name, title or description contains TEXT.
    Search { text: String },
    /// Show one channel: its settings, roles, participants and counts.
    Show { channel: String },
    /// Remove a participant through the running mixd; the channel is told, as of any removal.
    RemoveParticipant { channel: String, jid: String },
    /// Delete a channel through the running mixd; its participants are told.
    Destroy { channel: String },
    /// Write a channel's archive as JSON lines (one message per line, oldest first).
    Export {
        channel: String,
        /// Include group events (joins, leaves, settings, …) with "notice" set.
        #[arg(long)]
        notices: bool,
        /// Write here instead of to standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Copy the live database to FILE (SQLite's online backup; mixd keeps running).
    Backup { file: PathBuf },
    /// Replace the database with the backup FILE; only while mixd is stopped.
    Restore { file: PathBuf },
    /// Check the consistency between tables (and SQLite's integrity); exits 1 with findings.
    Check,
}

/// Runs `command`; `Ok(false)` when it found something wrong (`check`).
pub fn run(place: Place, command: Command) -> anyhow::Result<bool> {
    let (path, socket) = place.resolve()?;
    let database = Database::from(path.clone());
    if let Database::Postgres(_) = &database {
        if let Some((name, tool)) = postgres_tool(&command) {
            bail!("`mixd admin {name}` works on SQLite files only; on the PostgreSQL database {database}, {tool} (docs/operations.md, \"mixd admin on PostgreSQL\")");
        }
    }
    let mut out = std::io::stdout().lock();
    match command {
        Command::List => list(&database, None, &mut out)?,
        Command::Search { text } => list(&database, Some(&text), &mut out)?,
        Command::Show { channel } => show(&database, local(&channel), &mut out)?,
        Command::RemoveParticipant { channel, jid } => {
            let channel = local(&channel).to_owned();
            writeln!(
                out,
                "{}",
                ask(&socket, &Request::RemoveParticipant { channel, jid })?
            )?
        }
        Command::Destroy { channel } => {
            let channel = local(&channel).to_owned();
            writeln!(
                out,
                "{}",
                ask(&socket, &Request::DestroyChannel { channel })?
            )?
        }
        Command::Export {
            channel,
            notices,
            output,
        } => match output {
            Some(file) => {
                let file = std::fs::File::create(&file)
                    .with_context(|| format!("creating {}", file.display()))?;
                let mut file = std::io::BufWriter::new(file);
                export(&database, local(&channel), notices, &mut file)?;
                file.flush()?;
            }
            None => export(&database, local(&channel), notices, &mut out)?,
        },
        Command::Backup { file } => {
            sqlite::backup(&path, &file)?;
            writeln!(out, "backed up {} to {}", path.display(), file.display())?;
        }
        Command::Restore { file } => {
            if control::answers(&socket) {
                bail!(
                    "mixd is running on {} (it answers on {}): stop it before restoring",
                    path.display(),
                    socket.display()
                );
            }
            sqlite::restore(&file, &path)?;
            writeln!(out, "restored {} into {}", file.display(), path.display())?;
        }
        Command::Check => {
            let findings = inspector(&database)?.check()?;
            for finding in &findings {
                writeln!(out, "{finding}")?;
            }
            if findings.is_empty() {
                writeln!(out, "{database}: no findings")?;
            }
            return Ok(findings.is_empty());
        }
    }
    Ok(true)
}

/// What does `command`'s job on a PostgreSQL database, if not `mixd admin` itself: the
/// command's name and the tool. The reads and the check work on either store, and the
/// changes go through the control socket, which is the same with either.
fn postgres_tool(command: &Command) -> Option<(&'static str, &'static str)> {
    match command {
        Command::Backup { .. } => Some((
            "backup",
            "back up with pg_dump --format=custom while mixd runs (or pg_basebackup for the whole server)",
        )),
        Command::Restore { .. } => Some((
            "restore",
            "stop mixd and restore with pg_restore into an empty database",
        )),
        Command::List
        | Command::Search { .. }
        | Command::Show { .. }
        | Command::Export { .. }
        | Command::Check
        | Command::RemoveParticipant { .. }
        | Command::Destroy { .. } => None,
    }
}

/// A channel's name from its name or its JID.
fn local(channel: &str) -> &str {
    channel.split('@').next().unwrap_or(channel)
}

fn list(database: &Database, matching: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "channel\tparticipants\tmessages\tcreated_by\tcreated_at"
    )?;
    for c in inspector(database)?.channels(matching)? {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            c.name,
            c.participants,
            c.messages,
            c.created_by,
            iso_time(c.created_at)
        )?;
    }
    Ok(())
}

fn show(database: &Database, name: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let Some((channel, counts)) = inspector(database)?.channel(name)? else {
        bail!("no channel '{name}'");
    };
    let settings = channel.settings();
    let access = channel.access();
    let joined = |list: &[jid::BareJid]| -> String {
        let names: Vec<&str> = list.iter().map(|j| j.as_str()).collect();
        names.join(" ")
    };
    writeln!(out, "channel: {}", channel.name)?;
    writeln!(
        out,
        "created: {} by {}",
        iso_time(channel.created_at),
        channel.created_by
    )?;
    writeln!(out, "title: {}", channel.info.name)?;
    writeln!(out, "description: {}", channel.info.description)?;
    writeln!(out, "listed: {}", channel.listed)?;
    writeln!(
        out,
        "history visible to newcomers: {}",
        channel.info.history_visible
    )?;
    writeln!(out, "join policy: {}", settings.policy.name())?;
    writeln!(out, "muted: {}", settings.muted)?;
    match settings.max_members {
        Some(limit) => writeln!(out, "member limit: {limit}")?,
        None => writeln!(out, "member limit: the service's")?,
    }
    writeln!(out, "owners: {}", joined(&channel.owners))?;
    writeln!(out, "allowed: {}", joined(&access.allowed))?;
    writeln!(out, "banned: {}", joined(&access.banned))?;
    writeln!(out, "participants: {}", channel.participants.len())?;
    writeln!(out, "messages: {}", counts.messages)?;
    writeln!(out, "notices: {}", counts.notices)?;
    writeln!(out, "online clients: {}", counts.online_clients)?;
    for p in &channel.participants {
        let dialect = match p.dialect {
            Dialect::Mix => "mix",
            Dialect::FlyChat => "flychat",
        };
        writeln!(
            out,
            "participant: {}\tnick={}\trole={}\tdialect={}\tjoined={}",
            p.jid,
            p.nick,
            p.role.name(),
            dialect,
            iso_time(p.joined_at)
        )?;
    }
    Ok(())
}

fn export(
    database: &Database,
    name: &str,
    notices: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let inspector = inspector(database)?;
    let ids = Ids::new(&inspector.id_key()?);
    let found = inspector.archive(name, notices, &mut |message| {
        serde_json::to_writer(&mut *out, &exported(&ids, message))?;
        out.write_all(b"\n")?;
        Ok(())
    })?;
    if !found {
        bail!("no channel '{name}'");
    }
    Ok(())
}

/// One archived message as an export line: its id as clients saw it (stanza-id, MAM id).
fn exported(ids: &Ids, m: Archived) -> serde_json::Value {
    let mut line = serde_json::json!({
        "id": ids.encode(m.id),
        "at": iso_time(m.at),
        "from": m.sender,
        "nick": m.nick,
        "content": m.content,
    });
    let fields = [
        ("origin_id", m.origin_id.map(serde_json::Value::from)),
        ("edited_at", m.edited_at.map(|t| iso_time(t).into())),
        ("retracted_at", m.retracted_at.map(|t| iso_time(t).into())),
        ("retracted_by", m.retracted_by.map(serde_json::Value::from)),
        (
            "notice",
            (m.notice != 0).then(|| {
                NoticeKind::from_i64(m.notice)
                    .map(|k| k.name().into())
                    .unwrap_or_else(|| m.notice.into())
            }),
        ),
        ("target", m.notice_target.map(serde_json::Value::from)),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            line[name] = value;
        }
    }
    line
}

/// Sends `request` to the running mixd and returns its answer's text, or fails with it.
fn ask(socket: &Path, request: &Request) -> anyhow::Result<String> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "no mixd answers on {}: is it running (and is this its --control-socket)?",
            socket.display()
        )
    })?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    let answer: Answer = serde_json::from_str(&answer)
        .with_context(|| format!("mixd's answer is not one: {answer:?}"))?;
    if !answer.ok {
        bail!("mixd refused: {}", answer.text);
    }
    Ok(answer.text)
}
