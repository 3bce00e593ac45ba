//! `<create channel='…'/>` to the service (XEP-0369 §7.3.2); without `channel`, an ad-hoc
//! channel whose name the service chooses. The result names the channel.
//!
//! mixd also takes the channel's information with the request, as the info form a publish
//! to the info node carries (`<create channel='…'><x xmlns='jabber:x:data'
//! type='submit'>…</x></create>`: Name, Description, Contact, the picture), so that a group
//! is created with its name and picture in one step, as the group SDKs do.

use minidom::Element;

use super::info;
use crate::core::{Dialect, Groups, InfoChange, Micros, Outcome};
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
}

impl Create {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let info = match payload.get_child("x", ns::DATA_FORMS) {
            Some(form) => info::parse_form(form)?,
            None => InfoChange::default(),
        };
        Ok(Create {
            channel: payload.attr("channel").map(str::to_owned),
            info,
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
        let mut x = Xml::new();
        x.open("create", ns::MIX_CORE)
            .attr("channel", &name)
            .close();
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
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
