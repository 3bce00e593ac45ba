//! Invitations and join requests for MIX clients. Inviting is XEP-0407's `<invite>` (the
//! result carries the `<invitation>`; mixd also sends it to the invitee itself, so that the
//! invitee learns of it whatever the inviter's client does); the invitee accepts by joining
//! and may `<decline/>`. Requests are mixd's, in `urn:mixd:admin:0`: `<request/>` asks,
//! `<decide jid='…' approve='true|false'/>` answers (the first answer stands), and
//! `<pending/>` lists what waits, for owners and admins.

use minidom::Element;

use crate::core::{Dialect, Groups, Micros, Outcome};
use crate::dialect::{bool_attr, jid_attr, shapes, Envelope, Handled, Service};
use crate::xml::{ns, Xml};

pub fn invite(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let invitee = payload
        .get_child("invitee", ns::MIX_MISC)
        .map(|i| i.text())
        .ok_or_else(|| super::bad_request("<invite/> needs an <invitee/>"))?;
    let invitee = jid::BareJid::new(invitee.trim())
        .map_err(|_| super::bad_request(format!("'{invitee}' is not a bare JID")))?;
    let name = env.channel_name();
    let (invitations, facts) = groups.invite(name, &env.sender(), &[invitee], now)?;
    let mut x = Xml::new();
    x.open("invite", ns::MIX_MISC);
    for invitation in &invitations {
        shapes::invitation(&mut x, &service.channel_jid(name), invitation);
    }
    x.close();
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}

pub fn decline(groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
    let facts = groups.decline_invitation(env.channel_name(), &env.sender(), now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn request(groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
    let facts = groups.request_join(env.channel_name(), &env.sender(), Dialect::Mix, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn decide(
    groups: &mut Groups,
    env: &Envelope,
    payload: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let requester = jid_attr(payload, "jid")?;
    let approve = bool_attr(payload, "approve")?
        .ok_or_else(|| super::bad_request("<decide/> needs approve='true' or 'false'"))?;
    let facts = groups.decide(env.channel_name(), &env.sender(), &requester, approve, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn pending(groups: &Groups, env: &Envelope) -> Outcome<Handled> {
    let pending = groups.pending_of(env.channel_name(), &env.sender())?;
    let mut x = Xml::new();
    x.open("pending", ns::MIXD_ADMIN);
    shapes::pending(&mut x, pending);
    x.close();
    Ok(env.iq_result(Some(&x.finish())))
}
