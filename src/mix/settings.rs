//! Membership settings and mutes for MIX clients, in `urn:mixd:admin:0`:
//! `<settings policy='open|invite|request' muted='true|false' max-members='N|default'/>`
//! (each attribute optional) and `<mute jid='…' until='XEP-0082 time'/>` (without `until`:
//! unmute). Subscribers of the configuration node see the result.

use minidom::Element;

use super::render;
use crate::core::{Groups, JoinPolicy, Micros, Outcome, SettingsChange};
use crate::dialect::{bad_request, bool_attr, jid_attr, Envelope, Handled};

pub fn settings(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let policy = payload
        .attr("policy")
        .map(|p| {
            JoinPolicy::from_name(p).ok_or_else(|| {
                bad_request(format!("policy='{p}' is not one of open, invite, request"))
            })
        })
        .transpose()?;
    let max_members = payload
        .attr("max-members")
        .map(|m| match m {
            "default" => Ok(None),
            m => m
                .parse()
                .map(Some)
                .map_err(|_| bad_request(format!("max-members='{m}' is not a number"))),
        })
        .transpose()?;
    let change = SettingsChange {
        policy,
        muted: bool_attr(payload, "muted")?,
        max_members,
    };
    let facts = groups.change_settings(env.channel_name(), &env.sender(), change, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn mute(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let target = jid_attr(payload, "jid")?;
    let until = match payload.attr("until") {
        Some(until) => render::parse_timestamp("until", until)?,
        None => 0,
    };
    let facts = groups.mute(env.channel_name(), &env.sender(), &target, until, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}
