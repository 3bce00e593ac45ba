//! A run of joins held back to be written together, once for both backends: each
//! participant, the pending invitation or request its join settles, the notices (an add's, a
//! join's) and the clients that came online with their join. A join used to cost four
//! statements (four round trips on PostgreSQL); held, a run of them costs four for many rows
//! (SQLite's multi-row statements, PostgreSQL's arrays). Whatever follows a run may change its
//! rows (a leave, a nick), so each backend writes the run before any other fact
//! ([`Joins::holds`]), participants first: a client's presence row names its participant's.

use jid::{BareJid, FullJid};

use crate::core::{Fact, Notice, Participant};

/// The rows of a run of joins, not yet written; a backend writes them with
/// [`Joins::write`].
#[derive(Default)]
pub(super) struct Joins<'a> {
    /// Newcomers, by channel key: their rows are inserted.
    pub participants: Vec<(i64, &'a Participant)>,
    /// Participants joining again, by channel key: their rows are updated, after the
    /// newcomers' (a user's join again in the run follows its first). One who joined again
    /// twice in the run is here twice, the last join standing.
    pub rejoined: Vec<(i64, &'a Participant)>,
    /// The pending invitations and requests (channel key, user) the joins settle: most
    /// joins settle none, and a statement for none cost a SQLite join a sixth of its writing.
    pub settled: Vec<(i64, &'a BareJid)>,
    pub notices: Vec<&'a Notice>,
    /// By channel key.
    pub online: Vec<(i64, &'a FullJid)>,
}

impl<'a> Joins<'a> {
    /// Whether `fact` is one a run of joins holds back.
    pub fn holds(fact: &Fact) -> bool {
        matches!(
            fact,
            Fact::Joined { .. } | Fact::Noticed(_) | Fact::PresenceChanged { online: true, .. }
        )
    }

    /// Writes the run with the backend's `insert`, and empties it for the next.
    pub fn write<E>(&mut self, insert: impl FnOnce(&Self) -> Result<(), E>) -> Result<(), E> {
        insert(self)?;
        self.participants.clear();
        self.rejoined.clear();
        self.settled.clear();
        self.notices.clear();
        self.online.clear();
        Ok(())
    }
}
