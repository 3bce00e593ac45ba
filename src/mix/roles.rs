//! Roles and removal for MIX clients, in `urn:mixd:admin:0` (XEP-0406 leaves these
//! operations to the implementation): `<role jid='…' role='owner|admin|member'/>` makes
//! owners and admins or revokes them, `<transfer jid='…'/>` hands the ownership over,
//! `<remove jid='…'/>` takes a participant out. The core decides who may.

use jid::BareJid;
use minidom::Element;

use crate::core::{Groups, Micros, Outcome, Role};
use crate::dialect::{bad_request, jid_attr, Envelope, Handled};

pub fn role(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let target = jid_attr(payload, "jid")?;
    let name = payload.attr("role").unwrap_or_default();
    let role = Role::from_name(name)
        .ok_or_else(|| bad_request(format!("role='{name}' is not one of owner, admin, member")))?;
    let facts = groups.set_role(env.channel_name(), &env.sender(), &target, role, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

/// `<transfer/>` and `<remove/>`: `command` on the participant that `jid` names.
pub fn targeted(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
    command: fn(&mut Groups, &str, &BareJid, &BareJid, Micros) -> Outcome,
) -> Outcome<Handled> {
    let target = jid_attr(payload, "jid")?;
    let facts = command(groups, env.channel_name(), &env.sender(), &target, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}
