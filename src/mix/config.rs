//! The configuration node (XEP-0406, Configuration Node): a form naming the owners and
//! administrators, with `JID Visibility` (XEP-0404: `jid-hidden` or `jid-mandatory-visible`)
//! and mixd's membership settings (join policy, group mute, member limit, muted members) as
//! `mixd#` fields, in one item named by the time of the last change. Read with a pubsub
//! `<items/>` get by any participant (in a JID-hidden channel only by owners and admins: the
//! form names JIDs); subscribers of the node get it again, with
//! `Last Change Made By`, on every change of roles or settings. Owners change it by publishing
//! the form (XEP-0406, Modifying Channel Configuration), which runs the same core commands as
//! `urn:mixd:admin:0` (`core::Groups::configure`).

use std::collections::HashSet;

use jid::BareJid;
use minidom::Element;

use super::render;
use super::settings::{member_limit, policy};
use crate::core::{iso_time, ConfigChange};
use crate::core::{Channel, Groups, Micros, Outcome, Role};
use crate::dialect::{bad_request, boolean, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

/// `JID Visibility` values (XEP-0406, XEP-0404 modes). 'JID Maybe Visible', which depends on
/// each participant's preference, is not offered.
const JID_HIDDEN: &str = "jid-hidden";
const JID_VISIBLE: &str = "jid-mandatory-visible";

/// The id of the one configuration item: the date-time of the last change (XEP-0406).
pub fn item_id(channel: &Channel) -> String {
    iso_time(channel.configured_at())
}

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

fn field<'a>(x: &mut Xml, var: &str, kind: &str, values: impl IntoIterator<Item = &'a str>) {
    x.open("field", "").attr("var", var).attr("type", kind);
    for value in values {
        x.leaf("value", "", value);
    }
    x.close();
}

/// An owner's publish of the configuration form to the configuration node. Fields left out
/// keep their values (XEP-0406: the channel updates the fields provided); fields mixd does
/// not know are ignored (XEP-0004, Form Types: a form processor ignores fields it does not
/// understand), and so is `Last Change Made By`, which the service writes. Beside XEP-0406's
/// fields, the form may carry the info node's `Name` and `Description`.
#[derive(Debug, Clone)]
pub struct Publish {
    pub change: ConfigChange,
}

impl Publish {
    /// `publish` is the `<publish node='urn:xmpp:mix:nodes:config'/>` of a pubsub set. Its
    /// one item carries one payload, the form (XEP-0060, Bad Payload: else `bad-request`).
    pub fn parse(publish: &Element) -> Outcome<Self> {
        let mut items = publish.children().filter(|c| c.is("item", ns::PUBSUB));
        let (Some(item), None) = (items.next(), items.next()) else {
            return Err(bad_request(
                "a publish to the configuration node carries exactly one <item/>",
            ));
        };
        let mut payloads = item.children();
        let form = match (payloads.next(), payloads.next()) {
            (Some(form), None) if form.is("x", ns::DATA_FORMS) => form,
            _ => {
                return Err(bad_request(
                    "the configuration item carries one jabber:x:data form and nothing else",
                ))
            }
        };
        match form.attr("type") {
            Some("submit") => {}
            other => {
                return Err(bad_request(format!(
                    "the configuration form must be of type 'submit', not '{}'",
                    other.unwrap_or_default()
                )))
            }
        }
        Ok(Publish {
            change: parse_form(form)?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let name = env.channel_name();
        let facts = groups.configure(name, &env.sender(), self.change, now)?;
        let mut x = Xml::new();
        x.open("pubsub", ns::PUBSUB)
            .open("publish", "")
            .attr("node", node::CONFIG)
            .open("item", "")
            .attr("id", &item_id(groups.existing(name)?));
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

/// What a configuration form (published, or given at creation) sets.
pub fn parse_form(form: &Element) -> Outcome<ConfigChange> {
    let mut change = ConfigChange::default();
    for field in form.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
        let var = field.attr("var").unwrap_or_default();
        let values: Vec<String> = field
            .children()
            .filter(|v| v.is("value", ns::DATA_FORMS))
            .map(|v| v.text())
            .collect();
        let single = || values.first().map(|v| v.trim()).unwrap_or_default();
        let what = format!("{var}: ");
        match var {
            "FORM_TYPE" if single() != ns::MIX_ADMIN => {
                return Err(bad_request(format!(
                    "the form's FORM_TYPE must be {}",
                    ns::MIX_ADMIN
                )))
            }
            "Owner" => change.owners = Some(jids(var, &values)?),
            "Administrator" => change.admins = Some(jids(var, &values)?),
            "JID Visibility" => {
                change.settings.jids_hidden = Some(match single() {
                    JID_HIDDEN => true,
                    JID_VISIBLE => false,
                    other => {
                        return Err(bad_request(format!(
                            "JID Visibility '{other}' is not one of {JID_HIDDEN}, {JID_VISIBLE}"
                        )))
                    }
                })
            }
            "Name" => change.info.name = Some(values.first().cloned().unwrap_or_default()),
            "Description" => change.info.description = Some(values.join("\n")),
            "mixd#join-policy" => change.settings.policy = Some(policy(&what, single())?),
            "mixd#muted" => change.settings.muted = Some(boolean(&what, single())?),
            "mixd#max-members" => {
                change.settings.max_members = Some(member_limit(&what, single())?)
            }
            "mixd#muted-members" => change.mutes = Some(mutes(&values)?),
            _ => {}
        }
    }
    Ok(change)
}

/// The muted members of the form, each value `JID date-time` as the form shows them.
fn mutes(values: &[String]) -> Outcome<Vec<(BareJid, Micros)>> {
    const VAR: &str = "mixd#muted-members";
    values
        .iter()
        .map(|value| {
            let mut parts = value.split_whitespace();
            let (Some(jid), Some(until), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad_request(format!(
                    "{VAR}: '{value}' is not a bare JID and a date-time"
                )));
            };
            let jid = BareJid::new(jid)
                .map_err(|_| bad_request(format!("{VAR}: '{jid}' is not a bare JID")))?;
            Ok((jid, render::parse_timestamp(VAR, until)?))
        })
        .collect()
}

/// The bare JIDs of a `jid-multi` field, each once (in linear time: anyone may send a form
/// of thousands, which is parsed before its sender's rights are known).
fn jids(var: &str, values: &[String]) -> Outcome<Vec<BareJid>> {
    let mut seen = HashSet::with_capacity(values.len());
    let mut jids = Vec::with_capacity(values.len());
    for value in values {
        let jid = BareJid::new(value.trim())
            .map_err(|_| bad_request(format!("{var}: '{value}' is not a bare JID")))?;
        if seen.insert(jid.clone()) {
            jids.push(jid);
        }
    }
    Ok(jids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Condition, JoinPolicy};
    use crate::dialect::testing::element;

    fn publish(item: &str) -> Element {
        element(&format!(
            "<publish xmlns='{}' node='{}'>{item}</publish>",
            ns::PUBSUB,
            node::CONFIG
        ))
    }

    fn form(fields: &str) -> Element {
        publish(&format!(
            "<item><x xmlns='jabber:x:data' type='submit'>{fields}</x></item>"
        ))
    }

    #[test]
    fn a_publish_reads_the_fields_it_names_and_ignores_the_rest() {
        let payload = form(
            "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mix:admin:0</value></field>\
             <field var='Last Change Made By'><value>someone@example.org</value></field>\
             <field var='Owner'><value>hecate@example.org</value><value> greymalkin@example.org </value><value>hecate@example.org</value></field>\
             <field var='Administrator'/>\
             <field var='Name'><value>Witches</value></field>\
             <field var='mixd#join-policy'><value>request</value></field>\
             <field var='mixd#muted'><value>1</value></field>\
             <field var='mixd#max-members'><value>default</value></field>\
             <field var='mixd#muted-members'><value>crone@example.org 1970-01-01T00:01:00Z</value></field>\
             <field var='Mandatory Nicks'><value>true</value></field>",
        );
        let Publish { change } = Publish::parse(&payload).unwrap();
        let owners: Vec<String> = change
            .owners
            .unwrap()
            .iter()
            .map(|j| j.to_string())
            .collect();
        assert_eq!(owners, ["hecate@example.org", "greymalkin@example.org"]);
        assert_eq!(change.admins, Some(Vec::new()));
        assert_eq!(change.info.name.as_deref(), Some("Witches"));
        assert_eq!(change.info.description, None);
        assert_eq!(change.settings.policy, Some(JoinPolicy::Request));
        assert_eq!(change.settings.muted, Some(true));
        assert_eq!(change.settings.max_members, Some(None));
        let mutes = change.mutes.unwrap();
        assert_eq!(
            mutes,
            [(BareJid::new("crone@example.org").unwrap(), 60_000_000)]
        );
        // Fields left out keep their values.
        let Publish { change } = Publish::parse(&form("")).unwrap();
        assert!(change.owners.is_none() && change.admins.is_none());
        assert!(change.settings.policy.is_none() && change.info.name.is_none());
        assert!(change.mutes.is_none());
    }

    #[test]
    fn a_publish_sets_jid_visibility_to_one_of_the_modes_offered() {
        let visibility = |value: &str| {
            Publish::parse(&form(&format!(
                "<field var='JID Visibility'><value>{value}</value></field>"
            )))
            .map(|p| p.change.settings.jids_hidden)
        };
        assert_eq!(visibility("jid-hidden").unwrap(), Some(true));
        assert_eq!(visibility("jid-mandatory-visible").unwrap(), Some(false));
        let refusal = visibility("jid-optionally-visible").unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(
            refusal.text,
            "JID Visibility 'jid-optionally-visible' is not one of jid-hidden, jid-mandatory-visible"
        );
    }

    #[test]
    fn a_malformed_publish_is_a_bad_request_saying_what_is_wrong() {
        let x = "<x xmlns='jabber:x:data' type='submit'/>";
        for (payload, text) in [
            (
                publish(""),
                "a publish to the configuration node carries exactly one <item/>",
            ),
            (
                publish(&format!("<item>{x}</item><item>{x}</item>")),
                "a publish to the configuration node carries exactly one <item/>",
            ),
            (
                publish("<item/>"),
                "the configuration item carries one jabber:x:data form and nothing else",
            ),
            (
                publish(&format!("<item>{x}<extra xmlns='urn:example'/></item>")),
                "the configuration item carries one jabber:x:data form and nothing else",
            ),
            (
                publish("<item><x xmlns='jabber:x:data' type='form'/></item>"),
                "the configuration form must be of type 'submit', not 'form'",
            ),
            (
                form("<field var='FORM_TYPE'><value>urn:xmpp:mix:core:1</value></field>"),
                "the form's FORM_TYPE must be urn:xmpp:mix:admin:0",
            ),
            (
                form("<field var='Owner'><value>not a jid@@</value></field>"),
                "Owner: 'not a jid@@' is not a bare JID",
            ),
            (
                form("<field var='mixd#join-policy'><value>anarchy</value></field>"),
                "mixd#join-policy: 'anarchy' is not one of open, invite, request",
            ),
            (
                form("<field var='mixd#muted'><value>maybe</value></field>"),
                "mixd#muted: 'maybe' is not a boolean (true or false)",
            ),
            (
                form("<field var='mixd#max-members'><value>lots</value></field>"),
                "mixd#max-members: 'lots' is not a number",
            ),
            (
                form("<field var='mixd#muted-members'><value>crone@example.org</value></field>"),
                "mixd#muted-members: 'crone@example.org' is not a bare JID and a date-time",
            ),
        ] {
            let refusal = Publish::parse(&payload).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest, "{text}");
            assert_eq!(refusal.text, text);
        }
    }

    #[test]
    fn the_item_is_named_by_the_last_change() {
        use crate::core::testing::{coven, jid};
        let mut g = coven();
        let created = item_id(g.channel("coven").unwrap());
        assert_eq!(created, "1970-01-01T00:00:00.000001Z");
        g.make_admin(
            "coven",
            &jid("alice@localhost"),
            &jid("bob@localhost"),
            5_000_000,
        )
        .unwrap();
        assert_eq!(
            item_id(g.channel("coven").unwrap()),
            "1970-01-01T00:00:05.000000Z"
        );
    }
}
