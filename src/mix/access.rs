//! The allowed and banned nodes (XEP-0369 §7.3.7) as pubsub: owners and admins publish an
//! item whose id is a bare JID or a domain to add it, retract it to take it off, and read the
//! lists with `<items/>`. Banning a participant removes it (see `core/access.rs`).

use jid::BareJid;
use minidom::Element;

use crate::core::{AccessList, Channel, Groups, Micros, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

/// The access list a node name stands for.
pub fn list_of(node: &str) -> Option<AccessList> {
    match node {
        node::ALLOWED => Some(AccessList::Allowed),
        node::BANNED => Some(AccessList::Banned),
        _ => None,
    }
}

/// A `<publish/>` (`present`) or `<retract/>` of one item on the allowed or banned node.
pub fn change(
    groups: &mut Groups,
    env: &Envelope,
    list: AccessList,
    request: &Element,
    present: bool,
    now: Micros,
) -> Outcome<Handled> {
    let id = request
        .get_child("item", ns::PUBSUB)
        .and_then(|item| item.attr("id"))
        .ok_or_else(|| bad_request("the request needs an <item id='JID or domain'/>"))?;
    let entry = BareJid::new(id.trim())
        .map_err(|_| bad_request(format!("'{id}' is not a JID or domain")))?;
    let facts = groups.set_access(
        env.channel_name(),
        &env.sender(),
        list,
        &entry,
        present,
        now,
    )?;
    Ok(Handled::iq_changed(env, facts, None))
}

/// The items of an access list, for `<items/>`.
pub fn items(x: &mut Xml, channel: &Channel, list: AccessList) {
    for entry in channel.access().list(list) {
        x.open("item", "").attr("id", entry.as_str()).close();
    }
}
