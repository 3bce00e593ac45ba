//! Persisting facts: the [`FactWriter`] side of the backend. Each fact becomes its
//! statements inside the batch's one transaction; receipts also say whether they completed a
//! message for its author.

use std::sync::OnceLock;
use std::time::Duration;

use jid::{BareJid, FullJid};
use rusqlite::{params, OptionalExtension};

use super::{deferred, SqliteWriter};
use crate::core::{
    bare_text, Fact, Notice, Participant, Posted, Receipt, ReceiptKind, Role, DEPARTED_OWNER_GRACE,
};
use crate::store::columns::{
    contacts_text, mode_code, writer_now, ACTION_REACTIONS, ACTION_RETRACTION,
};
use crate::store::{Completion, FactWriter};

impl FactWriter for SqliteWriter {
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
        let tx = self.conn.transaction()?;
        let mut after = AfterCommit::default();
        let mut archived = Archived::default();
        let mut joins = Joins::default();
        for fact in batch {
            // Whatever follows a run of joins may change their rows (a leave, a nick): the
            // run is written before any other fact.
            if !Joins::holds(fact) {
                joins.insert(&tx)?;
            }
            persist(&tx, fact, &mut after, &mut archived, &mut joins)?;
        }
        joins.insert(&tx)?;
        archived.count(&tx)?;
        let enter = archived.tail(&mut self.tail);
        if enter {
            deferred::enter(&tx)?;
        }
        tx.commit()?;
        if enter {
            self.tail.entered();
        }
        if after.erased {
            // The old page versions holding retracted content live on in the WAL until a
            // checkpoint overwrites the database and truncates the log.
            let conn = &self.conn;
            self.checkpoints
                .in_turn(|| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))?;
        }
        Ok(after.completions)
    }

    fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
        SqliteWriter::id_key(self)
    }

    fn checkpointed(&mut self) -> Option<Duration> {
        self.checkpoints.writer_took()
    }
}

/// What a batch's facts leave to do once their transaction is committed. [`persist`] fills
/// it from the same `match` that writes each fact, so what a fact needs after the commit is
/// decided where its statements are, not by a second look over the batch.
#[derive(Default)]
struct AfterCommit {
    /// Messages the batch's receipts made delivered to (or seen by) every member.
    completions: Vec<Completion>,
    /// A retraction erased content: the WAL must be checkpointed to drop the old pages.
    erased: bool,
}

/// Keeps the right of `owner`, which just left channel `key` itself, to delete that channel
/// for a moment (`core/destroy.rs`), so that it survives a restart; drops expired ones.
/// The time is the writer's clock ([`writer_now`]).
fn departed_owner(tx: &rusqlite::Transaction, key: i64, owner: &BareJid) -> rusqlite::Result<()> {
    let now = writer_now();
    tx.prepare_cached("DELETE FROM departed_owners WHERE at <= ?1")?
        .execute([now - DEPARTED_OWNER_GRACE])?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO departed_owners (channel, name, jid, at)
         SELECT key, name, ?2, ?3 FROM channels WHERE key = ?1",
    )?
    .execute(params![key, owner.as_str(), now])?;
    Ok(())
}

/// How many messages (or retractions, or reactions) a batch adds to each channel's archive,
/// and how many rows with its notices. The running totals answer MAM's `<count/>` without a
/// scan; they are raised once per channel at the end of the batch rather than once per
/// message, since nothing in the transaction reads them. The rows are what the channel's
/// tail above the watermark of deferred look-up entries grows by ([`deferred::Tail`]).
#[derive(Default)]
struct Archived(std::collections::BTreeMap<i64, Added>);

/// What a batch adds to one channel's archive.
#[derive(Default)]
struct Added {
    /// Messages, retractions and reactions: what `channels.message_count` counts.
    counted: i64,
    /// Rows: those and notices.
    rows: u32,
}

impl Archived {
    /// A message, a retraction or a reaction.
    fn one_more(&mut self, channel: i64) {
        let added = self.0.entry(channel).or_default();
        added.counted += 1;
        added.rows += 1;
    }

    /// A notice: a row that the running total leaves out.
    fn notice(&mut self, channel: i64) {
        self.0.entry(channel).or_default().rows += 1;
    }

    fn count(&self, tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
        let mut raise = tx.prepare_cached(
            "UPDATE channels SET message_count = message_count + ?2 WHERE key = ?1",
        )?;
        for (channel, added) in &self.0 {
            if added.counted > 0 {
                raise.execute([*channel, added.counted])?;
            }
        }
        Ok(())
    }

    /// Counts the batch's rows into `tail`; whether the deferred entries must be entered.
    fn tail(&self, tail: &mut deferred::Tail) -> bool {
        let mut enter = false;
        for (&channel, added) in &self.0 {
            enter |= tail.add(channel, added.rows);
        }
        enter
    }
}

/// A statement that writes many rows at once: `head`, then `row` once per row (comma
/// separated), then `tail`. [`Rows::run`] writes [`MANY_ROWS`] rows a statement and the rest
/// one by one, which spares SQLite a statement run per row (and the archive's AUTOINCREMENT
/// bookkeeping, done once per statement).
struct Rows {
    head: &'static str,
    row: &'static str,
    tail: &'static str,
    many: OnceLock<String>,
    one: OnceLock<String>,
}

/// Rows per multi-row statement (at most 9 parameters a row, far below SQLite's limit).
const MANY_ROWS: usize = 32;

impl Rows {
    const fn new(head: &'static str, row: &'static str, tail: &'static str) -> Rows {
        Rows {
            head,
            row,
            tail,
            many: OnceLock::new(),
            one: OnceLock::new(),
        }
    }

    fn sql(&self, rows: usize) -> String {
        let mut sql = String::from(self.head);
        for row in 0..rows {
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(self.row);
        }
        sql.push_str(self.tail);
        sql
    }

    /// Writes `items`, each bound as one row by `bind`, in order.
    fn run<T>(
        &self,
        tx: &rusqlite::Transaction,
        items: &[T],
        bind: impl Fn(&mut Binder<'_, '_>, &T) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let chunks = items.chunks_exact(MANY_ROWS);
        let rest = chunks.remainder();
        let many = self.many.get_or_init(|| self.sql(MANY_ROWS));
        for chunk in chunks {
            let mut statement = tx.prepare_cached(many)?;
            let mut binder = Binder {
                statement: &mut statement,
                next: 1,
            };
            for item in chunk {
                bind(&mut binder, item)?;
            }
            statement.raw_execute()?;
        }
        let one = self.one.get_or_init(|| self.sql(1));
        for item in rest {
            let mut statement = tx.prepare_cached(one)?;
            bind(
                &mut Binder {
                    statement: &mut statement,
                    next: 1,
                },
                item,
            )?;
            statement.raw_execute()?;
        }
        Ok(())
    }
}

/// Binds a multi-row statement's parameters in order.
struct Binder<'s, 'c> {
    statement: &'s mut rusqlite::CachedStatement<'c>,
    next: usize,
}

impl Binder<'_, '_> {
    fn bind(&mut self, value: impl rusqlite::ToSql) -> rusqlite::Result<&mut Self> {
        self.statement.raw_bind_parameter(self.next, value)?;
        self.next += 1;
        Ok(self)
    }
}

/// Inserts one post. One row a statement, not many ([`Rows`]): a statement that writes
/// several rows and names their archive ids (which SQLite checks are integers, so it may stop
/// half-way) is given a statement journal, a copy of every page it changes before it changes
/// it; a post changes a page of each of the archive's indexes in its channel, and those
/// copies cost more than the statements spared (docs/benchmarks.md, "Storing posts into many
/// small channels"). A statement of one row is never undone alone and keeps no journal.
/// Its look-up entries are deferred (`deferred.rs`): the row goes into `(channel, id)` (and
/// the media index if it shares a file) only.
fn insert_post(tx: &rusqlite::Transaction, post: &Posted) -> rusqlite::Result<()> {
    let s = &post.submission;
    tx.prepare_cached(
        "INSERT INTO messages (id, channel, at, sender, nick, origin_id, client_id, media, content, deferred)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)",
    )?
    .execute(params![
        post.id,
        post.channel,
        post.at,
        post.sender.as_str(),
        post.nick,
        s.origin_id,
        s.client_id,
        s.media,
        s.content
    ])?;
    Ok(())
}

/// The rows a run of joins writes, not yet written: each participant, the pending invitation
/// or request its join settles, the notices (an add's, a join's) and the clients that came
/// online with their join. A join used to cost four statements; held, a run of them costs
/// four per [`MANY_ROWS`]. Written before any other fact (see `commit`), participants first:
/// a client's presence row names its participant's.
#[derive(Default)]
struct Joins<'a> {
    participants: Vec<(i64, &'a Participant)>,
    notices: Vec<&'a Notice>,
    online: Vec<(i64, &'a FullJid)>,
}

// Joining again updates the row and keeps what the join does not say (a mute); a
// participant joining twice in one statement is updated row after row, the last one standing.
static PARTICIPANTS: Rows = Rows::new(
    "INSERT INTO participants (channel, jid, id, nick, nodes, role, dialect, joined_at, cleared_upto) VALUES ",
    "(?,?,?,?,?,?,?,?,?)",
    " ON CONFLICT (channel, jid) DO UPDATE SET id = excluded.id, nick = excluded.nick,
     nodes = excluded.nodes, role = excluded.role, dialect = excluded.dialect,
     joined_at = excluded.joined_at, cleared_upto = excluded.cleared_upto",
);
static SETTLED: Rows = Rows::new(
    "DELETE FROM pending WHERE (channel, jid) IN (VALUES ",
    "(?,?)",
    ")",
);
static NOTICES: Rows = Rows::new(
    "INSERT INTO messages (id, channel, at, sender, nick, content, notice, notice_target) VALUES ",
    "(?,?,?,?,'','',?,?)",
    "",
);
static ONLINE: Rows = Rows::new(
    "INSERT OR IGNORE INTO presence (channel, jid, resource) VALUES ",
    "(?,?,?)",
    "",
);

impl<'a> Joins<'a> {
    /// Whether `fact` is one a run of joins holds back.
    fn holds(fact: &Fact) -> bool {
        matches!(
            fact,
            Fact::Joined { .. } | Fact::Noticed(_) | Fact::PresenceChanged { online: true, .. }
        )
    }

    fn insert(&mut self, tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
        PARTICIPANTS.run(tx, &self.participants, |b, (key, p)| {
            b.bind(key)?
                .bind(p.jid.as_str())?
                .bind(&*p.id.hex())?
                .bind(p.nick.as_str())?
                .bind(p.nodes.0)?
                .bind(p.role as i64)?
                .bind(mode_code(p))?
                .bind(p.joined_at)?
                .bind(p.cleared_upto)?;
            Ok(())
        })?;
        SETTLED.run(tx, &self.participants, |b, (key, p)| {
            b.bind(key)?.bind(p.jid.as_str())?;
            Ok(())
        })?;
        NOTICES.run(tx, &self.notices, |b, n| {
            b.bind(n.id)?
                .bind(n.channel)?
                .bind(n.at)?
                .bind(n.actor.as_str())?
                .bind(n.kind as i64)?
                .bind(n.target.as_ref().map(|t| t.as_str()))?;
            Ok(())
        })?;
        ONLINE.run(tx, &self.online, |b, (key, client)| {
            b.bind(key)?
                .bind(bare_text(client.as_str()))?
                .bind(client.resource().as_str())?;
            Ok(())
        })?;
        self.participants.clear();
        self.notices.clear();
        self.online.clear();
        Ok(())
    }
}

/// Writes one fact. The `match` is exhaustive on purpose, with no `_` arm: a new [`Fact`]
/// variant does not compile until the store says what it keeps of it, and the facts that
/// store nothing are listed by name.
fn persist<'a>(
    tx: &rusqlite::Transaction,
    fact: &'a Fact,
    after: &mut AfterCommit,
    archived: &mut Archived,
    joins: &mut Joins<'a>,
) -> rusqlite::Result<()> {
    match fact {
        Fact::Posted(p) => {
            insert_post(tx, p)?;
            archived.one_more(p.channel);
        }
        Fact::ChannelCreated {
            key,
            name,
            owner,
            at,
            listed,
        } => {
            tx.prepare_cached(
                "INSERT INTO channels (key, name, created_by, created_at, info_updated_at, listed)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            )?
            .execute(params![key, name, owner.as_str(), at, listed])?;
            tx.prepare_cached("INSERT INTO channel_owners (channel, jid) VALUES (?1, ?2)")?
                .execute(params![key, owner.as_str()])?;
        }
        Fact::ChannelDestroyed {
            channel,
            archive_kept,
            ..
        } => {
            // A kept archive stays under the channel's key, which is never used again.
            if !archive_kept {
                for table in ["receipts", "reactions"] {
                    tx.prepare_cached(&format!(
                        "DELETE FROM {table} WHERE message IN (SELECT id FROM messages WHERE channel = ?1)"
                    ))?
                    .execute([channel.key])?;
                }
                tx.prepare_cached("DELETE FROM messages WHERE channel = ?1")?
                    .execute([channel.key])?;
            }
            tx.prepare_cached("DELETE FROM channels WHERE key = ?1")?
                .execute([channel.key])?;
        }
        Fact::Joined {
            key, participant, ..
        } => joins.participants.push((*key, participant)),
        Fact::Left {
            key,
            participant,
            by,
        } => {
            if by == &participant.jid && participant.role == Role::Owner {
                departed_owner(tx, *key, by)?;
            }
            tx.prepare_cached("DELETE FROM participants WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, participant.jid.as_str()])?;
            tx.prepare_cached("DELETE FROM channel_owners WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, participant.jid.as_str()])?;
        }
        Fact::SettingsChanged { key, settings, .. } => {
            tx.prepare_cached(
                "UPDATE channels SET join_policy = ?2, muted = ?3, max_members = ?4, jids_hidden = ?5
                 WHERE key = ?1",
            )?
            .execute(params![
                key,
                settings.policy as i64,
                settings.muted,
                settings.max_members.map(|m| m as i64),
                settings.jids_hidden
            ])?;
        }
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            ..
        } => {
            let sql = if *present {
                "INSERT OR IGNORE INTO channel_access (channel, list, entry) VALUES (?1, ?2, ?3)"
            } else {
                "DELETE FROM channel_access WHERE channel = ?1 AND list = ?2 AND entry = ?3"
            };
            tx.prepare_cached(sql)?
                .execute(params![key, *list as i64, entry.as_str()])?;
        }
        Fact::Muted {
            key, jid, until, ..
        } => {
            tx.prepare_cached(
                "UPDATE participants SET muted_until = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, jid.as_str(), until])?;
        }
        Fact::PendingAdded { key, pending: p } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO pending (channel, jid, kind, by, at, dialect) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![key, p.jid.as_str(), p.kind as i64, p.by.as_str(), p.at, p.dialect as i64])?;
        }
        Fact::PendingResolved { key, pending, .. } => {
            tx.prepare_cached("DELETE FROM pending WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, pending.jid.as_str()])?;
        }
        Fact::NickChanged { key, jid, nick } => {
            tx.prepare_cached("UPDATE participants SET nick = ?3 WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, jid.as_str(), nick])?;
        }
        Fact::RoleChanged { key, jid, role, .. } => {
            tx.prepare_cached("UPDATE participants SET role = ?3 WHERE channel = ?1 AND jid = ?2")?
                .execute(params![key, jid.as_str(), *role as i64])?;
            let owners = if *role == Role::Owner {
                "INSERT OR IGNORE INTO channel_owners (channel, jid) VALUES (?1, ?2)"
            } else {
                "DELETE FROM channel_owners WHERE channel = ?1 AND jid = ?2"
            };
            tx.prepare_cached(owners)?
                .execute(params![key, jid.as_str()])?;
        }
        Fact::SubscriptionChanged { key, jid, nodes } => {
            tx.prepare_cached(
                "UPDATE participants SET nodes = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, jid.as_str(), nodes.0])?;
        }
        Fact::InfoChanged { key, info, .. } => {
            tx.prepare_cached(
                "UPDATE channels SET info_name = ?2, info_description = ?3, info_contacts = ?4,
                 info_updated_at = ?5, info_avatar = ?6, info_thumbnail = ?7, info_history = ?8,
                 info_avatar_type = ?9
                 WHERE key = ?1",
            )?
            .execute(params![
                key,
                info.name,
                info.description,
                contacts_text(&info.contacts),
                info.updated_at,
                info.avatar,
                info.thumbnail,
                info.history_visible,
                info.avatar_type
            ])?;
        }
        Fact::Noticed(n) => {
            joins.notices.push(n);
            archived.notice(n.channel);
            if n.kind.changes_configuration() {
                tx.prepare_cached(
                    "UPDATE channels SET config_updated_at = max(config_updated_at, ?2) WHERE key = ?1",
                )?
                .execute(params![n.channel, n.at])?;
            }
        }
        Fact::HistoryCleared { key, member, upto } => {
            tx.prepare_cached(
                "UPDATE participants SET cleared_upto = ?3 WHERE channel = ?1 AND jid = ?2",
            )?
            .execute(params![key, member.as_str(), upto])?;
        }
        Fact::Retracted(r) => {
            tx.prepare_cached(
                "UPDATE messages SET content = '', edited_at = NULL, retracted_at = ?2, retracted_by = ?3,
                 moderated = ?4, moderation_reason = ?5, retraction = ?6 WHERE id = ?1",
            )?
            .execute(params![
                r.message,
                r.at,
                r.by.as_str(),
                r.moderated.is_some(),
                r.moderated.clone().flatten(),
                r.id
            ])?;
            // XEP-0424 §6: the retraction is archived too, for clients that were away.
            tx.prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, content, moderated, moderation_reason,
                 action, action_target) VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                r.id,
                r.channel,
                r.at,
                r.by.as_str(),
                r.by_nick,
                r.moderated.is_some(),
                r.moderated.clone().flatten(),
                ACTION_RETRACTION,
                r.message
            ])?;
            archived.one_more(r.channel);
            tx.prepare_cached("DELETE FROM reactions WHERE message = ?1")?
                .execute([r.message])?;
            after.erased = true;
        }
        Fact::Corrected(c) => {
            tx.prepare_cached(
                "UPDATE messages SET content = ?2, media = ?3, edited_at = ?4 WHERE id = ?1",
            )?
            .execute(params![
                c.message,
                c.submission.content,
                c.submission.media,
                c.at
            ])?;
        }
        Fact::Reacted(r) => {
            if r.reactions.is_empty() {
                tx.prepare_cached("DELETE FROM reactions WHERE message = ?1 AND member = ?2")?
                    .execute(params![r.message, r.member.as_str()])?;
            } else {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO reactions (message, member, reactions, at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![r.message, r.member.as_str(), r.reactions.join("\n"), r.at])?;
            }
            // XEP-0444: the reactions are a message of their own, archived like one.
            tx.prepare_cached(
                "INSERT INTO messages (id, channel, at, sender, nick, content, action, action_target)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                r.id,
                r.channel,
                r.at,
                r.member.as_str(),
                r.nick,
                r.reactions.join("\n"),
                ACTION_REACTIONS,
                r.message
            ])?;
            archived.one_more(r.channel);
        }
        Fact::Receipt(r) => record_receipt(tx, r, &mut after.completions)?,
        // Which clients are online outlives a restart: clients do not send presence again by
        // themselves. The row goes with its participant (a foreign key), so leaving and
        // deletion need no statement of their own here.
        Fact::PresenceChanged {
            key,
            jid,
            online: true,
        } => joins.online.push((*key, jid)),
        Fact::PresenceChanged {
            key,
            jid,
            online: false,
        } => {
            tx.prepare_cached(
                "DELETE FROM presence WHERE channel = ?1 AND jid = ?2 AND resource = ?3",
            )?
            .execute(params![
                key,
                jid.to_bare().as_str(),
                jid.resource().as_str()
            ])?;
        }
        // Who is typing would be stale after a restart.
        Fact::ChatState { .. } => {}
    }
    Ok(())
}

/// Records a receipt, and notes a completion when it is the one that makes the message
/// delivered to (or seen by) as many members as were expected.
fn record_receipt(
    tx: &rusqlite::Transaction,
    r: &Receipt,
    completions: &mut Vec<Completion>,
) -> rusqlite::Result<()> {
    let existing: Option<(Option<i64>, Option<i64>)> = tx
        .prepare_cached(
            "SELECT delivered_at, displayed_at FROM receipts WHERE message = ?1 AND member = ?2",
        )?
        .query_row(params![r.message, r.member.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let (delivered, displayed) = existing.unwrap_or((None, None));
    let new_delivered = delivered.or(Some(r.at));
    let new_displayed = match r.kind {
        ReceiptKind::Displayed => displayed.or(Some(r.at)),
        ReceiptKind::Delivered => displayed,
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO receipts (message, member, delivered_at, displayed_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![r.message, r.member.as_str(), new_delivered, new_displayed])?;
    for (kind, before, after, column) in [
        (
            ReceiptKind::Delivered,
            delivered,
            new_delivered,
            "delivered_at",
        ),
        (
            ReceiptKind::Displayed,
            displayed,
            new_displayed,
            "displayed_at",
        ),
    ] {
        if before.is_none() && after.is_some() {
            let count: i64 = tx
                .prepare_cached(&format!(
                    "SELECT count(*) FROM receipts WHERE message = ?1 AND {column} IS NOT NULL AND member != ?2"
                ))?
                .query_row(params![r.message, r.author.as_str()], |row| row.get(0))?;
            if count as usize == r.expected {
                completions.push(Completion {
                    channel: r.channel,
                    message: r.message,
                    client_id: r.client_id.clone(),
                    author: r.author.clone(),
                    kind,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::core::testing::{jid, text};
    use crate::core::{Groups, Nodes, NoticeKind, ReceiptKind, Submission};
    use crate::store::{Page, Reader};

    #[test]
    fn retraction_erases_content_from_the_files() {
        let (dir, mut w, r, mut g) = coven();
        let secret = Submission {
            content: "<body>SECRET-PAYLOAD-42</body>".into(),
            ..Submission::default()
        };
        commit(
            &mut w,
            g.post("coven", &jid("bob@localhost"), secret, 1).unwrap(),
        );
        let m = target(&r, "1");
        commit(
            &mut w,
            g.retract("coven", &jid("bob@localhost"), Some(&m), None, 5)
                .unwrap(),
        );
        let page = r.history(&query(Page::First, 10)).unwrap();
        let tombstone = page.messages[0].retraction.as_ref().unwrap();
        assert_eq!((tombstone.at, tombstone.moderated.clone()), (5, None));
        assert_eq!(page.messages[0].posted.submission.content, "");
        assert!(target(&r, "1").retracted);
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(!bytes.windows(17).any(|w| w == b"SECRET-PAYLOAD-42"));
        }
    }

    #[test]
    fn receipts_complete_once_every_member_has_the_message() {
        let (_dir, mut w, r, mut g) = coven();
        commit(
            &mut w,
            g.join("coven", &jid("carol@localhost"), None, Nodes::ALL, 4)
                .unwrap()
                .1,
        );
        commit(
            &mut w,
            g.post("coven", &jid("alice@localhost"), text("hi"), 5)
                .unwrap(),
        );
        let m = target(&r, "o-hi");
        let receipt = |g: &mut Groups, who: &str, kind| {
            g.receipt("coven", &jid(who), Some(&m), kind, 6).unwrap()
        };
        assert!(commit(
            &mut w,
            receipt(&mut g, "bob@localhost", ReceiptKind::Delivered)
        )
        .is_empty());
        // Carol's "seen" implies delivered: delivered to everyone, not yet seen by everyone.
        let done = commit(
            &mut w,
            receipt(&mut g, "carol@localhost", ReceiptKind::Displayed),
        );
        assert_eq!(
            done.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [ReceiptKind::Delivered]
        );
        assert_eq!(done[0].author, jid("alice@localhost"));
        assert!(commit(
            &mut w,
            receipt(&mut g, "carol@localhost", ReceiptKind::Displayed)
        )
        .is_empty());
        let done = commit(
            &mut w,
            receipt(&mut g, "bob@localhost", ReceiptKind::Displayed),
        );
        assert_eq!(
            done.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [ReceiptKind::Displayed]
        );
        let state = r.receipts(m.id).unwrap();
        assert_eq!(state.len(), 2);
        assert!(state
            .iter()
            .all(|s| s.delivered_at.is_some() && s.displayed_at.is_some()));
    }

    /// A batch of joins is written as runs of many rows (`Joins`); whatever else the batch
    /// holds between them must still see them in order. Stored, the batch loads back as the
    /// core has it.
    #[test]
    fn a_batch_of_joins_with_other_facts_between_them_loads_back_as_decided() {
        let (_dir, mut w, r, mut g) = coven();
        g.rules.max_members = 1000;
        let alice = jid("alice@localhost");
        let users: Vec<jid::Jid> = (0..40)
            .map(|n| format!("user{n}@localhost/phone").parse().unwrap())
            .collect();
        let invited = users[3].to_bare();
        commit(
            &mut w,
            g.invite("coven", &alice, std::slice::from_ref(&invited), 3)
                .unwrap()
                .1,
        );
        let mut batch = Vec::new();
        // More joins than one multi-row statement takes, each client online with its join.
        // At times in the order of joining, as the store loads them back.
        for (at, user) in (10..).zip(&users) {
            let joined = g.join_from("coven", user, None, Nodes::MESSAGES, at);
            batch.extend(joined.unwrap().1);
        }
        // One joins again (the same row twice in a run), one leaves (which ends the run),
        // one more joins after the leave, and a client goes offline.
        let again = &users[5];
        batch.extend(
            g.join_from("coven", again, Some("fifth"), Nodes::ALL, 60)
                .unwrap()
                .1,
        );
        batch.extend(g.leave("coven", &users[7].to_bare(), 61).unwrap());
        batch.extend(
            g.join("coven", &users[7].to_bare(), None, Nodes::ALL, 62)
                .unwrap()
                .1,
        );
        let offline = users[9].try_as_full().unwrap().clone();
        batch.extend(g.presence("coven", &offline, false).unwrap());
        commit(&mut w, batch);
        let stored = r.snapshot().unwrap();
        let decided = g.channel("coven").unwrap();
        assert_eq!(stored.channels[0].participants, decided.participants);
        assert_eq!(
            stored.channels[0]
                .participants
                .iter()
                .map(|p| p.online.len())
                .sum::<usize>(),
            users.len() - 2,
            "the leaver's client went with it, and one went offline"
        );
        assert!(stored.channels[0].pending(&invited).is_none());
        let mut notices = query(Page::First, 100);
        notices.with_notices = true;
        let added = r
            .history(&notices)
            .unwrap()
            .messages
            .iter()
            .filter(|m| matches!(m.notice, Some((NoticeKind::Added, _))))
            .count();
        assert_eq!(
            added,
            2 + users.len() + 1,
            "alice, bob, the users, the one back"
        );
    }

    #[test]
    fn presence_is_kept_and_goes_with_its_participant() {
        let (_dir, mut w, r, mut g) = coven();
        let online = |r: &crate::store::sqlite::SqliteReader, who: &str| {
            let snap = r.snapshot().unwrap();
            snap.channels[0]
                .participant(&jid(who))
                .map(|p| p.online.iter().cloned().collect::<Vec<_>>())
        };
        let phone = jid::FullJid::new("bob@localhost/phone").unwrap();
        let pc = jid::FullJid::new("bob@localhost/pc").unwrap();
        let mut facts = g.presence("coven", &phone, true).unwrap();
        facts.extend(g.presence("coven", &pc, true).unwrap());
        commit(&mut w, facts);
        assert_eq!(
            online(&r, "bob@localhost"),
            Some(vec![pc.clone(), phone.clone()])
        );
        commit(&mut w, g.bounced(&pc));
        assert_eq!(online(&r, "bob@localhost"), Some(vec![phone.clone()]));
        // Joining again keeps the row; leaving takes it away.
        commit(
            &mut w,
            g.join("coven", &jid("bob@localhost"), None, Nodes::MESSAGES, 5)
                .unwrap()
                .1,
        );
        assert_eq!(online(&r, "bob@localhost"), Some(vec![phone.clone()]));
        commit(&mut w, g.leave("coven", &jid("bob@localhost"), 6).unwrap());
        assert_eq!(online(&r, "bob@localhost"), None);
        commit(
            &mut w,
            g.join("coven", &jid("bob@localhost"), None, Nodes::ALL, 7)
                .unwrap()
                .1,
        );
        assert_eq!(online(&r, "bob@localhost"), Some(vec![]));
        // And the channel's deletion takes every row.
        let alice = jid::FullJid::new("alice@localhost/laptop").unwrap();
        commit(&mut w, g.presence("coven", &alice, true).unwrap());
        commit(
            &mut w,
            g.destroy(&jid("alice@localhost"), "coven", 9).unwrap(),
        );
        assert!(r.snapshot().unwrap().channels.is_empty());
        let rows: i64 = w
            .conn
            .query_row("SELECT count(*) FROM presence", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn destroy_removes_the_archive() {
        let (_dir, mut w, r, mut g) = coven();
        post_many(&mut w, &mut g, 2);
        commit(
            &mut w,
            g.destroy(&jid("alice@localhost"), "coven", 9).unwrap(),
        );
        assert!(r.snapshot().unwrap().channels.is_empty());
        assert_eq!(r.history(&query(Page::First, 5)).unwrap().count, 0);
        assert_eq!(r.snapshot().unwrap().last_message_id, abs(2));
    }

    #[test]
    fn a_kept_archive_outlives_its_channel() {
        let (_dir, mut w, r, mut g) = coven();
        g.rules.keep_archive = true;
        post_many(&mut w, &mut g, 2);
        commit(
            &mut w,
            g.destroy(&jid("alice@localhost"), "coven", 9).unwrap(),
        );
        assert!(r.snapshot().unwrap().channels.is_empty());
        let mut all = query(Page::First, 10);
        all.with_notices = true;
        let kept = r.history(&all).unwrap();
        assert_eq!(
            kept.messages.len(),
            6,
            "created, two joins, two messages, deleted"
        );
        assert!(matches!(
            kept.messages.last().unwrap().notice,
            Some((NoticeKind::Deleted, _))
        ));
    }
}
