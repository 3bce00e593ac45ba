//! Invitations and join requests for MIX clients. Inviting is XEP-0407's `<invite>` (the
//! result carries the `<invitation>`; mixd also sends it to the invitee itself, so that the
//! invitee learns of it whatever the inviter's client does); the invitee accepts by joining
//! and may `<decline/>`. Requests are mixd's, in `urn:mixd:admin:0`: `<request/>` asks,
//! `<decide jid='…' approve='true|false'/>` answers (the first answer stands), and
//! `<pending/>` lists what waits, for owners and admins.

use jid::BareJid;
use minidom::Element;

use crate::core::{Dialect, Groups, Micros, Outcome};
use crate::dialect::{
    bad_request, bool_attr, jid_attr, shapes, Decision, Envelope, Handled, Service,
};
use crate::xml::{ns, Xml};

/// An XEP-0407 invitation of one user. XEP-0407 §3 has the inviter ask the channel for an
/// invitation with an iq (whatever its type, as clients differ), naming the invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub invitee: BareJid,
}

impl Invite {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let invitee = payload
            .get_child("invitee", ns::MIX_MISC)
            .map(|i| i.text())
            .ok_or_else(|| bad_request("<invite/> needs an <invitee/>"))?;
        let invitee = BareJid::new(invitee.trim())
            .map_err(|_| bad_request(format!("'{invitee}' is not a bare JID")))?;
        Ok(Invite { invitee })
    }

    pub fn apply(
        self,
        groups: &mut Groups,
        service: &Service,
        env: &Envelope,
        now: Micros,
    ) -> Outcome<Handled> {
        let name = env.channel_name();
        let (invitations, facts) = groups.invite(name, &env.sender(), &[self.invitee], now)?;
        let mut x = Xml::new();
        x.open("invite", ns::MIX_MISC);
        for invitation in &invitations {
            let inviter = invitation.by.to_string();
            let channel_jid = service.channel_jid(name);
            shapes::invitation(&mut x, &service.ids, &channel_jid, invitation, &inviter);
        }
        x.close();
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

/// The invitee turns its invitation down; the sender is the invitee, so nothing is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline;

impl Decline {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(Decline)
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.decline_invitation(env.channel_name(), &env.sender(), now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// A request to join a channel whose policy asks for one; the sender asks for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestJoin;

impl RequestJoin {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(RequestJoin)
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.request_join(env.channel_name(), &env.sender(), Dialect::Mix, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// An owner's or admin's `<decide/>` on a join request: `approve` must be said, since a
/// missing answer would otherwise be taken for one or the other.
pub fn decide(payload: &Element) -> Outcome<Decision> {
    let requester = jid_attr(payload, "jid")?;
    let approve = bool_attr(payload, "approve")?
        .ok_or_else(|| bad_request("<decide/> needs approve='true' or 'false'"))?;
    Ok(Decision { requester, approve })
}

/// The invitations and requests that wait, for owners and admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending;

impl Pending {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(Pending)
    }

    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let pending = groups.pending_of(env.channel_name(), &env.sender())?;
        let mut x = Xml::new();
        x.open("pending", ns::MIXD_ADMIN);
        shapes::pending(&mut x, pending);
        x.close();
        Ok(env.iq_result(Some(&x.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn an_invite_names_the_invitee() {
        let payload = element(
            "<invite xmlns='urn:xmpp:mix:misc:0'><invitee> crone@example.org </invitee></invite>",
        );
        assert_eq!(
            Invite::parse(&payload).unwrap(),
            Invite {
                invitee: BareJid::new("crone@example.org").unwrap()
            }
        );
    }

    #[test]
    fn an_invite_without_a_valid_invitee_is_a_bad_request() {
        for (xml, text) in [
            (
                "<invite xmlns='urn:xmpp:mix:misc:0'/>",
                "<invite/> needs an <invitee/>",
            ),
            (
                "<invite xmlns='urn:xmpp:mix:misc:0'><invitee>a@b/c</invitee></invite>",
                "'a@b/c' is not a bare JID",
            ),
        ] {
            let refusal = Invite::parse(&element(xml)).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, text);
        }
    }

    #[test]
    fn a_decision_names_the_requester_and_the_answer() {
        let payload =
            element("<decide xmlns='urn:mixd:admin:0' jid='crone@example.org' approve='0'/>");
        assert_eq!(
            decide(&payload).unwrap(),
            Decision {
                requester: BareJid::new("crone@example.org").unwrap(),
                approve: false
            }
        );
    }

    #[test]
    fn a_decision_without_a_jid_or_an_answer_is_a_bad_request() {
        for (xml, text) in [
            (
                "<decide xmlns='urn:mixd:admin:0' jid='crone@example.org'/>",
                "<decide/> needs approve='true' or 'false'",
            ),
            (
                "<decide xmlns='urn:mixd:admin:0' jid='crone@example.org' approve='maybe'/>",
                "approve='maybe' is not a boolean (true or false)",
            ),
            (
                "<decide xmlns='urn:mixd:admin:0' approve='true'/>",
                "<decide/> needs the jid attribute",
            ),
        ] {
            let refusal = decide(&element(xml)).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, text);
        }
    }

    #[test]
    fn decline_request_and_pending_carry_nothing() {
        let decline = element("<decline xmlns='urn:mixd:admin:0'/>");
        assert_eq!(Decline::parse(&decline).unwrap(), Decline);
        let request = element("<request xmlns='urn:mixd:admin:0'/>");
        assert_eq!(RequestJoin::parse(&request).unwrap(), RequestJoin);
        let pending = element("<pending xmlns='urn:mixd:admin:0'/>");
        assert_eq!(Pending::parse(&pending).unwrap(), Pending);
    }
}
