//! Storage behind a narrow interface: the service needs to load what the core knows, to
//! persist the facts the core decides (in order, in batches), and to read archive pages.
//! Two backends implement [`FactWriter`] and [`Reader`] with the same meaning: SQLite, the
//! embedded default ([`sqlite`]), and PostgreSQL ([`postgres`]); [`open`] picks one from the
//! database setting. The rules never know which.

pub mod columns;
pub mod history;
pub mod inspect;
mod joins;
pub mod load;
pub mod migrate;
mod persist;
pub mod postgres;
mod receipt;
pub mod sqlite;
pub mod time_search;
pub mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jid::BareJid;

use crate::core::{Fact, MessageRef, Micros, NoticeKind, Posted, ReceiptKind, Snapshot};

/// Where the state and the archive live: the `database` setting, a path or a URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://user@host:port/name` (`postgresql://` too).
    Postgres(String),
}

impl From<PathBuf> for Database {
    /// A `postgres://` URL names PostgreSQL; anything else is an SQLite file's path.
    fn from(setting: PathBuf) -> Self {
        match setting.to_str() {
            Some(url) if postgres::is_url(url) => Database::Postgres(url.to_owned()),
            _ => Database::Sqlite(setting),
        }
    }
}

/// Shown in logs and `check-config`: a URL without its password.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let shown = match rest.split_once('@') {
                    Some((user, host)) if user.contains(':') => {
                        let name = user.split_once(':').map_or(user, |(name, _)| name);
                        format!("{scheme}://{name}:<redacted>@{host}")
                    }
                    _ => url.clone(),
                };
                f.write_str(&shown)
            }
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// An open store: the writer for the group-commit thread and the reader the service shares.
pub struct Opened {
    pub writer: Box<dyn FactWriter>,
    pub reader: Arc<dyn Reader>,
    /// True when another mixd was active on this database before this one (PostgreSQL's
    /// fence had been raised before): a component connection still open under the service's
    /// name may be that instance's, fenced and on its way out (a hung process keeps it open),
    /// so the link waits it out rather than taking it for a second mixd
    /// (`link::LinkSettings::wait_out_conflict`). Never with SQLite, whose one file has one
    /// mixd at a time.
    pub follows_an_active: bool,
}

/// Opens the backend `database` names. With PostgreSQL this returns once this instance is the
/// active one.
pub fn open(database: &Database, durability: sqlite::Durability) -> anyhow::Result<Opened> {
    Ok(match database {
        Database::Sqlite(path) => {
            let (writer, reader) = sqlite::open(path, durability)?;
            Opened {
                writer: Box::new(writer),
                reader: Arc::new(reader),
                follows_an_active: false,
            }
        }
        Database::Postgres(url) => {
            let (writer, reader) = postgres::open(url, durability)?;
            Opened {
                follows_an_active: writer.follows_an_active(),
                writer: Box::new(writer),
                reader: Arc::new(reader),
            }
        }
    })
}

/// Opens `database` read-only for the operator (`mixd admin`), beside whatever mixd runs on
/// it; an SQLite file must exist.
pub fn inspector(database: &Database) -> anyhow::Result<Box<dyn inspect::Inspector>> {
    Ok(match database {
        Database::Sqlite(path) => Box::new(sqlite::inspect(path)?),
        Database::Postgres(url) => Box::new(postgres::inspect(url)?),
    })
}

/// The archive reads of `database` beside a running mixd, without taking its place.
pub fn read_only(database: &Database) -> anyhow::Result<Box<dyn Reader>> {
    Ok(match database {
        Database::Sqlite(path) => Box::new(sqlite::read_only(path)?),
        Database::Postgres(url) => Box::new(postgres::read_only(url)?),
    })
}

impl FactWriter for Box<dyn FactWriter> {
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
        (**self).commit(batch)
    }

    fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
        (**self).id_key()
    }

    fn checkpointed(&mut self) -> Option<Duration> {
        (**self).checkpointed()
    }
}

/// Persists facts. Called from one thread only: the group-commit writer.
pub trait FactWriter: Send + 'static {
    /// Persists every fact of `batch` in one transaction: all of them or none. Returns the
    /// messages that the batch's receipts made delivered to (or seen by) every member.
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<Vec<Completion>>;
    /// The secret of the opaque ids clients see (`dialect::ids`): 16 bytes made from the OS's
    /// randomness the first time the database is opened ([`columns::new_id_key`]), then read
    /// back, so that ids stay the same across restarts (and standbys) and differ between
    /// databases.
    fn id_key(&mut self) -> anyhow::Result<[u8; 16]>;
    /// How long the writer thread spent in checkpoint steps of its own (copying the WAL back
    /// into the database, waiting for its turn) since the last call; `None` when it ran none
    /// (always, on a backend without a WAL of its own to keep). Read after each commit, for
    /// monitoring: the commit's time includes it, and this tells the stall apart.
    fn checkpointed(&mut self) -> Option<Duration>;
}

/// A message every member now has (or has seen): its author is to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub channel: i64,
    pub message: i64,
    pub client_id: Option<String>,
    pub author: BareJid,
    pub kind: ReceiptKind,
}

/// Reads the state and the archive; shared by concurrent queries.
pub trait Reader: Send + Sync + 'static {
    fn snapshot(&self) -> anyhow::Result<Snapshot>;
    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, HistoryError>;
    /// The message of `channel` that a client's reference names: the one with archive id
    /// `id` (what the reference decoded to, when it is one of the ids clients are shown),
    /// or else the newest whose origin-id or client stanza id is `sent`, the reference as
    /// the client sent it (what XEP-0308 and some clients use).
    fn find_message(
        &self,
        channel: i64,
        id: Option<i64>,
        sent: &str,
    ) -> anyhow::Result<Option<MessageRef>>;
    /// The receipts recorded for each of `messages` (a history page shows the state of every
    /// row): by message, each by member; a message without receipts has no entry. Read at
    /// once: a page's receipts one message at a time cost a page fifty round trips.
    fn receipts_of(&self, messages: &[i64]) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>>;
    /// A history page and the receipts of its rows that are not notices
    /// ([`Reader::receipts_of`]): what a FlyChat page shows. A backend whose every read is a
    /// round trip to a server reads both in one.
    fn history_with_receipts(&self, query: &HistoryQuery) -> Result<PageReceipts, HistoryError> {
        let page = self.history(query)?;
        let messages: Vec<i64> = page
            .messages
            .iter()
            .filter(|m| m.notice.is_none())
            .map(|m| m.posted.id)
            .collect();
        let receipts = self.receipts_of(&messages)?;
        Ok((page, receipts))
    }
    /// The receipts recorded for `message`: member, delivered and displayed times.
    fn receipts(&self, message: i64) -> anyhow::Result<Vec<MemberReceipt>> {
        Ok(self
            .receipts_of(&[message])?
            .remove(&message)
            .unwrap_or_default())
    }
}

/// A history page and the receipts of its rows, by message, each by member.
pub type PageReceipts = (HistoryPage, HashMap<i64, Vec<MemberReceipt>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReceipt {
    pub member: BareJid,
    pub delivered_at: Option<Micros>,
    pub displayed_at: Option<Micros>,
}

/// Which part of a channel's archive to return (MAM filters plus RSM paging).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub channel: i64,
    pub with: Option<BareJid>,
    pub start: Option<Micros>,
    pub end: Option<Micros>,
    pub page: Page,
    pub max: usize,
    /// Only messages that share files.
    pub media_only: bool,
    /// Messages up to this id are hidden from the requester (it cleared its history).
    pub hidden_upto: i64,
    /// Notices (group events) too, not only messages.
    pub with_notices: bool,
    /// Archived retractions and reactions too (MAM), not only the messages they act on.
    pub with_actions: bool,
    /// Only messages after this one (MAM's `after-id`); it must be in the channel.
    pub after_id: Option<i64>,
    /// Only messages before this one (MAM's `before-id`); it must be in the channel.
    pub before_id: Option<i64>,
    /// Only these messages (MAM's `ids`), each of which must be in the channel; none: all.
    pub ids: Vec<i64>,
    /// Whether the page must carry the total (MAM's `<count/>`): with filters, that takes
    /// a count over the channel's archive.
    pub counted: bool,
}

/// RSM paging (XEP-0059).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Page {
    /// From the oldest matching message forward.
    #[default]
    First,
    /// Forward from after this archive id.
    After(i64),
    /// Backward from before this archive id.
    Before(i64),
    /// The newest page (`<before/>` empty).
    Last,
    /// Forward from this position in the result set.
    Index(usize),
}

/// A message as history shows it: as last corrected, or its tombstone, with its reactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub posted: Posted,
    pub edited_at: Option<Micros>,
    pub retraction: Option<Tombstone>,
    /// Each reaction with the members who gave it, in order of the reaction.
    pub reactions: Vec<(String, Vec<BareJid>)>,
    /// Set when this is a notice: its kind and whom it concerns (`posted.sender` did it).
    pub notice: Option<(NoticeKind, Option<BareJid>)>,
    /// Set when this is `posted.sender`'s retraction of, or reactions to, another message.
    pub action: Option<Action>,
}

/// What an archived retraction or reaction does, to the message of archive id `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// XEP-0424; `moderated`: `Some(reason)` when a moderator retracted it (XEP-0425).
    Retraction {
        target: i64,
        moderated: Option<Option<String>>,
    },
    /// XEP-0444: the member's whole set of reactions (empty: it took them back).
    Reactions { target: i64, reactions: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The archive id of the retraction, which the tombstone names (XEP-0424 §6); none for
    /// messages retracted before retractions were archived.
    pub retraction: Option<i64>,
    pub at: Micros,
    pub by: BareJid,
    /// `Some(reason)` when a moderator retracted it.
    pub moderated: Option<Option<String>>,
}

/// One page, oldest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    pub messages: Vec<Archived>,
    /// How many messages match the filters, over all pages (when the query asked for it).
    pub count: usize,
    /// The position of the first message of this page in the result set, where it is known
    /// without counting (the first page, pages by index). XEP-0059 makes it optional, and
    /// slixmpp's RSM iterator takes `index + page size == count` as the end even when
    /// paging backward.
    pub first_index: Option<usize>,
    /// True when the page reaches the end of the result set in its direction.
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no message {0} in this archive")]
    UnknownId(i64),
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl HistoryQuery {
    /// A query over what the core says one requester may read (the channel, and the
    /// messages hidden from it), with every other field at its default.
    pub fn within(scope: crate::core::HistoryScope) -> Self {
        HistoryQuery {
            channel: scope.channel,
            hidden_upto: scope.hidden_upto,
            ..HistoryQuery::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Database;
    use std::path::PathBuf;

    #[test]
    fn a_url_picks_postgres_and_hides_its_password() {
        let url = Database::from(PathBuf::from(
            "postgres://mixd:hunter2@db.example:5432/mixd",
        ));
        assert!(matches!(url, Database::Postgres(_)));
        assert_eq!(
            url.to_string(),
            "postgres://mixd:<redacted>@db.example:5432/mixd"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let plain = Database::from(PathBuf::from("postgresql://localhost/mixd"));
        assert_eq!(plain.to_string(), "postgresql://localhost/mixd");
        assert_eq!(
            Database::from(PathBuf::from("/var/lib/mixd/mixd.db")),
            Database::Sqlite(PathBuf::from("/var/lib/mixd/mixd.db"))
        );
    }
}
