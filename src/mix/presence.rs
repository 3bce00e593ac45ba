//! Presence to a channel (XEP-0403): available presence from a participant's client puts
//! that full JID on the channel's delivery list, unavailable takes it off. Servers send
//! unavailable for a client that disconnects, since it had sent the channel directed presence.

use crate::core::Groups;
use crate::dialect::{Envelope, Handled};

pub fn handle(groups: &mut Groups, env: &Envelope, presence_type: Option<&str>) -> Handled {
    let (Some(name), Some(full)) = (&env.channel, env.full_sender()) else {
        return Handled::Nothing;
    };
    let online = match presence_type {
        None => true,
        Some("unavailable") => false,
        // Subscriptions and probes are not part of MIX-Presence.
        Some(_) => return Handled::Nothing,
    };
    tracing::debug!(jid = %full, online, channel = %name, "client presence");
    match groups.presence(name, full, online) {
        Ok(facts) if facts.is_empty() => Handled::Nothing,
        Ok(facts) => Handled::Changed {
            facts,
            reply: None,
            on_failure: None,
        },
        Err(refusal) if online => Handled::Reply(env.error(&refusal)),
        Err(_) => Handled::Nothing,
    }
}
