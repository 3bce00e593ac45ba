//! Invitations and join requests in the FlyChat dialect (mixd's, docs/protocol.md):
//!
//! - `invite_participants`: `<participants><participant>jid</participant>…</participants>`,
//!   each invited (the invitee gets the XEP-0407 `<invitation>` message);
//! - `join_group`: the sender joins if it may (open group, or invited), else asks (a group
//!   that takes requests); the result's `state` says `joined` or `requested`;
//! - `decline_invitation`;
//! - `get_join_requests`: what waits (owners and admins), as `<pending><requested/><invited/>`;
//! - `decide_join_request`: `approve='1|0'` and the requester as `<participant>`.

use minidom::Element;

use super::group::{named_participant, participant_jids};
use super::NS;
use crate::core::{Dialect, Groups, Micros, Outcome};
use crate::dialect::shapes;
use crate::dialect::{bad_request, bool_attr, Envelope, Handled};
use crate::xml::Xml;

pub fn invite(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let invitees = participant_jids(query)?;
    if invitees.is_empty() {
        return Err(bad_request("invite_participants names no <participant/>"));
    }
    let (_, facts) = groups.invite(env.channel_name(), &env.sender(), &invitees, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn join(groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
    let (joined, facts) =
        groups.join_or_ask(env.channel_name(), &env.sender(), Dialect::FlyChat, now)?;
    let state = if joined { "joined" } else { "requested" };
    let mut x = Xml::new();
    x.open("query", NS)
        .attr("status", "join_group")
        .attr("state", state)
        .close();
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}

pub fn decline(groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
    let facts = groups.decline_invitation(env.channel_name(), &env.sender(), now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn requests(groups: &Groups, env: &Envelope) -> Outcome<Handled> {
    let pending = groups.pending_of(env.channel_name(), &env.sender())?;
    let mut x = Xml::new();
    x.open("query", NS)
        .attr("status", "get_join_requests")
        .open("pending", "");
    shapes::pending(&mut x, pending);
    x.close().close();
    Ok(env.iq_result(Some(&x.finish())))
}

pub fn decide(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let requester = named_participant(query)?;
    let approve = bool_attr(query, "approve")?
        .ok_or_else(|| bad_request("decide_join_request needs approve='1' or '0'"))?;
    let facts = groups.decide(env.channel_name(), &env.sender(), &requester, approve, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}
