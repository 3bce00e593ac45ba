//! Who may read a channel's history, and from which message on: decided here once for both
//! dialects. Only participants read. A participant never sees what it cleared for itself,
//! nor — where the channel hides history from newcomers (FlyChat's `history` flag) — what
//! was said before it joined; both are one bound, `cleared_upto`, set at join and raised by
//! clearing.

use jid::BareJid;

use super::{Groups, Outcome};

/// The part of a channel's archive one requester may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryScope {
    /// The channel's archive key.
    pub channel: i64,
    /// Messages up to this archive id are hidden from the requester.
    pub hidden_upto: i64,
}

impl Groups {
    /// What `requester` may read of channel `name`'s history, or the refusal a
    /// non-participant (or a missing channel) gets.
    pub fn history_scope(&self, name: &str, requester: &BareJid) -> Outcome<HistoryScope> {
        let (channel, participant) = self.participant_of(name, requester)?;
        Ok(HistoryScope {
            channel: channel.key,
            hidden_upto: participant.cleared_upto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::core::Condition;

    #[test]
    fn participants_read_from_what_they_may_see() {
        let mut g = coven();
        g.post("coven", &jid("alice@localhost"), text("said before"), 1)
            .unwrap();
        let last = g.last_message_id();
        g.clear_history("coven", &jid("bob@localhost"), None)
            .unwrap();
        let bob = g.history_scope("coven", &jid("bob@localhost")).unwrap();
        assert_eq!(bob.hidden_upto, last);
        let alice = g.history_scope("coven", &jid("alice@localhost")).unwrap();
        assert_eq!(alice.hidden_upto, 0);
        assert_eq!(alice.channel, bob.channel);
    }

    #[test]
    fn outsiders_and_missing_channels_are_refused() {
        let g = coven();
        let outsider = g.history_scope("coven", &jid("mallory@localhost"));
        assert_eq!(outsider.unwrap_err().condition, Condition::Forbidden);
        let missing = g.history_scope("nowhere", &jid("alice@localhost"));
        assert_eq!(missing.unwrap_err().condition, Condition::ItemNotFound);
    }
}
