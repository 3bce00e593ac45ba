//! Storage behind a narrow interface: the service needs to load what the core knows, to
//! persist the facts the core decides (in order, in batches), and to read archive pages.
//! SQLite is the one backend ([`sqlite`]); another would implement [`FactWriter`] and
//! [`Reader`] without touching the rules.

pub mod migrate;
pub mod sqlite;
pub mod writer;

use std::collections::HashMap;

use jid::BareJid;

use crate::core::{Fact, MessageRef, Micros, NoticeKind, Posted, ReceiptKind, Snapshot};

/// Persists facts. Called from one thread only: the group-commit writer.
pub trait FactWriter: Send + 'static {
    /// Persists every fact of `batch` in one transaction: all of them or none. Returns the
    /// messages that the batch's receipts made delivered to (or seen by) every member.
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<Vec<Completion>>;
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
    /// The receipts recorded for `message`: member, delivered and displayed times.
    fn receipts(&self, message: i64) -> anyhow::Result<Vec<MemberReceipt>>;
    /// The receipts recorded for each of `messages` (a history page shows the state of every
    /// row): by message, each by member; a message without receipts has no entry. One read
    /// per message unless a backend reads them at once (SQLite does).
    fn receipts_of(&self, messages: &[i64]) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
        let mut all = HashMap::new();
        for &message in messages {
            let receipts = self.receipts(message)?;
            if !receipts.is_empty() {
                all.insert(message, receipts);
            }
        }
        Ok(all)
    }
}

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
