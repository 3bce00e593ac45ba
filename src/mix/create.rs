//! `<create channel='…'/>` to the service (XEP-0369 §7.3.2); without `channel`, an ad-hoc
//! channel whose name the service chooses. The result names the channel.
//!
//! mixd also takes the channel's information with the request, as the info form a publish
//! to the info node carries (`<create channel='…'><x xmlns='jabber:x:data'
//! type='submit'>…</x></create>`: Name, Description, Contact, the picture), so that a group
//! is created with its name and picture in one step, as the group SDKs do; and its settings,
//! as a second form of the configuration node's kind (FORM_TYPE `urn:xmpp:mix:admin:0`:
//! `JID Visibility`, …), so that a JID-hidden channel never shows a JID.

use minidom::Element;

use super::{config, info};
use crate::core::{Dialect, Groups, InfoChange, Micros, Outcome, SettingsChange};
use crate::dialect::{Envelope, Handled};
use crate::xml::{ns, Xml};

/// A channel to create. Whether the name is a valid one, free, and whether the sender may
/// create at all are the core's to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// The name asked for; `None` for an ad-hoc channel (XEP-0369 §7.3.3).
    pub channel: Option<String>,
    /// The information it starts with (empty without a form).
    pub info: InfoChange,
    /// The settings it starts with (the defaults without a configuration form).
    pub settings: SettingsChange,
}

impl Create {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let mut info = InfoChange::default();
        let mut settings = SettingsChange::default();
        for form in payload.children().filter(|c| c.is("x", ns::DATA_FORMS)) {
            if form_type(form) == Some(ns::MIX_ADMIN.to_owned()) {
                settings = config::parse_form(form)?.settings;
            } else {
                info = info::parse_form(form)?;
            }
        }
        Ok(Create {
            channel: payload.attr("channel").map(str::to_owned),
            info,
            settings,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let (name, facts) = groups.create_group(
            &env.sender(),
            self.channel.as_deref(),
            self.info,
            &[],
            Dialect::Mix,
            now,
        )?;
        // The creator owns the new channel, so its settings cannot be refused.
        let mut facts = facts;
        facts.extend(groups.change_settings(&name, &env.sender(), self.settings, now)?);
        let mut x = Xml::new();
        x.open("create", ns::MIX_CORE)
            .attr("channel", &name)
            .close();
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

fn form_type(form: &Element) -> Option<String> {
    form.children()
        .find(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") == Some("FORM_TYPE"))
        .and_then(|f| f.get_child("value", ns::DATA_FORMS))
        .map(|v| v.text().trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn a_create_names_the_channel_and_may_carry_its_information() {
        let plain = element("<create xmlns='urn:xmpp:mix:core:1' channel='coven'/>");
        assert_eq!(
            Create::parse(&plain).unwrap(),
            Create {
                channel: Some("coven".into()),
                info: InfoChange::default(),
                settings: SettingsChange::default(),
            }
        );
        let with_form = element(
            "<create xmlns='urn:xmpp:mix:core:1' channel='coven'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mix:core:1</value></field>\
             <field var='Name'><value>The Coven</value></field>\
             <field var='mixd#avatar'><value>https://example.org/c.png</value></field>\
             </x></create>",
        );
        let create = Create::parse(&with_form).unwrap();
        assert_eq!(create.info.name.as_deref(), Some("The Coven"));
        assert_eq!(
            create.info.avatar.as_deref(),
            Some("https://example.org/c.png")
        );
        assert_eq!(create.info.description, None);
    }

    #[test]
    fn a_create_may_carry_the_configuration_form_that_hides_jids() {
        let hidden = element(
            "<create xmlns='urn:xmpp:mix:core:1' channel='coven'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mix:admin:0</value></field>\
             <field var='JID Visibility'><value>jid-hidden</value></field>\
             </x></create>",
        );
        let create = Create::parse(&hidden).unwrap();
        assert_eq!(create.settings.jids_hidden, Some(true));
        assert_eq!(create.info, InfoChange::default());
    }

    #[test]
    fn an_ad_hoc_create_names_no_channel() {
        let ad_hoc = element("<create xmlns='urn:xmpp:mix:core:1'/>");
        assert_eq!(Create::parse(&ad_hoc).unwrap().channel, None);
    }

    #[test]
    fn a_create_with_a_bad_form_is_a_bad_request() {
        let bad = element(
            "<create xmlns='urn:xmpp:mix:core:1' channel='coven'>\
             <x xmlns='jabber:x:data' type='submit'><field var='Colour'><value>red</value></field></x>\
             </create>",
        );
        let refusal = Create::parse(&bad).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "the info form has no field 'Colour'");
    }
}
