//! Receipts: `<delivered xmlns='urn:xmpp:receipts' id='MSG' group_id='GROUP'/>` and `<seen …/>`
//! from members, recorded per member and message; the author learns when every member has
//! (or has seen) the message. And `status=group_message_status message_id='MSG'`: each
//! member's state (0 sent, 1 delivered, 2 seen) with its times.

use minidom::Element;

use super::{render, NS};
use crate::core::{Groups, Outcome, ReceiptKind};
use crate::dialect::shapes::{member_states, MemberState};
use crate::dialect::{bad_request, Envelope, Handled};
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

pub fn record(groups: &mut Groups, env: &Envelope, stanza: &Element) -> Handled {
    let (Some(name), Some((id, kind))) = (env.channel.as_deref(), receipt(stanza)) else {
        return Handled::Nothing;
    };
    let key = groups.channel(name).map(|c| c.key).unwrap_or_default();
    let env = env.clone();
    Handled::lookup(
        &env.clone(),
        key,
        id,
        move |groups, _, target, now| match groups.receipt(
            env.channel_name(),
            &env.sender(),
            target.as_ref(),
            kind,
            now,
        ) {
            Ok(facts) => Handled::Changed {
                facts,
                reply: None,
                on_failure: None,
            },
            Err(refusal) => Handled::Reply(env.error(&refusal)),
        },
    )
}

pub fn status(groups: &Groups, env: &Envelope, query: &Element) -> Outcome<Handled> {
    let reference = query
        .attr("message_id")
        .ok_or_else(|| bad_request("group_message_status needs message_id"))?
        .to_owned();
    let key = groups
        .participant_of(env.channel_name(), &env.sender())?
        .0
        .key;
    let env = env.clone();
    Ok(Handled::lookup(
        &env.clone(),
        key,
        &reference.clone(),
        move |groups, _, found, _| match groups.members_of(
            env.channel_name(),
            &env.sender(),
            found.as_ref(),
        ) {
            Ok((message, members)) => {
                member_states(env.reply_to(), message, members, move |_, states| {
                    render_status(&reference, states)
                })
            }
            Err(refusal) => Handled::Reply(env.error(&refusal)),
        },
    ))
}

/// Each member's state (0 sent, 1 delivered, 2 seen) with its times.
fn render_status(asked: &str, states: &[MemberState]) -> String {
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
}
