//! Persisting facts: the [`FactWriter`] side of the backend. Each fact becomes its
//! statements inside the batch's one transaction, which first checks the fence; receipts also
//! say whether they completed a message for its author. The statements are SQLite's
//! (`sqlite/write.rs`) in PostgreSQL's words, fact for fact.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use jid::{BareJid, FullJid};
use postgres::types::ToSql;
use postgres::Statement;

use super::{connect, off_runtime, Conn, Detached, PgWriter};
use crate::core::{Fact, Notice, Participant, Receipt, ReceiptKind, Role, DEPARTED_OWNER_GRACE};
use crate::store::columns::{
    contacts_text, id_key_from, mode_code, new_id_key, writer_now, ACTION_REACTIONS,
    ACTION_RETRACTION,
};
use crate::store::{Completion, FactWriter};

/// This instance's epoch is no longer the fence's: a standby took over.
#[derive(Debug, thiserror::Error)]
#[error("another mixd took over this database (the fence is past epoch {0})")]
pub(super) struct Fenced(pub i64);

impl FactWriter for PgWriter {
    fn commit(&mut self, batch: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
        if self.conn.client.is_closed() {
            // The server restarted or dropped us: a new session, with this one's settings.
            let mut client = connect(&self.config, "the writer")?;
            client.batch_execute(&format!("SET synchronous_commit = {}", self.sync))?;
            self.conn = Detached::new(Conn::new(client));
        }
        let Conn { client, statements } = &mut *self.conn;
        let mut tx = Tx {
            tx: client.transaction()?,
            statements,
        };
        // First, so that the fence row stays locked until this commit: a standby raising the
        // epoch waits for it, and every transaction after the raise finds no row of ours.
        if tx.execute(
            "UPDATE fence SET epoch = epoch WHERE epoch = $1",
            &[&self.epoch],
        )? == 0
        {
            drop(tx);
            return Err(self.fenced());
        }
        let mut after = AfterCommit::default();
        let mut posts = Posts::default();
        let mut joins = Joins::default();
        for fact in batch {
            // Posts wait to be inserted together; anything else may refer to them, so they are
            // written first. Whatever follows a run of joins may change their rows (a leave,
            // a nick): the run is written before any other fact too.
            if !matches!(fact, Fact::Posted(_)) {
                posts.flush(&mut tx)?;
            }
            if !Joins::holds(fact) {
                joins.flush(&mut tx)?;
            }
            persist(&mut tx, fact, &mut posts, &mut joins, &mut after)?;
        }
        posts.flush(&mut tx)?;
        joins.flush(&mut tx)?;
        for (name, last) in [
            ("channels", after.last_channel),
            ("messages", after.last_message),
        ] {
            if let Some(last) = last {
                tx.execute(
                    "UPDATE sequences SET last = GREATEST(last, $2) WHERE name = $1",
                    &[&name, &last],
                )?;
            }
        }
        tx.tx.commit().context("committing")?;
        Ok(after.completions)
    }

    /// Read (or made) where the service asks for it, inside its runtime: the client's
    /// blocking calls go to a plain thread ([`off_runtime`]).
    fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
        let conn = &mut *self.conn;
        off_runtime(move || {
            let read = |conn: &mut Conn| -> anyhow::Result<Option<Vec<u8>>> {
                Ok(conn
                    .client
                    .query_opt("SELECT value FROM meta WHERE name = 'id_key'", &[])?
                    .map(|row| row.try_get(0))
                    .transpose()?)
            };
            let stored = match read(conn)? {
                Some(stored) => stored,
                None => {
                    let key = new_id_key()?;
                    conn.client.execute(
                        "INSERT INTO meta (name, value) VALUES ('id_key', $1) ON CONFLICT DO NOTHING",
                        &[&&key[..]],
                    )?;
                    read(conn)?.context("the id key was not stored")?
                }
            };
            id_key_from(stored)
        })
    }

    /// PostgreSQL checkpoints on its own processes: the writer never runs one.
    fn checkpointed(&mut self) -> Option<std::time::Duration> {
        None
    }
}

impl PgWriter {
    /// A standby took over: this instance must not go on serving what it can no longer store.
    /// It stops, which also frees its component connection for the new active instance.
    fn fenced(&self) -> anyhow::Error {
        let error = Fenced(self.epoch);
        if self.exit_when_fenced {
            tracing::error!(%error, "stopping: this instance is no longer the active one");
            std::process::exit(1);
        }
        error.into()
    }
}

/// A transaction and the connection's prepared statements.
struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn execute(&mut self, sql: &str, params: &Params) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, params)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &Params,
    ) -> Result<Option<postgres::Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_opt(&statement, params)
    }

    fn query_one(&mut self, sql: &str, params: &Params) -> Result<postgres::Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_one(&statement, params)
    }
}

/// Consecutive posts of a batch, inserted with one statement for all their rows and one for
/// their channels' counts, instead of two round trips per message.
#[derive(Default)]
struct Posts<'a> {
    id: Vec<i64>,
    channel: Vec<i64>,
    at: Vec<i64>,
    sender: Vec<&'a str>,
    nick: Vec<&'a str>,
    origin_id: Vec<Option<&'a str>>,
    client_id: Vec<Option<&'a str>>,
    media: Vec<bool>,
    content: Vec<&'a str>,
}

impl<'a> Posts<'a> {
    fn push(&mut self, p: &'a crate::core::Posted) {
        let s = &p.submission;
        self.id.push(p.id);
        self.channel.push(p.channel);
        self.at.push(p.at);
        self.sender.push(p.sender.as_str());
        self.nick.push(&p.nick);
        self.origin_id.push(s.origin_id.as_deref());
        self.client_id.push(s.client_id.as_deref());
        self.media.push(s.media);
        self.content.push(&s.content);
    }

    fn flush(&mut self, tx: &mut Tx) -> Result<(), postgres::Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO messages (id, channel, at, sender, nick, origin_id, client_id, media, content)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::boolean[], $9::text[])",
            &[
                &self.id,
                &self.channel,
                &self.at,
                &self.sender,
                &self.nick,
                &self.origin_id,
                &self.client_id,
                &self.media,
                &self.content,
            ],
        )?;
        tx.execute(
            "UPDATE channels SET message_count = message_count + posted.n
             FROM (SELECT channel, count(*) AS n FROM unnest($1::bigint[]) AS channel GROUP BY channel) AS posted
             WHERE key = posted.channel",
            &[&self.channel],
        )?;
        *self = Posts::default();
        Ok(())
    }
}

/// The rows a run of joins writes, not yet written (as the SQLite backend's `Joins`): each
/// participant, the pending invitation or request its join settles, the notices (an add's, a
/// join's) and the clients that came online with their join. A join used to cost four round
/// trips; held, a run of them costs four statements, each with its rows as arrays (as
/// [`Posts`]). Written before any other fact (see `commit`), participants first: a client's
/// presence row names its participant's.
#[derive(Default)]
struct Joins<'a> {
    participants: Vec<(i64, &'a Participant)>,
    notices: Vec<&'a Notice>,
    online: Vec<(i64, &'a FullJid)>,
}

impl<'a> Joins<'a> {
    /// Whether `fact` is one a run of joins holds back.
    fn holds(fact: &Fact) -> bool {
        matches!(
            fact,
            Fact::Joined { .. } | Fact::Noticed(_) | Fact::PresenceChanged { online: true, .. }
        )
    }

    fn flush(&mut self, tx: &mut Tx) -> Result<(), postgres::Error> {
        if !self.participants.is_empty() {
            self.insert_participants(tx)?;
        }
        if !self.notices.is_empty() {
            let column = |f: fn(&Notice) -> i64| -> Vec<i64> {
                self.notices.iter().map(|&n| f(n)).collect()
            };
            let sender: Vec<&str> = self.notices.iter().map(|n| n.actor.as_str()).collect();
            let target: Vec<Option<&str>> = self
                .notices
                .iter()
                .map(|n| n.target.as_ref().map(|t| t.as_str()))
                .collect();
            tx.execute(
                "INSERT INTO messages (id, channel, at, sender, nick, content, notice, notice_target)
                 SELECT id, channel, at, sender, '', '', notice, target
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[])
                      AS rows (id, channel, at, sender, notice, target)",
                &[
                    &column(|n| n.id),
                    &column(|n| n.channel),
                    &column(|n| n.at),
                    &sender,
                    &column(|n| n.kind as i64),
                    &target,
                ],
            )?;
        }
        if !self.online.is_empty() {
            let channel: Vec<i64> = self.online.iter().map(|(key, _)| *key).collect();
            let (jid, resource): (Vec<&str>, Vec<&str>) = self
                .online
                .iter()
                .map(|(_, client)| bare_and_resource(client))
                .unzip();
            tx.execute(
                "INSERT INTO presence (channel, jid, resource)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
                 ON CONFLICT DO NOTHING",
                &[&channel, &jid, &resource],
            )?;
        }
        self.participants.clear();
        self.notices.clear();
        self.online.clear();
        Ok(())
    }

    /// The participants' rows, and the pending entries their joins settle.
    fn insert_participants(&self, tx: &mut Tx) -> Result<(), postgres::Error> {
        // One statement may not update a row twice (`ON CONFLICT DO UPDATE`): of a
        // participant who joined twice in the run, the last join stands.
        let mut seen = HashSet::new();
        let last: Vec<(i64, &Participant)> = self
            .participants
            .iter()
            .rev()
            .filter(|(key, p)| seen.insert((*key, p.jid.as_str())))
            .copied()
            .collect();
        let column = |f: fn(i64, &Participant) -> i64| -> Vec<i64> {
            last.iter().map(|&(key, p)| f(key, p)).collect()
        };
        let channel = column(|key, _| key);
        let jid: Vec<&str> = last.iter().map(|(_, p)| p.jid.as_str()).collect();
        // Joining again updates the row and keeps what the join does not say (a mute).
        tx.execute(
            "INSERT INTO participants (channel, jid, id, nick, nodes, role, dialect, joined_at, cleared_upto)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                  $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
             ON CONFLICT (channel, jid) DO UPDATE SET id = excluded.id, nick = excluded.nick,
             nodes = excluded.nodes, role = excluded.role, dialect = excluded.dialect,
             joined_at = excluded.joined_at, cleared_upto = excluded.cleared_upto",
            &[
                &channel,
                &jid,
                &last.iter().map(|(_, p)| p.id.to_string()).collect::<Vec<_>>(),
                &last.iter().map(|(_, p)| p.nick.as_str()).collect::<Vec<_>>(),
                &column(|_, p| i64::from(p.nodes.0)),
                &column(|_, p| p.role as i64),
                &column(|_, p| mode_code(p)),
                &column(|_, p| p.joined_at),
                &column(|_, p| p.cleared_upto),
            ],
        )?;
        tx.execute(
            "DELETE FROM pending WHERE (channel, jid) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))",
            &[&channel, &jid],
        )?;
        Ok(())
    }
}

/// A client's bare JID and resource, as borrowed text (the bare JID ends at the first '/').
fn bare_and_resource(client: &FullJid) -> (&str, &str) {
    let resource = client.resource().as_str();
    let whole = client.as_str();
    (&whole[..whole.len() - resource.len() - 1], resource)
}

/// What a batch's facts leave to do before and after their transaction commits.
#[derive(Default)]
struct AfterCommit {
    /// Messages the batch's receipts made delivered to (or seen by) every member.
    completions: Vec<Completion>,
    /// The highest channel key and archive id the batch used, for `sequences`.
    last_channel: Option<i64>,
    last_message: Option<i64>,
}

/// One more retraction or reactions in `channel`'s archive: its running total answers MAM's
/// `<count/>` without a scan (posts are counted by the batch, [`Posts::flush`]).
fn count_archived(tx: &mut Tx, channel: i64) -> Result<(), postgres::Error> {
    tx.execute(
        "UPDATE channels SET message_count = message_count + 1 WHERE key = $1",
        &[&channel],
    )?;
    Ok(())
}

fn raise(last: &mut Option<i64>, value: i64) {
    *last = Some(last.map_or(value, |l| l.max(value)));
}

/// Keeps the right of `owner`, which just left channel `key` itself, to delete that channel
/// for a moment (`core/destroy.rs`), so that it survives a restart or a takeover; drops
/// expired ones. The time is the writer's clock ([`writer_now`]).
fn departed_owner(tx: &mut Tx, key: i64, owner: &BareJid) -> Result<(), postgres::Error> {
    let now = writer_now();
    tx.execute(
        "DELETE FROM departed_owners WHERE at <= $1",
        &[&(now - DEPARTED_OWNER_GRACE)],
    )?;
    tx.execute(
        "INSERT INTO departed_owners (channel, name, jid, at)
         SELECT key, name, $2, $3 FROM channels WHERE key = $1
         ON CONFLICT (channel, jid) DO UPDATE SET name = excluded.name, at = excluded.at",
        &[&key, &owner.as_str(), &now],
    )?;
    Ok(())
}

/// Writes one fact (a post joins `posts`, a join's rows `joins`, written by the caller).
/// Exhaustive on purpose, with no `_` arm, as in the SQLite backend.
fn persist<'a>(
    tx: &mut Tx,
    fact: &'a Fact,
    posts: &mut Posts<'a>,
    joins: &mut Joins<'a>,
    after: &mut AfterCommit,
) -> Result<(), postgres::Error> {
    match fact {
        Fact::Posted(p) => {
            posts.push(p);
            raise(&mut after.last_message, p.id);
        }
        Fact::ChannelCreated {
            key,
            name,
            owner,
            at,
            listed,
        } => {
            tx.execute(
                "INSERT INTO channels (key, name, created_by, created_at, info_updated_at, listed)
                 VALUES ($1, $2, $3, $4, $4, $5)",
                &[key, name, &owner.as_str(), at, listed],
            )?;
            tx.execute(
                "INSERT INTO channel_owners (channel, jid) VALUES ($1, $2)",
                &[key, &owner.as_str()],
            )?;
            raise(&mut after.last_channel, *key);
        }
        Fact::ChannelDestroyed {
            channel,
            archive_kept,
            ..
        } => {
            // A kept archive stays under the channel's key, which is never used again.
            if !archive_kept {
                for table in ["receipts", "reactions"] {
                    tx.execute(
                        &format!(
                            "DELETE FROM {table} WHERE message IN (SELECT id FROM messages WHERE channel = $1)"
                        ),
                        &[&channel.key],
                    )?;
                }
                tx.execute("DELETE FROM messages WHERE channel = $1", &[&channel.key])?;
            }
            tx.execute("DELETE FROM channels WHERE key = $1", &[&channel.key])?;
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
            tx.execute(
                "DELETE FROM participants WHERE channel = $1 AND jid = $2",
                &[key, &participant.jid.as_str()],
            )?;
            tx.execute(
                "DELETE FROM channel_owners WHERE channel = $1 AND jid = $2",
                &[key, &participant.jid.as_str()],
            )?;
        }
        Fact::SettingsChanged { key, settings, .. } => {
            tx.execute(
                "UPDATE channels SET join_policy = $2, muted = $3, max_members = $4, jids_hidden = $5
                 WHERE key = $1",
                &[
                    key,
                    &(settings.policy as i64),
                    &settings.muted,
                    &settings.max_members.map(|m| m as i64),
                    &settings.jids_hidden,
                ],
            )?;
        }
        Fact::AccessChanged {
            key,
            list,
            entry,
            present,
            ..
        } => {
            let sql = if *present {
                "INSERT INTO channel_access (channel, list, entry) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM channel_access WHERE channel = $1 AND list = $2 AND entry = $3"
            };
            tx.execute(sql, &[key, &(*list as i64), &entry.as_str()])?;
        }
        Fact::Muted {
            key, jid, until, ..
        } => {
            tx.execute(
                "UPDATE participants SET muted_until = $3 WHERE channel = $1 AND jid = $2",
                &[key, &jid.as_str(), until],
            )?;
        }
        Fact::PendingAdded { key, pending: p } => {
            tx.execute(
                "INSERT INTO pending (channel, jid, kind, by, at, dialect) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (channel, jid) DO UPDATE SET kind = excluded.kind, by = excluded.by,
                 at = excluded.at, dialect = excluded.dialect",
                &[
                    key,
                    &p.jid.as_str(),
                    &(p.kind as i64),
                    &p.by.as_str(),
                    &p.at,
                    &(p.dialect as i64),
                ],
            )?;
        }
        Fact::PendingResolved { key, pending, .. } => {
            tx.execute(
                "DELETE FROM pending WHERE channel = $1 AND jid = $2",
                &[key, &pending.jid.as_str()],
            )?;
        }
        Fact::NickChanged { key, jid, nick } => {
            tx.execute(
                "UPDATE participants SET nick = $3 WHERE channel = $1 AND jid = $2",
                &[key, &jid.as_str(), nick],
            )?;
        }
        Fact::RoleChanged { key, jid, role, .. } => {
            tx.execute(
                "UPDATE participants SET role = $3 WHERE channel = $1 AND jid = $2",
                &[key, &jid.as_str(), &(*role as i64)],
            )?;
            let owners = if *role == Role::Owner {
                "INSERT INTO channel_owners (channel, jid) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM channel_owners WHERE channel = $1 AND jid = $2"
            };
            tx.execute(owners, &[key, &jid.as_str()])?;
        }
        Fact::SubscriptionChanged { key, jid, nodes } => {
            tx.execute(
                "UPDATE participants SET nodes = $3 WHERE channel = $1 AND jid = $2",
                &[key, &jid.as_str(), &i64::from(nodes.0)],
            )?;
        }
        Fact::InfoChanged { key, info, .. } => {
            tx.execute(
                "UPDATE channels SET info_name = $2, info_description = $3, info_contacts = $4,
                 info_updated_at = $5, info_avatar = $6, info_thumbnail = $7, info_history = $8,
                 info_avatar_type = $9
                 WHERE key = $1",
                &[
                    key,
                    &info.name,
                    &info.description,
                    &contacts_text(&info.contacts),
                    &info.updated_at,
                    &info.avatar,
                    &info.thumbnail,
                    &info.history_visible,
                    &info.avatar_type,
                ],
            )?;
        }
        Fact::Noticed(n) => {
            joins.notices.push(n);
            if n.kind.changes_configuration() {
                tx.execute(
                    "UPDATE channels SET config_updated_at = GREATEST(config_updated_at, $2) WHERE key = $1",
                    &[&n.channel, &n.at],
                )?;
            }
            raise(&mut after.last_message, n.id);
        }
        Fact::HistoryCleared { key, member, upto } => {
            tx.execute(
                "UPDATE participants SET cleared_upto = $3 WHERE channel = $1 AND jid = $2",
                &[key, &member.as_str(), upto],
            )?;
        }
        Fact::Retracted(r) => {
            // The row's old version (with the content) stays in the table until VACUUM
            // reclaims it, and in the WAL until it is recycled: see docs/operations.md.
            tx.execute(
                "UPDATE messages SET content = '', edited_at = NULL, retracted_at = $2, retracted_by = $3,
                 moderated = $4, moderation_reason = $5, retraction = $6 WHERE id = $1",
                &[
                    &r.message,
                    &r.at,
                    &r.by.as_str(),
                    &r.moderated.is_some(),
                    &r.moderated.clone().flatten(),
                    &r.id,
                ],
            )?;
            // XEP-0424 §6: the retraction is archived too, for clients that were away.
            tx.execute(
                "INSERT INTO messages (id, channel, at, sender, nick, content, moderated, moderation_reason,
                 action, action_target) VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9)",
                &[
                    &r.id,
                    &r.channel,
                    &r.at,
                    &r.by.as_str(),
                    &r.by_nick,
                    &r.moderated.is_some(),
                    &r.moderated.clone().flatten(),
                    &ACTION_RETRACTION,
                    &r.message,
                ],
            )?;
            count_archived(tx, r.channel)?;
            raise(&mut after.last_message, r.id);
            tx.execute("DELETE FROM reactions WHERE message = $1", &[&r.message])?;
        }
        Fact::Corrected(c) => {
            tx.execute(
                "UPDATE messages SET content = $2, media = $3, edited_at = $4 WHERE id = $1",
                &[
                    &c.message,
                    &c.submission.content,
                    &c.submission.media,
                    &c.at,
                ],
            )?;
        }
        Fact::Reacted(r) => {
            if r.reactions.is_empty() {
                tx.execute(
                    "DELETE FROM reactions WHERE message = $1 AND member = $2",
                    &[&r.message, &r.member.as_str()],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO reactions (message, member, reactions, at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (message, member) DO UPDATE SET reactions = excluded.reactions,
                     at = excluded.at",
                    &[
                        &r.message,
                        &r.member.as_str(),
                        &r.reactions.join("\n"),
                        &r.at,
                    ],
                )?;
            }
            // XEP-0444: the reactions are a message of their own, archived like one.
            tx.execute(
                "INSERT INTO messages (id, channel, at, sender, nick, content, action, action_target)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &r.id,
                    &r.channel,
                    &r.at,
                    &r.member.as_str(),
                    &r.nick,
                    &r.reactions.join("\n"),
                    &ACTION_REACTIONS,
                    &r.message,
                ],
            )?;
            count_archived(tx, r.channel)?;
            raise(&mut after.last_message, r.id);
        }
        Fact::Receipt(r) => record_receipt(tx, r, &mut after.completions)?,
        // Which clients are online outlives a restart and a takeover: clients do not send
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
        } => {
            let (bare, resource) = bare_and_resource(jid);
            tx.execute(
                "DELETE FROM presence WHERE channel = $1 AND jid = $2 AND resource = $3",
                &[key, &bare, &resource],
            )?;
        }
        // Who is typing would be stale after a restart.
        Fact::ChatState { .. } => {}
    }
    Ok(())
}

/// Records a receipt, and notes a completion when it is the one that makes the message
/// delivered to (or seen by) as many members as were expected.
fn record_receipt(
    tx: &mut Tx,
    r: &Receipt,
    completions: &mut Vec<Completion>,
) -> Result<(), postgres::Error> {
    let existing = tx
        .query_opt(
            "SELECT delivered_at, displayed_at FROM receipts WHERE message = $1 AND member = $2",
            &[&r.message, &r.member.as_str()],
        )?
        .map(|row| -> Result<_, postgres::Error> {
            Ok((
                row.try_get::<_, Option<i64>>(0)?,
                row.try_get::<_, Option<i64>>(1)?,
            ))
        })
        .transpose()?;
    let (delivered, displayed) = existing.unwrap_or((None, None));
    let new_delivered = delivered.or(Some(r.at));
    let new_displayed = match r.kind {
        ReceiptKind::Displayed => displayed.or(Some(r.at)),
        ReceiptKind::Delivered => displayed,
    };
    tx.execute(
        "INSERT INTO receipts (message, member, delivered_at, displayed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (message, member) DO UPDATE SET delivered_at = excluded.delivered_at,
         displayed_at = excluded.displayed_at",
        &[
            &r.message,
            &r.member.as_str(),
            &new_delivered,
            &new_displayed,
        ],
    )?;
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
                .query_one(
                    &format!(
                        "SELECT count(*) FROM receipts WHERE message = $1 AND {column} IS NOT NULL AND member != $2"
                    ),
                    &[&r.message, &r.author.as_str()],
                )?
                .try_get(0)?;
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
