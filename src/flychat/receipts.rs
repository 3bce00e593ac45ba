//! Receipts: `<delivered xmlns='urn:xmpp:receipts' id='MSG' group_id='GROUP'/>` and `<seen …/>`
//! from members, recorded per member and message; the author learns when every member has
//! (or has seen) the message. And `status=group_message_status message_id='MSG'`: each
//! member's state (0 sent, 1 delivered, 2 seen) with its times.
//!
//! Both name an archived message, which is not in memory: the request is looked up off the
//! rules task (`Handled::lookup`) and finishes, carried by the look-up, once it is found.

use minidom::Element;

use super::render;
use super::wire::NS;
use crate::core::{Groups, MessageRef, Micros, Outcome, Quota, ReceiptKind};
use crate::dialect::proxy::Naming;
use crate::dialect::shapes::{member_states, MemberState};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{ns, Xml};

/// A member's receipt for one message of the group the message is addressed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// The id the message is known by (the SDK's message id, or its archive id).
    pub id: String,
    pub kind: ReceiptKind,
}

impl Receipt {
    /// The receipt a message carries, if any. `group_id` must be there (it tells a group
    /// receipt from a 1:1 one), but the group is the message's address.
    pub fn find(stanza: &Element) -> Option<Receipt> {
        stanza.children().find_map(|c| {
            // Asked of every message routed (`is_flychat`): the name first, then the
            // namespace compared in place (`ns()` would copy it, for each child).
            let kind = match c.name() {
                "delivered" => ReceiptKind::Delivered,
                "seen" => ReceiptKind::Displayed,
                _ => return None,
            };
            if !c.has_ns(ns::RECEIPTS) {
                return None;
            }
            c.attr("group_id")?;
            Some(Receipt {
                id: c.attr("id")?.to_owned(),
                kind,
            })
        })
    }

    pub fn parse(stanza: &Element) -> Outcome<Self> {
        Receipt::find(stanza).ok_or_else(|| {
            bad_request("a receipt is <delivered/> or <seen/> with an id and a group_id")
        })
    }

    /// A receipt is never answered when it counts, only when it is refused; one addressed to
    /// the service names no group and is dropped.
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Handled {
        let Some(name) = env.channel.as_deref() else {
            return Handled::Nothing;
        };
        // Over the sender's quota, refused before the archive is read for it.
        if let Err(refusal) = groups.afford(&env.sender(), Quota::Signals, 1, now) {
            return Handled::Reply(env.error(&refusal));
        }
        // An unknown group looks up nothing, and the core refuses the receipt.
        let key = groups.channel(name).map(|c| c.key).unwrap_or_default();
        let reference = self.id.clone();
        let env = env.clone();
        Handled::lookup(
            &env.clone(),
            key,
            &reference,
            move |groups, _, target, now| self.record(groups, &env, target, now),
        )
    }

    /// Records the receipt against `target`, the message found (if any).
    fn record(
        self,
        groups: &mut Groups,
        env: &Envelope,
        target: Option<MessageRef>,
        now: Micros,
    ) -> Handled {
        match groups.receipt(
            env.channel_name(),
            &env.sender(),
            target.as_ref(),
            self.kind,
            now,
        ) {
            Ok(facts) => Handled::Changed {
                facts,
                reply: None,
                on_failure: None,
            },
            Err(refusal) => Handled::Reply(env.error(&refusal)),
        }
    }
}

/// `status=group_message_status message_id='MSG'` (the SDK's getGroupMsgInfo).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageStatus {
    /// As asked, and repeated in the reply (the SDK matches on it).
    pub message_id: String,
}

impl MessageStatus {
    pub fn parse(query: &Element) -> Outcome<Self> {
        let message_id = query
            .attr("message_id")
            .ok_or_else(|| bad_request("group_message_status needs message_id"))?;
        Ok(MessageStatus {
            message_id: message_id.to_owned(),
        })
    }

    /// Only participants may ask, and they are checked before the archive is read.
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let key = groups
            .participant_of(env.channel_name(), &env.sender())?
            .0
            .key;
        let reference = self.message_id.clone();
        let env = env.clone();
        Ok(Handled::lookup(
            &env.clone(),
            key,
            &reference,
            move |groups, _, found, _| self.read(groups, &env, found),
        ))
    }

    /// Reads every member's state of the message found, off the rules task.
    fn read(self, groups: &Groups, env: &Envelope, found: Option<MessageRef>) -> Handled {
        match groups.members_of(env.channel_name(), &env.sender(), found.as_ref()) {
            Ok((message, members)) => {
                // In a JID-hidden channel a member sees the others' proxy JIDs (XEP-0404).
                let names = match groups.channel(env.channel_name()) {
                    Some(channel) => {
                        Naming::for_viewer(channel, &env.to.to_bare().to_string(), &env.sender())
                    }
                    None => Naming::real(&env.to.to_bare().to_string()),
                };
                member_states(env, message, members, move |_, states| {
                    render_status(&self.message_id, states, &names)
                })
            }
            Err(refusal) => Handled::Reply(env.error(&refusal)),
        }
    }
}

/// Each member's state (0 sent, 1 delivered, 2 seen) with its times.
fn render_status(asked: &str, states: &[MemberState], names: &Naming) -> String {
    let mut x = Xml::new();
    x.open("query", NS)
        .attr("status", "group_message_status")
        .attr("message_id", asked)
        .open("group", "");
    for state in states {
        let status = match (state.delivered_at, state.displayed_at) {
            (_, Some(_)) => "2",
            (Some(_), None) => "1",
            (None, None) => "0",
        };
        // Child elements: the SDK reads each item's children, never its attributes.
        x.open("item", "")
            .leaf("user", "", &names.jid(&state.member))
            .leaf("status", "", status)
            .leaf(
                "receivetime",
                "",
                &state.delivered_at.map(render::time).unwrap_or_default(),
            )
            .leaf(
                "seentime",
                "",
                &state.displayed_at.map(render::time).unwrap_or_default(),
            )
            .close();
    }
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::{element, envelope};
    use crate::dialect::ErrorKind;
    use crate::flychat::testing::{parse_iq, parse_message, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    #[test]
    fn delivered_and_seen_receipts_parse() {
        for (name, kind) in [
            ("delivered", ReceiptKind::Delivered),
            ("seen", ReceiptKind::Displayed),
        ] {
            let request = parse_message(
                GROUP,
                &format!(
                    "<message xmlns='jabber:client' to='coven@mix.localhost' type='chat'>\
                     <{name} xmlns='urn:xmpp:receipts' id='msg-1' group_id='coven'/></message>"
                ),
            );
            let Ok(Request::Receipt(receipt)) = request else {
                panic!("{request:?}")
            };
            assert_eq!(
                receipt,
                Receipt {
                    id: "msg-1".into(),
                    kind
                }
            );
        }
    }

    #[test]
    fn a_receipt_needs_an_id_a_group_and_the_receipts_namespace() {
        for child in [
            "<delivered xmlns='urn:xmpp:receipts' id='msg-1'/>",
            "<seen xmlns='urn:xmpp:receipts' group_id='coven'/>",
            "<received xmlns='urn:xmpp:receipts' id='msg-1' group_id='coven'/>",
            "<delivered xmlns='urn:example' id='msg-1' group_id='coven'/>",
        ] {
            let stanza = element(&format!(
                "<message xmlns='jabber:client' type='chat'>{child}</message>"
            ));
            assert_eq!(Receipt::find(&stanza), None, "{child}");
            let refusal = Receipt::parse(&stanza).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest, "{child}");
        }
    }

    #[test]
    fn a_receipt_to_the_service_is_dropped_unanswered() {
        let stanza = "<message xmlns='jabber:client' to='mix.localhost' type='chat'>\
                      <seen xmlns='urn:xmpp:receipts' id='msg-1' group_id='coven'/></message>";
        let Ok(Request::Receipt(receipt)) = parse_message(SERVICE, stanza) else {
            panic!("not a receipt")
        };
        let env = envelope(ErrorKind::Message, "bob@localhost/web", SERVICE);
        let mut groups = crate::core::testing::groups();
        assert!(matches!(
            receipt.apply(&mut groups, &env, 0),
            Handled::Nothing
        ));
    }

    #[test]
    fn group_message_status_reads_the_message_id() {
        let request = parse_iq(
            GROUP,
            false,
            "<query xmlns='jabber:iq:mixgroupchat' status='group_message_status' \
             message_id='msg-1'/>",
        );
        let Ok(Request::MessageStatus(status)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            status,
            MessageStatus {
                message_id: "msg-1".into()
            }
        );
    }

    #[test]
    fn group_message_status_needs_a_message_id_and_a_get_to_a_group() {
        let without = "<query xmlns='jabber:iq:mixgroupchat' status='group_message_status'/>";
        assert_eq!(refused(GROUP, false, without), Condition::BadRequest);
        let with = "<query xmlns='jabber:iq:mixgroupchat' status='group_message_status' \
                    message_id='msg-1'/>";
        assert_eq!(refused(GROUP, true, with), Condition::BadRequest);
        assert_eq!(refused(SERVICE, false, with), Condition::BadRequest);
    }

    #[test]
    fn group_message_status_of_a_stranger_is_refused_before_any_look_up() {
        let Ok(Request::MessageStatus(status)) = parse_iq(
            GROUP,
            false,
            "<query xmlns='jabber:iq:mixgroupchat' status='group_message_status' \
             message_id='msg-1'/>",
        ) else {
            panic!("not a status request")
        };
        let env = envelope(ErrorKind::Iq, "mallory@localhost/web", GROUP);
        let groups = crate::core::testing::coven();
        let refusal = status.apply(&groups, &env).err().expect("refused");
        assert_eq!(refusal.condition, Condition::Forbidden);
    }
}
