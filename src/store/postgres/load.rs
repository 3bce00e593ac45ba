//! The state the core starts from: every channel with its participants, owners and
//! administration, read in a handful of whole-table scans rather than per channel, inside one
//! read-only snapshot of the database.

use std::collections::HashMap;

use anyhow::anyhow;
use jid::FullJid;
use postgres::IsolationLevel;

use super::{bare, Conn};
use crate::core::{
    Departure, Dialect, Nodes, Participant, Pending, PendingKind, Role, Snapshot, UserJids,
};
use crate::store::columns::{channel, mode, CHANNEL_COLUMNS};

/// Everything the core holds in memory, and the last keys handed out (kept past deletions,
/// so a destroyed channel's key or message id is never reused).
pub(super) fn snapshot(conn: &mut Conn) -> anyhow::Result<Snapshot> {
    let mut tx = conn
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut channels: Vec<Box<_>> = Vec::new();
    for row in tx.query(
        &format!("SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY key"),
        &[],
    )? {
        channels.push(Box::new(channel(&row)?));
    }
    let index: HashMap<i64, usize> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key, i))
        .collect();
    // Sized up front, as in the SQLite backend: a million memberships pushed one at a time
    // would carry a third more capacity than they use.
    for row in tx.query(
        "SELECT channel, count(*) FROM participants GROUP BY channel",
        &[],
    )? {
        if let Some(&i) = index.get(&row.try_get::<_, i64>(0)?) {
            channels[i]
                .participants
                .reserve_exact(row.try_get::<_, i64>(1)? as usize);
        }
    }
    for row in tx.query("SELECT channel, jid FROM channel_owners", &[])? {
        if let Some(&i) = index.get(&row.try_get::<_, i64>(0)?) {
            channels[i].owners.push(bare(row.try_get(1)?)?);
        }
    }
    for row in tx.query(
        "SELECT channel, list, entry FROM channel_access ORDER BY channel, list, entry",
        &[],
    )? {
        if let Some(&i) = index.get(&row.try_get::<_, i64>(0)?) {
            let entry = bare(row.try_get(2)?)?;
            let access = &mut channels[i].administration_mut().access;
            match row.try_get::<_, i64>(1)? {
                0 => access.allowed.push(entry),
                _ => access.banned.push(entry),
            }
        }
    }
    for row in tx.query(
        "SELECT channel, jid, kind, by, at, dialect FROM pending ORDER BY at",
        &[],
    )? {
        if let Some(&i) = index.get(&row.try_get::<_, i64>(0)?) {
            channels[i].administration_mut().pending.push(Pending {
                jid: bare(row.try_get(1)?)?,
                kind: PendingKind::from_i64(row.try_get(2)?),
                by: bare(row.try_get(3)?)?,
                at: row.try_get(4)?,
                dialect: Dialect::from_i64(row.try_get(5)?),
            });
        }
    }
    // Clients online when the last active instance ran, by participant (few rows: most
    // participants have no client online).
    let mut online: HashMap<(i64, String), Vec<FullJid>> = HashMap::new();
    for row in tx.query(
        "SELECT channel, jid, resource FROM presence ORDER BY channel, jid, resource",
        &[],
    )? {
        let (channel, bare_jid, resource): (i64, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        // A row that no longer makes a JID is skipped, not a reason to refuse to start.
        if let Ok(full) = FullJid::new(&format!("{bare_jid}/{resource}")) {
            online.entry((channel, bare_jid)).or_default().push(full);
        }
    }
    // Streamed rather than collected: at a million memberships the rows would otherwise all
    // sit in memory beside the participants made of them.
    let statement = tx.prepare(
        "SELECT channel, jid, id, nick, nodes, role, joined_at, cleared_upto, dialect, muted_until
         FROM participants ORDER BY channel, joined_at, jid",
    )?;
    let mut rows = tx.query_raw(&statement, std::iter::empty::<i64>())?;
    // As in the SQLite backend: each user's JID parsed once and shared by its memberships,
    // texts read in place, the channel looked up when the key changes.
    let mut users = UserJids::default();
    let mut current: Option<(i64, Option<usize>)> = None;
    while let Some(row) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
        let key: i64 = row.try_get(0)?;
        let i = match current {
            Some((known, i)) if known == key => i,
            _ => {
                let i = index.get(&key).copied();
                current = Some((key, i));
                i
            }
        };
        let Some(i) = i else { continue };
        let jid_text: &str = row.try_get(1)?;
        let jid = users
            .get(jid_text)
            .map_err(|e| anyhow!("stored JID {jid_text:?} does not parse: {e}"))?;
        let online = match online.is_empty() {
            true => Vec::new(),
            false => online
                .remove(&(key, jid_text.to_owned()))
                .unwrap_or_default(),
        };
        let id: &str = row.try_get(2)?;
        let (dialect, reach) = mode(row.try_get(8)?);
        let muted_until: i64 = row.try_get(9)?;
        if muted_until > 0 {
            let mutes = &mut channels[i].administration_mut().mutes;
            mutes.push((jid.to_bare(), muted_until));
        }
        channels[i].participants.put(Participant {
            jid,
            id: id
                .parse()
                .map_err(|e| anyhow!("stored participant id {id:?}: {e}"))?,
            nick: row.try_get::<_, &str>(3)?.into(),
            nodes: Nodes(row.try_get::<_, i64>(4)? as u8),
            role: Role::from_i64(row.try_get(5)?),
            joined_at: row.try_get(6)?,
            cleared_upto: row.try_get(7)?,
            dialect,
            reach,
            online: online.into(),
        });
    }
    drop(rows);
    let mut sequence = |name: &str| -> anyhow::Result<i64> {
        Ok(tx
            .query_opt("SELECT last FROM sequences WHERE name = $1", &[&name])?
            .map(|row| row.try_get(0))
            .transpose()?
            .unwrap_or(0))
    };
    let last_channel_key = sequence("channels")?;
    let last_message_id = sequence("messages")?;
    let mut departures = Vec::new();
    for row in tx.query("SELECT channel, name, jid, at FROM departed_owners", &[])? {
        departures.push(Departure {
            key: row.try_get(0)?,
            name: row.try_get(1)?,
            owner: bare(row.try_get(2)?)?,
            at: row.try_get(3)?,
        });
    }
    tx.commit()?;
    Ok(Snapshot {
        channels,
        last_channel_key,
        last_message_id,
        departures,
    })
}
