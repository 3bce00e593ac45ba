//! The configuration node (XEP-0406 §2): a form naming the owners and administrators, with
//! mixd's membership settings (join policy, group mute, member limit, muted members) as
//! `mixd#` fields. Read with a pubsub `<items/>` get by any participant; subscribers of the
//! node get it again, with `Last Change Made By`, on every change of roles or settings.

use jid::BareJid;

use crate::core::iso_time;
use crate::core::{Channel, Role};
use crate::xml::{ns, Xml};

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
