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

/// The node name of an access list (the inverse of [`list_of`]).
pub fn node_of(list: AccessList) -> &'static str {
    match list {
        AccessList::Allowed => node::ALLOWED,
        AccessList::Banned => node::BANNED,
    }
}

/// A `<publish/>` (adds the entry) or `<retract/>` (takes it off) of one item on the allowed
/// or banned node. XEP-0369 §7.3.7 makes the item id the JID itself, so that the list is its
/// item ids; a bare domain stands for every user of that server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub list: AccessList,
    pub entry: BareJid,
    /// `true` for a publish, `false` for a retract.
    pub present: bool,
}

impl Change {
    /// `request` is the `<publish/>` or `<retract/>` on the node that `list` names.
    pub fn parse(list: AccessList, request: &Element) -> Outcome<Self> {
        let id = request
            .get_child("item", ns::PUBSUB)
            .and_then(|item| item.attr("id"))
            .ok_or_else(|| bad_request("the request needs an <item id='JID or domain'/>"))?;
        let entry = BareJid::new(id.trim())
            .map_err(|_| bad_request(format!("'{id}' is not a JID or domain")))?;
        Ok(Change {
            list,
            entry,
            present: request.name() == "publish",
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.set_access(
            env.channel_name(),
            &env.sender(),
            self.list,
            &self.entry,
            self.present,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
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
        let change = Change::parse(AccessList::Banned, &publish).unwrap();
        assert_eq!(
            change,
            Change {
                list: AccessList::Banned,
                entry: BareJid::new("mallory@evil.example").unwrap(),
                present: true,
            }
        );
        let retract = request(
            "<retract xmlns='PS' node='urn:xmpp:mix:nodes:allowed'><item id='evil.example'/></retract>",
        );
        let change = Change::parse(AccessList::Allowed, &retract).unwrap();
        assert_eq!(change.entry.as_str(), "evil.example");
        assert!(!change.present);
    }

    #[test]
    fn an_item_without_a_valid_id_is_a_bad_request() {
        for xml in [
            "<publish xmlns='PS' node='n'><item/></publish>",
            "<publish xmlns='PS' node='n'/>",
            "<retract xmlns='PS' node='n'><item id='not a jid@@'/></retract>",
        ] {
            let refusal = Change::parse(AccessList::Banned, &request(xml)).unwrap_err();
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
