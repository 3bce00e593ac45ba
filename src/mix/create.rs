//! `<create channel='…'/>` to the service (XEP-0369 §7.3.2); without `channel`, an ad-hoc
//! channel whose name the service chooses. The result names the channel.

use minidom::Element;

use super::{Envelope, Handled};
use crate::core::{Groups, Micros, Outcome};
use crate::xml::{ns, Xml};

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let (name, facts) = groups.create(&env.sender(), payload.attr("channel"), now)?;
    let mut x = Xml::new();
    x.open("create", ns::MIX_CORE)
        .attr("channel", &name)
        .close();
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}
