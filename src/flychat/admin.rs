//! Roles and group administration in the FlyChat dialect. `make_admin` is the SDK's; the
//! rest are mixd's (docs/protocol.md, "FlyChat administration"), shaped like it: a
//! `<query xmlns='jabber:iq:mixgroupchat' status='…'>` naming its `<participant>`, with
//! settings as attributes of the query.
//!
//! - `revoke_admin`, `transfer_ownership`: the participant named;
//! - `set_group_settings`: `policy='open|invite|request'`, `muted='0|1'`,
//!   `max_members='N|default'`;
//! - `mute_participant`: `until` in microseconds since the epoch (16 digits, as the SDK's
//!   times), `0` to unmute;
//! - `set_access`: `list='banned|allowed'`, `entry='<bare JID or domain>'`, `present='1|0'`.

use jid::BareJid;
use minidom::Element;

use super::group::named_participant;
use crate::core::{AccessList, Groups, JoinPolicy, Micros, Outcome, Role, SettingsChange};
use crate::dialect::{bad_request, bool_attr, Envelope, Handled};

/// `make_admin`, `revoke_admin` (to member) and `transfer_ownership`.
pub fn role(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    role: Role,
    now: Micros,
) -> Outcome<Handled> {
    let target = named_participant(query)?;
    let name = env.channel_name();
    let facts = if role == Role::Owner {
        groups.transfer(name, &env.sender(), &target, now)?
    } else {
        groups.set_role(name, &env.sender(), &target, role, now)?
    };
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn settings(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let policy = match query.attr("policy") {
        Some(p) => Some(JoinPolicy::from_name(p).ok_or_else(|| {
            bad_request(format!("policy='{p}' is not one of open, invite, request"))
        })?),
        None => None,
    };
    let max_members = match query.attr("max_members") {
        Some("default") => Some(None),
        Some(m) => Some(Some(m.parse().map_err(|_| {
            bad_request(format!("max_members='{m}' is not a number"))
        })?)),
        None => None,
    };
    let change = SettingsChange {
        policy,
        muted: bool_attr(query, "muted")?,
        max_members,
    };
    let facts = groups.change_settings(env.channel_name(), &env.sender(), change, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn mute(groups: &mut Groups, env: &Envelope, query: &Element, now: Micros) -> Outcome<Handled> {
    let target = named_participant(query)?;
    let until = query.attr("until").unwrap_or_default();
    let until: Micros = until
        .parse()
        .map_err(|_| bad_request(format!("until='{until}' is not a time in microseconds")))?;
    let facts = groups.mute(env.channel_name(), &env.sender(), &target, until, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn access(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let list = match query.attr("list") {
        Some("banned") => AccessList::Banned,
        Some("allowed") => AccessList::Allowed,
        other => {
            return Err(bad_request(format!(
                "list={other:?} is not 'banned' or 'allowed'"
            )))
        }
    };
    let entry = query.attr("entry").unwrap_or_default();
    let entry = BareJid::new(entry.trim())
        .map_err(|_| bad_request(format!("entry='{entry}' is not a bare JID or a domain")))?;
    let present = bool_attr(query, "present")?.unwrap_or(true);
    let facts = groups.set_access(
        env.channel_name(),
        &env.sender(),
        list,
        &entry,
        present,
        now,
    )?;
    Ok(Handled::iq_changed(env, facts, None))
}
