//! `<update-subscription>` to a channel (XEP-0369 §7.1.3), and the node names that `<join>`
//! shares: `<subscribe node='…'/>` and `<unsubscribe node='…'/>`.

use minidom::Element;

use crate::core::{Groups, Nodes, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

const NODES: [(&str, Nodes); 5] = [
    (node::MESSAGES, Nodes::MESSAGES),
    (node::PRESENCE, Nodes::PRESENCE),
    (node::PARTICIPANTS, Nodes::PARTICIPANTS),
    (node::INFO, Nodes::INFO),
    (node::CONFIG, Nodes::CONFIG),
];

/// The nodes named by the `<element node='…'/>` children of `payload`; unknown nodes are a
/// `bad-request` (MIX has no others mixd could subscribe to).
///
/// slixmpp (1.17) wraps its `<subscribe node='…'/>` elements in one more `<subscribe>`
/// without a node; such a wrapper is read through, so that its users can join.
pub fn nodes_named(payload: &Element, element: &str) -> Outcome<Nodes> {
    let mut nodes = Nodes::NONE;
    for child in payload.children().filter(|c| c.is(element, ns::MIX_CORE)) {
        let Some(name) = child.attr("node") else {
            if !child.has_child(element, ns::MIX_CORE) {
                return Err(bad_request(format!("a <{element}/> needs a node")));
            }
            nodes = nodes.with(nodes_named(child, element)?);
            continue;
        };
        let node = NODES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| bad_request(format!("there is no node '{name}' to {element}")))?;
        nodes = nodes.with(node.1);
    }
    Ok(nodes)
}

pub fn write_nodes(x: &mut Xml, element: &'static str, nodes: Nodes) {
    for (name, node) in NODES {
        if nodes.contains(node) {
            x.open(element, "").attr("node", name).close();
        }
    }
}

/// A change of subscriptions (XEP-0369 §7.1.3): nodes to subscribe to and nodes to leave,
/// both in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSubscription {
    pub subscribe: Nodes,
    pub unsubscribe: Nodes,
}

impl UpdateSubscription {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(UpdateSubscription {
            subscribe: nodes_named(payload, "subscribe")?,
            unsubscribe: nodes_named(payload, "unsubscribe")?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope) -> Outcome<Handled> {
        let (subscribe, unsubscribe) = (self.subscribe, self.unsubscribe);
        let (now_subscribed, facts) = groups.update_subscription(
            env.channel_name(),
            &env.sender(),
            subscribe,
            unsubscribe,
        )?;
        let mut x = Xml::new();
        x.open("update-subscription", ns::MIX_CORE)
            .attr("jid", env.sender().as_str());
        // Report the nodes whose subscription the request changed, as XEP-0369 §7.1.3 shows.
        write_nodes(&mut x, "subscribe", Nodes(now_subscribed.0 & subscribe.0));
        write_nodes(
            &mut x,
            "unsubscribe",
            Nodes(unsubscribe.0 & !now_subscribed.0),
        );
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn an_update_names_nodes_to_subscribe_and_to_leave() {
        let payload = element(&format!(
            "<update-subscription xmlns='urn:xmpp:mix:core:1'>\
             <subscribe node='{}'/><subscribe node='{}'/><unsubscribe node='{}'/>\
             </update-subscription>",
            node::INFO,
            node::CONFIG,
            node::PRESENCE
        ));
        assert_eq!(
            UpdateSubscription::parse(&payload).unwrap(),
            UpdateSubscription {
                subscribe: Nodes::INFO.with(Nodes::CONFIG),
                unsubscribe: Nodes::PRESENCE,
            }
        );
    }

    #[test]
    fn a_wrapper_without_a_node_is_read_through() {
        // slixmpp 1.17's shape.
        let payload = element(&format!(
            "<join xmlns='urn:xmpp:mix:core:1'><subscribe><subscribe node='{}'/></subscribe></join>",
            node::MESSAGES
        ));
        assert_eq!(nodes_named(&payload, "subscribe").unwrap(), Nodes::MESSAGES);
    }

    #[test]
    fn an_unknown_node_is_a_bad_request() {
        let payload = element(
            "<update-subscription xmlns='urn:xmpp:mix:core:1'><unsubscribe node='nope'/></update-subscription>",
        );
        let refusal = UpdateSubscription::parse(&payload).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "there is no node 'nope' to unsubscribe");
    }
}
