//! The standard MIX dialect (XEP-0369 core:1, XEP-0403 presence, XEP-0313 archive, and the
//! XEPs riding on them): turns stanzas into core commands and queries, and core results into
//! MIX replies and events. `dialect::handle` has checked the envelope; [`iq`] routes by what
//! the stanza is addressed to (the service or a channel) and by its payload to the
//! capability's own file.

mod access;
mod clear;
pub mod config;
mod create;
pub mod deliver;
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
mod roles;
mod setnick;
mod settings;
mod subscription;

use minidom::Element;

use crate::core::{Groups, Micros, Refusal};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::xml::node;
use crate::xml::ns;

pub use message::bounced;
pub use message::handle as message;
pub use presence::handle as presence;

/// An iq get (`set` false) or set to the service or a channel, with its one `payload`.
pub fn iq(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
    set: bool,
    now: Micros,
) -> Handled {
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
        (true, true, "moderate", ns::MODERATE) => moderate::handle(groups, env, payload),
        (false, true, "message-state", ns::MIXD_RECEIPTS) => receipts::state(groups, env, payload),
        (true, true, "clear", ns::MIXD_HISTORY) => clear::handle(groups, env, payload),
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
    result.unwrap_or_else(|refusal| Handled::Reply(env.error(&refusal)))
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
        (None, true) if node == node::INFO => info::publish(groups, env, payload, now),
        _ => Err(bad_request(format!(
            "clients may publish to the info node and publish or retract on the allowed and banned nodes, not <{}/> on '{node}'",
            request.name()
        ))),
    }
}
