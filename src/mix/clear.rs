//! Clearing one's own history: `<clear xmlns='urn:mixd:history:0' upto='…'/>` hides every
//! message up to that archive id (all of them without `upto`) from the requester's MAM
//! results; the result says up to which id history is now hidden.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{ns, Xml};

pub fn handle(groups: &mut Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
    let upto = match payload.attr("upto") {
        Some(id) => Some(
            id.parse::<i64>()
                .map_err(|_| bad_request(format!("upto: '{id}' is not an archive id")))?,
        ),
        None => None,
    };
    let (upto, facts) = groups.clear_history(env.channel_name(), &env.sender(), upto)?;
    let mut x = Xml::new();
    x.open("clear", ns::MIXD_HISTORY)
        .attr("upto", &upto.to_string());
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}
