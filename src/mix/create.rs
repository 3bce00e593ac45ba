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

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let change = match payload.get_child("x", ns::DATA_FORMS) {
        Some(form) => info::parse_form(form)?,
        None => InfoChange::default(),
    };
    let (name, facts) = groups.create_group(
        &env.sender(),
        payload.attr("channel"),
        change,
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
