//! The receipt state of a message, for any participant: an iq get
//! `<message-state xmlns='urn:mixd:receipts:0' id='…'/>` answered with every member (the
//! participants other than the author), when each got and saw it, and the counts.

use minidom::Element;

use super::{bad_request, channel_name, find_message, Envelope, ErrorKind, Handled, Service};
use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::mix::render::timestamp;
use crate::xml::{ns, Xml};

pub fn state(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
) -> Outcome<Handled> {
    let reference = payload
        .attr("id")
        .ok_or_else(|| bad_request("<message-state/> needs the id of the message"))?;
    let name = channel_name(env);
    let (channel, _) = groups.participant_of(name, &env.sender())?;
    let message = match find_message(service, env, channel.key, reference) {
        Ok(Some(message)) => message,
        Ok(None) => {
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("no message '{reference}' in this channel"),
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
        let mut x = Xml::new();
        let of = |member: &jid::BareJid| receipts.iter().find(|r| &r.member == member);
        let delivered = members
            .iter()
            .filter(|m| of(m).is_some_and(|r| r.delivered_at.is_some()))
            .count();
        let displayed = members
            .iter()
            .filter(|m| of(m).is_some_and(|r| r.displayed_at.is_some()))
            .count();
        x.open("message-state", ns::MIXD_RECEIPTS)
            .attr("id", &message.id.to_string())
            .attr("members", &members.len().to_string())
            .attr("delivered", &delivered.to_string())
            .attr("displayed", &displayed.to_string());
        for member in &members {
            let receipt = of(member);
            x.open("member", "")
                .attr("jid", member.as_str())
                .attr_opt(
                    "delivered",
                    receipt
                        .and_then(|r| r.delivered_at)
                        .map(timestamp)
                        .as_deref(),
                )
                .attr_opt(
                    "displayed",
                    receipt
                        .and_then(|r| r.displayed_at)
                        .map(timestamp)
                        .as_deref(),
                )
                .close();
        }
        vec![reply_to.iq_result(Some(&x.finish()))]
    })))
}
