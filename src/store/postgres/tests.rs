//! The PostgreSQL backend against a real server, and against the SQLite backend: one scenario
//! of every kind of fact is committed to both, and every read must answer the same.
//!
//! These tests need a PostgreSQL server, so `cargo test` skips them (`#[ignore]`). Give them
//! one with `MIXD_TEST_POSTGRES` (a URL whose user may create databases) and run the ignored
//! tests; `scripts/test` does that with the harness's server:
//!
//! ```text
//! .venv/bin/python tests/harness/servers.py with-postgres -- \
//!     cargo test --locked store::postgres -- --ignored
//! ```
//!
//! Each test works in a database of its own, created for it.

use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::NoTls;

use super::{open, PgReader, PgWriter};
use crate::core::testing::{administered, groups, jid, text};
use crate::core::{
    AccessList, Fact, Groups, InfoChange, MessageRef, Nodes, ReceiptKind, Submission,
};
use crate::store::inspect::Inspector;
use crate::store::sqlite::{self, Durability, SqliteReader, SqliteWriter};
use crate::store::{time_search, Completion, FactWriter, HistoryQuery, Page, Reader};

/// A new, empty database on the test server, and its URL.
fn database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = std::env::var("MIXD_TEST_POSTGRES")
        .expect("MIXD_TEST_POSTGRES names a PostgreSQL server to test against");
    let name = format!(
        "mixd_unit_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = postgres::Client::connect(&server, NoTls).expect("connecting to the server");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    // The server's URL with the new database's name in place of its own.
    let (base, _) = server.rsplit_once('/').expect("a URL ending in /database");
    format!("{base}/{name}")
}

/// Both backends, fresh, each with its writer and reader.
struct Both {
    _dir: tempfile::TempDir,
    sqlite: (SqliteWriter, SqliteReader),
    pg: (PgWriter, PgReader),
    /// The PostgreSQL database's URL.
    url: String,
}

impl Both {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = sqlite::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        let url = database();
        let mut pg = open(&url, Durability::Normal).unwrap();
        pg.0.exit_when_fenced = false;
        Both {
            _dir: dir,
            sqlite,
            pg,
            url,
        }
    }

    /// Channel `coven`, owned by alice, where alice then bob joined (at 1, 2 and 3, as
    /// `core::testing::coven` makes it), committed to both as one batch.
    fn coven(&mut self) -> Groups {
        let mut g = groups();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let mut facts = g.create(&alice, Some("coven"), 1).unwrap().1;
        for (who, nick, at) in [(&alice, "alice", 2), (&bob, "bob", 3)] {
            facts.extend(g.join("coven", who, Some(nick), Nodes::ALL, at).unwrap().1);
        }
        self.commit(facts);
        g
    }

    /// Commits `facts` to both as one batch; the completions must agree.
    fn commit(&mut self, facts: Vec<Fact>) -> Vec<Completion> {
        let batch: Vec<&Fact> = facts.iter().collect();
        let lite = self.sqlite.0.commit(&batch).unwrap();
        let pg = self.pg.0.commit(&batch).unwrap();
        assert_eq!(lite, pg, "completions of {facts:?}");
        pg
    }

    /// The message `reference` names, which both must find alike; a number is also taken as
    /// the archive id a dialect decoded, as `sqlite/testing.rs` does.
    fn find(&self, channel: i64, reference: &str) -> Option<MessageRef> {
        let id = reference.parse::<i64>().ok();
        let lite = self.sqlite.1.find_message(channel, id, reference).unwrap();
        let pg = self.pg.1.find_message(channel, id, reference).unwrap();
        assert_eq!(lite, pg, "find_message({channel}, {reference:?})");
        pg
    }

    /// Every read both answer must be the same.
    fn same_reads(&self, queries: &[HistoryQuery], messages: &[i64]) {
        let (lite, pg) = (&self.sqlite.1, &self.pg.1);
        // A departed owner's time is each writer's clock at its commit (a `Left` carries
        // none): the two commits are moments apart, so only the times differ.
        let snapshot = |r: &dyn Reader| {
            let mut snapshot = r.snapshot().unwrap();
            for departure in &mut snapshot.departures {
                departure.at = 0;
            }
            format!("{snapshot:?}")
        };
        assert_eq!(snapshot(lite), snapshot(pg), "snapshots");
        for q in queries {
            let page = |r: &dyn Reader| match r.history(q) {
                Ok(p) => format!(
                    "{:?} count={} first={:?} complete={}",
                    p.messages, p.count, p.first_index, p.complete
                ),
                Err(e) => format!("error {e}"),
            };
            assert_eq!(page(lite), page(pg), "history {q:?}");
            // With its rows' receipts, as FlyChat history reads it: one statement on
            // PostgreSQL, the page and `receipts_of` on SQLite.
            let with_receipts = |r: &dyn Reader| match r.history_with_receipts(q) {
                Ok((p, receipts)) => {
                    let mut receipts: Vec<_> = receipts.into_iter().collect();
                    receipts.sort_by_key(|(m, _)| *m);
                    format!("{:?} count={} {receipts:?}", p.messages, p.count)
                }
                Err(e) => format!("error {e}"),
            };
            assert_eq!(
                with_receipts(lite),
                with_receipts(pg),
                "history with receipts {q:?}"
            );
        }
        for &m in messages {
            assert_eq!(
                lite.receipts(m).unwrap(),
                pg.receipts(m).unwrap(),
                "receipts of {m}"
            );
        }
        // A page's receipts read at once, as FlyChat history reads them.
        let by_message = |r: &dyn Reader| {
            let mut all: Vec<_> = r.receipts_of(messages).unwrap().into_iter().collect();
            all.sort_by_key(|(m, _)| *m);
            all
        };
        assert_eq!(by_message(lite), by_message(pg), "receipts of {messages:?}");
    }

    /// What `mixd admin` reads must be the same from both, the check's findings too, which
    /// it returns.
    fn same_admin_reads(&self) -> Vec<String> {
        let lite = sqlite::inspect(&self._dir.path().join("t.db")).unwrap();
        let pg = super::inspect(&self.url).unwrap();
        let read = |inspector: &dyn Inspector| {
            let channels = inspector.channels(None).unwrap();
            let mut shown = Vec::new();
            for channel in &channels {
                shown.push(format!("{:?}", inspector.channel(&channel.name).unwrap()));
                for notices in [false, true] {
                    let mut rows = Vec::new();
                    let found = inspector.archive(&channel.name, notices, &mut |m| {
                        rows.push(m);
                        Ok(())
                    });
                    assert!(found.unwrap(), "{}", channel.name);
                    shown.push(format!("{rows:?}"));
                }
            }
            let searched = inspector.channels(Some("OV")).unwrap();
            let findings = inspector.check().unwrap();
            (format!("{channels:?} {searched:?} {shown:?}"), findings)
        };
        let (lite, pg) = (read(&lite), read(&pg));
        assert_eq!(lite, pg, "mixd admin's reads");
        pg.1
    }
}

fn query(channel: i64, page: Page, max: usize) -> HistoryQuery {
    HistoryQuery {
        channel,
        page,
        max,
        counted: true,
        ..HistoryQuery::default()
    }
}

/// Every query shape the dialects ask for, over channel `channel` whose messages are `ids`.
fn queries(channel: i64, ids: &[i64]) -> Vec<HistoryQuery> {
    let mut all = Vec::new();
    for max in [1, 3, 50] {
        all.push(query(channel, Page::First, max));
        all.push(query(channel, Page::Last, max));
        all.push(query(channel, Page::Index(2), max));
        all.push(query(channel, Page::After(9_999), max));
        all.push(query(channel, Page::Before(9_999), max));
        for &id in ids {
            all.push(query(channel, Page::After(id), max));
            all.push(query(channel, Page::Before(id), max));
        }
    }
    let variants: Vec<fn(&mut HistoryQuery)> = vec![
        |q| q.with_notices = true,
        |q| q.media_only = true,
        |q| q.with = Some(jid("alice@localhost")),
        // A sender's notices are a second arm on SQLite (`notices_by_sender`).
        |q| {
            q.with = Some(jid("alice@localhost"));
            q.with_notices = true;
        },
        |q| q.start = Some(40),
        |q| q.end = Some(60),
        |q| q.hidden_upto = 6,
        |q| q.counted = false,
        |q| q.with_actions = true,
        |q| q.after_id = Some(2),
        |q| q.before_id = Some(8),
        |q| q.ids = vec![8, 2, 5],
        |q| {
            q.with_actions = true;
            q.after_id = Some(3);
            q.before_id = Some(14);
        },
        |q| q.after_id = Some(9_999),
        |q| q.before_id = Some(9_999),
        |q| q.ids = vec![2, 9_999],
    ];
    for variant in variants {
        for page in [Page::First, Page::Last, Page::After(6), Page::Before(8)] {
            let mut q = query(channel, page, 3);
            variant(&mut q);
            all.push(q);
        }
    }
    all
}

#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn every_fact_reads_back_as_from_sqlite() {
    let mut both = Both::new();
    let mut g = both.coven();
    let (alice, bob, carol) = (
        jid("alice@localhost"),
        jid("bob@localhost"),
        jid("carol@localhost"),
    );
    both.commit(g.join("coven", &carol, None, Nodes::ALL, 4).unwrap().1);

    // Messages, alternately by bob and alice, one of them a photo with a client id.
    for i in 1..=7 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        both.commit(g.post("coven", who, text(&i.to_string()), i * 10).unwrap());
    }
    let photo = Submission {
        content: "<x xmlns='jabber:x:oob'><url>https://example.org/a.jpg</url></x>".into(),
        client_id: Some("client-7".into()),
        media: true,
        ..Submission::default()
    };
    both.commit(g.post("coven", &bob, photo, 80).unwrap());

    // Corrections, reactions, retractions (one moderated), receipts and their completions.
    let first = both.find(1, "o-1").unwrap();
    both.commit(
        g.correct("coven", &bob, Some(&first), text("one"), 81)
            .unwrap(),
    );
    for (who, reactions) in [(&alice, vec!["👍", "🎉"]), (&bob, vec!["👍"])] {
        let chosen = reactions.into_iter().map(String::from).collect();
        both.commit(g.react("coven", who, Some(&first), chosen, 82).unwrap());
    }
    both.commit(g.react("coven", &alice, Some(&first), vec![], 83).unwrap());
    for who in [&carol, &alice] {
        let chosen = vec!["🎉".to_string(), "👍".to_string()];
        both.commit(g.react("coven", who, Some(&first), chosen, 83).unwrap());
    }
    let third = both.find(1, "o-3").unwrap();
    both.commit(g.retract("coven", &bob, Some(&third), None, 84).unwrap());
    let fourth = both.find(1, "o-4").unwrap();
    both.commit(
        g.retract(
            "coven",
            &alice,
            Some(&fourth),
            Some(Some("off-topic".into())),
            85,
        )
        .unwrap(),
    );
    let second = both.find(1, "o-2").unwrap();
    let mut completed = Vec::new();
    for (who, kind) in [
        (&bob, ReceiptKind::Delivered),
        (&carol, ReceiptKind::Displayed),
        (&carol, ReceiptKind::Displayed),
        (&bob, ReceiptKind::Displayed),
    ] {
        completed.extend(
            both.commit(g.receipt("coven", who, Some(&second), kind, 86).unwrap())
                .into_iter()
                .map(|c| c.kind),
        );
    }
    assert_eq!(completed, [ReceiptKind::Delivered, ReceiptKind::Displayed]);

    // Administration: settings, lists, mutes, invitations, requests, roles, info, nicks,
    // subscriptions, a cleared history.
    both.commit(administered(&mut g, 90));
    let info = InfoChange {
        name: Some("The Coven".into()),
        description: Some("a place".into()),
        contacts: Some(vec![alice.clone(), bob.clone()]),
        history_visible: Some(false),
        ..InfoChange::default()
    };
    both.commit(g.set_info("coven", &alice, info, 95).unwrap().1);
    both.commit(g.set_nick("coven", &carol, Some("caz")).unwrap().1);
    both.commit(
        g.update_subscription("coven", &carol, Nodes(0), Nodes(2))
            .unwrap()
            .1,
    );
    both.commit(g.clear_history("coven", &carol, None).unwrap().1);
    both.commit(g.transfer("coven", &alice, &bob, 96).unwrap());
    both.commit(
        g.set_access(
            "coven",
            &bob,
            AccessList::Allowed,
            &jid("localhost"),
            false,
            97,
        )
        .unwrap(),
    );

    // A second channel, destroyed: its key and its message ids are never used again.
    let mut facts = g.create(&alice, Some("gone"), 100).unwrap().1;
    facts.extend(
        g.join("gone", &alice, Some("alice"), Nodes::ALL, 101)
            .unwrap()
            .1,
    );
    both.commit(facts);
    both.commit(g.post("gone", &alice, text("bye"), 102).unwrap());
    // Several posts in one batch, in two channels, around another fact: as group commit
    // gathers them.
    let mut facts = g.post("gone", &alice, text("b1"), 102).unwrap();
    facts.extend(g.post("coven", &bob, text("b2"), 1001).unwrap());
    facts.extend(g.set_nick("coven", &bob, Some("bobby")).unwrap().1);
    facts.extend(g.post("gone", &alice, text("b3"), 102).unwrap());
    facts.extend(g.post("coven", &bob, text("b4"), 1001).unwrap());
    both.commit(facts);
    let counts = queries(2, &[]);
    both.same_reads(&counts[..3], &[]);

    both.commit(g.destroy(&alice, "gone", 103).unwrap());
    both.commit(g.leave("coven", &carol, 104).unwrap());

    let ids: Vec<i64> = (1..=20).collect();
    let mut all = queries(1, &ids);
    all.extend(queries(2, &ids));
    both.same_reads(&all, &ids);
    assert_eq!(both.same_admin_reads(), Vec::<String>::new());
    for reference in ["1", "8", "o-5", "client-7", "nothing", "o-bye"] {
        for channel in [1, 2] {
            both.find(channel, reference);
        }
    }
    let page = both.pg.1.history(&query(1, Page::First, 1)).unwrap();
    assert_eq!(
        page.messages[0].reactions.len(),
        2,
        "{:?}",
        page.messages[0]
    );
    let snapshot = both.pg.1.snapshot().unwrap();
    assert_eq!(snapshot.channels.len(), 1);
    assert_eq!(snapshot.last_channel_key, 2);
    assert!(snapshot.last_message_id > 20);

    // A kept archive outlives its channel alike.
    g.rules.keep_archive = true;
    both.commit(g.destroy(&bob, "coven", 110).unwrap());
    let mut kept = queries(1, &ids);
    kept.iter_mut().for_each(|q| q.with_notices = true);
    both.same_reads(&kept, &ids);

    // How participants are reached and which clients are online (schema 3 and 4 of SQLite):
    // a join by the user's server, a direct join (online from it), presence on and off, a
    // bounce; an ad-hoc channel (not listed); an owner who leaves keeps a right to delete.
    let mut facts = g.create(&alice, Some("reach"), 104).unwrap().1;
    facts.extend(
        g.join("reach", &alice, Some("alice"), Nodes::ALL, 104)
            .unwrap()
            .1,
    );
    both.commit(facts);
    let dave: jid::Jid = "dave@localhost".parse().unwrap();
    both.commit(
        g.join_from("reach", &dave, None, Nodes::ALL, 105)
            .unwrap()
            .1,
    );
    let erin: jid::Jid = "erin@localhost/phone".parse().unwrap();
    both.commit(
        g.join_from("reach", &erin, None, Nodes::ALL, 105)
            .unwrap()
            .1,
    );
    let (phone, pc) = (
        jid::FullJid::new("alice@localhost/phone").unwrap(),
        jid::FullJid::new("alice@localhost/pc").unwrap(),
    );
    let mut facts = g.presence("reach", &phone, true).unwrap();
    facts.extend(g.presence("reach", &pc, true).unwrap());
    both.commit(facts);
    both.commit(g.presence("reach", &phone, false).unwrap());
    both.commit(g.bounced(&pc));
    both.commit(g.presence("reach", &phone, true).unwrap());
    let (ad_hoc, facts) = g.create(&alice, None, 106).unwrap();
    both.commit(facts);
    both.commit(g.join(&ad_hoc, &alice, None, Nodes::ALL, 106).unwrap().1);
    let listed = |name: &str| {
        let snapshot = both.pg.1.snapshot().unwrap();
        let channel = snapshot.channels.iter().find(|c| c.name == name);
        channel.unwrap().listed
    };
    assert!(!listed(&ad_hoc) && listed("reach"));
    both.commit(g.leave(&ad_hoc, &alice, 107).unwrap());
    both.same_reads(&[], &[]);
    let snapshot = both.pg.1.snapshot().unwrap();
    assert_eq!(snapshot.departures.len(), 1, "{:?}", snapshot.departures);
    let reach = snapshot
        .channels
        .iter()
        .find(|c| c.name == "reach")
        .unwrap();
    let reached = |who: &str| {
        let p = reach.participant(&jid(who)).unwrap();
        (p.reach, p.online.len())
    };
    use crate::core::model::Reach;
    assert_eq!(reached("dave@localhost"), (Reach::Server, 0));
    assert_eq!(reached("erin@localhost"), (Reach::Direct, 1));
    assert_eq!(reached("alice@localhost"), (Reach::Direct, 1));
    assert_eq!(both.same_admin_reads(), Vec::<String>::new());
}

/// A batch of joins is written as runs of rows, a statement for each kind (`write.rs`,
/// `Joins`), with other facts between runs: a participant who joins twice in one run (one
/// statement may not update its row twice), a leave, a join after it, a client going offline,
/// an invitation the join settles. Both backends must read it all back alike, as decided.
#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn a_batch_of_joins_reads_back_as_from_sqlite() {
    let mut both = Both::new();
    let mut g: Groups = groups();
    g.rules.max_members = 1000;
    let alice = jid("alice@localhost");
    let mut facts = g.create(&alice, Some("crowd"), 1).unwrap().1;
    let users: Vec<jid::Jid> = (0..40)
        .map(|n| format!("user{n}@localhost/phone").parse().unwrap())
        .collect();
    let invited = users[3].to_bare();
    facts.extend(
        g.invite("crowd", &alice, std::slice::from_ref(&invited), 2)
            .unwrap()
            .1,
    );
    both.commit(facts);
    let mut batch = Vec::new();
    for (at, user) in (10..).zip(&users) {
        batch.extend(
            g.join_from("crowd", user, None, Nodes::MESSAGES, at)
                .unwrap()
                .1,
        );
    }
    batch.extend(
        g.join_from("crowd", &users[5], Some("fifth"), Nodes::ALL, 60)
            .unwrap()
            .1,
    );
    batch.extend(g.leave("crowd", &users[7].to_bare(), 61).unwrap());
    batch.extend(
        g.join("crowd", &users[7].to_bare(), None, Nodes::ALL, 62)
            .unwrap()
            .1,
    );
    let offline = users[9].try_as_full().unwrap().clone();
    batch.extend(g.presence("crowd", &offline, false).unwrap());
    both.commit(batch);
    let mut notices = query(1, Page::First, 100);
    notices.with_notices = true;
    both.same_reads(&[notices], &[]);
    let snapshot = both.pg.1.snapshot().unwrap();
    let crowd = &snapshot.channels[0];
    assert_eq!(crowd.participants, g.channel("crowd").unwrap().participants);
    assert_eq!(
        crowd.participant(&users[5].to_bare()).unwrap().nick,
        "fifth"
    );
    let online: usize = crowd.participants.iter().map(|p| p.online.len()).sum();
    assert_eq!(
        online,
        users.len() - 2,
        "the leaver's client and one gone offline"
    );
    assert!(crowd.pending(&invited).is_none());
    assert_eq!(both.same_admin_reads(), Vec::<String>::new());
}

/// The start-up load fetches its rows a batch at a time (`load.rs`): a snapshot of more
/// participants than a batch, one channel's rows on both sides of a batch's end, reads back as
/// SQLite's does, with every participant in it.
#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn a_snapshot_of_more_rows_than_a_batch_reads_back_whole() {
    const MEMBERS: usize = 4000;
    let mut both = Both::new();
    let mut g: Groups = groups();
    g.rules.max_members = MEMBERS + 1;
    let mut facts = Vec::new();
    for channel in 0..3 {
        let name = format!("big{channel}");
        let owner = jid(&format!("owner{channel}@localhost"));
        facts.extend(g.create(&owner, Some(&name), 1).unwrap().1);
        for n in 0..MEMBERS {
            let user = jid(&format!("user{n}@localhost"));
            let at = 2 + n as i64;
            facts.extend(g.join(&name, &user, None, Nodes::MESSAGES, at).unwrap().1);
        }
    }
    both.commit(facts);
    both.same_reads(&[], &[]);
    let snapshot = both.pg.1.snapshot().unwrap();
    let participants: usize = snapshot.channels.iter().map(|c| c.participants.len()).sum();
    assert!(participants > super::load::BATCH as usize);
    assert_eq!(
        participants,
        3 * MEMBERS,
        "creating a channel does not join it"
    );
}

/// Past a few pages, PostgreSQL's history takes SQLite's bounded paths (`store/history.rs`):
/// time windows become id bounds by interpolation search, and a filtered count beyond 256 matches is
/// the same estimate, not a count of the whole archive.
#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn a_large_archive_pages_and_counts_as_on_sqlite() {
    let mut both = Both::new();
    let mut g: Groups = groups();
    let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
    let mut facts = g.create(&alice, Some("coven"), 1).unwrap().1;
    for who in [&alice, &bob] {
        facts.extend(g.join("coven", who, None, Nodes::ALL, 2).unwrap().1);
    }
    // Bob writes the first 300 messages, then one in three: 400 of 600, densely first, so
    // that an estimate from the first 257 is not the exact count. Message n at time 10·n,
    // then one whose clock stepped back, to time 15.
    for n in 1..=600 {
        let who = if n <= 300 || n % 3 == 0 { &bob } else { &alice };
        facts.extend(g.post("coven", who, text(&n.to_string()), n * 10).unwrap());
    }
    facts.extend(g.post("coven", &alice, text("late"), 15).unwrap());
    both.commit(facts);

    let mut queries = Vec::new();
    for page in [
        Page::First,
        Page::Last,
        Page::Index(40),
        Page::After(200),
        Page::Before(450),
    ] {
        let windows = [
            (None, None),
            (Some(1_000), Some(5_000)),
            (Some(3_995), None),
        ];
        for (start, end) in windows {
            for with in [None, Some(&bob), Some(&alice)] {
                queries.push(HistoryQuery {
                    start,
                    end,
                    with: with.cloned(),
                    ..query(1, page.clone(), 50)
                });
            }
        }
    }
    both.same_reads(&queries, &[]);
    let bobs = HistoryQuery {
        with: Some(bob.clone()),
        ..query(1, Page::Last, 50)
    };
    let page = both.pg.1.history(&bobs).unwrap();
    assert!(
        page.count > 500,
        "estimated from the dense first 257, not counted: {}",
        page.count
    );
}

/// The ends' statement probes exactly the time search's first guesses (computed in SQL,
/// `numeric` for `i128`), each answered with the first row from there below the last row.
#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn the_ends_probe_the_time_searchs_first_guesses() {
    let mut both = Both::new();
    let mut g: Groups = groups();
    let alice = jid("alice@localhost");
    let mut facts = g.create(&alice, Some("coven"), 1).unwrap().1;
    facts.extend(g.join("coven", &alice, None, Nodes::ALL, 2).unwrap().1);
    // Bursts of a few at one time, a quiet spell, and times of the service's order of size.
    let mut at = 1_700_000_000_000_000i64;
    for n in 1..=400i64 {
        at += match n % 50 {
            0 => 3_600_000_000,
            m if m % 4 == 0 => 0,
            m => m * 7,
        };
        facts.extend(g.post("coven", &alice, text(&n.to_string()), at).unwrap());
    }
    both.commit(facts);
    let mut client = postgres::Client::connect(&both.url, NoTls).unwrap();
    let rows: Vec<(i64, i64)> = client
        .query(
            "SELECT id, at FROM messages WHERE channel = 1 ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let (first_at, last_at) = (rows[0].1, rows[rows.len() - 1].1);
    let ranges = [(0, i64::MAX), (10, 300), (50, 53), (7, 6), (500, i64::MAX)];
    for (floor, ceiling) in ranges {
        let inside: Vec<(i64, i64)> = rows
            .iter()
            .copied()
            .filter(|&(id, _)| id > floor && id < ceiling)
            .collect();
        for time in (first_at - 5..last_at + 5).step_by(((last_at - first_at) / 97) as usize) {
            let times = [time, time + 2_000_000_000];
            let got = super::history::ends(&both.pg.1, 1, (floor, ceiling), &times).unwrap();
            let Some((&first, &last)) = inside.first().zip(inside.last()) else {
                assert_eq!(got, None);
                continue;
            };
            let probed = time_search::first_guesses(first, last, &times)
                .into_iter()
                .map(|from| {
                    let row = inside.iter().copied().find(|&(id, _)| id >= from);
                    (from, row.filter(|&(id, _)| id < last.0))
                })
                .collect();
            let expected = time_search::Ends {
                first,
                last,
                probed,
            };
            assert_eq!(got, Some(expected), "{floor}..{ceiling} at {times:?}");
        }
    }
}

#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn the_check_finds_the_same_planted_inconsistencies_in_both() {
    let mut both = Both::new();
    let mut g = both.coven();
    let bob = jid("bob@localhost");
    both.commit(g.post("coven", &bob, text("hi"), 4).unwrap());
    assert_eq!(both.same_admin_reads(), Vec::<String>::new());

    // Behind the writers' backs: an orphan receipt, a count that is off, a nick taken twice.
    let plant =
        "INSERT INTO receipts (message, member, delivered_at) VALUES (9999, 'ghost@localhost', 1);
                 UPDATE channels SET message_count = message_count + 5;
                 UPDATE participants SET nick = 'alice' WHERE jid = 'bob@localhost';";
    rusqlite::Connection::open(both._dir.path().join("t.db"))
        .unwrap()
        .execute_batch(plant)
        .unwrap();
    postgres::Client::connect(&both.url, NoTls)
        .unwrap()
        .batch_execute(plant)
        .unwrap();
    let mut findings = both.same_admin_reads();
    findings.sort();
    assert_eq!(
        findings,
        [
            "1 receipts of message 9999, which is not in the archive",
            "channel coven counts 6 messages but its archive holds 1",
            "nick 'alice' is taken by 2 participants of channel coven",
        ]
    );
}

#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn a_fenced_instance_cannot_commit() {
    let url = database();
    let (mut w, r) = open(&url, Durability::Full).unwrap();
    w.exit_when_fenced = false;
    let mut g = groups();
    let facts = g
        .create(&jid("alice@localhost"), Some("coven"), 1)
        .unwrap()
        .1;
    w.commit(&facts.iter().collect::<Vec<_>>()).unwrap();
    // What a standby does when it takes over.
    let mut other = postgres::Client::connect(&url, NoTls).unwrap();
    other
        .execute("UPDATE fence SET epoch = epoch + 1", &[])
        .unwrap();
    let facts = g.create(&jid("bob@localhost"), Some("late"), 2).unwrap().1;
    let error = w.commit(&facts.iter().collect::<Vec<_>>()).unwrap_err();
    assert!(
        error.downcast_ref::<super::write::Fenced>().is_some(),
        "{error:#}"
    );
    let names: Vec<String> = r
        .snapshot()
        .unwrap()
        .channels
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["coven"]);
}

#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn the_schema_is_created_once_and_versioned() {
    let url = database();
    let mut client = postgres::Client::connect(&url, NoTls).unwrap();
    super::migrate::migrate(&mut client).unwrap();
    super::migrate::migrate(&mut client).unwrap();
    let version: i32 = client
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, super::migrate::LATEST);
    client
        .execute("UPDATE schema_version SET version = 99", &[])
        .unwrap();
    let error = super::migrate::migrate(&mut client).unwrap_err();
    assert!(
        error.to_string().contains("newer than this mixd"),
        "{error}"
    );
}

/// Not a check but a measurement, for docs/benchmarks.md: history pages read from the store
/// alone (as `mixd-bench history` reports them for SQLite), on both backends side by side, over
/// a channel of `MIXD_BENCH_ARCHIVE` messages (a million by default). Build it optimized:
/// `cargo test --release --lib history_pages_side_by_side -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark; needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn history_pages_side_by_side() {
    use std::time::Instant;
    let archive: i64 = std::env::var("MIXD_BENCH_ARCHIVE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut both = Both::new();
    let mut g = groups();
    both.commit(g.create(&jid("u0@localhost"), Some("c0"), 1).unwrap().1);
    // The rows `mixd-bench history` seeds: ids after the creation notice, one sender.
    let seeded = Instant::now();
    let first = 2;
    let last = first + archive - 1;
    let mut lite = rusqlite::Connection::open(both._dir.path().join("t.db")).unwrap();
    let tx = lite.transaction().unwrap();
    tx.execute(
        "WITH RECURSIVE g(id) AS (SELECT ?1 UNION ALL SELECT id + 1 FROM g WHERE id < ?2)
         INSERT INTO messages (id, channel, at, sender, nick, content)
         SELECT id, 1, 1000 + id, 'u0@localhost', 'u0', '<body>archived message number ' || id || '</body>' FROM g",
        [first, last],
    )
    .unwrap();
    tx.execute_batch(
        "UPDATE channels SET message_count = (SELECT count(*) FROM messages WHERE channel = 1); ANALYZE;",
    )
    .unwrap();
    tx.commit().unwrap();
    let mut pg = postgres::Client::connect(&both.url, NoTls).unwrap();
    pg.execute(
        "INSERT INTO messages (id, channel, at, sender, nick, content)
         SELECT id, 1, 1000 + id, 'u0@localhost', 'u0', '<body>archived message number ' || id || '</body>'
         FROM generate_series($1::bigint, $2::bigint) id",
        &[&first, &last],
    )
    .unwrap();
    pg.batch_execute(
        "UPDATE channels SET message_count = (SELECT count(*) FROM messages WHERE channel = 1)",
    )
    .unwrap();
    pg.batch_execute("VACUUM ANALYZE messages").unwrap();
    println!(
        "seeded {archive} messages into both in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let mut random = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let queries: Vec<HistoryQuery> = (0..4000)
        .map(|i| {
            let anchor = first + 50 + (next() % (archive as u64 - 100)) as i64;
            HistoryQuery {
                channel: 1,
                max: 50,
                page: if i % 2 == 0 {
                    Page::Before(anchor)
                } else {
                    Page::After(anchor)
                },
                ..HistoryQuery::default()
            }
        })
        .collect();
    for (name, reader) in [
        ("SQLite", &both.sqlite.1 as &dyn Reader),
        ("PostgreSQL", &both.pg.1 as &dyn Reader),
    ] {
        // Warm: the first pass reads the pages in; the second is measured.
        for q in queries.iter().take(500) {
            reader.history(q).unwrap();
        }
        let mut ms: Vec<f64> = queries
            .iter()
            .map(|q| {
                let start = Instant::now();
                let page = reader.history(q).unwrap();
                assert_eq!(page.messages.len(), 50);
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let at = |p: f64| ms[((ms.len() - 1) as f64 * p) as usize];
        println!(
            "{name}: {} pages of 50 at {archive} messages, store alone p50 {:.3} ms p99 {:.3} ms",
            ms.len(),
            at(0.5),
            at(0.99)
        );
    }
}

#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn the_id_key_is_made_once_per_database_and_shared_with_a_standby() {
    let url = database();
    let (mut w, _r) = open(&url, Durability::Normal).unwrap();
    // Asked for where the service asks: inside its runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let key = runtime.block_on(async { w.id_key() }).unwrap();
    assert_eq!(w.id_key().unwrap(), key);
    assert_ne!(key, [0; 16]);
    let mut client = postgres::Client::connect(&url, NoTls).unwrap();
    let stored: Vec<u8> = client
        .query_one("SELECT value FROM meta WHERE name = 'id_key'", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, key, "kept in the database");
    // The next active instance (a restart, or a standby taking over: this process keeps the
    // first one's lock, so another database stands in) reads the stored key, not a new one.
    let next = database();
    let mut client = postgres::Client::connect(&next, NoTls).unwrap();
    super::migrate::migrate(&mut client).unwrap();
    client
        .execute(
            "INSERT INTO meta (name, value) VALUES ('id_key', $1)",
            &[&&[7u8; 16][..]],
        )
        .unwrap();
    let (mut w, _r) = open(&next, Durability::Normal).unwrap();
    assert_eq!(w.id_key().unwrap(), [7; 16]);
    let (mut other, _r) = open(&database(), Durability::Normal).unwrap();
    assert_ne!(
        other.id_key().unwrap(),
        key,
        "another database, another key"
    );
}

/// A column as `information_schema` describes it: table, name, type, nullable, default,
/// collation.
type Column = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// Every table's columns, in order.
fn columns(client: &mut postgres::Client) -> Vec<Column> {
    client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text,
                    column_default::text, collation_name::text
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

/// Every constraint (keys, foreign keys with their actions) by table, as PostgreSQL defines
/// it, without its name.
fn constraints(client: &mut postgres::Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
#[ignore = "needs PostgreSQL: MIXD_TEST_POSTGRES=postgres://… (see tests.rs)"]
fn a_version_1_database_migrates_to_the_schema_and_keeps_its_rows() {
    let mut old = postgres::Client::connect(&database(), NoTls).unwrap();
    old.batch_execute(include_str!(
        "../../../tests/fixtures/schema-postgres-v1.sql"
    ))
    .unwrap();
    old.batch_execute(
        "INSERT INTO schema_version (version) VALUES (1);
         INSERT INTO channels (key, name, created_by, created_at, info_updated_at)
         VALUES (1, 'coven', 'alice@localhost', 1, 1), (2, '0f3a9c2e71b4d856', 'alice@localhost', 1, 1),
                (3, 'trip', 'bob@localhost', 1, 1);
         INSERT INTO participants (channel, jid, id, nick, nodes, role, dialect, joined_at)
         VALUES (3, 'bob@localhost', '1', 'bob', 31, 2, 1, 1);
         -- Alice made an admin of coven at 7 (a notice of kind 5), a post at 9.
         INSERT INTO messages (id, channel, at, sender, nick, content, notice)
         VALUES (1, 1, 7, 'alice@localhost', '', '', 5), (2, 1, 9, 'alice@localhost', '', 'hi', 0);",
    )
    .unwrap();
    super::migrate::migrate(&mut old).unwrap();
    let mut fresh = postgres::Client::connect(&database(), NoTls).unwrap();
    super::migrate::migrate(&mut fresh).unwrap();
    assert_eq!(columns(&mut old), columns(&mut fresh));
    assert_eq!(constraints(&mut old), constraints(&mut fresh));
    assert_eq!(indexes(&mut old), indexes(&mut fresh));
    assert!(constraints(&mut old)
        .iter()
        .any(|(table, def)| table == "presence" && def.contains("REFERENCES participants")));
    // Named as mixd names ad-hoc channels, or made by a FlyChat creator: unlisted.
    let listed: Vec<(String, bool)> = old
        .query("SELECT name, listed FROM channels ORDER BY key", &[])
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        listed,
        [
            ("coven".into(), true),
            ("0f3a9c2e71b4d856".into(), false),
            ("trip".into(), false)
        ]
    );
    // The configuration last changed when alice was made an admin; the others never.
    let configured: Vec<i64> = old
        .query("SELECT config_updated_at FROM channels ORDER BY key", &[])
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(configured, [7, 0, 0]);
    let version: i32 = old
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, super::migrate::LATEST);
}

/// Every index as PostgreSQL defines it (its columns, included columns and predicate).
fn indexes(client: &mut postgres::Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public'
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}
