//! The configuration node (XEP-0406 §2): a form naming the owners and administrators, with
//! `JID Visibility` (XEP-0404: `jid-hidden` or `jid-mandatory-visible`) and mixd's
//! membership settings (join policy, group mute, member limit, muted members) as `mixd#`
//! fields. Read with a pubsub `<items/>` get by any participant (in a JID-hidden channel only
//! by owners and admins: the form names JIDs); subscribers of the node get it again, with
//! `Last Change Made By`, on every change of roles or settings. Owners change the settings by
//! publishing a `submit` form with the fields to change (XEP-0406 §2.2); roles change through
//! `urn:mixd:admin:0`, which says who did what to whom.

use jid::BareJid;
use minidom::Element;

use crate::core::iso_time;
use crate::core::{Channel, Groups, JoinPolicy, Micros, Outcome, Role, SettingsChange};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{node, ns, Xml};

/// `JID Visibility` values (XEP-0406 §2.1, XEP-0404 modes). 'JID Maybe Visible', which
/// depends on each participant's preference, is not offered.
const JID_HIDDEN: &str = "jid-hidden";
const JID_VISIBLE: &str = "jid-mandatory-visible";

/// The item id of the one configuration item.
pub const ITEM: &str = "current";

pub fn form(x: &mut Xml, channel: &Channel, max_members: usize, changed_by: Option<&BareJid>) {
    x.open("x", ns::DATA_FORMS).attr("type", "result");
    field(x, "FORM_TYPE", "hidden", [ns::MIX_ADMIN]);
    if let Some(by) = changed_by {
        field(x, "Last Change Made By", "jid-single", [by.as_str()]);
    }
    field(
        x,
        "Owner",
        "jid-multi",
        channel.owners.iter().map(|o| o.as_str()),
    );
    let admins = channel
        .participants
        .iter()
        .filter(|p| p.role == Role::Admin)
        .map(|p| p.jid.as_str());
    field(x, "Administrator", "jid-multi", admins);
    let settings = channel.settings();
    let visibility = if settings.jids_hidden {
        JID_HIDDEN
    } else {
        JID_VISIBLE
    };
    field(x, "JID Visibility", "list-single", [visibility]);
    field(
        x,
        "mixd#join-policy",
        "list-single",
        [settings.policy.name()],
    );
    field(
        x,
        "mixd#muted",
        "boolean",
        [if settings.muted { "true" } else { "false" }],
    );
    let limit = settings
        .max_members
        .unwrap_or(max_members)
        .min(max_members)
        .to_string();
    field(x, "mixd#max-members", "text-single", [limit.as_str()]);
    let muted: Vec<String> = channel
        .administration()
        .mutes
        .iter()
        .map(|(jid, until)| format!("{jid} {}", iso_time(*until)))
        .collect();
    field(
        x,
        "mixd#muted-members",
        "text-multi",
        muted.iter().map(String::as_str),
    );
    x.close();
}

/// The settings a submitted configuration form changes. Fields left out keep their values.
pub fn parse_form(form: &Element) -> Outcome<SettingsChange> {
    let mut change = SettingsChange::default();
    for field in form.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
        let var = field.attr("var").unwrap_or_default();
        let value = field
            .get_child("value", ns::DATA_FORMS)
            .map(|v| v.text())
            .unwrap_or_default();
        let value = value.trim();
        match var {
            "FORM_TYPE" if value == ns::MIX_ADMIN => {}
            "FORM_TYPE" => {
                return Err(bad_request(format!(
                    "the configuration form's FORM_TYPE must be {}",
                    ns::MIX_ADMIN
                )))
            }
            "JID Visibility" => {
                change.jids_hidden = Some(match value {
                    JID_HIDDEN => true,
                    JID_VISIBLE => false,
                    other => {
                        return Err(bad_request(format!(
                            "JID Visibility '{other}' is not one of {JID_HIDDEN}, {JID_VISIBLE}"
                        )))
                    }
                })
            }
            "mixd#join-policy" => {
                change.policy = Some(JoinPolicy::from_name(value).ok_or_else(|| {
                    bad_request(format!(
                        "mixd#join-policy '{value}' is not one of open, invite, request"
                    ))
                })?)
            }
            "mixd#muted" => {
                change.muted = Some(match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(bad_request(format!(
                            "mixd#muted '{other}' is not a boolean"
                        )))
                    }
                })
            }
            "mixd#max-members" => {
                change.max_members = Some(Some(value.parse().map_err(|_| {
                    bad_request(format!("mixd#max-members '{value}' is not a number"))
                })?))
            }
            other => {
                return Err(bad_request(format!(
                    "the configuration form's field '{other}' is not set by a publish (roles and mutes change through {})",
                    ns::MIXD_ADMIN
                )))
            }
        }
    }
    Ok(change)
}

/// A publish of a `submit` form to the configuration node (XEP-0406 §2.2).
#[derive(Debug, Clone)]
pub struct Publish {
    pub change: SettingsChange,
}

impl Publish {
    /// `publish` is the `<publish node='urn:xmpp:mix:nodes:config'/>` of a pubsub set.
    pub fn parse(publish: &Element) -> Outcome<Self> {
        let form = publish
            .get_child("item", ns::PUBSUB)
            .and_then(|item| item.get_child("x", ns::DATA_FORMS))
            .ok_or_else(|| bad_request("the published item must carry a jabber:x:data form"))?;
        Ok(Publish {
            change: parse_form(form)?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.change_settings(env.channel_name(), &env.sender(), self.change, now)?;
        let mut x = Xml::new();
        x.open("pubsub", ns::PUBSUB)
            .open("publish", "")
            .attr("node", node::CONFIG)
            .open("item", "")
            .attr("id", ITEM);
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

fn field<'a>(x: &mut Xml, var: &str, kind: &str, values: impl IntoIterator<Item = &'a str>) {
    x.open("field", "").attr("var", var).attr("type", kind);
    for value in values {
        x.leaf("value", "", value);
    }
    x.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::element;

    fn form(fields: &str) -> Element {
        element(&format!(
            "<x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mix:admin:0</value></field>\
             {fields}</x>"
        ))
    }

    #[test]
    fn a_submitted_form_sets_jid_visibility_and_the_settings_it_names() {
        let change = parse_form(&form(
            "<field var='JID Visibility'><value>jid-hidden</value></field>",
        ))
        .unwrap();
        assert_eq!(change.jids_hidden, Some(true));
        assert_eq!((change.policy, change.muted), (None, None));
        let change = parse_form(&form(
            "<field var='JID Visibility'><value>jid-mandatory-visible</value></field>\
             <field var='mixd#join-policy'><value>invite</value></field>",
        ))
        .unwrap();
        assert_eq!(change.jids_hidden, Some(false));
        assert_eq!(change.policy, Some(JoinPolicy::Invite));
    }

    #[test]
    fn a_form_with_what_a_publish_does_not_set_is_a_bad_request() {
        for (fields, text) in [
            (
                "<field var='JID Visibility'><value>jid-optionally-visible</value></field>",
                "JID Visibility 'jid-optionally-visible' is not one of jid-hidden, jid-mandatory-visible",
            ),
            (
                "<field var='Owner'><value>hag@example.org</value></field>",
                "the configuration form's field 'Owner' is not set by a publish (roles and mutes change through urn:mixd:admin:0)",
            ),
        ] {
            let refusal = parse_form(&form(fields)).unwrap_err();
            assert_eq!(refusal.condition, crate::core::Condition::BadRequest);
            assert_eq!(refusal.text, text);
        }
    }
}
