//! The standard MIX dialect (XEP-0369 core:1, XEP-0403 presence, XEP-0313 archive, and the
//! XEPs riding on them): turns stanzas into core commands and queries, and core results into
//! MIX replies and events. `router` has checked the envelope. Each stanza is first parsed
//! into a typed request — [`Request`] for iqs (routed by what the stanza is addressed to, the
//! service or a channel, and by its payload), `message::Message` for messages,
//! `presence::Presence` for presence — by the capability's own file, which reads only the
//! stanza; then the request is applied against the rules and answered. A malformed stanza
//! is refused before any state is looked at.

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
mod private;
pub mod receipts;
pub mod render;
mod roles;
mod setnick;
mod settings;
mod subscription;

use minidom::Element;

use crate::core::{Groups, Micros, Outcome, Refusal};
use crate::dialect::{bad_request, AccessChange, Decision, Envelope, Handled, Service};
use crate::xml::node;
use crate::xml::ns;

/// An iq get (`set` false) or set to the service or a channel, with its one `payload`:
/// parsed into a [`Request`], then applied.
pub fn iq(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
    set: bool,
    now: Micros,
) -> Handled {
    match Request::parse(env, payload, set) {
        Ok(request) => request.apply(groups, service, env, now),
        Err(rejection) => rejection.reply(env),
    }
}

/// A message to the service, a channel or a participant's proxy JID: parsed into a
/// [`private::Private`] or a [`message::Message`], then applied.
pub fn message(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    stanza: &Element,
    message_type: Option<&str>,
    now: Micros,
) -> Handled {
    if env.channel.is_none() {
        return Rejection::Unhandled("messages go to a channel, not to the service".into())
            .reply(env);
    }
    match private::Private::parse(env, stanza, message_type) {
        Ok(Some(private)) => {
            return private
                .apply(groups, service, env)
                .unwrap_or_else(|refusal| Rejection::Refused(refusal).reply(env))
        }
        Ok(None) => {}
        Err(refusal) => return Rejection::Refused(refusal).reply(env),
    }
    match message::Message::parse(env, stanza, message_type) {
        Ok(message) => message.apply(groups, env, now),
        Err(refusal) => Rejection::Refused(refusal).reply(env),
    }
}

/// Presence to the service or a channel: a [`presence::Presence`] if MIX-Presence cares
/// about it, else nothing.
pub fn presence(groups: &mut Groups, env: &Envelope, presence_type: Option<&str>) -> Handled {
    match presence::Presence::parse(env, presence_type) {
        Some(presence) => presence.apply(groups, env),
        None => Handled::Nothing,
    }
}

/// A message of type `error` (a delivery that bounced).
pub fn bounced(groups: &mut Groups, stanza: &Element) -> Handled {
    match message::Bounced::parse(stanza) {
        Some(bounced) => bounced.apply(groups),
        None => Handled::Nothing,
    }
}

/// Why a stanza became no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// It is malformed: answered with the refusal's condition and text.
    Refused(Refusal),
    /// No part of mixd handles it: `service-unavailable` (RFC 6120 §8.4), with this text.
    Unhandled(String),
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Rejection::Refused(refusal)
    }
}

impl Rejection {
    fn reply(self, env: &Envelope) -> Handled {
        Handled::Reply(match self {
            Rejection::Refused(refusal) => env.error(&refusal),
            Rejection::Unhandled(text) => env.reply_to().service_unavailable(env.kind, &text),
        })
    }
}

/// An iq request to the service or a channel, parsed from its payload, each kind by its
/// capability's file.
#[derive(Debug, Clone)]
pub enum Request {
    DiscoInfo(disco::Info),
    DiscoItems(disco::Items),
    Ping(disco::Ping),
    Create(create::Create),
    Destroy(destroy::Destroy),
    Join(join::Join),
    Leave(leave::Leave),
    SetNick(setnick::SetNick),
    UpdateSubscription(subscription::UpdateSubscription),
    Items(items::Items),
    PublishInfo(info::Publish),
    PublishConfig(config::Publish),
    Access(AccessChange),
    Invite(membership::Invite),
    Decline(membership::Decline),
    RequestJoin(membership::RequestJoin),
    Decide(Decision),
    Pending(membership::Pending),
    Role(roles::SetRole),
    Transfer(roles::Transfer),
    Remove(roles::Remove),
    Settings(settings::Settings),
    Mute(settings::Mute),
    MyGroups(groups::MyGroups),
    Mam(mam::Query),
    MamFields(mam::Fields),
    Moderate(moderate::Moderate),
    MessageState(receipts::MessageState),
    Clear(clear::Clear),
}

impl Request {
    /// Routes by what the iq is (`set` or get), what it is addressed to (the service or a
    /// channel), and its payload's name and namespace, then parses the payload. Nothing here
    /// reads the channels: a request is what the stanza says, checked against the rules only
    /// when it is applied.
    pub fn parse(env: &Envelope, payload: &Element, set: bool) -> Result<Request, Rejection> {
        let on_channel = env.channel.is_some();
        let name = payload.name();
        let payload_ns = payload.ns();
        let p = payload;
        Ok(match (set, on_channel, name, payload_ns.as_str()) {
            (false, _, "query", ns::DISCO_INFO) => Request::DiscoInfo(disco::Info::parse(p)?),
            (false, _, "query", ns::DISCO_ITEMS) => Request::DiscoItems(disco::Items::parse(p)?),
            (false, _, "ping", ns::PING) => Request::Ping(disco::Ping::parse(p)?),
            (true, false, "create", ns::MIX_CORE) => Request::Create(create::Create::parse(p)?),
            (true, false, "destroy", ns::MIX_CORE) => Request::Destroy(destroy::Destroy::parse(p)?),
            (true, true, "join", ns::MIX_CORE) => Request::Join(join::Join::parse(p)?),
            (true, true, "leave", ns::MIX_CORE) => Request::Leave(leave::Leave::parse(p)?),
            (true, true, "setnick", ns::MIX_CORE) => Request::SetNick(setnick::SetNick::parse(p)?),
            (true, true, "update-subscription", ns::MIX_CORE) => {
                Request::UpdateSubscription(subscription::UpdateSubscription::parse(p)?)
            }
            (false, true, "pubsub", ns::PUBSUB) => Request::Items(items::Items::parse(env, p)?),
            (true, true, "pubsub", ns::PUBSUB) => pubsub_set(p)?,
            (_, true, "invite", ns::MIX_MISC) => Request::Invite(membership::Invite::parse(p)?),
            (true, true, "decline", ns::MIXD_ADMIN) => {
                Request::Decline(membership::Decline::parse(p)?)
            }
            (true, true, "request", ns::MIXD_ADMIN) => {
                Request::RequestJoin(membership::RequestJoin::parse(p)?)
            }
            (true, true, "decide", ns::MIXD_ADMIN) => Request::Decide(membership::decide(p)?),
            (false, true, "pending", ns::MIXD_ADMIN) => {
                Request::Pending(membership::Pending::parse(p)?)
            }
            (true, true, "role", ns::MIXD_ADMIN) => Request::Role(roles::SetRole::parse(p)?),
            (true, true, "transfer", ns::MIXD_ADMIN) => {
                Request::Transfer(roles::Transfer::parse(p)?)
            }
            (true, true, "remove", ns::MIXD_ADMIN) => Request::Remove(roles::Remove::parse(p)?),
            (true, true, "settings", ns::MIXD_ADMIN) => {
                Request::Settings(settings::Settings::parse(p)?)
            }
            (true, true, "mute", ns::MIXD_ADMIN) => Request::Mute(settings::Mute::parse(p)?),
            (false, false, "groups", ns::MIXD_ADMIN) => {
                Request::MyGroups(groups::MyGroups::parse(p)?)
            }
            (true, true, "query", ns::MAM) => Request::Mam(mam::Query::parse(p)?),
            (false, true, "query", ns::MAM) => Request::MamFields(mam::Fields::parse(p)?),
            (true, true, "moderate", ns::MODERATE) => {
                Request::Moderate(moderate::Moderate::parse(p)?)
            }
            (false, true, "message-state", ns::MIXD_RECEIPTS) => {
                Request::MessageState(receipts::MessageState::parse(p)?)
            }
            (true, true, "clear", ns::MIXD_HISTORY) => Request::Clear(clear::Clear::parse(p)?),
            _ => {
                let target = if on_channel {
                    "a channel"
                } else {
                    "the service"
                };
                return Err(Rejection::Unhandled(format!(
                    "{target} does not handle <{name} xmlns='{payload_ns}'/> in an iq {}",
                    if set { "set" } else { "get" }
                )));
            }
        })
    }

    /// Runs the request against the rules and writes its reply; a refusal becomes an error.
    pub fn apply(
        self,
        groups: &mut Groups,
        service: &Service,
        env: &Envelope,
        now: Micros,
    ) -> Handled {
        let result = match self {
            Request::DiscoInfo(r) => r.apply(groups, env),
            Request::DiscoItems(r) => r.apply(groups, service, env),
            Request::Ping(r) => r.apply(env),
            Request::Create(r) => r.apply(groups, env, now),
            Request::Destroy(r) => r.apply(groups, env, now),
            Request::Join(r) => r.apply(groups, env, now),
            Request::Leave(r) => r.apply(groups, env, now),
            Request::SetNick(r) => r.apply(groups, env),
            Request::UpdateSubscription(r) => r.apply(groups, env),
            Request::Items(r) => r.apply(groups, env),
            Request::PublishInfo(r) => r.apply(groups, env, now),
            Request::PublishConfig(r) => r.apply(groups, env, now),
            Request::Access(r) => r.apply(groups, env, now),
            Request::Invite(r) => r.apply(groups, service, env, now),
            Request::Decline(r) => r.apply(groups, env, now),
            Request::RequestJoin(r) => r.apply(groups, env, now),
            Request::Decide(r) => r.apply(groups, env, now),
            Request::Pending(r) => r.apply(groups, env),
            Request::Role(r) => r.apply(groups, env, now),
            Request::Transfer(r) => r.apply(groups, env, now),
            Request::Remove(r) => r.apply(groups, env, now),
            Request::Settings(r) => r.apply(groups, env, now),
            Request::Mute(r) => r.apply(groups, env, now),
            Request::MyGroups(r) => r.apply(groups, service, env),
            Request::Mam(r) => r.apply(groups, service, env),
            Request::MamFields(r) => r.apply(groups, env),
            Request::Moderate(r) => r.apply(groups, env),
            Request::MessageState(r) => r.apply(groups, env),
            Request::Clear(r) => r.apply(groups, service, env),
        };
        result.unwrap_or_else(|refusal| Handled::Reply(env.error(&refusal)))
    }
}

/// A pubsub set on a channel: a publish to the info node (XEP-0369) or the configuration node
/// (XEP-0406), or a publish or retract on the allowed or banned node (XEP-0406); clients
/// change nothing else through pubsub.
fn pubsub_set(payload: &Element) -> Outcome<Request> {
    let request = payload
        .children()
        .find(|c| c.ns() == ns::PUBSUB && matches!(c.name(), "publish" | "retract"))
        .ok_or_else(|| {
            bad_request("a pubsub set on a channel must be a <publish/> or <retract/>")
        })?;
    let node = request.attr("node").unwrap_or_default();
    let publish = request.name() == "publish";
    match (access::list_of(node), publish) {
        (Some(list), _) => Ok(Request::Access(access::change(list, request)?)),
        (None, true) if node == node::INFO => {
            Ok(Request::PublishInfo(info::Publish::parse(request)?))
        }
        (None, true) if node == node::CONFIG => {
            Ok(Request::PublishConfig(config::Publish::parse(request)?))
        }
        _ => Err(bad_request(format!(
            "clients may publish to the info and configuration nodes and publish or retract on the allowed and banned nodes, not <{}/> on '{node}'",
            request.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::{element, envelope};
    use crate::dialect::ErrorKind;

    const CHANNEL: &str = "coven@mix.example.org";
    const SERVICE: &str = "mix.example.org";

    fn parse(to: &str, set: bool, payload: &str) -> Result<Request, Rejection> {
        let env = envelope(ErrorKind::Iq, "hag@example.org/broom", to);
        Request::parse(&env, &element(payload), set)
    }

    fn refusal(to: &str, set: bool, payload: &str) -> Refusal {
        match parse(to, set, payload) {
            Err(Rejection::Refused(refusal)) => refusal,
            other => panic!("not refused: {payload}: {other:?}"),
        }
    }

    #[test]
    fn each_payload_routes_to_its_request() {
        let pubsub = ns::PUBSUB;
        let cases: &[(&str, bool, String, &str)] = &[
            (SERVICE, false, format!("<query xmlns='{}'/>", ns::DISCO_INFO), "DiscoInfo"),
            (CHANNEL, false, format!("<query xmlns='{}'/>", ns::DISCO_ITEMS), "DiscoItems"),
            (SERVICE, false, "<ping xmlns='urn:xmpp:ping'/>".into(), "Ping"),
            (SERVICE, true, "<create xmlns='urn:xmpp:mix:core:1' channel='c'/>".into(), "Create"),
            (SERVICE, true, "<destroy xmlns='urn:xmpp:mix:core:1' channel='c'/>".into(), "Destroy"),
            (CHANNEL, true, "<join xmlns='urn:xmpp:mix:core:1'/>".into(), "Join"),
            (CHANNEL, true, "<leave xmlns='urn:xmpp:mix:core:1'/>".into(), "Leave"),
            (CHANNEL, true, "<setnick xmlns='urn:xmpp:mix:core:1'><nick>n</nick></setnick>".into(), "SetNick"),
            (CHANNEL, true, "<update-subscription xmlns='urn:xmpp:mix:core:1'/>".into(), "UpdateSubscription"),
            (CHANNEL, false, format!("<pubsub xmlns='{pubsub}'><items node='{}'/></pubsub>", node::INFO), "Items"),
            (
                CHANNEL,
                true,
                format!(
                    "<pubsub xmlns='{pubsub}'><publish node='{}'><item><x xmlns='jabber:x:data' type='submit'/></item></publish></pubsub>",
                    node::INFO
                ),
                "PublishInfo",
            ),
            (
                CHANNEL,
                true,
                format!(
                    "<pubsub xmlns='{pubsub}'><publish node='{}'><item><x xmlns='jabber:x:data' type='submit'/></item></publish></pubsub>",
                    node::CONFIG
                ),
                "PublishConfig",
            ),
            (
                CHANNEL,
                true,
                format!("<pubsub xmlns='{pubsub}'><retract node='{}'><item id='x@y'/></retract></pubsub>", node::BANNED),
                "Access",
            ),
            (CHANNEL, true, "<invite xmlns='urn:xmpp:mix:misc:0'><invitee>x@y</invitee></invite>".into(), "Invite"),
            (CHANNEL, false, "<invite xmlns='urn:xmpp:mix:misc:0'><invitee>x@y</invitee></invite>".into(), "Invite"),
            (CHANNEL, true, "<decline xmlns='urn:mixd:admin:0'/>".into(), "Decline"),
            (CHANNEL, true, "<request xmlns='urn:mixd:admin:0'/>".into(), "RequestJoin"),
            (CHANNEL, true, "<decide xmlns='urn:mixd:admin:0' jid='x@y' approve='1'/>".into(), "Decide"),
            (CHANNEL, false, "<pending xmlns='urn:mixd:admin:0'/>".into(), "Pending"),
            (CHANNEL, true, "<role xmlns='urn:mixd:admin:0' jid='x@y' role='admin'/>".into(), "Role"),
            (CHANNEL, true, "<transfer xmlns='urn:mixd:admin:0' jid='x@y'/>".into(), "Transfer"),
            (CHANNEL, true, "<remove xmlns='urn:mixd:admin:0' jid='x@y'/>".into(), "Remove"),
            (CHANNEL, true, "<settings xmlns='urn:mixd:admin:0'/>".into(), "Settings"),
            (CHANNEL, true, "<mute xmlns='urn:mixd:admin:0' jid='x@y'/>".into(), "Mute"),
            (SERVICE, false, "<groups xmlns='urn:mixd:admin:0'/>".into(), "MyGroups"),
            (CHANNEL, true, "<query xmlns='urn:xmpp:mam:2'/>".into(), "Mam"),
            (CHANNEL, false, "<query xmlns='urn:xmpp:mam:2'/>".into(), "MamFields"),
            (
                CHANNEL,
                true,
                "<moderate xmlns='urn:xmpp:message-moderate:1' id='1'><retract xmlns='urn:xmpp:message-retract:1'/></moderate>".into(),
                "Moderate",
            ),
            (CHANNEL, false, "<message-state xmlns='urn:mixd:receipts:0' id='1'/>".into(), "MessageState"),
            (CHANNEL, true, "<clear xmlns='urn:mixd:history:0'/>".into(), "Clear"),
        ];
        for (to, set, payload, variant) in cases {
            let request = parse(to, *set, payload)
                .unwrap_or_else(|e| panic!("{payload} was rejected: {e:?}"));
            let debug = format!("{request:?}");
            assert!(
                debug.starts_with(&format!("{variant}(")),
                "{payload} became {debug}"
            );
        }
    }

    #[test]
    fn the_parsed_value_is_the_files_own() {
        let Ok(Request::Join(join)) = parse(
            CHANNEL,
            true,
            "<join xmlns='urn:xmpp:mix:core:1'><nick>hag</nick></join>",
        ) else {
            panic!("not a join");
        };
        assert_eq!(join.nick.as_deref(), Some("hag"));
        let Ok(Request::Access(change)) = parse(
            CHANNEL,
            true,
            &format!(
                "<pubsub xmlns='{}'><publish node='{}'><item id='x@y'/></publish></pubsub>",
                ns::PUBSUB,
                node::ALLOWED
            ),
        ) else {
            panic!("not an access change");
        };
        assert_eq!(change.list, crate::core::AccessList::Allowed);
        assert!(change.present);
    }

    #[test]
    fn what_nothing_handles_is_unavailable_with_a_text() {
        for (to, set, payload, text) in [
            (
                SERVICE,
                true,
                "<join xmlns='urn:xmpp:mix:core:1'/>",
                "the service does not handle <join xmlns='urn:xmpp:mix:core:1'/> in an iq set",
            ),
            (
                CHANNEL,
                false,
                "<leave xmlns='urn:xmpp:mix:core:1'/>",
                "a channel does not handle <leave xmlns='urn:xmpp:mix:core:1'/> in an iq get",
            ),
            (
                CHANNEL,
                true,
                "<create xmlns='urn:xmpp:mix:core:1' channel='c'/>",
                "a channel does not handle <create xmlns='urn:xmpp:mix:core:1'/> in an iq set",
            ),
            (
                CHANNEL,
                false,
                "<groups xmlns='urn:mixd:admin:0'/>",
                "a channel does not handle <groups xmlns='urn:mixd:admin:0'/> in an iq get",
            ),
            (
                SERVICE,
                true,
                "<ping xmlns='urn:xmpp:ping'/>",
                "the service does not handle <ping xmlns='urn:xmpp:ping'/> in an iq set",
            ),
            (
                CHANNEL,
                true,
                "<decline xmlns='urn:example'/>",
                "a channel does not handle <decline xmlns='urn:example'/> in an iq set",
            ),
            (
                CHANNEL,
                false,
                "<request xmlns='urn:mixd:admin:0'/>",
                "a channel does not handle <request xmlns='urn:mixd:admin:0'/> in an iq get",
            ),
            (
                SERVICE,
                false,
                "<pending xmlns='urn:mixd:admin:0'/>",
                "the service does not handle <pending xmlns='urn:mixd:admin:0'/> in an iq get",
            ),
        ] {
            assert_eq!(
                parse(to, set, payload).unwrap_err(),
                Rejection::Unhandled(text.into()),
                "{payload}"
            );
        }
    }

    #[test]
    fn a_malformed_payload_is_refused_by_its_file() {
        let refused = refusal(
            CHANNEL,
            true,
            "<join xmlns='urn:xmpp:mix:core:1'><subscribe/></join>",
        );
        assert_eq!(refused.condition, Condition::BadRequest);
        assert_eq!(refused.text, "a <subscribe/> needs a node");
        let refused = refusal(
            CHANNEL,
            false,
            &format!(
                "<pubsub xmlns='{}'><items node='urn:example'/></pubsub>",
                ns::PUBSUB
            ),
        );
        assert_eq!(refused.condition, Condition::ItemNotFound);
    }

    #[test]
    fn a_pubsub_set_is_a_publish_to_info_or_config_or_a_change_of_an_access_list() {
        for inner in [
            String::new(),
            format!("<subscribe node='{}'/>", node::INFO),
            format!("<retract node='{}'><item id='x'/></retract>", node::INFO),
            format!("<publish node='{}'><item id='x'/></publish>", node::CONFIG),
            format!("<retract node='{}'><item id='x'/></retract>", node::CONFIG),
        ] {
            let payload = format!("<pubsub xmlns='{}'>{inner}</pubsub>", ns::PUBSUB);
            let refused = refusal(CHANNEL, true, &payload);
            assert_eq!(refused.condition, Condition::BadRequest, "{payload}");
        }
        let refused = refusal(
            CHANNEL,
            true,
            &format!(
                "<pubsub xmlns='{}'><publish node='{}'><item/></publish></pubsub>",
                ns::PUBSUB,
                node::BANNED
            ),
        );
        assert_eq!(
            refused.text,
            "the request needs an <item id='JID or domain'/>"
        );
    }

    #[test]
    fn rejections_answer_in_the_stanzas_kind() {
        let env = envelope(ErrorKind::Message, "hag@example.org/broom", SERVICE);
        let Handled::Reply(reply) = Rejection::Unhandled("nope".into()).reply(&env) else {
            panic!("no reply");
        };
        assert!(reply.starts_with("<message"), "{reply}");
        assert!(reply.contains("service-unavailable"), "{reply}");
        assert!(reply.contains(">nope<"), "{reply}");
        let env = envelope(ErrorKind::Iq, "hag@example.org/broom", CHANNEL);
        let refusal = bad_request("bad");
        let Handled::Reply(reply) = Rejection::from(refusal).reply(&env) else {
            panic!("no reply");
        };
        assert!(reply.starts_with("<iq"), "{reply}");
        assert!(reply.contains("bad-request"), "{reply}");
    }
}
