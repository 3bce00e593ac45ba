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

/// A publish of new information to the info node. XEP-0369 §7.3.6 has owners and admins
/// change it by publishing the whole form; fields left out keep their values here, as the
/// form is read into an [`InfoChange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub change: InfoChange,
}

impl Publish {
    /// `publish` is the `<publish node='urn:xmpp:mix:nodes:info'/>` of a pubsub set.
    pub fn parse(publish: &Element) -> Outcome<Self> {
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
        Ok(Publish {
            change: parse_form(form)?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let (info, facts) = groups.set_info(env.channel_name(), &env.sender(), self.change, now)?;
        let mut x = Xml::new();
        x.open("pubsub", ns::PUBSUB)
            .open("publish", "")
            .attr("node", node::INFO)
            .open("item", "")
            .attr("id", &crate::core::iso_time(info.updated_at));
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    fn publish(fields: &str) -> Element {
        element(&format!(
            "<publish xmlns='{}' node='{}'><item><x xmlns='jabber:x:data' type='submit'>{fields}</x></item></publish>",
            ns::PUBSUB,
            node::INFO
        ))
    }

    #[test]
    fn a_publish_reads_the_fields_it_names() {
        let payload = publish(
            "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mix:core:1</value></field>\
             <field var='Name'><value>Witches</value></field>\
             <field var='Description'><value>A coven</value></field>\
             <field var='Contact'><value>hag@example.org</value><value> crone@example.org </value></field>\
             <field var='mixd#avatar-type'><value>image/png</value></field>",
        );
        let Publish { change } = Publish::parse(&payload).unwrap();
        assert_eq!(
            change,
            InfoChange {
                name: Some("Witches".into()),
                description: Some("A coven".into()),
                contacts: Some(vec![
                    BareJid::new("hag@example.org").unwrap(),
                    BareJid::new("crone@example.org").unwrap()
                ]),
                avatar_type: Some("image/png".into()),
                ..InfoChange::default()
            }
        );
    }

    #[test]
    fn a_publish_needs_the_info_node_and_a_form() {
        let other_node = element(&format!(
            "<publish xmlns='{}' node='{}'><item/></publish>",
            ns::PUBSUB,
            node::CONFIG
        ));
        assert_eq!(
            Publish::parse(&other_node).unwrap_err().condition,
            Condition::BadRequest
        );
        let no_form = element(&format!(
            "<publish xmlns='{}' node='{}'><item/></publish>",
            ns::PUBSUB,
            node::INFO
        ));
        let refusal = Publish::parse(&no_form).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(
            refusal.text,
            "the published item must carry a jabber:x:data form"
        );
    }

    #[test]
    fn a_form_with_a_bad_contact_or_form_type_is_a_bad_request() {
        let bad_contact = publish("<field var='Contact'><value>not a jid@@</value></field>");
        let refusal = Publish::parse(&bad_contact).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "'not a jid@@' is not a JID");
        let bad_type =
            publish("<field var='FORM_TYPE'><value>urn:xmpp:mix:admin:0</value></field>");
        assert_eq!(
            Publish::parse(&bad_type).unwrap_err().condition,
            Condition::BadRequest
        );
    }
}
