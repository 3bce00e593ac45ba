//! The standard MIX dialect (XEP-0369 core:1, XEP-0403 presence, XEP-0313 archive): turns
//! stanzas into core commands and queries, and core results into MIX replies and events.
//!
//! [`handle`] checks the envelope every stanza shares (addresses, type, one payload per
//! request), then routes by what the stanza is addressed to (the service or a channel) and by
//! its payload to the capability's own file, which parses the payload, runs the command on
//! the core and writes the reply.

mod access;
mod clear;
pub mod config;
mod create;
mod destroy;
mod disco;
mod groups;
mod info;
mod items;
mod join;
mod leave;
mod mam;
mod membership;
mod message;
mod moderate;
mod presence;
pub mod receipts;
pub mod render;
mod reply;
mod roles;
mod setnick;
mod settings;
mod subscription;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use crate::core::{Fact, Groups, Micros, Refusal};
use std::sync::Arc;

use crate::store::Reader;
use crate::xml::ns;

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
            ErrorKind::Message => message::bounced(groups, stanza),
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
        ErrorKind::Message => message::handle(groups, service, &envelope, stanza_type, now),
        ErrorKind::Presence => presence::handle(groups, &envelope, stanza_type),
    }
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
    let on_channel = env.channel.is_some();
    let name = payload.name();
    let payload_ns = payload.ns();
    let result = match (set, on_channel, name, payload_ns.as_str()) {
        (false, _, "query", ns::DISCO_INFO) => disco::info(groups, env, payload),
        (false, _, "query", ns::DISCO_ITEMS) => disco::items(groups, service, env, payload),
        (false, _, "ping", ns::PING) => Ok(env.iq_result(None)),
        (true, false, "create", ns::MIX_CORE) => create::handle(groups, env, payload, now),
        (true, false, "destroy", ns::MIX_CORE) => destroy::handle(groups, env, payload, now),
        (true, true, "join", ns::MIX_CORE) => join::handle(groups, env, payload, now),
        (true, true, "leave", ns::MIX_CORE) => leave::handle(groups, env, now),
        (true, true, "setnick", ns::MIX_CORE) => setnick::handle(groups, env, payload),
        (true, true, "update-subscription", ns::MIX_CORE) => {
            subscription::handle(groups, env, payload)
        }
        (false, true, "pubsub", ns::PUBSUB) => items::get(groups, env, payload),
        (true, true, "pubsub", ns::PUBSUB) => pubsub_set(groups, env, payload, now),
        (_, true, "invite", ns::MIX_MISC) => membership::invite(groups, service, env, payload, now),
        (true, true, "decline", ns::MIXD_ADMIN) => membership::decline(groups, env, now),
        (true, true, "request", ns::MIXD_ADMIN) => membership::request(groups, env, now),
        (true, true, "decide", ns::MIXD_ADMIN) => membership::decide(groups, env, payload, now),
        (false, true, "pending", ns::MIXD_ADMIN) => membership::pending(groups, env),
        (true, true, "role", ns::MIXD_ADMIN) => roles::role(groups, env, payload, now),
        (true, true, "transfer", ns::MIXD_ADMIN) => {
            roles::targeted(groups, env, payload, now, Groups::transfer)
        }
        (true, true, "remove", ns::MIXD_ADMIN) => {
            roles::targeted(groups, env, payload, now, Groups::remove)
        }
        (true, true, "settings", ns::MIXD_ADMIN) => settings::settings(groups, env, payload, now),
        (true, true, "mute", ns::MIXD_ADMIN) => settings::mute(groups, env, payload, now),
        (false, false, "groups", ns::MIXD_ADMIN) => groups::mine(groups, service, env),
        (true, true, "query", ns::MAM) => mam::query(groups, service, env, payload),
        (true, true, "moderate", ns::MODERATE) => {
            moderate::handle(groups, service, env, payload, now)
        }
        (false, true, "message-state", ns::MIXD_RECEIPTS) => {
            receipts::state(groups, service, env, payload)
        }
        (true, true, "clear", ns::MIXD_HISTORY) => clear::handle(groups, env, payload),
        (false, _, "query", crate::flychat::history::NS) => {
            crate::flychat::history::query(groups, service, env, payload)
        }
        (_, _, "query", crate::flychat::NS) => {
            crate::flychat::iq(groups, service, env, payload, set, now)
        }
        _ => {
            let target = if on_channel {
                "a channel"
            } else {
                "the service"
            };
            let refusal = Refusal::new(
                crate::core::Condition::NotAllowed,
                format!(
                    "{target} does not handle <{name} xmlns='{payload_ns}'/> in an iq {}",
                    if set { "set" } else { "get" }
                ),
            );
            return Handled::Reply(
                env.reply_to()
                    .service_unavailable(ErrorKind::Iq, &refusal.text),
            );
        }
    };
    result.unwrap_or_else(|refusal| Handled::Reply(env.error(ErrorKind::Iq, &refusal)))
}

/// A pubsub set on a channel: a publish to the info node, or a publish or retract on the
/// allowed or banned node.
fn pubsub_set(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> crate::core::Outcome<Handled> {
    let request = payload
        .children()
        .find(|c| c.ns() == ns::PUBSUB && matches!(c.name(), "publish" | "retract"))
        .ok_or_else(|| {
            bad_request("a pubsub set on a channel must be a <publish/> or <retract/>")
        })?;
    let node = request.attr("node").unwrap_or_default();
    let publish = request.name() == "publish";
    match (access::list_of(node), publish) {
        (Some(list), _) => access::change(groups, env, list, request, publish, now),
        (None, true) if node == render::NODE_INFO => info::publish(groups, env, payload, now),
        _ => Err(bad_request(format!(
            "clients may publish to the info node and publish or retract on the allowed and banned nodes, not <{}/> on '{node}'",
            request.name()
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
fn channel_name<'a>(env: &'a Envelope) -> &'a str {
    env.channel.as_deref().unwrap_or_default()
}
