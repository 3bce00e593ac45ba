//! The operator of the service acting on a channel (`mixd admin`, through the control
//! socket): removing a participant, deleting a channel. No role in the channel is asked — the
//! operator's right comes from running the service — and the facts name the service itself
//! (its own JID) as the actor, so they are stored, delivered and noticed like any other
//! removal or deletion.

use jid::BareJid;

use super::{Groups, Micros, Outcome};

impl Groups {
    /// Removes `target` from channel `name` for the operator; `service` is the service's JID.
    pub fn remove_by_operator(
        &mut self,
        name: &str,
        target: &BareJid,
        service: &BareJid,
        now: Micros,
    ) -> Outcome {
        self.removed(name, service, target, now)
    }

    /// Deletes channel `name` for the operator; `service` is the service's JID.
    pub fn destroy_by_operator(&mut self, name: &str, service: &BareJid, now: Micros) -> Outcome {
        self.existing(name)?;
        Ok(self.destroyed(name, service, now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::core::{Condition, Fact, Role};

    #[test]
    fn the_operator_removes_anyone_and_the_service_is_the_actor() {
        let mut g = coven();
        let service = jid("mix.localhost");
        let facts = g
            .remove_by_operator("coven", &jid("alice@localhost"), &service, 5)
            .unwrap();
        assert!(matches!(&facts[0], Fact::Left { participant, by, .. }
            if participant.jid == jid("alice@localhost") && by == &service));
        // Alice was the only owner: ownership passes on, as when an owner leaves.
        assert_eq!(member(&g, "bob@localhost").role, Role::Owner);
        assert!(facts
            .iter()
            .any(|f| matches!(f, Fact::Noticed(n) if n.actor == service)));
        let again = g
            .remove_by_operator("coven", &jid("alice@localhost"), &service, 6)
            .unwrap_err();
        assert_eq!(again.condition, Condition::ItemNotFound);
        let missing = g
            .remove_by_operator("nowhere", &jid("bob@localhost"), &service, 6)
            .unwrap_err();
        assert_eq!(missing.condition, Condition::ItemNotFound);
    }

    #[test]
    fn the_operator_deletes_a_channel_it_does_not_own() {
        let mut g = coven();
        let service = jid("mix.localhost");
        let facts = g.destroy_by_operator("coven", &service, 5).unwrap();
        assert!(matches!(&facts[0], Fact::ChannelDestroyed { by, .. } if by == &service));
        assert!(g.channel("coven").is_none());
        let again = g.destroy_by_operator("coven", &service, 6).unwrap_err();
        assert_eq!(again.condition, Condition::ItemNotFound);
    }
}
