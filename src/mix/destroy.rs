//! `<destroy channel='…'/>` to the service (XEP-0369 §7.3.4), by an owner. The participants
//! are told by delivery; the archive goes with the channel unless the service keeps it.

use minidom::Element;

use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let name = payload
        .attr("channel")
        .ok_or_else(|| bad_request("<destroy/> needs the channel attribute"))?;
    let facts = groups.destroy(&env.sender(), &name.to_lowercase(), now)?;
    Ok(Handled::iq_changed(env, facts, None))
}
