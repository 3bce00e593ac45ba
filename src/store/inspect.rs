//! What `mixd admin` reads beside a running mixd, whichever the store: channels listed and
//! searched, one shown whole (decoded as the core knows it, by the start-up load), a
//! channel's archive read in order for export, and the consistency check. Each backend
//! implements [`Inspector`] (`sqlite/inspect.rs`, `postgres/inspect.rs`; `store::inspector`
//! picks one); the checks between tables are the same SQL on both ([`CONSISTENCY`]).

use jid::BareJid;

use super::columns::{bare, Row};
use crate::core::{Channel, Snapshot};

/// One line of the channel list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    pub name: String,
    pub created_by: BareJid,
    pub created_at: i64,
    pub participants: i64,
    pub messages: i64,
}

/// What `show` tells beyond the channel itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: i64,
    pub notices: i64,
    pub online_clients: i64,
}

/// One archived message or group event, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// The archive id (clients see its opaque form, `dialect::ids`).
    pub id: i64,
    pub at: i64,
    pub sender: String,
    pub nick: String,
    pub origin_id: Option<String>,
    pub content: String,
    pub edited_at: Option<i64>,
    pub retracted_at: Option<i64>,
    pub retracted_by: Option<String>,
    /// The notice's kind (`core::NoticeKind`), 0 for a message.
    pub notice: i64,
    pub notice_target: Option<String>,
}

/// The columns [`exported`] reads, in its order, for an export's query.
pub(super) const EXPORTED_COLUMNS: &str = "id, at, sender, nick, origin_id, content, edited_at,
     retracted_at, retracted_by, notice, notice_target";

/// An archived row as an export shows it, from a row of [`EXPORTED_COLUMNS`].
pub(super) fn exported(row: &impl Row) -> anyhow::Result<Archived> {
    Ok(Archived {
        id: row.column(0)?,
        at: row.column(1)?,
        sender: row.column(2)?,
        nick: row.column(3)?,
        origin_id: row.column(4)?,
        content: row.column(5)?,
        edited_at: row.column(6)?,
        retracted_at: row.column(7)?,
        retracted_by: row.column(8)?,
        notice: row.column(9)?,
        notice_target: row.column(10)?,
    })
}

/// The columns [`summary`] reads from `channels`, in its order; `total` is the backend's
/// expression of a channel's message total over a row of `channels` (SQLite's running total
/// leaves out the messages above its watermark of deferred entries: `sqlite/deferred.rs`).
pub(super) fn summary_columns(total: &str) -> String {
    format!(
        "name, created_by, created_at,
         (SELECT count(*) FROM participants WHERE channel = key), {total}"
    )
}

/// A line of the channel list from a row of [`summary_columns`].
pub(super) fn summary(row: &impl Row) -> anyhow::Result<ChannelSummary> {
    Ok(ChannelSummary {
        name: row.column(0)?,
        created_by: bare(row.column(1)?)?,
        created_at: row.column(2)?,
        participants: row.column(3)?,
        messages: row.column(4)?,
    })
}

/// Channel `name` of `snapshot`: `show` loads the state as the core would and keeps the one.
pub(super) fn named(snapshot: Snapshot, name: &str) -> Option<Box<Channel>> {
    snapshot.channels.into_iter().find(|c| c.name == name)
}

/// The query of the counts `show` tells of a channel, in [`counts`]'s order, `key` being the
/// backend's placeholder for the channel's key and `archive` its rows' `notice` column as a
/// table (the backend's: SQLite finds a channel's rows in two places).
pub(super) fn counts_query(key: &str, archive: &str) -> String {
    let archive = archive.replace("{key}", key);
    format!(
        "SELECT (SELECT count(*) FROM {archive} WHERE notice = 0),
                (SELECT count(*) FROM {archive} WHERE notice != 0),
                (SELECT count(*) FROM presence WHERE channel = {key})"
    )
}

/// The counts `show` tells, from a row of its messages, its notices and its online clients.
pub(super) fn counts(row: &impl Row) -> anyhow::Result<Counts> {
    Ok(Counts {
        messages: row.column(0)?,
        notices: row.column(1)?,
        online_clients: row.column(2)?,
    })
}

/// What an export does with each archived row, as [`Inspector::archive`] reads it.
pub type Each<'a> = &'a mut dyn FnMut(Archived) -> anyhow::Result<()>;

/// A read-only view of a live database, for the operator.
pub trait Inspector {
    /// Every channel whose name, information name or description contains `matching`
    /// (case-insensitive; all of them without it), by name.
    fn channels(&self, matching: Option<&str>) -> anyhow::Result<Vec<ChannelSummary>>;
    /// Channel `name` as the core would load it, with its counts.
    fn channel(&self, name: &str) -> anyhow::Result<Option<(Channel, Counts)>>;
    /// Channel `name`'s archive in order, its group events too if `notices`, each handed to
    /// `each` as it is read; false if there is no such channel.
    fn archive(&self, name: &str, notices: bool, each: Each) -> anyhow::Result<bool>;
    /// The secret of the opaque ids clients see (`dialect::ids`), so that an export names
    /// messages as clients know them.
    fn id_key(&self) -> anyhow::Result<[u8; 16]>;
    /// What is wrong with the database, one readable line each; empty when nothing is.
    fn check(&self) -> anyhow::Result<Vec<String>>;
}

/// `matching` as a `LIKE` pattern that finds it anywhere, its wildcards escaped with `\`.
pub(super) fn contains_pattern(matching: Option<&str>) -> String {
    format!(
        "%{}%",
        matching
            .unwrap_or("")
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// What the schema cannot enforce (or enforces only while SQLite's foreign keys are on, which
/// an edit by hand may not have had): that the tables agree with each other. Queries that
/// each return the rows of one kind of inconsistency, with how to say one (`{i}`: the row's
/// column `i`), in SQL both stores read alike.
const CONSISTENCY: &[(&str, &str)] = &[
    (
        "participant {1} of channel key {0}, which does not exist",
        "SELECT channel, jid FROM participants t
           WHERE NOT EXISTS (SELECT 1 FROM channels WHERE key = t.channel)",
    ),
    (
        "owner {1} of channel key {0}, which does not exist",
        "SELECT channel, jid FROM channel_owners t
           WHERE NOT EXISTS (SELECT 1 FROM channels WHERE key = t.channel)",
    ),
    (
        "access entry {1} of channel key {0}, which does not exist",
        "SELECT channel, entry FROM channel_access t
           WHERE NOT EXISTS (SELECT 1 FROM channels WHERE key = t.channel)",
    ),
    (
        "pending invitation or request of {1} to channel key {0}, which does not exist",
        "SELECT channel, jid FROM pending t
           WHERE NOT EXISTS (SELECT 1 FROM channels WHERE key = t.channel)",
    ),
    (
        "online client {1} in channel key {0} of someone who is not a participant",
        "SELECT channel, jid || '/' || resource FROM presence p WHERE NOT EXISTS
           (SELECT 1 FROM participants q WHERE q.channel = p.channel AND q.jid = p.jid)",
    ),
    // A deleted channel's archive stays only when the service keeps archives, and then the
    // deletion is its last notice (kind 18).
    (
        "{1} archived messages of channel key {0}, which does not exist and was not deleted",
        "SELECT channel, count(*) FROM messages m
           WHERE NOT EXISTS (SELECT 1 FROM channels WHERE key = m.channel)
           GROUP BY channel HAVING max(CASE WHEN notice = 18 THEN 1 ELSE 0 END) = 0",
    ),
    (
        "channel {0} counts {1} messages but its archive holds {2}",
        "SELECT name, total, held FROM
           (SELECT name, {total} AS total, {held} AS held FROM channels) c
           WHERE total != held",
    ),
    (
        "participant {1} of channel {0} has the owner's role but is not among its owners",
        "SELECT c.name, p.jid FROM participants p JOIN channels c ON c.key = p.channel
           WHERE p.role = 2 AND NOT EXISTS
             (SELECT 1 FROM channel_owners o WHERE o.channel = p.channel AND o.jid = p.jid)",
    ),
    (
        "owner {1} of channel {0} takes part without the owner's role",
        "SELECT c.name, o.jid FROM channel_owners o JOIN channels c ON c.key = o.channel
           JOIN participants p ON p.channel = o.channel AND p.jid = o.jid WHERE p.role != 2",
    ),
    (
        "channel {0} has participants but no owner",
        "SELECT name FROM channels c WHERE EXISTS (SELECT 1 FROM participants WHERE channel = c.key)
           AND NOT EXISTS (SELECT 1 FROM channel_owners WHERE channel = c.key)",
    ),
    (
        "nick '{1}' is taken by {2} participants of channel {0}",
        "SELECT c.name, p.nick, count(*) FROM participants p JOIN channels c ON c.key = p.channel
           WHERE p.nick != '' GROUP BY c.name, p.nick HAVING count(*) > 1",
    ),
    (
        "{1} receipts of message {0}, which is not in the archive",
        "SELECT message, count(*) FROM receipts r
           WHERE NOT EXISTS (SELECT 1 FROM messages WHERE id = r.message) GROUP BY message",
    ),
    (
        "{1} reactions to message {0}, which is not in the archive",
        "SELECT message, count(*) FROM reactions r
           WHERE NOT EXISTS (SELECT 1 FROM messages WHERE id = r.message) GROUP BY message",
    ),
];

/// [`CONSISTENCY`]'s findings and queries, `{total}` in them being `total`, the backend's
/// expression of a channel's message total over a row of `channels` (as [`summary_columns`]),
/// and `{held}` being `held`, its count of the messages the channel's archive holds.
pub(super) fn consistency<'a>(
    total: &'a str,
    held: &'a str,
) -> impl Iterator<Item = (&'static str, String)> + 'a {
    CONSISTENCY.iter().map(move |(say, query)| {
        (
            *say,
            query.replace("{total}", total).replace("{held}", held),
        )
    })
}

/// A finding of [`CONSISTENCY`]: `say` with each `{i}` replaced by the row's column `i`.
pub(super) fn finding(say: &str, columns: &[String]) -> String {
    columns
        .iter()
        .enumerate()
        .fold(say.to_owned(), |line, (i, value)| {
            line.replace(&format!("{{{i}}}"), value)
        })
}
