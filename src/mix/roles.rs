//! Roles and removal for MIX clients, in `urn:mixd:admin:0` (XEP-0406 leaves these
//! operations to the implementation): `<role jid='…' role='owner|admin|member'/>` makes
//! owners and admins or revokes them, `<transfer jid='…'/>` hands the ownership over,
//! `<remove jid='…'/>` takes a participant out. The core decides who may.

use jid::BareJid;
use minidom::Element;

use crate::core::{Groups, Micros, Outcome, Role};
use crate::dialect::{bad_request, jid_attr, Envelope, Handled};

/// A role given to (or taken from) a participant; `member` revokes admin or owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRole {
    pub target: BareJid,
    pub role: Role,
}

impl SetRole {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let target = jid_attr(payload, "jid")?;
        let name = payload.attr("role").unwrap_or_default();
        let role = Role::from_name(name).ok_or_else(|| {
            bad_request(format!("role='{name}' is not one of owner, admin, member"))
        })?;
        Ok(SetRole { target, role })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.set_role(
            env.channel_name(),
            &env.sender(),
            &self.target,
            self.role,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// The ownership handed to another participant: the sender stops being an owner, in one
/// step, so that a channel is never left without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub target: BareJid,
}

impl Transfer {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(Transfer {
            target: jid_attr(payload, "jid")?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.transfer(env.channel_name(), &env.sender(), &self.target, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// A participant taken out by an owner or admin (it may join again unless banned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remove {
    pub target: BareJid,
}

impl Remove {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(Remove {
            target: jid_attr(payload, "jid")?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.remove(env.channel_name(), &env.sender(), &self.target, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn a_role_names_the_participant_and_the_role() {
        for (name, role) in [
            ("owner", Role::Owner),
            ("admin", Role::Admin),
            ("member", Role::Member),
        ] {
            let payload = element(&format!(
                "<role xmlns='urn:mixd:admin:0' jid='crone@example.org' role='{name}'/>"
            ));
            assert_eq!(
                SetRole::parse(&payload).unwrap(),
                SetRole {
                    target: jid("crone@example.org"),
                    role
                }
            );
        }
    }

    #[test]
    fn a_role_without_a_jid_or_a_known_role_is_a_bad_request() {
        for (xml, text) in [
            (
                "<role xmlns='urn:mixd:admin:0' jid='crone@example.org' role='king'/>",
                "role='king' is not one of owner, admin, member",
            ),
            (
                "<role xmlns='urn:mixd:admin:0' jid='crone@example.org'/>",
                "role='' is not one of owner, admin, member",
            ),
            (
                "<role xmlns='urn:mixd:admin:0' role='admin'/>",
                "<role/> needs the jid attribute",
            ),
        ] {
            let refusal = SetRole::parse(&element(xml)).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, text);
        }
    }

    #[test]
    fn transfer_and_remove_name_a_participant() {
        let transfer = element("<transfer xmlns='urn:mixd:admin:0' jid=' crone@example.org'/>");
        assert_eq!(
            Transfer::parse(&transfer).unwrap(),
            Transfer {
                target: jid("crone@example.org")
            }
        );
        let remove = element("<remove xmlns='urn:mixd:admin:0' jid='maiden@example.org'/>");
        assert_eq!(
            Remove::parse(&remove).unwrap(),
            Remove {
                target: jid("maiden@example.org")
            }
        );
    }

    #[test]
    fn transfer_and_remove_need_a_bare_jid() {
        let transfer = element("<transfer xmlns='urn:mixd:admin:0'/>");
        let refusal = Transfer::parse(&transfer).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "<transfer/> needs the jid attribute");
        let remove = element("<remove xmlns='urn:mixd:admin:0' jid='not a jid@@'/>");
        let refusal = Remove::parse(&remove).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "'not a jid@@' is not a bare JID");
    }
}
