//! The receipt state of a message, for any participant: an iq get
//! `<message-state xmlns='urn:mixd:receipts:0' id='…'/>` answered with every member (the
//! participants other than the author), when each got and saw it, and the counts.
//! [`message_state`] is the read both dialects answer from.

use minidom::Element;

use crate::core::{Condition, Groups, MessageRef, Micros, Outcome, Refusal};
use crate::dialect::{
    bad_request, channel_name, find_message, Envelope, ErrorKind, Handled, Service,
};
use crate::mix::render::timestamp;
use crate::xml::{ns, Xml};

/// One member's state of a message: when it got it and when it saw it.
pub struct MemberState {
    pub member: jid::BareJid,
    pub delivered_at: Option<Micros>,
    pub displayed_at: Option<Micros>,
}

/// Looks up the message `reference` of the requester's channel and reads, off the service
/// loop, every member's state of it; `render` writes the reply's payload.
pub fn message_state(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    reference: &str,
    render: impl FnOnce(&MessageRef, &[MemberState]) -> String + Send + 'static,
) -> Outcome<Handled> {
    let (channel, _) = groups.participant_of(channel_name(env), &env.sender())?;
    let message = match find_message(service, env, channel.key, reference) {
        Ok(Some(message)) => message,
        Ok(None) => {
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("no message '{reference}' here"),
            ))
        }
        Err(failed) => return Ok(failed),
    };
    let members: Vec<_> = channel
        .participants
        .iter()
        .filter(|p| p.jid != message.sender)
        .map(|p| p.jid.clone())
        .collect();
    let reply_to = env.reply_to();
    Ok(Handled::Read(Box::new(move |reader| {
        let receipts = match reader.receipts(message.id) {
            Ok(receipts) => receipts,
            Err(error) => {
                tracing::error!(%error, "reading receipts failed");
                return vec![reply_to.storage_failed(ErrorKind::Iq)];
            }
        };
        let states: Vec<MemberState> = members
            .into_iter()
            .map(|member| {
                let receipt = receipts.iter().find(|r| r.member == member);
                MemberState {
                    delivered_at: receipt.and_then(|r| r.delivered_at),
                    displayed_at: receipt.and_then(|r| r.displayed_at),
                    member,
                }
            })
            .collect();
        vec![reply_to.iq_result(Some(&render(&message, &states)))]
    })))
}

pub fn state(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
) -> Outcome<Handled> {
    let reference = payload
        .attr("id")
        .ok_or_else(|| bad_request("<message-state/> needs the id of the message"))?;
    message_state(groups, service, env, reference, |message, states| {
        let delivered = states.iter().filter(|s| s.delivered_at.is_some()).count();
        let displayed = states.iter().filter(|s| s.displayed_at.is_some()).count();
        let mut x = Xml::new();
        x.open("message-state", ns::MIXD_RECEIPTS)
            .attr("id", &message.id.to_string())
            .attr("members", &states.len().to_string())
            .attr("delivered", &delivered.to_string())
            .attr("displayed", &displayed.to_string());
        for state in states {
            x.open("member", "")
                .attr("jid", state.member.as_str())
                .attr_opt("delivered", state.delivered_at.map(timestamp).as_deref())
                .attr_opt("displayed", state.displayed_at.map(timestamp).as_deref())
                .close();
        }
        x.finish()
    })
}
