//! `<destroy channel='…'/>` to the service (XEP-0369 §7.3.4), by an owner. The participants
//! are told by delivery; the archive is removed with the channel.

use minidom::Element;

use super::{bad_request, Envelope, Handled};
use crate::core::{Groups, Outcome};

pub fn handle(groups: &mut Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
    let name = payload
        .attr("channel")
        .ok_or_else(|| bad_request("<destroy/> needs the channel attribute"))?;
    let facts = groups.destroy(&env.sender(), &name.to_lowercase())?;
    Ok(Handled::iq_changed(env, facts, None))
}
