//! `<update-subscription>` to a channel (XEP-0369 §7.1.3), and the node names that `<join>`
//! shares: `<subscribe node='…'/>` and `<unsubscribe node='…'/>`.

use minidom::Element;

use crate::core::{Condition, Groups, Nodes, Outcome, Refusal};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

/// The nodes a participant can subscribe to. The presence node (XEP-0403) is not among them:
/// mixd does not distribute participants' presence, so it neither serves nor advertises it.
const NODES: [(&str, Nodes); 4] = [
    (node::MESSAGES, Nodes::MESSAGES),
    (node::PARTICIPANTS, Nodes::PARTICIPANTS),
    (node::INFO, Nodes::INFO),
    (node::CONFIG, Nodes::CONFIG),
];

/// The nodes a request names: those the channel has, and the first it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNames {
    pub known: Nodes,
    pub first_unknown: Option<String>,
}

impl NodeNames {
    /// The nodes to act on. XEP-0369 §7.1.2: nodes that cannot be subscribed are left out
    /// (the result lists only the others), unless none can be, which is an error naming the
    /// first.
    pub fn known_or_refusal(self, element: &str) -> Outcome<Nodes> {
        match self.first_unknown {
            Some(name) if self.known == Nodes::NONE => Err(Refusal::new(
                Condition::ItemNotFound,
                format!("there is no node '{name}' to {element} in this channel"),
            )),
            _ => Ok(self.known),
        }
    }
}

/// The nodes named by the `<element node='…'/>` children of `payload`.
///
/// slixmpp (1.17) wraps its `<subscribe node='…'/>` elements in one more `<subscribe>`
/// without a node; such a wrapper is read through, so that its users can join.
pub fn nodes_named(payload: &Element, element: &str) -> Outcome<NodeNames> {
    let mut names = NodeNames {
        known: Nodes::NONE,
        first_unknown: None,
    };
    for child in payload.children().filter(|c| c.is(element, ns::MIX_CORE)) {
        let Some(name) = child.attr("node") else {
            if !child.has_child(element, ns::MIX_CORE) {
                return Err(bad_request(format!("a <{element}/> needs a node")));
            }
            let inner = nodes_named(child, element)?;
            names.known = names.known.with(inner.known);
            names.first_unknown = names.first_unknown.or(inner.first_unknown);
            continue;
        };
        match NODES.iter().find(|(n, _)| *n == name) {
            Some((_, node)) => names.known = names.known.with(*node),
            None => {
                names.first_unknown.get_or_insert_with(|| name.to_owned());
            }
        }
    }
    Ok(names)
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
            subscribe: nodes_named(payload, "subscribe")?.known_or_refusal("subscribe")?,
            unsubscribe: nodes_named(payload, "unsubscribe")?.known_or_refusal("unsubscribe")?,
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
            node::MESSAGES
        ));
        assert_eq!(
            UpdateSubscription::parse(&payload).unwrap(),
            UpdateSubscription {
                subscribe: Nodes::INFO.with(Nodes::CONFIG),
                unsubscribe: Nodes::MESSAGES,
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
        assert_eq!(
            nodes_named(&payload, "subscribe").unwrap().known,
            Nodes::MESSAGES
        );
    }

    #[test]
    fn unknown_nodes_are_left_out_unless_no_node_is_known() {
        let payload = element(&format!(
            "<update-subscription xmlns='urn:xmpp:mix:core:1'><subscribe node='nope'/>\
             <subscribe node='{}'/><unsubscribe node='urn:xmpp:mix:nodes:presence'/>\
             </update-subscription>",
            node::INFO
        ));
        let refusal = UpdateSubscription::parse(&payload).unwrap_err();
        assert_eq!(refusal.condition, Condition::ItemNotFound);
        assert_eq!(
            refusal.text,
            "there is no node 'urn:xmpp:mix:nodes:presence' to unsubscribe in this channel"
        );
        let payload = element(&format!(
            "<update-subscription xmlns='urn:xmpp:mix:core:1'><subscribe node='nope'/>\
             <subscribe node='{}'/></update-subscription>",
            node::INFO
        ));
        assert_eq!(
            UpdateSubscription::parse(&payload).unwrap(),
            UpdateSubscription {
                subscribe: Nodes::INFO,
                unsubscribe: Nodes::NONE,
            }
        );
    }
}
