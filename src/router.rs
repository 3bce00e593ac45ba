//! The router above the two dialects: checks the envelope of every stanza (a stanza, a
//! sender, addressed to this service, a type that means something) and decides which dialect
//! it belongs to — the FlyChat operations, messages, receipts and history queries to
//! `flychat`, everything else to `mix`. The dialects never see a stanza that failed here, and
//! never import each other.

use jid::Jid;
use minidom::Element;

use crate::core::{Condition, Groups, Micros, Refusal};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::{flychat, mix};

/// Handles one stanza from the link.
pub fn handle(groups: &mut Groups, service: &Service, stanza: &Element, now: Micros) -> Handled {
    let kind = match stanza.name() {
        "iq" => ErrorKind::Iq,
        "message" => ErrorKind::Message,
        "presence" => ErrorKind::Presence,
        other => {
            tracing::debug!(element = other, "ignored a non-stanza element");
            return Handled::Nothing;
        }
    };
    let stanza_type = stanza.attr("type");
    if stanza_type == Some("error") || (kind == ErrorKind::Iq && stanza_type == Some("result")) {
        return match kind {
            ErrorKind::Message => mix::bounced(groups, stanza),
            _ => Handled::Nothing,
        };
    }
    // Without a valid sender there is nobody to answer; the server never sends such a stanza.
    let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
        tracing::debug!(id = ?stanza.attr("id"), "dropped a stanza without a valid from");
        return Handled::Nothing;
    };
    let to = match stanza.attr("to").map(Jid::new) {
        Some(Ok(to)) => to,
        _ => Jid::new(&service.domain).expect("validated domain"),
    };
    let mut env = Envelope {
        kind,
        from,
        to,
        id: stanza.attr("id").map(str::to_owned),
        channel: None,
    };
    if env.to.domain().as_str() != service.domain {
        let refusal = Refusal::new(Condition::ItemNotFound, "not addressed to this service");
        return Handled::Reply(env.error(&refusal));
    }
    env.channel = env.to.node().map(|n| n.to_string());
    match kind {
        ErrorKind::Iq => iq(groups, service, &env, stanza, stanza_type, now),
        ErrorKind::Message if flychat::is_flychat(stanza) => {
            flychat::message(groups, service, &env, stanza, now)
        }
        ErrorKind::Message => mix::message(groups, service, &env, stanza, stanza_type, now),
        ErrorKind::Presence => mix::presence(groups, &env, stanza_type),
    }
}

fn iq(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    stanza: &Element,
    iq_type: Option<&str>,
    now: Micros,
) -> Handled {
    let set = match iq_type {
        Some("get") => false,
        Some("set") => true,
        other => {
            let text = format!("an iq's type must be get or set here, not {other:?}");
            return Handled::Reply(env.error(&bad_request(text)));
        }
    };
    let mut payloads = stanza.children();
    let (Some(payload), None) = (payloads.next(), payloads.next()) else {
        let text = "an iq get or set carries exactly one payload element";
        return Handled::Reply(env.error(&bad_request(text)));
    };
    if flychat::is_flychat_iq(payload) {
        flychat::iq(groups, service, env, payload, set, now)
    } else {
        mix::iq(groups, service, env, payload, set, now)
    }
}
