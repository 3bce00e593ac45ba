//! Destroying a channel (XEP-0369 §7.3.4): owners only. The participants are told, and the
//! channel's archive goes with it.

use jid::BareJid;

use super::{Condition, Fact, Groups, Outcome, Refusal};

impl Groups {
    pub fn destroy(&mut self, actor: &BareJid, name: &str) -> Outcome {
        let channel = self.existing(name)?;
        if !channel.is_owner(actor) {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("only an owner of '{name}' may destroy it"),
            ));
        }
        let fact = Fact::ChannelDestroyed {
            channel: Box::new(channel.clone()),
        };
        Ok(self.apply_all(vec![fact]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn only_owner_destroys() {
        let mut g = coven();
        let err = g.destroy(&jid("bob@localhost"), "coven").unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        assert!(g.channel("coven").is_some());
        let facts = g.destroy(&jid("alice@localhost"), "coven").unwrap();
        match &facts[0] {
            Fact::ChannelDestroyed { channel } => assert_eq!(channel.participants.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(g.channel("coven").is_none());
        let missing = g.destroy(&jid("alice@localhost"), "coven").unwrap_err();
        assert_eq!(missing.condition, Condition::ItemNotFound);
    }
}
