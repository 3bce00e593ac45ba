//! The allowed and banned nodes (XEP-0369 §7.3.7) as pubsub: owners and admins publish an
//! item whose id is a bare JID or a domain to add it, retract it to take it off, and read the
//! lists with `<items/>`. Banning a participant removes it (see `core/access.rs`).

use jid::BareJid;
use minidom::Element;

use crate::core::{AccessList, Channel, Outcome};
use crate::dialect::{bad_request, AccessChange};
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

/// The node name of an access list (the inverse of [`list_of`]).
pub fn node_of(list: AccessList) -> &'static str {
    match list {
        AccessList::Allowed => node::ALLOWED,
        AccessList::Banned => node::BANNED,
    }
}

/// A `<publish/>` (adds the entry) or `<retract/>` (takes it off) of one item on the allowed
/// or banned node, the node that `list` names. XEP-0369 §7.3.7 makes the item id the JID
/// itself, so that the list is its item ids; a bare domain stands for every user of that
/// server.
pub fn change(list: AccessList, request: &Element) -> Outcome<AccessChange> {
    let id = request
        .get_child("item", ns::PUBSUB)
        .and_then(|item| item.attr("id"))
        .ok_or_else(|| bad_request("the request needs an <item id='JID or domain'/>"))?;
    let entry = BareJid::new(id.trim())
        .map_err(|_| bad_request(format!("'{id}' is not a JID or domain")))?;
    Ok(AccessChange {
        list,
        entry,
        present: request.name() == "publish",
    })
}

/// The items of an access list, for `<items/>`.
pub fn items(x: &mut Xml, channel: &Channel, list: AccessList) {
    for entry in channel.access().list(list) {
        x.open("item", "").attr("id", entry.as_str()).close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    fn request(xml: &str) -> Element {
        element(&xml.replace("PS", ns::PUBSUB))
    }

    #[test]
    fn a_publish_adds_and_a_retract_takes_off() {
        let publish = request(
            "<publish xmlns='PS' node='urn:xmpp:mix:nodes:banned'><item id=' mallory@evil.example '/></publish>",
        );
        assert_eq!(
            change(AccessList::Banned, &publish).unwrap(),
            AccessChange {
                list: AccessList::Banned,
                entry: BareJid::new("mallory@evil.example").unwrap(),
                present: true,
            }
        );
        let retract = request(
            "<retract xmlns='PS' node='urn:xmpp:mix:nodes:allowed'><item id='evil.example'/></retract>",
        );
        let retracted = change(AccessList::Allowed, &retract).unwrap();
        assert_eq!(retracted.entry.as_str(), "evil.example");
        assert!(!retracted.present);
    }

    #[test]
    fn an_item_without_a_valid_id_is_a_bad_request() {
        for xml in [
            "<publish xmlns='PS' node='n'><item/></publish>",
            "<publish xmlns='PS' node='n'/>",
            "<retract xmlns='PS' node='n'><item id='not a jid@@'/></retract>",
        ] {
            let refusal = change(AccessList::Banned, &request(xml)).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest, "{xml}");
        }
    }

    #[test]
    fn node_names_and_lists_map_both_ways() {
        for list in [AccessList::Allowed, AccessList::Banned] {
            assert_eq!(list_of(node_of(list)), Some(list));
        }
        assert_eq!(list_of(node::INFO), None);
    }
}
