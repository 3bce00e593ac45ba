//! Moderation (XEP-0425): an owner or admin retracts someone's message with an iq
//! `<moderate id='…'><retract xmlns='urn:xmpp:message-retract:1'/><reason/></moderate>`.
//! The archive keeps a tombstone; every participant is told.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::ns;

pub fn handle(groups: &mut Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
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
    let key = groups.existing(env.channel_name())?.key;
    let env = env.clone();
    Ok(Handled::lookup(
        &env.clone(),
        key,
        id,
        move |groups, _, target, now| {
            let moderated = Some(reason);
            match groups.retract(
                env.channel_name(),
                &env.sender(),
                target.as_ref(),
                moderated,
                now,
            ) {
                Ok(facts) => Handled::iq_changed(&env, facts, None),
                Err(refusal) => Handled::Reply(env.error(&refusal)),
            }
        },
    ))
}
