//! Moderation (XEP-0425): an owner or admin retracts someone's message with an iq
//! `<moderate id='…'><retract xmlns='urn:xmpp:message-retract:1'/><reason/></moderate>`.
//! The archive keeps a tombstone; every participant is told.

use minidom::Element;

use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{bad_request, channel_name, find_message, Envelope, Handled, Service};
use crate::xml::ns;

pub fn handle(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let id = payload
        .attr("id")
        .ok_or_else(|| bad_request("<moderate/> needs the id of the message"))?;
    if !payload.has_child("retract", ns::RETRACT) {
        return Err(bad_request(
            "<moderate/> must carry <retract xmlns='urn:xmpp:message-retract:1'/>",
        ));
    }
    let reason = payload
        .get_child("reason", ns::MODERATE)
        .map(|r| r.text())
        .filter(|r| !r.is_empty());
    let name = channel_name(env);
    let key = groups.channel(name).map(|c| c.key).unwrap_or_default();
    let target = match find_message(service, env, key, id) {
        Ok(found) => found,
        Err(failed) => return Ok(failed),
    };
    let facts = groups.retract(name, &env.sender(), target.as_ref(), Some(reason), now)?;
    Ok(Handled::iq_changed(env, facts, None))
}
