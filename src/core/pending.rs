//! Invitations and join requests. An owner or admin invites a user (XEP-0407): the invitee
//! is told, receives nothing from the group, and gets in by joining, which an invite-only
//! group allows it alone. In a group that takes requests, a user asks; every owner and admin
//! is told, the first decision stands (a later one is refused with `conflict`), and the
//! requester learns the outcome.

use jid::BareJid;

use super::{
    Condition, Dialect, Fact, Groups, JoinPolicy, Micros, Nodes, Outcome, Pending, PendingKind,
    Refusal, Role,
};

impl Groups {
    /// Invites `invitees`, all or none; returns the invitations (an existing one again,
    /// without a fact).
    pub fn invite(
        &mut self,
        name: &str,
        actor: &BareJid,
        invitees: &[BareJid],
        now: Micros,
    ) -> Outcome<(Vec<Pending>, Vec<Fact>)> {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Admin, "invite")?;
        if invitees.len() > super::MAX_ADDED_PER_REQUEST {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!(
                    "at most {} users may be invited at once",
                    super::MAX_ADDED_PER_REQUEST
                ),
            ));
        }
        let mut invitations = Vec::new();
        let mut facts = Vec::new();
        for invitee in invitees {
            if invitee.node().is_none() {
                return Err(Refusal::new(
                    Condition::BadRequest,
                    format!("{invitee} is not a user's JID"),
                ));
            }
            if channel.participant(invitee).is_some() {
                return Err(Refusal::new(
                    Condition::Conflict,
                    format!("{invitee} is already a participant of '{name}'"),
                ));
            }
            Self::admitted(channel, invitee)?;
            let existing = channel
                .pending(invitee)
                .filter(|p| p.kind == PendingKind::Invited);
            let invitation = existing.cloned().unwrap_or_else(|| Pending {
                jid: invitee.clone(),
                kind: PendingKind::Invited,
                by: actor.clone(),
                at: now,
                dialect: Dialect::Mix,
            });
            if existing.is_none() && !invitations.contains(&invitation) {
                facts.push(Fact::PendingAdded {
                    key: channel.key,
                    pending: invitation.clone(),
                });
            }
            invitations.push(invitation);
        }
        self.charge(actor, super::Quota::Adds, facts.len(), now)?;
        Ok((invitations, self.apply_noted(facts, now)))
    }

    /// `actor`, whose client speaks `dialect`, asks to join a group that takes requests.
    pub fn request_join(
        &mut self,
        name: &str,
        actor: &BareJid,
        dialect: Dialect,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        if channel.participant(actor).is_some() {
            return Err(Refusal::new(
                Condition::Conflict,
                format!("you are already a participant of '{name}'"),
            ));
        }
        Self::admitted(channel, actor)?;
        match channel.settings().policy {
            JoinPolicy::Request => {}
            JoinPolicy::Open => {
                return Err(Refusal::new(
                    Condition::NotAllowed,
                    format!("'{name}' is open: join it directly"),
                ))
            }
            JoinPolicy::Invite => {
                return Err(Refusal::new(
                    Condition::Forbidden,
                    format!("'{name}' is joined by invitation only"),
                ))
            }
        }
        if channel.pending(actor).is_some() {
            return Ok(Vec::new());
        }
        let key = channel.key;
        self.charge(actor, super::Quota::Joins, 1, now)?;
        let fact = Fact::PendingAdded {
            key,
            pending: Pending {
                jid: actor.clone(),
                kind: PendingKind::Requested,
                by: actor.clone(),
                at: now,
                dialect,
            },
        };
        Ok(self.apply_noted(vec![fact], now))
    }

    /// An owner or admin approves or declines `requester`'s request. Approved, the requester
    /// is in at once, subscribed to every node, in the dialect it asked in.
    pub fn decide(
        &mut self,
        name: &str,
        actor: &BareJid,
        requester: &BareJid,
        approve: bool,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Admin, "decide join requests")?;
        let Some(pending) = channel
            .pending(requester)
            .filter(|p| p.kind == PendingKind::Requested)
            .cloned()
        else {
            if channel.participant(requester).is_some() {
                return Err(Refusal::new(
                    Condition::Conflict,
                    format!("the request of {requester} was already approved"),
                ));
            }
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("no pending request from {requester} (it may have been declined)"),
            ));
        };
        let dialect = pending.dialect;
        let resolved = Fact::PendingResolved {
            key: channel.key,
            pending,
            by: actor.clone(),
            accepted: approve,
        };
        if !approve {
            return Ok(self.apply_noted(vec![resolved], now));
        }
        Self::admitted(channel, requester)?;
        self.room_for(channel, 1)?;
        let key = channel.key;
        let participant = self.newcomer(key, requester, None, Nodes::ALL, dialect, now);
        let joined = Fact::Joined {
            key,
            participant,
            by: actor.clone(),
            settles: true,
            again: false,
        };
        Ok(self.apply_noted(vec![joined, resolved], now))
    }

    /// What waits in channel `name`: for its owners and admins to see.
    pub fn pending_of(&self, name: &str, actor: &BareJid) -> Outcome<&[Pending]> {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Admin, "list what waits")?;
        Ok(&channel.administration().pending)
    }

    /// The invitee turns its invitation down (XEP-0407's decline).
    pub fn decline_invitation(&mut self, name: &str, actor: &BareJid, now: Micros) -> Outcome {
        let channel = self.existing(name)?;
        let Some(pending) = channel
            .pending(actor)
            .filter(|p| p.kind == PendingKind::Invited)
            .cloned()
        else {
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("you have no invitation to '{name}'"),
            ));
        };
        let fact = Fact::PendingResolved {
            key: channel.key,
            pending,
            by: actor.clone(),
            accepted: false,
        };
        Ok(self.apply_noted(vec![fact], now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::settings::SettingsChange;

    fn with_policy(policy: JoinPolicy) -> Groups {
        let mut g = coven();
        let change = SettingsChange {
            policy: Some(policy),
            ..Default::default()
        };
        g.change_settings("coven", &jid("alice@localhost"), change, 4)
            .unwrap();
        g
    }

    #[test]
    fn invite_only_groups_take_the_invited_alone() {
        let mut g = with_policy(JoinPolicy::Invite);
        let (alice, carol) = (jid("alice@localhost"), jid("carol@localhost"));
        let err = g.join("coven", &carol, None, Nodes::ALL, 5).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let err = g
            .invite(
                "coven",
                &jid("bob@localhost"),
                std::slice::from_ref(&carol),
                5,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let (invitations, facts) = g
            .invite("coven", &alice, std::slice::from_ref(&carol), 5)
            .unwrap();
        assert_eq!(invitations[0].by, alice);
        assert_eq!(facts.len(), 2);
        assert!(g
            .invite("coven", &alice, std::slice::from_ref(&carol), 6)
            .unwrap()
            .1
            .is_empty());
        let err = g
            .invite(
                "coven",
                &alice,
                &[jid("dave@localhost"), jid("bob@localhost")],
                6,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::Conflict);
        assert!(g
            .channel("coven")
            .unwrap()
            .pending(&jid("dave@localhost"))
            .is_none());
        g.join("coven", &carol, None, Nodes::ALL, 7).unwrap();
        assert!(g
            .channel("coven")
            .unwrap()
            .administration()
            .pending
            .is_empty());
    }

    #[test]
    fn the_first_decision_on_a_request_stands() {
        let mut g = with_policy(JoinPolicy::Request);
        let (alice, bob, carol) = (
            jid("alice@localhost"),
            jid("bob@localhost"),
            jid("carol@localhost"),
        );
        g.make_admin("coven", &alice, &bob, 5).unwrap();
        let err = g.join("coven", &carol, None, Nodes::ALL, 5).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.request_join("coven", &carol, Dialect::FlyChat, 6)
            .unwrap();
        g.decide("coven", &bob, &carol, true, 7).unwrap();
        let err = g.decide("coven", &alice, &carol, false, 8).unwrap_err();
        assert_eq!(err.condition, Condition::Conflict);
        let approved = g.channel("coven").unwrap().participant(&carol).unwrap();
        assert_eq!(
            approved.dialect,
            Dialect::FlyChat,
            "in the dialect it asked in"
        );

        let dave = jid("dave@localhost");
        g.request_join("coven", &dave, Dialect::Mix, 9).unwrap();
        g.decide("coven", &alice, &dave, false, 10).unwrap();
        let err = g.decide("coven", &bob, &dave, true, 11).unwrap_err();
        assert_eq!(err.condition, Condition::ItemNotFound);
        assert!(g.channel("coven").unwrap().participant(&dave).is_none());
    }

    #[test]
    fn join_or_ask_asks_only_those_the_policy_makes_ask() {
        let mut g = with_policy(JoinPolicy::Request);
        let (alice, bob, carol) = (
            jid("alice@localhost"),
            jid("bob@localhost"),
            jid("carol@localhost"),
        );
        // A participant joins again without asking; a newcomer asks; the invited join.
        assert!(g.join_or_ask("coven", &bob, Dialect::FlyChat, 5).unwrap().0);
        g.leave("coven", &bob, 6).unwrap();
        let (joined, _) = g.join_or_ask("coven", &carol, Dialect::FlyChat, 7).unwrap();
        assert!(!joined);
        assert!(g.channel("coven").unwrap().pending(&carol).is_some());
        g.invite("coven", &alice, std::slice::from_ref(&bob), 8)
            .unwrap();
        assert!(g.join_or_ask("coven", &bob, Dialect::FlyChat, 9).unwrap().0);
    }

    #[test]
    fn requests_only_where_the_policy_takes_them() {
        let mut g = coven();
        let err = g
            .request_join("coven", &jid("carol@localhost"), Dialect::Mix, 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::NotAllowed);
    }
}
