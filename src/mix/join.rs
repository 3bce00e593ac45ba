//! `<join>` to a channel (XEP-0369 §7.1.2): the nodes to subscribe to and an optional nick.
//! The result lists the nodes subscribed and carries the participant id both as `id` and in
//! the proxy form `jid='id#channel@service'` used by XEP-0405.

use minidom::Element;

use super::subscription::nodes_named;
use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{Envelope, Handled};
use crate::xml::{ns, Xml};

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let name = env.channel_name();
    let nodes = nodes_named(payload, "subscribe")?;
    let nick = payload.get_child("nick", ns::MIX_CORE).map(|n| n.text());
    let (participant, facts) = groups.join(name, &env.sender(), nick.as_deref(), nodes, now)?;
    let mut x = Xml::new();
    x.open("join", ns::MIX_CORE)
        .attr("id", &participant.id.to_string())
        .attr("jid", &format!("{}#{}", participant.id, env.to.to_bare()));
    super::subscription::write_nodes(&mut x, "subscribe", participant.nodes);
    x.leaf("nick", "", &participant.nick);
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}
