//! `mixd admin check`: SQLite's own integrity check, then what the schema cannot enforce
//! (or enforces only while foreign keys are on, which an edit by hand may not have had):
//! that the tables agree with each other. Each finding is one readable line.

use super::inspect::Inspector;

/// Queries that each return the rows of one kind of inconsistency, with how to say one.
const CONSISTENCY: &[(&str, &str)] = &[
    (
        "participant {1} of channel key {0}, which does not exist",
        "SELECT channel, jid FROM participants WHERE channel NOT IN (SELECT key FROM channels)",
    ),
    (
        "owner {1} of channel key {0}, which does not exist",
        "SELECT channel, jid FROM channel_owners WHERE channel NOT IN (SELECT key FROM channels)",
    ),
    (
        "access entry {1} of channel key {0}, which does not exist",
        "SELECT channel, entry FROM channel_access WHERE channel NOT IN (SELECT key FROM channels)",
    ),
    (
        "pending invitation or request of {1} to channel key {0}, which does not exist",
        "SELECT channel, jid FROM pending WHERE channel NOT IN (SELECT key FROM channels)",
    ),
    (
        "online client {1} in channel key {0} of someone who is not a participant",
        "SELECT channel, jid || '/' || resource FROM presence p WHERE NOT EXISTS
           (SELECT 1 FROM participants q WHERE q.channel = p.channel AND q.jid = p.jid)",
    ),
    // A deleted channel's archive stays only when the service keeps archives, and then the
    // deletion is its last notice (kind 18).
    (
        "{1} archived messages of channel key {0}, which does not exist and was not deleted",
        "SELECT channel, count(*) FROM messages m WHERE channel NOT IN (SELECT key FROM channels)
           GROUP BY channel HAVING max(notice = 18) = 0",
    ),
    (
        "channel {0} counts {1} messages but its archive holds {2}",
        "SELECT name, message_count, (SELECT count(*) FROM messages WHERE channel = key AND notice = 0) AS held
           FROM channels WHERE message_count != held",
    ),
    (
        "participant {1} of channel {0} has the owner's role but is not among its owners",
        "SELECT c.name, p.jid FROM participants p JOIN channels c ON c.key = p.channel
           WHERE p.role = 2 AND NOT EXISTS
             (SELECT 1 FROM channel_owners o WHERE o.channel = p.channel AND o.jid = p.jid)",
    ),
    (
        "owner {1} of channel {0} takes part without the owner's role",
        "SELECT c.name, o.jid FROM channel_owners o JOIN channels c ON c.key = o.channel
           JOIN participants p ON p.channel = o.channel AND p.jid = o.jid WHERE p.role != 2",
    ),
    (
        "channel {0} has participants but no owner",
        "SELECT name FROM channels c WHERE EXISTS (SELECT 1 FROM participants WHERE channel = c.key)
           AND NOT EXISTS (SELECT 1 FROM channel_owners WHERE channel = c.key)",
    ),
    (
        "nick '{1}' is taken by {2} participants of channel {0}",
        "SELECT c.name, p.nick, count(*) FROM participants p JOIN channels c ON c.key = p.channel
           WHERE p.nick != '' GROUP BY p.channel, p.nick HAVING count(*) > 1",
    ),
    (
        "{1} receipts of message {0}, which is not in the archive",
        "SELECT message, count(*) FROM receipts WHERE message NOT IN (SELECT id FROM messages)
           GROUP BY message",
    ),
    (
        "{1} reactions to message {0}, which is not in the archive",
        "SELECT message, count(*) FROM reactions WHERE message NOT IN (SELECT id FROM messages)
           GROUP BY message",
    ),
];

impl Inspector {
    /// What is wrong with the database; empty when nothing is.
    pub fn check(&self) -> anyhow::Result<Vec<String>> {
        let mut findings = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let integrity = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for line in integrity {
            let line = line?;
            if line != "ok" {
                findings.push(format!("integrity: {line}"));
            }
        }
        for (say, query) in CONSISTENCY {
            let mut stmt = self.conn.prepare(query)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let mut line = (*say).to_owned();
                for i in 0..columns {
                    let value: rusqlite::types::Value = row.get(i)?;
                    let text = match value {
                        rusqlite::types::Value::Integer(n) => n.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    };
                    line = line.replace(&format!("{{{i}}}"), &text);
                }
                findings.push(line);
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
             UPDATE participants SET nick = 'alice' WHERE jid = 'bob@localhost';",
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
    }
}
