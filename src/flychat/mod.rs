//! The FlyChat dialect: the group operations (`<query xmlns='jabber:iq:mixgroupchat'
//! status='…'>`) and the `normal` group messages with `<chatcontent/>` that the FlyChat-style
//! JavaScript SDK sends, as `../shared/reference/flychat-wire.md` describes them. Each
//! operation runs the same core command a MIX request does; replies carry what the SDK
//! reads, errors a readable text (the SDK shows it).
//!
//! The stanza envelope (addresses, ids, error replies) is checked for every stanza by
//! `router::handle`, which routes here by namespace.

mod admin;
pub mod deliver;
mod group;
mod history;
mod membership;
mod message;
mod recall;
mod receipts;
pub mod render;
mod typing;

use minidom::Element;

use crate::core::{ChatState, Groups, Micros, Refusal, Role};
use crate::dialect::{Envelope, Handled, Service};

pub use message::is_flychat_message;
pub use receipts::receipt;

pub const NS: &str = "jabber:iq:mixgroupchat";
pub const VCARD: &str = "vcard-temp";
pub const CONTENT: &str = "urn:xmpp:content";

/// Whether an iq's payload is FlyChat's: a group operation or a history query.
pub fn is_flychat_iq(payload: &Element) -> bool {
    payload.name() == "query" && (payload.ns() == NS || payload.ns() == history::NS)
}

/// An iq carrying `<query xmlns='jabber:iq:mixgroupchat' status='…'>`, or a history query
/// (`jabber:iq:user_activities`).
pub fn iq(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    query: &Element,
    set: bool,
    now: Micros,
) -> Handled {
    let status = query.attr("status").unwrap_or_default();
    let result = match (set, env.channel.is_some(), status) {
        (false, _, _) if query.ns() == history::NS => history::query(groups, service, env, query),
        (true, false, "create_group") => group::create(groups, service, env, query, now),
        (false, true, "get_group_profile") => group::profile(groups, service, env),
        (false, true, "get_participants") => group::participants(groups, env),
        (true, true, "add_participants") => group::add(groups, env, query, now),
        (true, true, "set_group_info") => group::set_info(groups, env, query, now),
        (true, true, "user_exit_group") => group::exit(groups, env, query, now),
        (true, true, "make_admin") => admin::role(groups, env, query, Role::Admin, now),
        (true, true, "revoke_admin") => admin::role(groups, env, query, Role::Member, now),
        (true, true, "transfer_ownership") => admin::role(groups, env, query, Role::Owner, now),
        (true, true, "set_group_settings") => admin::settings(groups, env, query, now),
        (true, true, "mute_participant") => admin::mute(groups, env, query, now),
        (true, true, "set_access") => admin::access(groups, env, query, now),
        (true, true, "invite_participants") => membership::invite(groups, env, query, now),
        (true, true, "join_group") => membership::join(groups, env, now),
        (true, true, "decline_invitation") => membership::decline(groups, env, now),
        (false, true, "get_join_requests") => membership::requests(groups, env),
        (true, true, "decide_join_request") => membership::decide(groups, env, query, now),
        (false, false, "get_user_groups") => group::user_groups(groups, service, env),
        (true, true, "user_delete_group") => group::delete(groups, env, now),
        (true, true, "composing") => typing::handle(groups, env, ChatState::Composing),
        (true, true, "gone") => typing::handle(groups, env, ChatState::Gone),
        (true, true, "recall") => recall::handle(groups, env, query, now),
        (false, true, "group_message_status") => receipts::status(groups, env, query),
        _ => Err(Refusal::new(
            crate::core::Condition::BadRequest,
            format!(
                "unknown group operation '{status}' in an iq {} to {}",
                if set { "set" } else { "get" },
                if env.channel.is_some() {
                    "a group"
                } else {
                    "the service"
                }
            ),
        )),
    };
    result.unwrap_or_else(|refusal| Handled::Reply(env.error(&refusal)))
}

/// A message from a FlyChat client: a receipt (`<delivered/>`, `<seen/>` with `group_id`)
/// or a group message (`type='normal'` with `<chatcontent/>`).
pub fn message(groups: &mut Groups, env: &Envelope, stanza: &Element, now: Micros) -> Handled {
    if receipt(stanza).is_some() {
        receipts::record(groups, env, stanza)
    } else {
        message::post(groups, env, stanza, now)
    }
}

/// Whether a message is in the FlyChat dialect.
pub fn is_flychat(stanza: &Element) -> bool {
    is_flychat_message(stanza) || receipt(stanza).is_some()
}

/// The text of the first `name` descendant of `element`, wherever it is (the SDK nests
/// its fields in vCards and lists and is lenient about where).
fn descendant_text(element: &Element, name: &str) -> Option<String> {
    element.children().find_map(|c| {
        if c.name() == name {
            Some(c.text())
        } else {
            descendant_text(c, name)
        }
    })
}
