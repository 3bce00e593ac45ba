//! Leaving a channel (XEP-0369 §7.1.4): the participant and its subscriptions go; the
//! participants node's subscribers see its item retracted.

use jid::BareJid;

use super::{Fact, Groups, Outcome};

impl Groups {
    pub fn leave(&mut self, name: &str, actor: &BareJid) -> Outcome {
        let (channel, participant) = self.participant_of(name, actor)?;
        let fact = Fact::Left {
            key: channel.key,
            participant: participant.clone(),
        };
        Ok(self.apply_all(vec![fact]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Condition;

    #[test]
    fn leave_removes_and_twice_is_forbidden() {
        let mut g = coven();
        g.leave("coven", &jid("bob@localhost")).unwrap();
        assert!(g
            .channel("coven")
            .unwrap()
            .participant(&jid("bob@localhost"))
            .is_none());
        let err = g.leave("coven", &jid("bob@localhost")).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
    }
}
