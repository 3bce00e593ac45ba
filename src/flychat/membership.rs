//! Invitations and join requests in the FlyChat dialect (mixd's, docs/protocol.md):
//!
//! - `invite_participants`: `<participants><participant>jid</participant>…</participants>`,
//!   each invited (the invitee gets the XEP-0407 `<invitation>` message);
//! - `join_group`: the sender joins if it may (open group, or invited), else asks (a group
//!   that takes requests); the result's `state` says `joined` or `requested`;
//! - `decline_invitation`;
//! - `get_join_requests`: what waits (owners and admins), as `<pending><requested/><invited/>`;
//! - `decide_join_request`: `approve='1|0'` and the requester as `<participant>`.
//!
//! Joining, declining and listing read nothing but the address and the sender.

use jid::BareJid;
use minidom::Element;

use super::wire::{named_participant, participant_jids, NS};
use crate::core::{Dialect, Groups, Micros, Outcome};
use crate::dialect::shapes;
use crate::dialect::{bad_request, bool_attr, Decision, Envelope, Handled};
use crate::xml::Xml;

/// `invite_participants`: the users invited, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Invite {
    pub invitees: Vec<BareJid>,
}

impl Invite {
    /// An invitation of nobody is a mistake on the client's side, refused like an empty add.
    pub fn parse(query: &Element) -> Outcome<Self> {
        let invitees = participant_jids(query)?;
        if invitees.is_empty() {
            return Err(bad_request("invite_participants names no <participant/>"));
        }
        Ok(Invite { invitees })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let (_, facts) = groups.invite(env.channel_name(), &env.sender(), &self.invitees, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `join_group`: whether it joins or asks is the core's call (`Groups::join_or_ask`), against
/// the group's policy and the sender's invitation.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinGroup;

impl JoinGroup {
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
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
}

/// `decline_invitation`: the sender's own invitation to the group.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclineInvitation;

impl DeclineInvitation {
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.decline_invitation(env.channel_name(), &env.sender(), now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `get_join_requests`: the invitations and requests that wait (owners and admins).
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequests;

impl JoinRequests {
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let pending = groups.pending_of(env.channel_name(), &env.sender())?;
        let mut x = Xml::new();
        x.open("query", NS)
            .attr("status", "get_join_requests")
            .open("pending", "");
        shapes::pending(&mut x, pending);
        x.close().close();
        Ok(env.iq_result(Some(&x.finish())))
    }
}

/// `decide_join_request`: one requester, let in or turned away. There is no default: a
/// decision left out is not a refusal.
pub fn decide_join_request(query: &Element) -> Outcome<Decision> {
    let requester = named_participant(query)?;
    let approve = bool_attr(query, "approve")?
        .ok_or_else(|| bad_request("decide_join_request needs approve='1' or '0'"))?;
    Ok(Decision { requester, approve })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::flychat::testing::{jid, parse_iq, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    #[test]
    fn invite_reads_every_invitee() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='invite_participants'><participants>\
             <participant>dave@localhost</participant><participant>erin@example.org</participant>\
             </participants></query>",
        );
        let Ok(Request::Invite(invite)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            invite,
            Invite {
                invitees: vec![jid("dave@localhost"), jid("erin@example.org")]
            }
        );
    }

    #[test]
    fn invite_needs_users() {
        for query in [
            "<query xmlns='jabber:iq:mixgroupchat' status='invite_participants'/>",
            "<query xmlns='jabber:iq:mixgroupchat' status='invite_participants'><participants>\
             <participant>localhost</participant></participants></query>",
        ] {
            assert_eq!(
                refused(GROUP, true, query),
                Condition::BadRequest,
                "{query}"
            );
        }
    }

    #[test]
    fn join_decline_and_requests_go_to_a_group() {
        let join = "<query xmlns='jabber:iq:mixgroupchat' status='join_group'/>";
        let request = parse_iq(GROUP, true, join);
        assert!(
            matches!(request, Ok(Request::Join(JoinGroup))),
            "{request:?}"
        );
        assert_eq!(refused(SERVICE, true, join), Condition::BadRequest);
        assert_eq!(refused(GROUP, false, join), Condition::BadRequest);

        let decline = "<query xmlns='jabber:iq:mixgroupchat' status='decline_invitation'/>";
        let request = parse_iq(GROUP, true, decline);
        assert!(
            matches!(request, Ok(Request::Decline(DeclineInvitation))),
            "{request:?}"
        );
        assert_eq!(refused(SERVICE, true, decline), Condition::BadRequest);
        assert_eq!(refused(GROUP, false, decline), Condition::BadRequest);

        let pending = "<query xmlns='jabber:iq:mixgroupchat' status='get_join_requests'/>";
        let request = parse_iq(GROUP, false, pending);
        assert!(
            matches!(request, Ok(Request::JoinRequests(JoinRequests))),
            "{request:?}"
        );
        assert_eq!(refused(GROUP, true, pending), Condition::BadRequest);
        assert_eq!(refused(SERVICE, false, pending), Condition::BadRequest);
    }

    #[test]
    fn decide_reads_the_requester_and_the_decision() {
        for (approve, expected) in [("1", true), ("true", true), ("0", false), ("false", false)] {
            let request = parse_iq(
                GROUP,
                true,
                &format!(
                    "<query xmlns='jabber:iq:mixgroupchat' status='decide_join_request' \
                     approve='{approve}'><participant>dave@localhost</participant></query>"
                ),
            );
            let Ok(Request::Decide(decide)) = request else {
                panic!("{request:?}")
            };
            assert_eq!(
                decide,
                Decision {
                    requester: jid("dave@localhost"),
                    approve: expected
                }
            );
        }
    }

    #[test]
    fn decide_needs_a_decision_and_a_requester() {
        for query in [
            "<query xmlns='jabber:iq:mixgroupchat' status='decide_join_request'>\
             <participant>dave@localhost</participant></query>",
            "<query xmlns='jabber:iq:mixgroupchat' status='decide_join_request' approve='yes'>\
             <participant>dave@localhost</participant></query>",
            "<query xmlns='jabber:iq:mixgroupchat' status='decide_join_request' approve='1'/>",
        ] {
            assert_eq!(
                refused(GROUP, true, query),
                Condition::BadRequest,
                "{query}"
            );
        }
    }
}
