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
/// type are read from `head` (the link read them while it built the element) and parsed
/// through `addresses`.
pub fn handle(
    groups: &mut Groups,
    service: &Service,
    addresses: &mut Addresses,
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
    let Some(from) = head.from().and_then(|f| addresses.parse(f).ok()) else {
        tracing::debug!(id = ?head.id(), "dropped a stanza without a valid from");
        return Handled::Nothing;
    };
    let to = match head.to().map(|to| addresses.parse(to)) {
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

/// The stanzas' addresses parsed as `Jid::new` parses them, the last few kept: a busy
/// channel's posts share its `to`, and a sender's stanzas in a row their `from`, and a parse
/// (nodeprep, an IPv4 parse, IDNA's `to_ascii` and nameprep of the domain, resourceprep) was
/// 940 instructions, two of them every stanza, where a copy of a kept one is about a tenth of
/// that (docs/benchmarks.md, branch `fanout5`). A JID with no mapping of its own has no cheaper
/// constructor: `Jid::from_parts` writes it through `format!`, dearer than the parse.
#[derive(Debug, Default)]
pub struct Addresses {
    /// JIDs whose text is the address they were parsed from (nothing normalized), so that the
    /// text is their key; at most [`KEPT`], the oldest replaced first.
    recent: Vec<Jid>,
    /// Where the next one goes once `recent` is full.
    next: usize,
}

/// How many parsed addresses [`Addresses`] keeps: a few, looked through one by one (their
/// lengths tell most apart), so that a stanza whose addresses are not among them pays little
/// more than the parse.
const KEPT: usize = 8;

impl Addresses {
    /// `Jid::new(text)`: the same JID, or the same error.
    pub fn parse(&mut self, text: &str) -> Result<Jid, jid::Error> {
        if let Some(known) = self.recent.iter().find(|jid| jid.as_str() == text) {
            return Ok(known.clone());
        }
        let parsed = Jid::new(text)?;
        if parsed.as_str() == text {
            if self.recent.len() < KEPT {
                self.recent.push(parsed.clone());
            } else {
                self.recent[self.next] = parsed.clone();
                self.next = (self.next + 1) % KEPT;
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every address is parsed as `Jid::new` parses it, the same value (its text and its
    /// parts) or the same error, the first time and again (kept, or not kept: normalized),
    /// with more addresses than are kept.
    #[test]
    fn addresses_are_parsed_as_jid_new_parses_them() {
        let domains = [
            "mix.example",
            "EXAMPLE",
            "b.",
            "127.0.0.1",
            "[::1]",
            "[::1",
            "bücher.example",
            "xn--bcher-kva.example",
            "-a.example",
            "",
            "a b",
        ];
        let nodes = [
            None,
            Some(""),
            Some("u"),
            Some("U"),
            Some("a'b"),
            Some("ß"),
            Some("a@b"),
        ];
        let resources = [
            None,
            Some(""),
            Some("r"),
            Some("R/x"),
            Some("r@x"),
            Some("<'&>"),
        ];
        let parts = |jid: &Jid| {
            let node = jid.node().map(|n| n.as_str().to_owned());
            let resource = jid.resource().map(|r| r.as_str().to_owned());
            let domain = jid.domain().as_str().to_owned();
            (jid.as_str().to_owned(), node, domain, resource)
        };
        let mut addresses = Addresses::default();
        for domain in domains {
            for node in nodes {
                for resource in resources {
                    let mut text = String::new();
                    if let Some(node) = node {
                        text.extend([node, "@"]);
                    }
                    text.push_str(domain);
                    if let Some(resource) = resource {
                        text.extend(["/", resource]);
                    }
                    let theirs = Jid::new(&text);
                    for time in ["first", "again"] {
                        match (addresses.parse(&text), &theirs) {
                            (Ok(ours), Ok(theirs)) => {
                                assert_eq!(parts(&ours), parts(theirs), "{text:?} {time}")
                            }
                            (Err(ours), Err(theirs)) => assert_eq!(&ours, theirs, "{text:?}"),
                            (ours, theirs) => panic!("{text:?} {time}: {ours:?}, {theirs:?}"),
                        }
                    }
                }
            }
        }
        assert_eq!(addresses.recent.len(), KEPT);
    }
}
