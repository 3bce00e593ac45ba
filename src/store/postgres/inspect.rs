//! `mixd admin`'s reads on PostgreSQL ([`Inspector`]), beside the running instances: a pool
//! of read-only sessions that never takes the active instance's lock; MVCC lets them read the
//! last commit without blocking the writer. PostgreSQL checks its own pages (and data
//! checksums, if the cluster has them), so `check` is the consistency between tables alone.

use anyhow::Context;
use postgres::fallible_iterator::FallibleIterator;
use postgres::SimpleQueryMessage;

use super::{load, read_only, Conn, PgReader};
use crate::core::Channel;
use crate::store::columns::id_key_from;
use crate::store::inspect::{
    consistency, contains_pattern, counts, counts_query, exported, finding, named, summary,
    summary_columns, ChannelSummary, Counts, Each, Inspector, EXPORTED_COLUMNS,
};

/// Read-only sessions on a database, for the operator.
pub struct PgInspector {
    reader: PgReader,
}

/// Opens read-only sessions on the database at `url`.
pub fn inspect(url: &str) -> anyhow::Result<PgInspector> {
    Ok(PgInspector {
        reader: read_only(url)?,
    })
}

/// The key of channel `name`, if there is one.
fn channel_key(conn: &mut Conn, name: &str) -> anyhow::Result<Option<i64>> {
    Ok(conn
        .client
        .query_opt("SELECT key FROM channels WHERE name = $1", &[&name])?
        .map(|row| row.try_get(0))
        .transpose()?)
}

/// A channel's message total over a row of `channels`: its running total, which the writer
/// raises in every batch.
const TOTAL: &str = "message_count";
/// The messages a channel's archive holds, over a row of `channels`.
const HELD: &str = "(SELECT count(*) FROM messages WHERE channel = key AND notice = 0)";
/// A channel's rows' `notice` column, `{key}` its key.
const ARCHIVE: &str = "(SELECT notice FROM messages WHERE channel = {key}) AS archive";

impl Inspector for PgInspector {
    fn channels(&self, matching: Option<&str>) -> anyhow::Result<Vec<ChannelSummary>> {
        self.reader.with_conn(|conn| {
            let rows = conn.client.query(
                &format!(
                    "SELECT {} FROM channels
                     WHERE name ILIKE $1 OR info_name ILIKE $1 OR info_description ILIKE $1
                     ORDER BY name",
                    summary_columns(TOTAL)
                ),
                &[&contains_pattern(matching)],
            )?;
            rows.iter().map(summary).collect()
        })
    }

    fn channel(&self, name: &str) -> anyhow::Result<Option<(Channel, Counts)>> {
        self.reader.with_conn(|conn| {
            let Some(channel) = named(load::snapshot(conn)?, name) else {
                return Ok(None);
            };
            let row = conn
                .client
                .query_one(&counts_query("$1", ARCHIVE), &[&channel.key])?;
            let counts = counts(&row)?;
            Ok(Some((*channel, counts)))
        })
    }

    fn archive(&self, name: &str, notices: bool, each: Each) -> anyhow::Result<bool> {
        self.reader.with_conn(|conn| {
            let Some(key) = channel_key(conn, name)? else {
                return Ok(false);
            };
            // Row by row as the server sends them, in one snapshot: an archive need not fit
            // in memory.
            let mut rows = conn.client.query_raw(
                &format!(
                    "SELECT {EXPORTED_COLUMNS} FROM messages
                     WHERE channel = $1 AND ($2 OR notice = 0) ORDER BY id"
                ),
                [&key as &(dyn postgres::types::ToSql + Sync), &notices],
            )?;
            while let Some(row) = rows.next()? {
                each(exported(&row)?)?;
            }
            Ok(true)
        })
    }

    fn id_key(&self) -> anyhow::Result<[u8; 16]> {
        self.reader.with_conn(|conn| {
            let key: Vec<u8> = conn
                .client
                .query_opt("SELECT value FROM meta WHERE name = 'id_key'", &[])?
                .context("the database has no id key: has mixd ever run on it?")?
                .try_get(0)?;
            id_key_from(key)
        })
    }

    fn check(&self) -> anyhow::Result<Vec<String>> {
        self.reader.with_conn(|conn| {
            let mut findings = Vec::new();
            for (say, query) in consistency(TOTAL, HELD) {
                // The simple protocol answers every column as text, as a finding shows it.
                for message in conn.client.simple_query(&query)? {
                    if let SimpleQueryMessage::Row(row) = message {
                        let values: Vec<String> = (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_owned())
                            .collect();
                        findings.push(finding(say, &values));
                    }
                }
            }
            Ok(findings)
        })
    }
}
