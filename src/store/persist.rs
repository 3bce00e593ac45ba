//! Persisting facts, once for both backends: which rows each fact changes, inside the batch's
//! one transaction. The `match` over [`Fact`] is here, exhaustive on purpose, with no `_` arm:
//! a new fact does not compile until the store says what it keeps of it, and the facts that
//! store nothing are listed by name. So is what both backends decide alike (a kept archive,
//! an owner's leaving, the owners' table following the role, a cleared reaction, the
//! configuration's time, the rows a run of joins holds back, a receipt's completion). Each
//! backend gives its statements ([`Statements`]), one method a change of rows, and keeps
//! what it writes later in the batch (each one's run of posts, SQLite's message counts).

use jid::{BareJid, FullJid};

use super::joins::Joins;
use super::receipt::{self, ReceiptRows};
use super::Completion;
use crate::core::{
    AccessList, Corrected, Fact, Info, Micros, Nodes, Notice, Pending, Posted, Reacted, Retracted,
    Role, Settings,
};

/// A backend's statements for the facts of a batch, in its transaction. `'a` is the batch's:
/// a backend may hold rows to write them together.
pub(super) trait Statements<'a>: ReceiptRows {
    /// Archives a post, counted in its channel's total.
    fn post(&mut self, post: &'a Posted) -> Result<(), Self::Error>;
    /// A new channel's row, with its owner among its owners.
    fn create_channel(
        &mut self,
        key: i64,
        name: &str,
        owner: &BareJid,
        at: Micros,
        listed: bool,
    ) -> Result<(), Self::Error>;
    /// Channel `key`'s archive: its messages, and their receipts and reactions.
    fn delete_archive(&mut self, key: i64) -> Result<(), Self::Error>;
    /// Channel `key`'s row; what names it goes with it (foreign keys).
    fn delete_channel(&mut self, key: i64) -> Result<(), Self::Error>;
    /// Keeps the right of `owner`, which just left channel `key` itself, to delete that
    /// channel for a moment (`core/destroy.rs`), so that it survives a restart; drops expired
    /// ones. The time is the writer's clock (`columns::writer_now`).
    fn keep_departed_owner(&mut self, key: i64, owner: &BareJid) -> Result<(), Self::Error>;
    /// A participant's row, and its place among the owners. Its online clients go with it (a
    /// foreign key).
    fn delete_participant(&mut self, key: i64, jid: &BareJid) -> Result<(), Self::Error>;
    fn settings(&mut self, key: i64, settings: &Settings) -> Result<(), Self::Error>;
    /// Puts `entry` on (or, not `present`, takes it off) list `list`.
    fn access(
        &mut self,
        key: i64,
        list: AccessList,
        entry: &BareJid,
        present: bool,
    ) -> Result<(), Self::Error>;
    fn mute(&mut self, key: i64, jid: &BareJid, until: Micros) -> Result<(), Self::Error>;
    /// An invitation or request, replacing one of the same user.
    fn add_pending(&mut self, key: i64, pending: &Pending) -> Result<(), Self::Error>;
    fn remove_pending(&mut self, key: i64, jid: &BareJid) -> Result<(), Self::Error>;
    fn nick(&mut self, key: i64, jid: &BareJid, nick: &str) -> Result<(), Self::Error>;
    fn role(&mut self, key: i64, jid: &BareJid, role: Role) -> Result<(), Self::Error>;
    /// Puts `jid` among the channel's owners (or, not `owner`, takes it out).
    fn owner(&mut self, key: i64, jid: &BareJid, owner: bool) -> Result<(), Self::Error>;
    fn subscription(&mut self, key: i64, jid: &BareJid, nodes: Nodes) -> Result<(), Self::Error>;
    fn info(&mut self, key: i64, info: &Info) -> Result<(), Self::Error>;
    /// A notice's row is written with the run of joins ([`Joins`]); this is what else the
    /// backend keeps of it (notices are not in the channel's total).
    fn notice(&mut self, notice: &'a Notice) -> Result<(), Self::Error>;
    /// The channel's configuration changed at `at`, unless it is already later.
    fn configured(&mut self, key: i64, at: Micros) -> Result<(), Self::Error>;
    fn clear_history(&mut self, key: i64, member: &BareJid, upto: i64) -> Result<(), Self::Error>;
    /// Erases the retracted message's content and archives the retraction, counted in its
    /// channel's total (XEP-0424 §6: for clients that were away).
    fn retract(&mut self, retraction: &'a Retracted) -> Result<(), Self::Error>;
    fn correct(&mut self, correction: &Corrected) -> Result<(), Self::Error>;
    /// Every member's reactions to `message` (`Some(member)`: that member's).
    fn delete_reactions(
        &mut self,
        message: i64,
        member: Option<&BareJid>,
    ) -> Result<(), Self::Error>;
    /// Stores a member's reactions to a message (not empty), replacing what it had.
    fn store_reactions(&mut self, reactions: &Reacted) -> Result<(), Self::Error>;
    /// Archives the reactions as a message of their own (XEP-0444), counted in the channel's
    /// total.
    fn archive_reactions(&mut self, reactions: &'a Reacted) -> Result<(), Self::Error>;
    fn offline(&mut self, key: i64, client: &FullJid) -> Result<(), Self::Error>;
}

/// Writes one fact with the backend's statements `s`; the rows a join writes go to `joins`,
/// a receipt's completion to `completions`.
pub(super) fn persist<'a, S: Statements<'a>>(
    s: &mut S,
    fact: &'a Fact,
    joins: &mut Joins<'a>,
    completions: &mut Vec<Completion>,
) -> Result<(), S::Error> {
    match fact {
        Fact::Posted(p) => s.post(p)?,
        Fact::ChannelCreated {
            key,
            name,
            owner,
            at,
            listed,
        } => s.create_channel(*key, name, owner, *at, *listed)?,
        Fact::ChannelDestroyed {
            channel,
            archive_kept,
            ..
        } => {
            // A kept archive stays under the channel's key, which is never used again.
            if !archive_kept {
                s.delete_archive(channel.key)?;
            }
            s.delete_channel(channel.key)?;
        }
        Fact::Joined {
            key,
            participant,
            settles,
            again,
            ..
        } => {
            if *again {
                joins.rejoined.push((*key, participant));
            } else {
                joins.participants.push((*key, participant));
            }
            if *settles {
                joins.settled.push((*key, &*participant.jid));
            }
        }
        Fact::Left {
            key,
            participant,
            by,
        } => {
            if by == &participant.jid && participant.role == Role::Owner {
                s.keep_departed_owner(*key, by)?;
            }
            s.delete_participant(*key, &participant.jid)?;
        }
        Fact::SettingsChanged { key, settings, .. } => s.settings(*key, settings)?,
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            ..
        } => s.access(*key, *list, entry, *present)?,
        Fact::Muted {
            key, jid, until, ..
        } => s.mute(*key, jid, *until)?,
        Fact::PendingAdded { key, pending } => s.add_pending(*key, pending)?,
        Fact::PendingResolved { key, pending, .. } => s.remove_pending(*key, &pending.jid)?,
        Fact::NickChanged { key, jid, nick } => s.nick(*key, jid, nick)?,
        Fact::RoleChanged { key, jid, role, .. } => {
            s.role(*key, jid, *role)?;
            s.owner(*key, jid, *role == Role::Owner)?;
        }
        Fact::SubscriptionChanged { key, jid, nodes } => s.subscription(*key, jid, *nodes)?,
        Fact::InfoChanged { key, info, .. } => s.info(*key, info)?,
        Fact::Noticed(n) => {
            joins.notices.push(n);
            s.notice(n)?;
            if n.kind.changes_configuration() {
                s.configured(n.channel, n.at)?;
            }
        }
        Fact::HistoryCleared { key, member, upto } => s.clear_history(*key, member, *upto)?,
        Fact::Retracted(r) => {
            s.retract(r)?;
            s.delete_reactions(r.message, None)?;
        }
        Fact::Corrected(c) => s.correct(c)?,
        Fact::Reacted(r) => {
            if r.reactions.is_empty() {
                s.delete_reactions(r.message, Some(&r.member))?;
            } else {
                s.store_reactions(r)?;
            }
            s.archive_reactions(r)?;
        }
        Fact::Receipt(r) => receipt::record(s, r, completions)?,
        // Which clients are online outlives a restart (and a takeover): clients do not send
        // presence again by themselves. The row goes with its participant (a foreign key), so
        // leaving and deletion need no statement of their own here.
        Fact::PresenceChanged {
            key,
            jid,
            online: true,
        } => joins.online.push((*key, jid)),
        Fact::PresenceChanged {
            key,
            jid,
            online: false,
        } => s.offline(*key, jid)?,
        // Who is typing would be stale after a restart.
        Fact::ChatState { .. } => {}
    }
    Ok(())
}
