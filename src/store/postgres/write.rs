//! Persisting facts: the [`FactWriter`] side of the backend. Each fact becomes its
//! statements inside the batch's one transaction, which first checks the fence; receipts also
//! say whether they completed a message for its author. Which rows a fact changes is decided
//! once for both backends (`store/persist.rs`, `joins.rs`, `receipt.rs`); the statements here
//! are SQLite's (`sqlite/write.rs`) in PostgreSQL's words, method for method.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use jid::{BareJid, FullJid};
use postgres::types::ToSql;
use postgres::Statement;

use super::{connect, off_runtime, Conn, Detached, PgWriter};
use crate::core::{
    AccessList, Corrected, Fact, Info, Micros, Nodes, Notice, Participant, Pending, Posted,
    Reacted, Retracted, Role, Settings, DEPARTED_OWNER_GRACE,
};
use crate::store::columns::{
    contacts_text, id_key_from, mode_code, new_id_key, writer_now, ACTION_REACTIONS,
    ACTION_RETRACTION,
};
use crate::store::joins::Joins;
use crate::store::persist::{persist, Statements};
use crate::store::receipt::{ReceiptRows, Times};
use crate::store::{Completion, FactWriter};

/// This instance's epoch is no longer the fence's: a standby took over.
#[derive(Debug, thiserror::Error)]
#[error("another mixd took over this database (the fence is past epoch {0})")]
pub(super) struct Fenced(pub i64);

impl FactWriter for PgWriter {
    fn commit(&mut self, facts: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
        if self.conn.client.is_closed() {
            // The server restarted or dropped us: a new session, with this one's settings.
            let mut client = connect(&self.config, "the writer")?;
            client.batch_execute(&format!("SET synchronous_commit = {}", self.sync))?;
            self.conn = Detached::new(Conn::new(client));
        }
        let Conn { client, statements } = &mut *self.conn;
        let mut batch = Batch {
            tx: Tx {
                tx: client.transaction()?,
                statements,
            },
            posts: Posts::default(),
            last_channel: None,
            last_message: None,
        };
        // First, so that the fence row stays locked until this commit: a standby raising the
        // epoch waits for it, and every transaction after the raise finds no row of ours.
        if batch.tx.execute(
            "UPDATE fence SET epoch = epoch WHERE epoch = $1",
            &[&self.epoch],
        )? == 0
        {
            drop(batch);
            return Err(self.fenced());
        }
        let mut joins = Joins::default();
        let mut completions = Vec::new();
        for fact in facts {
            // Posts wait to be inserted together; anything else may refer to them, so they are
            // written first. Whatever follows a run of joins may change their rows (a leave,
            // a nick): the run is written before any other fact too.
            if !matches!(fact, Fact::Posted(_)) {
                batch.posts.flush(&mut batch.tx)?;
            }
            if !Joins::holds(fact) {
                joins.write(|joins| insert_joins(&mut batch.tx, joins))?;
            }
            persist(&mut batch, fact, &mut joins, &mut completions)?;
        }
        batch.posts.flush(&mut batch.tx)?;
        joins.write(|joins| insert_joins(&mut batch.tx, joins))?;
        for (name, last) in [
            ("channels", batch.last_channel),
            ("messages", batch.last_message),
        ] {
            if let Some(last) = last {
                batch.tx.execute(
                    "UPDATE sequences SET last = GREATEST(last, $2) WHERE name = $1",
                    &[&name, &last],
                )?;
            }
        }
        batch.tx.tx.commit().context("committing")?;
        Ok(completions)
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
    fn push(&mut self, p: &'a Posted) {
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

/// Writes a run of joins ([`Joins`]): each kind of row one statement, its rows as arrays
/// (as [`Posts`]).
fn insert_joins(tx: &mut Tx, joins: &Joins) -> Result<(), postgres::Error> {
    if !joins.participants.is_empty() || !joins.rejoined.is_empty() {
        // One upsert for both: PostgreSQL keeps no statement journal to spare. Newcomers
        // first, as a user's join again in the run follows its first.
        insert_participants(tx, &[&joins.participants[..], &joins.rejoined[..]].concat())?;
    }
    if !joins.settled.is_empty() {
        let (channel, jid): (Vec<i64>, Vec<&str>) = joins
            .settled
            .iter()
            .map(|(key, jid)| (*key, jid.as_str()))
            .unzip();
        tx.execute(
            "DELETE FROM pending WHERE (channel, jid) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))",
            &[&channel, &jid],
        )?;
    }
    if !joins.notices.is_empty() {
        let column =
            |f: fn(&Notice) -> i64| -> Vec<i64> { joins.notices.iter().map(|&n| f(n)).collect() };
        let sender: Vec<&str> = joins.notices.iter().map(|n| n.actor.as_str()).collect();
        let target: Vec<Option<&str>> = joins
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
    if !joins.online.is_empty() {
        let channel: Vec<i64> = joins.online.iter().map(|(key, _)| *key).collect();
        let (jid, resource): (Vec<&str>, Vec<&str>) = joins
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
    Ok(())
}

/// The participants' rows.
fn insert_participants(
    tx: &mut Tx,
    participants: &[(i64, &Participant)],
) -> Result<(), postgres::Error> {
    // One statement may not update a row twice (`ON CONFLICT DO UPDATE`): of a
    // participant who joined twice in the run, the last join stands.
    let mut seen = HashSet::new();
    let last: Vec<(i64, &Participant)> = participants
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
    Ok(())
}

/// A client's bare JID and resource, as borrowed text (the bare JID ends at the first '/').
fn bare_and_resource(client: &FullJid) -> (&str, &str) {
    let resource = client.resource().as_str();
    let whole = client.as_str();
    (&whole[..whole.len() - resource.len() - 1], resource)
}

/// PostgreSQL's statements for a batch's facts ([`Statements`]), in its transaction, and what
/// they leave to write before it commits: the run of posts, and the highest channel key and
/// archive id the batch used, for `sequences`.
struct Batch<'c, 'a> {
    tx: Tx<'c>,
    posts: Posts<'a>,
    last_channel: Option<i64>,
    last_message: Option<i64>,
}

impl Batch<'_, '_> {
    /// One more retraction or reactions, archive id `id`, in `channel`'s archive: its running
    /// total answers MAM's `<count/>` without a scan (posts are counted by the batch,
    /// [`Posts::flush`]).
    fn archived(&mut self, channel: i64, id: i64) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE channels SET message_count = message_count + 1 WHERE key = $1",
            &[&channel],
        )?;
        raise(&mut self.last_message, id);
        Ok(())
    }
}

fn raise(last: &mut Option<i64>, value: i64) {
    *last = Some(last.map_or(value, |l| l.max(value)));
}

impl<'a> Statements<'a> for Batch<'_, 'a> {
    /// Joins the run of posts, written by the batch (`commit`).
    fn post(&mut self, post: &'a Posted) -> Result<(), postgres::Error> {
        self.posts.push(post);
        raise(&mut self.last_message, post.id);
        Ok(())
    }

    fn create_channel(
        &mut self,
        key: i64,
        name: &str,
        owner: &BareJid,
        at: Micros,
        listed: bool,
    ) -> Result<(), postgres::Error> {
        self.tx.execute(
            "INSERT INTO channels (key, name, created_by, created_at, info_updated_at, listed)
             VALUES ($1, $2, $3, $4, $4, $5)",
            &[&key, &name, &owner.as_str(), &at, &listed],
        )?;
        self.tx.execute(
            "INSERT INTO channel_owners (channel, jid) VALUES ($1, $2)",
            &[&key, &owner.as_str()],
        )?;
        raise(&mut self.last_channel, key);
        Ok(())
    }

    fn delete_archive(&mut self, key: i64) -> Result<(), postgres::Error> {
        for table in ["receipts", "reactions"] {
            self.tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE message IN (SELECT id FROM messages WHERE channel = $1)"
                ),
                &[&key],
            )?;
        }
        self.tx
            .execute("DELETE FROM messages WHERE channel = $1", &[&key])?;
        Ok(())
    }

    fn delete_channel(&mut self, key: i64) -> Result<(), postgres::Error> {
        self.tx
            .execute("DELETE FROM channels WHERE key = $1", &[&key])?;
        Ok(())
    }

    /// Survives a takeover too.
    fn keep_departed_owner(&mut self, key: i64, owner: &BareJid) -> Result<(), postgres::Error> {
        let now = writer_now();
        self.tx.execute(
            "DELETE FROM departed_owners WHERE at <= $1",
            &[&(now - DEPARTED_OWNER_GRACE)],
        )?;
        self.tx.execute(
            "INSERT INTO departed_owners (channel, name, jid, at)
             SELECT key, name, $2, $3 FROM channels WHERE key = $1
             ON CONFLICT (channel, jid) DO UPDATE SET name = excluded.name, at = excluded.at",
            &[&key, &owner.as_str(), &now],
        )?;
        Ok(())
    }

    fn delete_participant(&mut self, key: i64, jid: &BareJid) -> Result<(), postgres::Error> {
        self.tx.execute(
            "DELETE FROM participants WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str()],
        )?;
        self.tx.execute(
            "DELETE FROM channel_owners WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str()],
        )?;
        Ok(())
    }

    fn settings(&mut self, key: i64, settings: &Settings) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE channels SET join_policy = $2, muted = $3, max_members = $4, jids_hidden = $5
             WHERE key = $1",
            &[
                &key,
                &(settings.policy as i64),
                &settings.muted,
                &settings.max_members.map(|m| m as i64),
                &settings.jids_hidden,
            ],
        )?;
        Ok(())
    }

    fn access(
        &mut self,
        key: i64,
        list: AccessList,
        entry: &BareJid,
        present: bool,
    ) -> Result<(), postgres::Error> {
        let sql = if present {
            "INSERT INTO channel_access (channel, list, entry) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM channel_access WHERE channel = $1 AND list = $2 AND entry = $3"
        };
        self.tx
            .execute(sql, &[&key, &(list as i64), &entry.as_str()])?;
        Ok(())
    }

    fn mute(&mut self, key: i64, jid: &BareJid, until: Micros) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE participants SET muted_until = $3 WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str(), &until],
        )?;
        Ok(())
    }

    fn add_pending(&mut self, key: i64, p: &Pending) -> Result<(), postgres::Error> {
        self.tx.execute(
            "INSERT INTO pending (channel, jid, kind, by, at, dialect) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (channel, jid) DO UPDATE SET kind = excluded.kind, by = excluded.by,
             at = excluded.at, dialect = excluded.dialect",
            &[
                &key,
                &p.jid.as_str(),
                &(p.kind as i64),
                &p.by.as_str(),
                &p.at,
                &(p.dialect as i64),
            ],
        )?;
        Ok(())
    }

    fn remove_pending(&mut self, key: i64, jid: &BareJid) -> Result<(), postgres::Error> {
        self.tx.execute(
            "DELETE FROM pending WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str()],
        )?;
        Ok(())
    }

    fn nick(&mut self, key: i64, jid: &BareJid, nick: &str) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE participants SET nick = $3 WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str(), &nick],
        )?;
        Ok(())
    }

    fn role(&mut self, key: i64, jid: &BareJid, role: Role) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE participants SET role = $3 WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str(), &(role as i64)],
        )?;
        Ok(())
    }

    fn owner(&mut self, key: i64, jid: &BareJid, owner: bool) -> Result<(), postgres::Error> {
        let sql = if owner {
            "INSERT INTO channel_owners (channel, jid) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM channel_owners WHERE channel = $1 AND jid = $2"
        };
        self.tx.execute(sql, &[&key, &jid.as_str()])?;
        Ok(())
    }

    fn subscription(
        &mut self,
        key: i64,
        jid: &BareJid,
        nodes: Nodes,
    ) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE participants SET nodes = $3 WHERE channel = $1 AND jid = $2",
            &[&key, &jid.as_str(), &i64::from(nodes.0)],
        )?;
        Ok(())
    }

    fn info(&mut self, key: i64, info: &Info) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE channels SET info_name = $2, info_description = $3, info_contacts = $4,
             info_updated_at = $5, info_avatar = $6, info_thumbnail = $7, info_history = $8,
             info_avatar_type = $9
             WHERE key = $1",
            &[
                &key,
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
        Ok(())
    }

    fn notice(&mut self, notice: &'a Notice) -> Result<(), postgres::Error> {
        raise(&mut self.last_message, notice.id);
        Ok(())
    }

    fn configured(&mut self, key: i64, at: Micros) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE channels SET config_updated_at = GREATEST(config_updated_at, $2) WHERE key = $1",
            &[&key, &at],
        )?;
        Ok(())
    }

    fn clear_history(
        &mut self,
        key: i64,
        member: &BareJid,
        upto: i64,
    ) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE participants SET cleared_upto = $3 WHERE channel = $1 AND jid = $2",
            &[&key, &member.as_str(), &upto],
        )?;
        Ok(())
    }

    /// The row's old version (with the content) stays in the table until VACUUM reclaims it,
    /// and in the WAL until it is recycled: see docs/operations.md.
    fn retract(&mut self, r: &'a Retracted) -> Result<(), postgres::Error> {
        self.tx.execute(
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
        self.tx.execute(
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
        self.archived(r.channel, r.id)
    }

    fn correct(&mut self, c: &Corrected) -> Result<(), postgres::Error> {
        self.tx.execute(
            "UPDATE messages SET content = $2, media = $3, edited_at = $4 WHERE id = $1",
            &[
                &c.message,
                &c.submission.content,
                &c.submission.media,
                &c.at,
            ],
        )?;
        Ok(())
    }

    fn delete_reactions(
        &mut self,
        message: i64,
        member: Option<&BareJid>,
    ) -> Result<(), postgres::Error> {
        match member {
            Some(member) => self.tx.execute(
                "DELETE FROM reactions WHERE message = $1 AND member = $2",
                &[&message, &member.as_str()],
            )?,
            None => self
                .tx
                .execute("DELETE FROM reactions WHERE message = $1", &[&message])?,
        };
        Ok(())
    }

    fn store_reactions(&mut self, r: &Reacted) -> Result<(), postgres::Error> {
        self.tx.execute(
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
        Ok(())
    }

    fn archive_reactions(&mut self, r: &'a Reacted) -> Result<(), postgres::Error> {
        self.tx.execute(
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
        self.archived(r.channel, r.id)
    }

    fn offline(&mut self, key: i64, client: &FullJid) -> Result<(), postgres::Error> {
        let (bare, resource) = bare_and_resource(client);
        self.tx.execute(
            "DELETE FROM presence WHERE channel = $1 AND jid = $2 AND resource = $3",
            &[&key, &bare, &resource],
        )?;
        Ok(())
    }
}

/// PostgreSQL's statements for [`crate::store::receipt::record`].
impl ReceiptRows for Batch<'_, '_> {
    type Error = postgres::Error;

    fn times(&mut self, message: i64, member: &str) -> Result<Option<Times>, postgres::Error> {
        self.tx
            .query_opt(
                "SELECT delivered_at, displayed_at FROM receipts WHERE message = $1 AND member = $2",
                &[&message, &member],
            )?
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    fn store(&mut self, message: i64, member: &str, times: Times) -> Result<(), postgres::Error> {
        let (delivered, displayed) = times;
        self.tx.execute(
            "INSERT INTO receipts (message, member, delivered_at, displayed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (message, member) DO UPDATE SET delivered_at = excluded.delivered_at,
             displayed_at = excluded.displayed_at",
            &[&message, &member, &delivered, &displayed],
        )?;
        Ok(())
    }

    fn count(&mut self, message: i64, column: &str, author: &str) -> Result<i64, postgres::Error> {
        self.tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM receipts WHERE message = $1 AND {column} IS NOT NULL AND member != $2"
                ),
                &[&message, &author],
            )?
            .try_get(0)
    }
}
