//! The state the core starts from: every channel with its participants, owners and
//! administration, read in a handful of whole-table scans rather than per channel, inside one
//! read-only snapshot of the database.

use postgres::{IsolationLevel, Row, Transaction};

use super::{bare, Conn};
use crate::core::{Departure, Dialect, Pending, PendingKind, Snapshot};
use crate::store::columns::{channel, CHANNEL_COLUMNS};
use crate::store::load::{Loading, PARTICIPANTS};

/// Rows fetched at a time (see [`each_row`]).
pub(super) const BATCH: i32 = 10_000;

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
    each_row(
        &mut tx,
        &format!("SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY key"),
        |row| {
            channels.push(Box::new(channel(row)?));
            Ok(())
        },
    )?;
    let mut loading = Loading::new(channels);
    each_row(&mut tx, "SELECT channel, jid FROM channel_owners", |row| {
        loading.owner(row.try_get(0)?, row.try_get(1)?)
    })?;
    each_row(
        &mut tx,
        "SELECT channel, list, entry FROM channel_access ORDER BY channel, list, entry",
        |row| {
            if let Some(channel) = loading.channel_mut(row.try_get(0)?) {
                let entry = bare(row.try_get(2)?)?;
                let access = &mut channel.administration_mut().access;
                match row.try_get::<_, i64>(1)? {
                    0 => access.allowed.push(entry),
                    _ => access.banned.push(entry),
                }
            }
            Ok(())
        },
    )?;
    each_row(
        &mut tx,
        "SELECT channel, jid, kind, by, at, dialect FROM pending ORDER BY at",
        |row| {
            if let Some(channel) = loading.channel_mut(row.try_get(0)?) {
                channel.administration_mut().pending.push(Pending {
                    jid: bare(row.try_get(1)?)?,
                    kind: PendingKind::from_i64(row.try_get(2)?),
                    by: bare(row.try_get(3)?)?,
                    at: row.try_get(4)?,
                    dialect: Dialect::from_i64(row.try_get(5)?),
                });
            }
            Ok(())
        },
    )?;
    each_row(
        &mut tx,
        "SELECT channel, jid, resource FROM presence ORDER BY channel, jid, resource",
        |row| {
            loading.online(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            Ok(())
        },
    )?;
    each_row(&mut tx, PARTICIPANTS, |row| loading.participant(row))?;
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
    each_row(
        &mut tx,
        "SELECT channel, name, jid, at FROM departed_owners",
        |row| {
            departures.push(Departure {
                key: row.try_get(0)?,
                name: row.try_get(1)?,
                owner: bare(row.try_get(2)?)?,
                at: row.try_get(3)?,
            });
            Ok(())
        },
    )?;
    tx.commit()?;
    Ok(loading.finish(last_channel_key, last_message_id, departures))
}

/// Hands each row of `query` to `each`, in order, fetched [`BATCH`] rows at a time through a
/// portal, on a thread of its own while this one fetches the next batch. Once a batch, not
/// once a row: the client steps into its runtime for each fetch, which for each of ten
/// million memberships was a fifth of mixd's start-up. On a thread of its own: the server
/// reads the next batch meanwhile, as it did when the rows were streamed. No more than two
/// batches of rows sit in memory beside what is made of them.
fn each_row(
    tx: &mut Transaction,
    query: &str,
    each: impl FnMut(&Row) -> anyhow::Result<()> + Send,
) -> anyhow::Result<()> {
    let portal = tx.bind(query, &[])?;
    std::thread::scope(|scope| {
        let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Row>>(1);
        let consumer = scope.spawn(move || {
            let mut each = each;
            for rows in received {
                for row in &rows {
                    each(row)?;
                }
            }
            anyhow::Ok(())
        });
        let fetched = (|| loop {
            let rows = tx.query_portal(&portal, BATCH)?;
            let last = rows.len() < BATCH as usize;
            // A consumer that stopped has its error, which its join gives.
            if batches.send(rows).is_err() || last {
                return anyhow::Ok(());
            }
        })();
        drop(batches);
        let consumed = consumer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        consumed.and(fetched)
    })
}
