//! Changing the channel information (XEP-0369 §7.3.6): a pubsub publish of a form with
//! Name, Description and Contact (and mixd's `mixd#avatar`, `mixd#avatar-type`: the group's
//! picture) on the info node, by an owner or admin. The result names
//! the new item; subscribers of the info node are notified by delivery.

use jid::BareJid;
use minidom::Element;

use super::render;
use crate::core::InfoChange;
use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

pub fn publish(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let publish = payload
        .get_child("publish", ns::PUBSUB)
        .ok_or_else(|| bad_request("a pubsub set on a channel must be a <publish/>"))?;
    if publish.attr("node") != Some(node::INFO) {
        return Err(bad_request(format!(
            "only the info node ({}) is published to by clients",
            node::INFO
        )));
    }
    let form = publish
        .get_child("item", ns::PUBSUB)
        .and_then(|item| item.get_child("x", ns::DATA_FORMS))
        .ok_or_else(|| bad_request("the published item must carry a jabber:x:data form"))?;
    let change = parse_form(form)?;
    let (info, facts) = groups.set_info(env.channel_name(), &env.sender(), change, now)?;
    let mut x = Xml::new();
    x.open("pubsub", ns::PUBSUB)
        .open("publish", "")
        .attr("node", node::INFO)
        .open("item", "")
        .attr("id", &crate::core::iso_time(info.updated_at));
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}

/// The information an info form (`type='submit'`) sets.
pub fn parse_form(form: &Element) -> Outcome<InfoChange> {
    let mut change = InfoChange::default();
    for field in form.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
        let values: Vec<String> = field
            .children()
            .filter(|v| v.is("value", ns::DATA_FORMS))
            .map(|v| v.text())
            .collect();
        let single = || values.first().cloned().unwrap_or_default();
        match field.attr("var").unwrap_or_default() {
            "FORM_TYPE" => {
                if single() != ns::MIX_CORE {
                    return Err(bad_request(format!(
                        "the form's FORM_TYPE must be {}",
                        ns::MIX_CORE
                    )));
                }
            }
            "Name" => change.name = Some(single()),
            "Description" => change.description = Some(single()),
            render::AVATAR_FIELD => change.avatar = Some(single()),
            render::AVATAR_TYPE_FIELD => change.avatar_type = Some(single()),
            "Contact" => {
                let contacts = values
                    .iter()
                    .map(|v| {
                        BareJid::new(v.trim())
                            .map_err(|_| bad_request(format!("'{v}' is not a JID")))
                    })
                    .collect::<Outcome<Vec<_>>>()?;
                change.contacts = Some(contacts);
            }
            other => return Err(bad_request(format!("the info form has no field '{other}'"))),
        }
    }
    Ok(change)
}
