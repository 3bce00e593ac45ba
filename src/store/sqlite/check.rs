//! `mixd admin check` on SQLite: SQLite's own integrity check, then the consistency between
//! tables that both stores check alike (`store::inspect::consistency`). Each finding is one
//! readable line.

use super::deferred::{channel_total, indexed_upto, CHANNEL_HELD};
use super::inspect::SqliteInspector;
use crate::store::inspect::{consistency, finding};

/// What only SQLite's layout can get wrong, as [`consistency`] says it.
const SQLITE_CONSISTENCY: &[(&str, &str)] = &[
    (
        "{0} archived messages at or below the watermark of look-up entries ({1}) have none \
         (history with a sender and look-ups by the sender's ids miss them)",
        concat!(
            "SELECT count(*), w FROM messages, (SELECT ",
            indexed_upto!(),
            " AS w) WHERE deferred = 1 AND id <= w HAVING count(*) > 0"
        ),
    ),
    (
        "{0} archived messages not yet entered are not in the tail's table, and {1} of its \
         entries are not such a message (history misses or repeats them)",
        concat!(
            "SELECT missing, stray FROM (SELECT
               (SELECT count(*) FROM messages NOT INDEXED WHERE id > ",
            indexed_upto!(),
            " AND deferred = 1 AND id NOT IN (SELECT id FROM tail)) AS missing,
               (SELECT count(*) FROM tail t WHERE NOT EXISTS (SELECT 1 FROM messages m
                 WHERE m.id = t.id AND m.channel = t.channel AND m.deferred = 1)) AS stray)
             WHERE missing + stray > 0"
        ),
    ),
];

impl SqliteInspector {
    /// What is wrong with the database; empty when nothing is.
    pub(super) fn findings(&self) -> anyhow::Result<Vec<String>> {
        let mut findings = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let integrity = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for line in integrity {
            let line = line?;
            if line != "ok" {
                findings.push(format!("integrity: {line}"));
            }
        }
        let sqlite_only = SQLITE_CONSISTENCY
            .iter()
            .map(|&(say, query)| (say, query.to_owned()));
        for (say, query) in consistency(channel_total!(), CHANNEL_HELD).chain(sqlite_only) {
            let mut stmt = self.conn.prepare(&query)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let values = (0..columns)
                    .map(|i| {
                        Ok(match row.get::<_, rusqlite::types::Value>(i)? {
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            rusqlite::types::Value::Text(t) => t,
                            other => format!("{other:?}"),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                findings.push(finding(say, &values));
            }
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::inspect::inspect;
    use super::super::{open, Durability};
    use crate::core::{Groups, Nodes, Rules, Snapshot};
    use crate::store::inspect::Inspector;
    use crate::store::FactWriter;
    use jid::BareJid;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn a_consistent_database_has_no_findings_and_planted_ones_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let (mut writer, _) = open(&path, Durability::Normal).unwrap();
        let mut g = Groups::new(
            Rules {
                user_domains: vec!["localhost".into()],
                ..Rules::default()
            },
            Snapshot::default(),
        );
        let mut facts = g
            .create(&jid("alice@localhost"), Some("coven"), 1)
            .unwrap()
            .1;
        for who in ["alice", "bob"] {
            let user = jid(&format!("{who}@localhost"));
            facts.extend(g.join("coven", &user, Some(who), Nodes::ALL, 2).unwrap().1);
        }
        let refs: Vec<_> = facts.iter().collect();
        writer.commit(&refs).unwrap();
        assert_eq!(
            inspect(&path).unwrap().check().unwrap(),
            Vec::<String>::new()
        );

        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at)
               VALUES (999, 'ghost@localhost', 'x', 'ghost', 1, 0, 0);
             UPDATE participants SET nick = 'alice' WHERE jid = 'bob@localhost';
             UPDATE meta SET value = 3 WHERE name = 'indexed_upto';
             UPDATE messages SET deferred = 1 WHERE id = 2;",
        )
        .unwrap();
        let findings = inspect(&path).unwrap().check().unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f.contains("ghost@localhost") && f.contains("999")),
            "{findings:?}"
        );
        assert!(
            findings.iter().any(|f| f.contains("nick 'alice'")),
            "{findings:?}"
        );
        assert!(
            findings.iter().any(|f| f.starts_with(
                "1 archived messages at or below the watermark of look-up entries (3)"
            )),
            "{findings:?}"
        );
    }
}
