//! `<join>` to a channel (XEP-0369 §7.1.2): the nodes to subscribe to and an optional nick.
//! The result lists the nodes subscribed and carries the participant id both as `id` and in
//! the proxy form `jid='id#channel@service'` used by XEP-0405. The sender's address says how
//! the participant is reached: a bare JID is its server joining for it (XEP-0405 MIX-PAM),
//! a full JID a client joining directly (`core::Groups::join_from`).

use minidom::Element;

use super::subscription::nodes_named;
use crate::core::{bare_text, Groups, Micros, Nodes, Outcome};
use crate::dialect::proxy;
use crate::dialect::{Envelope, Handled};
use crate::xml::{ns, Xml};

/// A join. Whether the sender may join (policy, lists, limit) and whether the nick is free
/// are the core's; the request only says what the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The nodes to subscribe to (XEP-0369 §7.1.2: `<subscribe node='…'/>` each) that the
    /// channel has; the result lists only these.
    pub nodes: Nodes,
    /// The nick asked for; without one the service assigns one (§7.1.6).
    pub nick: Option<String>,
}

impl Join {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(Join {
            nodes: nodes_named(payload, "subscribe")?.known_or_refusal("subscribe")?,
            nick: payload.get_child("nick", ns::MIX_CORE).map(|n| n.text()),
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let (participant, facts) = groups.join_from(
            env.channel_name(),
            &env.from,
            self.nick.as_deref(),
            self.nodes,
            now,
        )?;
        let channel_jid = bare_text(env.to.as_str());
        let mut x = Xml::new();
        x.open("join", ns::MIX_CORE)
            .attr("id", &participant.id.hex())
            .attr("jid", &proxy::proxy_jid(channel_jid, participant.id));
        super::subscription::write_nodes(&mut x, "subscribe", participant.nodes);
        x.leaf("nick", "", &participant.nick);
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;
    use crate::xml::node;

    #[test]
    fn a_join_names_its_nodes_and_nick() {
        let payload = element(&format!(
            "<join xmlns='urn:xmpp:mix:core:1'><subscribe node='{}'/><subscribe node='{}'/>\
             <nick>third witch</nick></join>",
            node::MESSAGES,
            node::PARTICIPANTS
        ));
        assert_eq!(
            Join::parse(&payload).unwrap(),
            Join {
                nodes: Nodes::MESSAGES.with(Nodes::PARTICIPANTS),
                nick: Some("third witch".into()),
            }
        );
    }

    #[test]
    fn a_bare_join_subscribes_to_nothing_and_asks_no_nick() {
        let payload = element("<join xmlns='urn:xmpp:mix:core:1'/>");
        assert_eq!(
            Join::parse(&payload).unwrap(),
            Join {
                nodes: Nodes::NONE,
                nick: None
            }
        );
    }

    #[test]
    fn a_join_subscribes_the_nodes_it_can_and_refuses_when_it_can_none() {
        let some = element(&format!(
            "<join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:example'/>\
             <subscribe node='{}'/><subscribe node='urn:xmpp:mix:nodes:presence'/></join>",
            node::MESSAGES
        ));
        assert_eq!(Join::parse(&some).unwrap().nodes, Nodes::MESSAGES);
        for (xml, condition, text) in [
            (
                "<join xmlns='urn:xmpp:mix:core:1'><subscribe/></join>",
                Condition::BadRequest,
                "a <subscribe/> needs a node",
            ),
            (
                "<join xmlns='urn:xmpp:mix:core:1'><subscribe node='urn:example'/>\
                 <subscribe node='urn:xmpp:mix:nodes:presence'/></join>",
                Condition::ItemNotFound,
                "there is no node 'urn:example' to subscribe in this channel",
            ),
        ] {
            let refusal = Join::parse(&element(xml)).unwrap_err();
            assert_eq!(
                (refusal.condition, refusal.text.as_str()),
                (condition, text)
            );
        }
    }
}
