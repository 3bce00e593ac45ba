//! The FlyChat dialect: the group operations (`<query xmlns='jabber:iq:mixgroupchat'
//! status='…'>`) and the `normal` group messages with `<chatcontent/>` that the FlyChat-style
//! JavaScript SDK sends, as `../shared/reference/flychat-wire.md` describes them. Each
//! operation runs the same core command a MIX request does; replies carry what the SDK
//! reads, errors a readable text (the SDK shows it).
//!
//! The stanza envelope (addresses, ids, error replies) is checked for every stanza by
//! `router::handle`, which routes here by namespace. Here every stanza is first read into a
//! [`Request`] — parsing touches no state, so a malformed request is refused before the core
//! is asked anything, and parsing is tested without a server — and the request is then
//! applied. This file only routes: each capability file defines its requests, and what they
//! all read the same way is in `wire.rs`.

mod admin;
pub mod deliver;
mod edit;
mod group;
mod history;
mod membership;
mod message;
mod recall;
mod receipts;
pub mod render;
mod reply_message;
mod typing;
mod wire;

use minidom::Element;

use crate::core::{ChatState, Condition, Groups, Micros, Outcome, Refusal, Role};
use crate::dialect::{bad_request, AccessChange, Decision, Envelope, ErrorKind, Handled, Service};

pub use admin::{MuteParticipant, SetRole, SetSettings};
pub use edit::Edit;
pub use group::{
    AddParticipants, CreateGroup, DeleteGroup, ExitGroup, GetParticipants, GetProfile, SetInfo,
    UserGroups,
};
pub use history::{GroupChat, GroupChatMedia};
pub use membership::{DeclineInvitation, Invite, JoinGroup, JoinRequests};
pub use message::{is_flychat_message, Post};
pub use recall::Recall;
pub use receipts::{MessageStatus, Receipt};
pub use reply_message::{Asked, ReplyMessage};
pub use typing::Typing;
pub use wire::{CONTENT, HISTORY_NS, NS, VCARD};

/// One FlyChat request, read off its stanza and not yet applied.
#[derive(Debug, Clone)]
pub enum Request {
    CreateGroup(CreateGroup),
    GetProfile(GetProfile),
    GetParticipants(GetParticipants),
    AddParticipants(AddParticipants),
    SetInfo(SetInfo),
    ExitGroup(ExitGroup),
    DeleteGroup(DeleteGroup),
    UserGroups(UserGroups),
    SetRole(SetRole),
    SetSettings(SetSettings),
    Mute(MuteParticipant),
    Access(AccessChange),
    Invite(Invite),
    Join(JoinGroup),
    Decline(DeclineInvitation),
    JoinRequests(JoinRequests),
    Decide(Decision),
    Post(Post),
    Edit(Edit),
    Receipt(Receipt),
    MessageStatus(MessageStatus),
    Recall(Recall),
    Typing(Typing),
    History(GroupChat),
    MediaHistory(GroupChatMedia),
    ReplyMessage(ReplyMessage),
}

impl Request {
    /// Reads `element`: for an iq, its payload (a group operation routed by `status`, the iq
    /// type and whether it is addressed to a group or to the service; or a history query or
    /// message look-up); for a message, the stanza (a receipt, an edit, or a group message).
    /// `set` is the iq's type and means nothing for a message.
    pub fn parse(env: &Envelope, element: &Element, set: bool) -> Outcome<Request> {
        match env.kind {
            ErrorKind::Iq => Request::parse_query(env, element, set),
            ErrorKind::Message if Receipt::find(element).is_some() => {
                Receipt::parse(element).map(Request::Receipt)
            }
            ErrorKind::Message => match Edit::target(env, element) {
                Some(target) => Edit::parse(env, element, target).map(Request::Edit),
                None => Post::parse(env, element).map(Request::Post),
            },
            ErrorKind::Presence => Err(bad_request("FlyChat has no presence")),
        }
    }

    fn parse_query(env: &Envelope, query: &Element, set: bool) -> Outcome<Request> {
        let status = query.attr("status").unwrap_or_default();
        // History queries are gets; a set in that namespace is routed by status like any
        // other, and refused as an unknown operation.
        if !set && query.ns() == HISTORY_NS {
            return match status {
                "group_chat" => GroupChat::parse(env, query).map(Request::History),
                "group_chat_media" => GroupChatMedia::parse(env, query).map(Request::MediaHistory),
                "reply_message" => ReplyMessage::parse(query).map(Request::ReplyMessage),
                other => Err(bad_request(format!("unknown history query '{other}'"))),
            };
        }
        let request = match (set, env.channel.is_some(), status) {
            (true, false, "create_group") => Request::CreateGroup(CreateGroup::parse(query)?),
            (false, true, "get_group_profile") => Request::GetProfile(GetProfile),
            (false, true, "get_participants") => Request::GetParticipants(GetParticipants),
            (true, true, "add_participants") => {
                Request::AddParticipants(AddParticipants::parse(query)?)
            }
            (true, true, "set_group_info") => Request::SetInfo(SetInfo::parse(query)?),
            (true, true, "user_exit_group") => Request::ExitGroup(ExitGroup::parse(query)?),
            (true, true, "make_admin") => Request::SetRole(SetRole::parse(query, Role::Admin)?),
            (true, true, "revoke_admin") => Request::SetRole(SetRole::parse(query, Role::Member)?),
            (true, true, "transfer_ownership") => {
                Request::SetRole(SetRole::parse(query, Role::Owner)?)
            }
            (true, true, "set_group_settings") => Request::SetSettings(SetSettings::parse(query)?),
            (true, true, "mute_participant") => Request::Mute(MuteParticipant::parse(query)?),
            (true, true, "set_access") => Request::Access(admin::set_access(query)?),
            (true, true, "invite_participants") => Request::Invite(Invite::parse(query)?),
            (true, true, "join_group") => Request::Join(JoinGroup),
            (true, true, "decline_invitation") => Request::Decline(DeclineInvitation),
            (false, true, "get_join_requests") => Request::JoinRequests(JoinRequests),
            (true, true, "decide_join_request") => {
                Request::Decide(membership::decide_join_request(query)?)
            }
            (false, false, "get_user_groups") => Request::UserGroups(UserGroups),
            (true, true, "user_delete_group") => Request::DeleteGroup(DeleteGroup),
            (true, true, "composing") => Request::Typing(Typing {
                state: ChatState::Composing,
            }),
            (true, true, "gone") => Request::Typing(Typing {
                state: ChatState::Gone,
            }),
            (true, true, "recall") => Request::Recall(Recall::parse(query)?),
            (false, true, "group_message_status") => {
                Request::MessageStatus(MessageStatus::parse(query)?)
            }
            _ => {
                return Err(Refusal::new(
                    Condition::BadRequest,
                    format!(
                        "unknown group operation '{status}' in an iq {} to {}",
                        if set { "set" } else { "get" },
                        if env.channel.is_some() {
                            "a group"
                        } else {
                            "the service"
                        }
                    ),
                ))
            }
        };
        Ok(request)
    }

    /// Runs the request against the core and writes what is sent back; a refusal becomes an
    /// error reply to the stanza.
    pub fn apply(
        self,
        groups: &mut Groups,
        service: &Service,
        env: &Envelope,
        now: Micros,
    ) -> Handled {
        let outcome = match self {
            Request::CreateGroup(r) => r.apply(groups, service, env, now),
            Request::GetProfile(r) => r.apply(groups, service, env),
            Request::GetParticipants(r) => r.apply(groups, env),
            Request::AddParticipants(r) => r.apply(groups, env, now),
            Request::SetInfo(r) => r.apply(groups, env, now),
            Request::ExitGroup(r) => r.apply(groups, env, now),
            Request::DeleteGroup(r) => r.apply(groups, env, now),
            Request::UserGroups(r) => r.apply(groups, service, env),
            Request::SetRole(r) => r.apply(groups, env, now),
            Request::SetSettings(r) => r.apply(groups, env, now),
            Request::Mute(r) => r.apply(groups, env, now),
            Request::Access(r) => r.apply(groups, env, now),
            Request::Invite(r) => r.apply(groups, env, now),
            Request::Join(r) => r.apply(groups, env, now),
            Request::Decline(r) => r.apply(groups, env, now),
            Request::JoinRequests(r) => r.apply(groups, env),
            Request::Decide(r) => r.apply(groups, env, now),
            Request::Post(r) => Ok(r.apply(groups, env, now)),
            Request::Edit(r) => Ok(r.apply(groups, env)),
            Request::Receipt(r) => Ok(r.apply(groups, env, now)),
            Request::MessageStatus(r) => r.apply(groups, env),
            Request::Recall(r) => r.apply(groups, env),
            Request::Typing(r) => r.apply(groups, env, now),
            Request::History(r) => r.apply(groups, service, env),
            Request::MediaHistory(r) => r.apply(groups, service, env),
            Request::ReplyMessage(r) => Ok(r.apply(groups, service, env)),
        };
        outcome.unwrap_or_else(|refusal| Handled::Reply(env.error(&refusal)))
    }
}

/// Whether an iq's payload is FlyChat's: a group operation or a history query.
pub fn is_flychat_iq(payload: &Element) -> bool {
    payload.name() == "query" && (payload.ns() == NS || payload.ns() == HISTORY_NS)
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
    handle(groups, service, env, query, set, now)
}

/// A message from a FlyChat client: a receipt (`<delivered/>`, `<seen/>` with `group_id`)
/// or a group message (`type='normal'` with `<chatcontent/>`).
pub fn message(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    stanza: &Element,
    now: Micros,
) -> Handled {
    handle(groups, service, env, stanza, false, now)
}

/// Parses, then applies; a request that does not parse is refused with an error reply.
fn handle(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    element: &Element,
    set: bool,
    now: Micros,
) -> Handled {
    match Request::parse(env, element, set) {
        Ok(request) => request.apply(groups, service, env, now),
        Err(refusal) => Handled::Reply(env.error(&refusal)),
    }
}

/// Whether a message is in the FlyChat dialect.
pub fn is_flychat(stanza: &Element, stanza_type: Option<&str>) -> bool {
    is_flychat_message(stanza, stanza_type) || Receipt::find(stanza).is_some()
}

/// What the parsing tests of every capability file build requests from.
#[cfg(test)]
pub(crate) mod testing {
    use jid::BareJid;

    use super::Request;
    use crate::core::{Condition, Outcome};
    use crate::dialect::testing::{element, envelope};
    use crate::dialect::ErrorKind;

    /// The service's address, where groups are created and "my groups" asked.
    pub const SERVICE: &str = "mix.localhost";
    /// A group of the service.
    pub const GROUP: &str = "coven@mix.localhost";

    pub fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    /// The request an iq get (or set) from alice to `to` carrying `query` makes.
    pub fn parse_iq(to: &str, set: bool, query: &str) -> Outcome<Request> {
        let env = envelope(ErrorKind::Iq, "alice@localhost/web", to);
        Request::parse(&env, &element(query), set)
    }

    /// The request a message from alice to `to` makes.
    pub fn parse_message(to: &str, stanza: &str) -> Outcome<Request> {
        let env = envelope(ErrorKind::Message, "alice@localhost/web", to);
        Request::parse(&env, &element(stanza), false)
    }

    /// Why the iq is refused while parsing.
    pub fn refused(to: &str, set: bool, query: &str) -> Condition {
        match parse_iq(to, set, query) {
            Ok(request) => panic!("parsed {query} into {request:?}"),
            Err(refusal) => {
                assert!(!refusal.text.is_empty(), "no text for {query}");
                refusal.condition
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{parse_iq, parse_message, refused, GROUP, SERVICE};
    use super::*;

    #[test]
    fn a_query_without_a_known_status_is_refused_with_a_text() {
        for query in [
            "<query xmlns='jabber:iq:mixgroupchat'/>",
            "<query xmlns='jabber:iq:mixgroupchat' status=''/>",
            "<query xmlns='jabber:iq:mixgroupchat' status='no_such_operation'/>",
            "<query xmlns='jabber:iq:mixgroupchat' status='GET_PARTICIPANTS'/>",
        ] {
            for (to, set) in [
                (GROUP, true),
                (GROUP, false),
                (SERVICE, true),
                (SERVICE, false),
            ] {
                assert_eq!(refused(to, set, query), Condition::BadRequest, "{query}");
            }
        }
        let Err(refusal) = parse_iq(
            SERVICE,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='no_such_operation'/>",
        ) else {
            panic!("parsed")
        };
        assert_eq!(
            refusal.text,
            "unknown group operation 'no_such_operation' in an iq set to the service"
        );
    }

    #[test]
    fn messages_are_receipts_or_posts() {
        let receipt = "<message xmlns='jabber:client' type='chat'>\
                       <delivered xmlns='urn:xmpp:receipts' id='m1' group_id='coven'/></message>";
        assert!(is_flychat(
            &crate::dialect::testing::element(receipt),
            Some("chat")
        ));
        assert!(matches!(
            parse_message(GROUP, receipt),
            Ok(Request::Receipt(_))
        ));
        let post = "<message xmlns='jabber:client' type='normal'>\
                    <chatcontent xmlns='urn:xmpp:content' message_type='text'/><body>x</body>\
                    </message>";
        assert!(matches!(parse_message(GROUP, post), Ok(Request::Post(_))));
        let neither = "<message xmlns='jabber:client' type='normal'><body>x</body></message>";
        assert!(!is_flychat(
            &crate::dialect::testing::element(neither),
            Some("normal")
        ));
        let refusal = parse_message(GROUP, neither).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
    }

    #[test]
    fn flychat_iqs_are_queries_in_either_namespace() {
        let element = crate::dialect::testing::element;
        assert!(is_flychat_iq(&element(
            "<query xmlns='jabber:iq:mixgroupchat'/>"
        )));
        assert!(is_flychat_iq(&element(
            "<query xmlns='jabber:iq:user_activities'/>"
        )));
        assert!(!is_flychat_iq(&element("<query xmlns='urn:xmpp:mam:2'/>")));
        assert!(!is_flychat_iq(&element(
            "<group xmlns='jabber:iq:mixgroupchat'/>"
        )));
    }
}
