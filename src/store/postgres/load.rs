//! The state the core starts from: every channel with its participants, owners and
//! administration, read in a handful of whole-table scans rather than per channel, inside one
//! read-only snapshot of the database.

use postgres::IsolationLevel;

use super::{bare, Conn};
use crate::core::{Departure, Dialect, Pending, PendingKind, Snapshot};
use crate::store::columns::{channel, CHANNEL_COLUMNS};
use crate::store::load::{Loading, PARTICIPANTS};

/// Everything the core holds in memory, and the last keys handed out (kept past deletions,
/// so a destroyed channel's key or message id is never reused).
pub(super) fn snapshot(conn: &mut Conn) -> anyhow::Result<Snapshot> {
    let mut tx = conn
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut channels = Vec::new();
    for row in tx.query(
        &format!("SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY key"),
        &[],
    )? {
        channels.push(Box::new(channel(&row)?));
    }
    let mut loading = Loading::new(channels);
    for row in tx.query("SELECT channel, jid FROM channel_owners", &[])? {
        loading.owner(row.try_get(0)?, row.try_get(1)?)?;
    }
    for row in tx.query(
        "SELECT channel, list, entry FROM channel_access ORDER BY channel, list, entry",
        &[],
    )? {
        if let Some(channel) = loading.channel_mut(row.try_get(0)?) {
            let entry = bare(row.try_get(2)?)?;
            let access = &mut channel.administration_mut().access;
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
        if let Some(channel) = loading.channel_mut(row.try_get(0)?) {
            channel.administration_mut().pending.push(Pending {
                jid: bare(row.try_get(1)?)?,
                kind: PendingKind::from_i64(row.try_get(2)?),
                by: bare(row.try_get(3)?)?,
                at: row.try_get(4)?,
                dialect: Dialect::from_i64(row.try_get(5)?),
            });
        }
    }
    for row in tx.query(
        "SELECT channel, jid, resource FROM presence ORDER BY channel, jid, resource",
        &[],
    )? {
        loading.online(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    }
    // Streamed rather than collected: at a million memberships the rows would otherwise all
    // sit in memory beside the participants made of them.
    let statement = tx.prepare(PARTICIPANTS)?;
    let mut rows = tx.query_raw(&statement, std::iter::empty::<i64>())?;
    while let Some(row) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
        loading.participant(&row)?;
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
    Ok(loading.finish(last_channel_key, last_message_id, departures))
}
