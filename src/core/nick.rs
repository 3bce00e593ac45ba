//! Setting a nick (XEP-0369 §7.1.6): nicks are unique within a channel, compared without
//! regard to ASCII case so that "Bob" cannot pose as "bob".

use jid::BareJid;

use super::join::checked_nick;
use super::{Condition, Fact, Groups, Outcome, Refusal};

impl Groups {
    /// Returns the nick as stored with the facts.
    pub fn set_nick(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: &str,
    ) -> Outcome<(String, Vec<Fact>)> {
        let nick = checked_nick(nick, self.rules.max_nick_bytes)?;
        let (channel, participant) = self.participant_of(name, actor)?;
        if channel.nick_taken(&nick, actor) {
            return Err(Refusal::new(
                Condition::Conflict,
                format!("the nick '{nick}' is taken in '{name}'"),
            ));
        }
        // The same nick again changes nothing: no fact, nobody told.
        if participant.nick == nick {
            return Ok((nick, Vec::new()));
        }
        let fact = Fact::NickChanged {
            key: channel.key,
            jid: actor.clone(),
            nick: nick.clone(),
        };
        Ok((nick, self.apply_all(vec![fact])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn nick_conflicts_and_changes() {
        let mut g = coven();
        let err = g
            .set_nick("coven", &jid("bob@localhost"), "Alice")
            .unwrap_err();
        assert_eq!(err.condition, Condition::Conflict);
        let (nick, _) = g
            .set_nick("coven", &jid("bob@localhost"), " robert ")
            .unwrap();
        assert_eq!(nick, "robert");
        let p = member(&g, "bob@localhost");
        assert_eq!(p.nick, "robert");
        let (nick, facts) = g
            .set_nick("coven", &jid("bob@localhost"), "robert ")
            .unwrap();
        assert_eq!(nick, "robert");
        assert!(facts.is_empty(), "the same nick again: {facts:?}");
        let (_, facts) = g
            .set_nick("coven", &jid("bob@localhost"), "Robert")
            .unwrap();
        assert_eq!(facts.len(), 1, "another case is another nick");
        let outsider = g
            .set_nick("coven", &jid("eve@localhost"), "eve")
            .unwrap_err();
        assert_eq!(outsider.condition, Condition::Forbidden);
    }
}
