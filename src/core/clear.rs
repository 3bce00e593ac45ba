//! Clearing history for oneself: a participant hides every message up to an archive id from
//! its own history; nobody else's history changes.

use jid::BareJid;

use super::{Fact, Groups, Outcome};

impl Groups {
    /// Hides messages up to `upto` (the newest message when `None`). Returns the point now hidden up to.
    pub fn clear_history(
        &mut self,
        name: &str,
        actor: &BareJid,
        upto: Option<i64>,
    ) -> Outcome<(i64, Vec<Fact>)> {
        let last = self.last_message_id;
        let (channel, participant) = self.participant_of(name, actor)?;
        let upto = upto.unwrap_or(last).min(last).max(participant.cleared_upto);
        if upto == participant.cleared_upto {
            return Ok((upto, Vec::new()));
        }
        let fact = Fact::HistoryCleared {
            key: channel.key,
            member: actor.clone(),
            upto,
        };
        Ok((upto, self.apply_all(vec![fact])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn clearing_moves_forward_only() {
        let mut g = coven();
        g.post("coven", &jid("alice@localhost"), text("a"), 1)
            .unwrap();
        g.post("coven", &jid("alice@localhost"), text("b"), 2)
            .unwrap();
        let last = g.last_message_id();
        let (upto, _) = g
            .clear_history("coven", &jid("bob@localhost"), None)
            .unwrap();
        assert_eq!(upto, last);
        let (upto, facts) = g
            .clear_history("coven", &jid("bob@localhost"), Some(1))
            .unwrap();
        assert_eq!(upto, last);
        assert!(facts.is_empty(), "nothing more hidden: {facts:?}");
        assert_eq!(member(&g, "bob@localhost").cleared_upto, last);
        assert_eq!(member(&g, "alice@localhost").cleared_upto, 0);
    }
}
