//! Setting a nick (XEP-0369 §7.1.6): nicks are unique within a channel, compared without
//! regard to ASCII case so that "Bob" cannot pose as "bob".

use jid::BareJid;

use super::join::{assigned_nick, checked_nick};
use super::{Condition, Fact, Groups, Outcome, Refusal};

impl Groups {
    /// Sets `actor`'s nick to `nick`, or without one (a blank `<nick/>`: "the user wishes the
    /// channel to assign a nick") to one the service generates. Returns the nick as stored
    /// with the facts.
    pub fn set_nick(
        &mut self,
        name: &str,
        actor: &BareJid,
        nick: Option<&str>,
    ) -> Outcome<(String, Vec<Fact>)> {
        let max_bytes = self.rules.max_nick_bytes;
        let (channel, participant) = self.participant_of(name, actor)?;
        let nick = match nick {
            Some(nick) => checked_nick(nick, max_bytes)?,
            None => assigned_nick(Some(channel), actor, participant.id, max_bytes),
        };
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
    use super::super::Nodes;
    use super::*;

    #[test]
    fn nick_conflicts_and_changes() {
        let mut g = coven();
        let err = g
            .set_nick("coven", &jid("bob@localhost"), Some("Alice"))
            .unwrap_err();
        assert_eq!(err.condition, Condition::Conflict);
        let (nick, _) = g
            .set_nick("coven", &jid("bob@localhost"), Some(" robert "))
            .unwrap();
        assert_eq!(nick, "robert");
        let p = member(&g, "bob@localhost");
        assert_eq!(p.nick, "robert");
        let (nick, facts) = g
            .set_nick("coven", &jid("bob@localhost"), Some("robert "))
            .unwrap();
        assert_eq!(nick, "robert");
        assert!(facts.is_empty(), "the same nick again: {facts:?}");
        let (_, facts) = g
            .set_nick("coven", &jid("bob@localhost"), Some("Robert"))
            .unwrap();
        assert_eq!(facts.len(), 1, "another case is another nick");
        let outsider = g
            .set_nick("coven", &jid("eve@localhost"), Some("eve"))
            .unwrap_err();
        assert_eq!(outsider.condition, Condition::Forbidden);
    }

    #[test]
    fn a_blank_nick_is_generated_free_and_within_the_limit() {
        let mut g = coven();
        g.rules.max_nick_bytes = 7;
        let bob = jid("bob@localhost");
        g.set_nick("coven", &bob, Some("robert")).unwrap();
        let (nick, facts) = g.set_nick("coven", &bob, None).unwrap();
        assert_eq!((nick.as_str(), facts.len()), ("bob", 1));
        g.set_nick("coven", &jid("alice@localhost"), Some("carol"))
            .unwrap();
        let joined = |g: &mut Groups, who: &str| {
            g.join("coven", &jid(who), None, Nodes::ALL, 9)
                .unwrap()
                .0
                .nick
        };
        // Taken by another: the first free suffix.
        assert_eq!(joined(&mut g, "carol@localhost"), "carol-2");
        // Too long: cut to the limit, and the suffix fits within it too.
        assert_eq!(joined(&mut g, "robertson@localhost"), "roberts");
        assert_eq!(joined(&mut g, "robertsen@localhost"), "rober-2");
        let (nick, _) = g.set_nick("coven", &jid("carol@localhost"), None).unwrap();
        assert_eq!(nick, "carol-2", "its own nick is not taken from it");
    }
}
