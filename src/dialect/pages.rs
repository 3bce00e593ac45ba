//! Archive pages for the dialects' rendering tests, read from memory instead of a store.
//!
//! Why: a history page's rendering must stay byte for byte what clients were sent before
//! (escaping is what keeps a payload inside its element), and its cost is measured with
//! instruction counts of the rendering alone (`valgrind --tool=callgrind` of the ignored
//! `renders_pages_for_callgrind` tests in `mix/mam.rs` and `flychat/history.rs`; see
//! docs/benchmarks.md, "A history page's rendering, cheaper"). [`hand_cases`] is every kind
//! of row with every character that must be escaped; [`plain`] is the rows the bench's
//! archive holds.

use std::collections::HashMap;

use jid::BareJid;

use crate::core::{MessageRef, NoticeKind, Posted, Snapshot, Submission};
use crate::store::{
    Action, Archived, HistoryError, HistoryPage, HistoryQuery, MemberReceipt, Reader, Tombstone,
};

/// A reader whose every history page is `page`, with `receipts`.
pub struct PageArchive {
    pub page: HistoryPage,
    pub receipts: HashMap<i64, Vec<MemberReceipt>>,
}

impl Reader for PageArchive {
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        unreachable!("a page archive has no snapshot")
    }
    fn history(&self, _: &HistoryQuery) -> Result<HistoryPage, HistoryError> {
        Ok(self.page.clone())
    }
    fn find_message(&self, _: i64, _: Option<i64>, _: &str) -> anyhow::Result<Option<MessageRef>> {
        Ok(None)
    }
    fn receipts_of(&self, messages: &[i64]) -> anyhow::Result<HashMap<i64, Vec<MemberReceipt>>> {
        Ok(messages
            .iter()
            .filter_map(|id| Some((*id, self.receipts.get(id)?.clone())))
            .collect())
    }
}

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

/// A row of archive id `id` sent by `sender` as `nick`, with `content`.
fn row(id: i64, sender: &str, nick: &str, content: &str) -> Archived {
    Archived {
        posted: Posted {
            id,
            channel: 1,
            sender: jid(sender),
            nick: nick.into(),
            at: 1_700_000_000_000_000 + id * 1_234_567,
            submission: Submission {
                content: content.into(),
                client_id: None,
                origin_id: None,
                media: false,
            },
        },
        edited_at: None,
        retraction: None,
        reactions: Vec::new(),
        notice: None,
        action: None,
    }
}

/// The bench's archive's rows (`mixd-bench`'s seed): `rows` plain messages from one sender.
pub fn plain(rows: i64) -> PageArchive {
    let messages = (1..=rows)
        .map(|id| {
            let content = format!("<body>archived message number {}</body>", 999_000 + id);
            row(999_000 + id, "u0@bench", "u0", &content)
        })
        .collect();
    PageArchive {
        page: HistoryPage {
            messages,
            count: 1_000_000,
            first_index: None,
            complete: false,
        },
        receipts: HashMap::new(),
    }
}

/// Every kind of row, with what must be escaped in each place a client's text goes:
/// markup characters, both quotes, `]]>`, non-ASCII, long clean runs.
pub fn hand_cases() -> PageArchive {
    let content = "urn:xmpp:content";
    let mut rows =
        vec![
        row(1, "alice@localhost", "alice", "<body>plain</body>"),
        row(
            2,
            "bob@localhost",
            "b<o>b & 'co' \"x\"",
            "<body>a &lt;b&gt; &amp; &apos;q&apos; &quot;d&quot; ]]&gt; end</body>",
        ),
        row(
            3,
            "alice@localhost",
            "ålice ☺",
            "<body>é ☺ \u{1F600} 日本語 — a longer run of clean text between the specials &amp; \
             more of it, long enough for several words of eight</body>",
        ),
        row(
            4,
            "carol@localhost",
            "]]>",
            &format!(
                "<chatcontent xmlns='{content}' message_type='image' \
                 meta_data='{{&quot;w&quot;:&quot;&lt;&amp;&gt;&apos;&quot;}}' \
                 edit_msg_id='e-&apos;2'/><body>caption ]]&gt; &lt;/body&gt;</body>"
            ),
        ),
        row(
            5,
            "bob@localhost",
            "bob",
            "<body>file</body><x xmlns='jabber:x:oob'><url>https://x/a?b=1&amp;c=2</url></x>",
        ),
        row(6, "alice@localhost", "alice", "<body/>"),
        row(7, "alice@localhost", "alice", "<body>\n\ttabs and\nlines\n</body>"),
    ];
    rows[1].posted.submission.client_id = Some("c'2\"<&>".into());
    rows[2].edited_at = Some(1_700_000_009_000_000);
    rows[3].edited_at = Some(1_700_000_010_000_000);
    rows[4].posted.submission.media = true;
    rows[0].reactions = vec![
        (
            "👍".into(),
            vec![jid("bob@localhost"), jid("carol@localhost")],
        ),
        ("<3 & '\"".into(), vec![jid("alice@localhost")]),
    ];
    let mut retracted = row(8, "bob@localhost", "bob", "<body>gone</body>");
    retracted.retraction = Some(Tombstone {
        retraction: Some(9),
        at: 1_700_000_020_000_000,
        by: jid("alice@localhost"),
        moderated: Some(Some("<spam> & 'x'".into())),
    });
    rows.push(retracted);
    let mut retraction = row(9, "alice@localhost", "alice", "");
    retraction.action = Some(Action::Retraction {
        target: 8,
        moderated: Some(Some("reason <b>&amp;</b> \"q\"".into())),
    });
    rows.push(retraction);
    let mut own = row(10, "bob@localhost", "bob", "");
    own.action = Some(Action::Retraction {
        target: 5,
        moderated: None,
    });
    rows.push(own);
    let mut reacted = row(11, "carol@localhost", "carol", "");
    reacted.action = Some(Action::Reactions {
        target: 1,
        reactions: vec!["👍".into(), "<&>'\"".into()],
    });
    rows.push(reacted);
    let mut old_tombstone = row(12, "bob@localhost", "bob", "<body>old</body>");
    old_tombstone.retraction = Some(Tombstone {
        retraction: None,
        at: 1_700_000_030_000_000,
        by: jid("bob@localhost"),
        moderated: None,
    });
    rows.push(old_tombstone);
    let mut joined = row(13, "alice@localhost", "alice", "");
    joined.notice = Some((NoticeKind::Added, Some(jid("dave@localhost"))));
    rows.push(joined);
    let mut changed = row(14, "alice@localhost", "alice", "");
    changed.notice = Some((NoticeKind::SettingsChanged, None));
    rows.push(changed);
    let receipt = |member: &str, delivered, displayed| MemberReceipt {
        member: jid(member),
        delivered_at: delivered,
        displayed_at: displayed,
    };
    let receipts = HashMap::from([
        (
            1,
            vec![
                receipt("bob@localhost", Some(5), Some(6)),
                receipt("carol@localhost", Some(5), None),
            ],
        ),
        (2, vec![receipt("alice@localhost", Some(5), Some(7))]),
    ]);
    PageArchive {
        page: HistoryPage {
            messages: rows,
            count: 321,
            first_index: Some(0),
            complete: true,
        },
        receipts,
    }
}

/// The stanzas of several pages, one a line: what a fixed-output test compares with the
/// bytes the rendering wrote before.
pub fn lines(pages: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut all = String::new();
    for stanza in pages.into_iter().flatten() {
        all.push_str(&stanza);
        all.push('\n');
    }
    all
}

/// Renders `MIXD_PAGES` pages (200 by default) with `render`, for `valgrind
/// --tool=callgrind` of the ignored tests that call it: it measures, it checks nothing.
pub fn render_for_callgrind(render: impl Fn() -> Vec<String>) {
    let pages: usize = std::env::var("MIXD_PAGES").map_or(200, |n| n.parse().unwrap());
    let bytes: usize = (0..pages)
        .map(|_| render().iter().map(String::len).sum::<usize>())
        .sum();
    eprintln!("{pages} pages, {bytes} bytes");
}
