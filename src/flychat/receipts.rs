//! Receipts: `<delivered xmlns='urn:xmpp:receipts' id='MSG' group_id='GROUP'/>` and `<seen …/>`
//! from members, recorded per member and message; the author learns when every member has
//! (or has seen) the message. And `status=group_message_status message_id='MSG'`: each
//! member's state (0 sent, 1 delivered, 2 seen) with its times.

use minidom::Element;

use super::{render, NS};
use crate::core::{Condition, Groups, Micros, Outcome, ReceiptKind, Refusal};
use crate::dialect::{find_message, Envelope, ErrorKind, Handled, Service};
use crate::mix::receipts::message_state;
use crate::xml::{ns, Xml};

/// The receipt a message carries, if any: the message id it acknowledges and what it says.
pub fn receipt(stanza: &Element) -> Option<(&str, ReceiptKind)> {
    stanza.children().find_map(|c| {
        let kind = match (c.ns().as_str(), c.name()) {
            (ns::RECEIPTS, "delivered") => ReceiptKind::Delivered,
            (ns::RECEIPTS, "seen") => ReceiptKind::Displayed,
            _ => return None,
        };
        c.attr("group_id")?;
        Some((c.attr("id")?, kind))
    })
}

pub fn record(groups: &mut Groups, service: &Service, env: &Envelope, now: Micros) -> Handled {
    let reply_to = env.reply_to();
    let (Some(name), Some((id, kind))) = (env.channel.as_deref(), receipt(env.stanza)) else {
        return Handled::Nothing;
    };
    let key = groups.channel(name).map(|c| c.key).unwrap_or_default();
    let target = match find_message(service, env, key, id) {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    match groups.receipt(name, &env.sender(), target.as_ref(), kind, now) {
        Ok(facts) => Handled::Changed {
            facts,
            reply: None,
            on_failure: None,
        },
        Err(refusal) => Handled::Reply(reply_to.error(ErrorKind::Message, &refusal)),
    }
}

pub fn status(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    query: &Element,
) -> Outcome<Handled> {
    let reference = query
        .attr("message_id")
        .ok_or_else(|| {
            Refusal::new(
                Condition::BadRequest,
                "group_message_status needs message_id",
            )
        })?
        .to_owned();
    let asked = reference.clone();
    message_state(groups, service, env, &reference, move |_, states| {
        let mut x = Xml::new();
        x.open("query", NS)
            .attr("status", "group_message_status")
            .attr("message_id", &asked)
            .open("group", "");
        for state in states {
            let status = match (state.delivered_at, state.displayed_at) {
                (_, Some(_)) => "2",
                (Some(_), None) => "1",
                (None, None) => "0",
            };
            x.open("item", "")
                .attr("user", state.member.as_str())
                .attr("status", status)
                .attr(
                    "receivetime",
                    &state.delivered_at.map(render::time).unwrap_or_default(),
                )
                .attr(
                    "seentime",
                    &state.displayed_at.map(render::time).unwrap_or_default(),
                )
                .close();
        }
        x.finish()
    })
}
