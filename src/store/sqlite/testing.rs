//! Fixtures shared by the backend's tests in [`write`](super::write), [`load`](super::load)
//! and [`history`](super::history): a small channel, posting, paging queries and message
//! lookups, kept here once rather than copied into each.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{open, open_connection, Durability, SqliteReader, SqliteWriter};
use crate::core::testing::{groups, jid, text};
use crate::core::{Fact, Groups, MessageRef, Nodes};
use crate::store::{Completion, FactWriter, HistoryPage, HistoryQuery, Page, Reader};

/// A store holding channel `coven` (key 1) where alice (owner) and bob joined, and the
/// core that decided it.
pub(super) fn coven() -> (tempfile::TempDir, SqliteWriter, SqliteReader, Groups) {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, r) = open(&dir.path().join("t.db"), Durability::Normal).unwrap();
    let mut g = groups();
    let mut facts = g
        .create(&jid("alice@localhost"), Some("coven"), 1)
        .unwrap()
        .1;
    facts.extend(
        g.join(
            "coven",
            &jid("alice@localhost"),
            Some("alice"),
            Nodes::ALL,
            2,
        )
        .unwrap()
        .1,
    );
    facts.extend(
        g.join("coven", &jid("bob@localhost"), Some("bob"), Nodes::ALL, 3)
            .unwrap()
            .1,
    );
    commit(&mut w, facts);
    (dir, w, r, g)
}

pub(super) fn commit(w: &mut SqliteWriter, facts: Vec<Fact>) -> Vec<Completion> {
    w.commit(&facts.iter().collect::<Vec<_>>()).unwrap()
}

/// Posts `n` messages, alternately by bob and alice, at times 10, 20, ….
pub(super) fn post_many(w: &mut SqliteWriter, g: &mut Groups, n: i64) {
    for i in 1..=n {
        let who = if i % 2 == 0 {
            "alice@localhost"
        } else {
            "bob@localhost"
        };
        let facts = g
            .post("coven", &jid(who), text(&i.to_string()), i * 10)
            .unwrap();
        commit(w, facts);
    }
}

pub(super) fn query(page: Page, max: usize) -> HistoryQuery {
    HistoryQuery {
        channel: 1,
        page,
        max,
        counted: true,
        ..HistoryQuery::default()
    }
}

/// The coven's creation and two joins took the first archive ids, as notices: tests
/// count messages from there.
pub(super) const NOTICES: i64 = 3;

pub(super) fn abs(n: i64) -> i64 {
    n + NOTICES
}

pub(super) fn ids(page: &HistoryPage) -> Vec<i64> {
    page.messages
        .iter()
        .map(|m| m.posted.id - NOTICES)
        .collect()
}

/// The message `reference` names; a number is an archive id counted like [`ids`] (as the
/// dialects pass a decoded id), anything else an origin-id or client id.
pub(super) fn target(r: &SqliteReader, reference: &str) -> MessageRef {
    let id = reference.parse::<i64>().ok().map(abs);
    r.find_message(1, id, reference).unwrap().unwrap()
}

/// A database in memory, opened as the store's connections are: a test that opened one with
/// rusqlite alone before any store could initialize SQLite before the page cache's wrapper is
/// in place, for every test of the process (`pcache.rs`).
pub(crate) fn in_memory() -> Connection {
    open_connection(
        Path::new(":memory:"),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .expect("an in-memory database")
}

/// The opcodes of `sql`'s program at which SQLite says it may abort after changing rows
/// (`sqlite3MayAbort`): a halt with `OE_Abort` (2 in P2), an integer check of a value that
/// fails the statement (`MustBeInt` with no jump), a function call, an immediate foreign
/// key's counter. A statement of several rows that has one keeps a statement journal, a copy
/// of every page it is about to change. The program is only listed, never run (its
/// parameters unbound).
pub(super) fn abort_points(conn: &Connection, sql: &str) -> Vec<String> {
    let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let mut ops = explain.raw_query();
    let mut aborts = Vec::new();
    while let Some(r) = ops.next().unwrap() {
        let (op, p1, p2): (String, i64, i64) =
            (r.get(1).unwrap(), r.get(2).unwrap(), r.get(3).unwrap());
        let aborts_here = match op.as_str() {
            "Halt" | "HaltIfNull" => p1 != 0 && p2 == 2,
            // Without a place to jump to (P2), a value that is no integer raises an error; a
            // foreign key's probe of a parent's rowid jumps to count the key missing instead.
            "MustBeInt" => p2 == 0,
            "Function" | "PureFunc" => true,
            "FkCounter" => p1 == 0,
            _ => false,
        };
        if aborts_here {
            aborts.push(op);
        }
    }
    aborts
}

/// The watermark: every row at or below it has its look-up entries (`deferred.rs`).
pub(super) fn watermark(conn: &Connection) -> i64 {
    conn.query_row(
        &format!("SELECT {}", super::deferred::INDEXED_UPTO),
        [],
        |r| r.get(0),
    )
    .unwrap()
}
