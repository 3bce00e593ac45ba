//! Updating node subscriptions (XEP-0369 §7.1.3) without leaving and joining again.

use jid::BareJid;

use super::{Fact, Groups, Nodes, Outcome};

impl Groups {
    /// Returns the subscriptions as they now are with the facts.
    pub fn update_subscription(
        &mut self,
        name: &str,
        actor: &BareJid,
        subscribe: Nodes,
        unsubscribe: Nodes,
    ) -> Outcome<(Nodes, Vec<Fact>)> {
        let (channel, participant) = self.participant_of(name, actor)?;
        Self::admitted_as(channel, actor, participant.role)?;
        let nodes = participant.nodes.without(unsubscribe).with(subscribe);
        if nodes == participant.nodes {
            return Ok((nodes, Vec::new()));
        }
        let fact = Fact::SubscriptionChanged {
            key: channel.key,
            jid: actor.clone(),
            nodes,
        };
        Ok((nodes, self.apply_all(vec![fact])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn subscribe_and_unsubscribe() {
        let mut g = coven();
        let (nodes, _) = g
            .update_subscription("coven", &jid("bob@localhost"), Nodes::NONE, Nodes::INFO)
            .unwrap();
        assert!(!nodes.contains(Nodes::INFO));
        assert!(nodes.contains(Nodes::MESSAGES));
        let (nodes, _) = g
            .update_subscription("coven", &jid("bob@localhost"), Nodes::INFO, Nodes::MESSAGES)
            .unwrap();
        assert_eq!(nodes, Nodes::ALL.without(Nodes::MESSAGES));
        let (same, facts) = g
            .update_subscription("coven", &jid("bob@localhost"), Nodes::INFO, Nodes::MESSAGES)
            .unwrap();
        assert_eq!(same, nodes);
        assert!(facts.is_empty(), "nothing changed: {facts:?}");
    }
}
