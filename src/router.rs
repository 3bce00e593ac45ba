//! The router above the two dialects: checks the envelope of every stanza (a stanza, a
//! sender, addressed to this service, a type that means something) and decides which dialect
//! it belongs to — the FlyChat operations, messages, receipts and history queries to
//! `flychat`, everything else to `mix`. The dialects never see a stanza that failed here, and
//! never import each other.

use jid::Jid;
use minidom::Element;

use crate::core::{Condition, Dialect, Groups, Micros, Refusal};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::xml::Head;
use crate::{flychat, mix};

/// What a stanza is and which dialect it belongs to, read from its shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub kind: ErrorKind,
    pub dialect: Dialect,
}

/// The route of a stanza from the link, `None` for an element that is not a stanza: FlyChat
/// messages (its `<chatcontent/>`, its receipts) and iqs (its query namespaces) to `flychat`,
/// everything else to `mix`. `head` is the stanza's, as the link read it.
pub fn route(stanza: &Element, head: &Head) -> Option<Route> {
    let (kind, flychat) = match stanza.name() {
        "iq" => (
            ErrorKind::Iq,
            stanza.children().next().is_some_and(flychat::is_flychat_iq),
        ),
        "message" => (ErrorKind::Message, flychat::is_flychat(stanza, head.kind())),
        "presence" => (ErrorKind::Presence, false),
        _ => return None,
    };
    let dialect = if flychat {
        Dialect::FlyChat
    } else {
        Dialect::Mix
    };
    Some(Route { kind, dialect })
}

/// Handles one stanza from the link, along the `route` it was given; its addresses, id and
/// type are read from `head` (the link read them while it built the element).
pub fn handle(
    groups: &mut Groups,
    service: &Service,
    stanza: &Element,
    head: &Head,
    route: Option<Route>,
    now: Micros,
) -> Handled {
    let Some(Route { kind, dialect }) = route else {
        tracing::debug!(element = stanza.name(), "ignored a non-stanza element");
        return Handled::Nothing;
    };
    let stanza_type = head.kind();
    if stanza_type == Some("error") || (kind == ErrorKind::Iq && stanza_type == Some("result")) {
        return match kind {
            ErrorKind::Message => mix::bounced(groups, stanza),
            _ => Handled::Nothing,
        };
    }
    // Without a valid sender there is nobody to answer; the server never sends such a stanza.
    let Some(from) = head.from().and_then(|f| Jid::new(f).ok()) else {
        tracing::debug!(id = ?head.id(), "dropped a stanza without a valid from");
        return Handled::Nothing;
    };
    let to = match head.to().map(Jid::new) {
        Some(Ok(to)) => to,
        _ => Jid::new(&service.domain).expect("validated domain"),
    };
    let mut env = Envelope {
        kind,
        from,
        to,
        id: head.id().map(str::to_owned),
        channel: None,
    };
    if env.to.domain().as_str() != service.domain {
        let refusal = Refusal::new(Condition::ItemNotFound, "not addressed to this service");
        return Handled::Reply(env.error(&refusal));
    }
    env.channel = env.to.node().map(|n| n.to_string());
    match (kind, dialect) {
        (ErrorKind::Iq, _) => iq(groups, service, &env, stanza, stanza_type, dialect, now),
        (ErrorKind::Message, Dialect::FlyChat) => {
            flychat::message(groups, service, &env, stanza, now)
        }
        (ErrorKind::Message, Dialect::Mix) => {
            mix::message(groups, service, &env, stanza, stanza_type, now)
        }
        (ErrorKind::Presence, _) => mix::presence(groups, &env, stanza_type),
    }
}

fn iq(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    stanza: &Element,
    iq_type: Option<&str>,
    dialect: Dialect,
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
    // The route read the first (here: the only) payload.
    match dialect {
        Dialect::FlyChat => flychat::iq(groups, service, env, payload, set, now),
        Dialect::Mix => mix::iq(groups, service, env, payload, set, now),
    }
}
