//! What both dialects share: the envelope every stanza has (addresses, type, one payload
//! per request), checked once in [`handle`], which then hands the stanza to its dialect — the
//! FlyChat operations, messages and history queries to `flychat`, everything else to `mix` —
//! whose capability files parse the payload, run the command on the core and write the
//! reply; and what those replies are made of ([`Handled`], [`ReplyTo`], refusals).

mod reply;

use std::sync::Arc;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use crate::core::{Fact, Groups, Micros, Refusal};
use crate::store::Reader;

pub use reply::{ErrorKind, ReplyTo};

/// What handlers may consult besides the core: the service's address, for routing and for
/// the `from` of what it sends, and the archive, to find messages that others refer to.
pub struct Service {
    pub domain: String,
    pub archive: Arc<dyn Reader>,
}

impl Service {
    pub fn channel_jid(&self, name: &str) -> String {
        format!("{name}@{}", self.domain)
    }
}

/// What became of one stanza.
pub enum Handled {
    /// A command ran: store `facts`, then send `reply` and deliver the facts. If the commit
    /// fails, send `on_failure` instead.
    Changed {
        facts: Vec<Fact>,
        reply: Option<String>,
        on_failure: Option<String>,
    },
    /// A read-only answer (or an error); sent in order after earlier changes are stored.
    Reply(String),
    /// A read of the store (archive pages, receipt states): run it on the blocking pool and
    /// send what it writes.
    Read(Read),
    /// Nothing to do or to say (results, errors, and stanzas that must not be answered).
    Nothing,
}

impl Handled {
    /// A change answered with an iq result carrying `payload`, or an error if not stored.
    pub fn iq_changed(env: &Envelope, facts: Vec<Fact>, payload: Option<String>) -> Handled {
        let reply_to = env.reply_to();
        Handled::Changed {
            facts,
            reply: Some(reply_to.iq_result(payload.as_deref())),
            on_failure: Some(reply_to.storage_failed(ErrorKind::Iq)),
        }
    }
}

pub type Read = Box<dyn FnOnce(&dyn Reader) -> Vec<String> + Send>;

/// The envelope of a stanza addressed to the service or one of its channels.
pub struct Envelope<'a> {
    pub stanza: &'a Element,
    pub from: Jid,
    pub to: Jid,
    pub id: Option<&'a str>,
    /// The channel's localpart when addressed to a channel.
    pub channel: Option<String>,
}

impl Envelope<'_> {
    pub fn sender(&self) -> BareJid {
        self.from.to_bare()
    }

    pub fn full_sender(&self) -> Option<&FullJid> {
        self.from.try_as_full().ok()
    }

    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            from: self.to.to_string(),
            to: self.from.to_string(),
            id: self.id.map(str::to_owned),
        }
    }

    /// An error reply to this stanza.
    pub fn error(&self, kind: ErrorKind, refusal: &Refusal) -> String {
        self.reply_to().error(kind, refusal)
    }

    /// An iq result to this stanza carrying `payload`.
    pub fn iq_result(&self, payload: Option<&str>) -> Handled {
        Handled::Reply(self.reply_to().iq_result(payload))
    }
}

/// Handles one stanza from the link.
pub fn handle(groups: &mut Groups, service: &Service, stanza: &Element, now: Micros) -> Handled {
    let id = stanza.attr("id");
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
            ErrorKind::Message => crate::mix::bounced(groups, stanza),
            _ => Handled::Nothing,
        };
    }
    // Without a valid sender there is nobody to answer; the server never sends such a stanza.
    let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
        tracing::debug!(?id, "dropped a stanza without a valid from");
        return Handled::Nothing;
    };
    let to = match stanza.attr("to").map(Jid::new) {
        Some(Ok(to)) => to,
        _ => Jid::new(&service.domain).expect("validated domain"),
    };
    let mut envelope = Envelope {
        stanza,
        from,
        to,
        id,
        channel: None,
    };
    if envelope.to.domain().as_str() != service.domain {
        let refusal = Refusal::new(
            crate::core::Condition::ItemNotFound,
            "not addressed to this service",
        );
        return Handled::Reply(envelope.error(kind, &refusal));
    }
    envelope.channel = envelope.to.node().map(|n| n.to_string());
    match kind {
        ErrorKind::Iq => iq(groups, service, &envelope, stanza_type, now),
        ErrorKind::Message if crate::flychat::is_flychat(stanza) => {
            crate::flychat::message(groups, service, &envelope, now)
        }
        ErrorKind::Message => crate::mix::message(groups, service, &envelope, stanza_type, now),
        ErrorKind::Presence => crate::mix::presence(groups, &envelope, stanza_type),
    }
}

fn iq(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    iq_type: Option<&str>,
    now: Micros,
) -> Handled {
    let set = match iq_type {
        Some("get") => false,
        Some("set") => true,
        other => {
            let text = format!("an iq's type must be get or set here, not {other:?}");
            return Handled::Reply(env.error(ErrorKind::Iq, &bad_request(text)));
        }
    };
    let mut payloads = env.stanza.children();
    let (Some(payload), None) = (payloads.next(), payloads.next()) else {
        let text = "an iq get or set carries exactly one payload element";
        return Handled::Reply(env.error(ErrorKind::Iq, &bad_request(text)));
    };
    // The FlyChat operations and history queries go to their dialect, the rest is MIX.
    let result = match (set, payload.name(), payload.ns().as_str()) {
        (false, "query", crate::flychat::history::NS) => {
            crate::flychat::history::query(groups, service, env, payload)
        }
        (_, "query", crate::flychat::NS) => {
            crate::flychat::iq(groups, service, env, payload, set, now)
        }
        _ => return crate::mix::iq(groups, service, env, payload, set, now),
    };
    result.unwrap_or_else(|refusal| Handled::Reply(env.error(ErrorKind::Iq, &refusal)))
}

/// A `bad-request` refusal with its text; shared by both dialects.
pub fn bad_request(text: impl Into<String>) -> Refusal {
    Refusal::new(crate::core::Condition::BadRequest, text)
}

/// The bare JID that `payload`'s attribute `name` gives.
pub fn jid_attr(payload: &Element, name: &str) -> crate::core::Outcome<BareJid> {
    let value = payload
        .attr(name)
        .ok_or_else(|| bad_request(format!("<{}/> needs the {name} attribute", payload.name())))?;
    BareJid::new(value.trim()).map_err(|_| bad_request(format!("'{value}' is not a bare JID")))
}

/// `true`/`1` or `false`/`0` (XEP-0004 booleans) in `payload`'s attribute `name`, if any.
pub fn bool_attr(payload: &Element, name: &str) -> crate::core::Outcome<Option<bool>> {
    match payload.attr(name) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(bad_request(format!(
            "{name}='{other}' is not a boolean (true or false)"
        ))),
    }
}

/// The archived message of the channel `key` that `reference` names, if any.
pub fn find_message(
    service: &Service,
    env: &Envelope,
    key: i64,
    reference: &str,
) -> Result<Option<crate::core::MessageRef>, Handled> {
    service
        .archive
        .find_message(key, reference)
        .map_err(|error| {
            tracing::error!(%error, "looking up a message failed");
            let kind = if env.stanza.name() == "iq" {
                ErrorKind::Iq
            } else {
                ErrorKind::Message
            };
            Handled::Reply(env.reply_to().storage_failed(kind))
        })
}

/// The channel an iq to a channel is about; only called on channel routes.
pub fn channel_name<'a>(env: &'a Envelope) -> &'a str {
    env.channel.as_deref().unwrap_or_default()
}
