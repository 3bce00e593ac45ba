//! What every FlyChat request reads the same way: the dialect's namespaces and the SDK's
//! lenient element layout (fields nested in vCards and lists, participants as
//! `<participant>jid</participant>` wherever they sit). A leaf: the capability files import
//! it and it imports none of them, so they never need the front door (`mod.rs`) for it.

use jid::BareJid;
use minidom::Element;

use crate::core::Outcome;
use crate::dialect::bad_request;

/// Group operations: `<query xmlns='jabber:iq:mixgroupchat' status='…'>`.
pub const NS: &str = "jabber:iq:mixgroupchat";
/// History queries: `<query xmlns='jabber:iq:user_activities' status='group_chat…'>`.
pub const HISTORY_NS: &str = "jabber:iq:user_activities";
pub const VCARD: &str = "vcard-temp";
/// `<chatcontent/>`, which marks a FlyChat group message.
pub const CONTENT: &str = "urn:xmpp:content";

/// The text of the first `name` descendant of `element`, wherever it is (the SDK nests
/// its fields in vCards and lists and is lenient about where).
pub fn descendant_text(element: &Element, name: &str) -> Option<String> {
    element.children().find_map(|c| {
        if c.name() == name {
            Some(c.text())
        } else {
            descendant_text(c, name)
        }
    })
}

/// The `<participant>jid</participant>` entries under `element`, in order. Each must name a
/// user (a bare JID with a local part): a group operation on a domain is a mistake, and
/// refusing the whole request is better than applying the part that parsed.
pub fn participant_jids(element: &Element) -> Outcome<Vec<BareJid>> {
    let mut jids = Vec::new();
    collect_participants(element, &mut jids)?;
    Ok(jids)
}

fn collect_participants(element: &Element, jids: &mut Vec<BareJid>) -> Outcome<()> {
    for child in element.children() {
        if child.name() == "participant" && child.children().next().is_none() {
            let text = child.text();
            let jid = BareJid::new(text.trim())
                .ok()
                .filter(|jid| jid.node().is_some())
                .ok_or_else(|| bad_request(format!("'{text}' is not a user's JID")))?;
            jids.push(jid);
        } else {
            collect_participants(child, jids)?;
        }
    }
    Ok(())
}

/// The one participant an exit, removal or admin request names (the first, if several).
pub fn named_participant(query: &Element) -> Outcome<BareJid> {
    participant_jids(query)?
        .into_iter()
        .next()
        .ok_or_else(|| bad_request("the request names no <participant/>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn participants_are_found_wherever_they_sit_and_in_order() {
        let query = element(
            "<query xmlns='jabber:iq:mixgroupchat'><participants>\
             <participant> bob@localhost </participant></participants>\
             <participant>carol@localhost</participant></query>",
        );
        let jids = participant_jids(&query).unwrap();
        assert_eq!(
            jids,
            ["bob@localhost", "carol@localhost"].map(|j| BareJid::new(j).unwrap())
        );
        assert_eq!(named_participant(&query).unwrap().as_str(), "bob@localhost");
    }

    #[test]
    fn a_domain_or_garbage_is_no_participant() {
        for bad in ["localhost", "not a jid@@", ""] {
            let query = element(&format!(
                "<query xmlns='jabber:iq:mixgroupchat'><participant>{bad}</participant></query>"
            ));
            let refusal = participant_jids(&query).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest, "{bad}");
        }
        let none = element("<query xmlns='jabber:iq:mixgroupchat'/>");
        assert_eq!(
            named_participant(&none).unwrap_err().condition,
            Condition::BadRequest
        );
    }

    #[test]
    fn descendant_text_looks_through_nesting() {
        let query = element(
            "<query xmlns='jabber:iq:mixgroupchat'><profile><vCard xmlns='vcard-temp'>\
             <nickName>Coven</nickName></vCard></profile></query>",
        );
        assert_eq!(
            descendant_text(&query, "nickName").as_deref(),
            Some("Coven")
        );
        assert_eq!(descendant_text(&query, "image"), None);
    }
}
