//! A group's settings: its join policy (open, invitation, request), whether the whole group
//! is muted, its own member limit, and whether it hides its participants' JIDs (XEP-0404).
//! Owners change the policy, the limit and JID visibility; owners and admins mute and unmute
//! the group.

use jid::BareJid;

use super::{Condition, Fact, Groups, JoinPolicy, Micros, Outcome, Refusal, Role, Settings};

/// The settings a change sets; `None` keeps the current value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SettingsChange {
    pub policy: Option<JoinPolicy>,
    pub muted: Option<bool>,
    /// `Some(None)` goes back to the service's limit.
    pub max_members: Option<Option<usize>>,
    /// XEP-0404 'JID Hidden' (`true`) or 'JID Visible' (`false`).
    pub jids_hidden: Option<bool>,
}

impl Groups {
    pub fn change_settings(
        &mut self,
        name: &str,
        actor: &BareJid,
        change: SettingsChange,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        let needed = if change.policy.is_some()
            || change.max_members.is_some()
            || change.jids_hidden.is_some()
        {
            Role::Owner
        } else {
            Role::Admin
        };
        Self::at_least(channel, actor, needed, "change these settings")?;
        if let Some(Some(limit)) = change.max_members {
            let service = self.rules.max_members;
            if limit == 0 || limit > service {
                return Err(Refusal::new(
                    Condition::NotAcceptable,
                    format!("the member limit must be between 1 and {service}"),
                ));
            }
            if limit < channel.participants.len() {
                return Err(Refusal::new(
                    Condition::NotAcceptable,
                    format!(
                        "'{name}' has {} participants, more than {limit}",
                        channel.participants.len()
                    ),
                ));
            }
        }
        let current = channel.settings();
        let settings = Settings {
            policy: change.policy.unwrap_or(current.policy),
            muted: change.muted.unwrap_or(current.muted),
            max_members: change.max_members.unwrap_or(current.max_members),
            jids_hidden: change.jids_hidden.unwrap_or(current.jids_hidden),
        };
        if &settings == current {
            return Ok(Vec::new());
        }
        let fact = Fact::SettingsChanged {
            key: channel.key,
            settings,
            by: actor.clone(),
        };
        Ok(self.apply_noted(vec![fact], now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn owners_set_policy_and_limit_admins_mute() {
        let mut g = coven();
        let policy = SettingsChange {
            policy: Some(JoinPolicy::Invite),
            ..Default::default()
        };
        let mute = SettingsChange {
            muted: Some(true),
            ..Default::default()
        };
        let bob = jid("bob@localhost");
        let err = g
            .change_settings("coven", &bob, mute.clone(), 5)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.make_admin("coven", &jid("alice@localhost"), &bob, 5)
            .unwrap();
        g.change_settings("coven", &bob, mute.clone(), 6).unwrap();
        assert!(g
            .change_settings("coven", &bob, mute, 6)
            .unwrap()
            .is_empty());
        let err = g
            .change_settings("coven", &bob, policy.clone(), 7)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.change_settings("coven", &jid("alice@localhost"), policy, 7)
            .unwrap();
        let settings = g.channel("coven").unwrap().settings();
        assert_eq!(
            (settings.policy, settings.muted),
            (JoinPolicy::Invite, true)
        );
    }

    #[test]
    fn only_owners_hide_jids_and_then_only_owners_and_admins_see_them() {
        let mut g = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let hide = SettingsChange {
            jids_hidden: Some(true),
            ..Default::default()
        };
        let channel = g.channel("coven").unwrap();
        assert!(channel.shows_jids_to(&bob));
        g.make_admin("coven", &alice, &bob, 5).unwrap();
        let err = g
            .change_settings("coven", &bob, hide.clone(), 6)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let facts = g.change_settings("coven", &alice, hide.clone(), 7).unwrap();
        assert!(matches!(
            &facts[0],
            Fact::SettingsChanged { settings, .. } if settings.jids_hidden
        ));
        assert!(g
            .change_settings("coven", &alice, hide, 8)
            .unwrap()
            .is_empty());
        let channel = g.channel("coven").unwrap();
        assert!(channel.settings().jids_hidden);
        assert!(channel.shows_jids_to(&alice) && channel.shows_jids_to(&bob));
        let carol = jid("carol@localhost");
        g.join("coven", &carol, None, crate::core::Nodes::ALL, 9)
            .unwrap();
        let channel = g.channel("coven").unwrap();
        assert!(!channel.shows_jids_to(&carol));
        // A newcomer without a nick is not named after its JID there.
        let newcomer = channel.participant(&carol).unwrap();
        assert_eq!(newcomer.nick, newcomer.id.to_string());
    }

    #[test]
    fn limits_below_the_participants_or_above_the_service_are_refused() {
        let mut g = coven();
        for limit in [0, 1, 10_001] {
            let change = SettingsChange {
                max_members: Some(Some(limit)),
                ..Default::default()
            };
            let err = g
                .change_settings("coven", &jid("alice@localhost"), change, 5)
                .unwrap_err();
            assert_eq!(err.condition, Condition::NotAcceptable, "{limit}");
        }
        let change = SettingsChange {
            max_members: Some(Some(2)),
            ..Default::default()
        };
        g.change_settings("coven", &jid("alice@localhost"), change, 5)
            .unwrap();
        let err = g
            .join(
                "coven",
                &jid("carol@localhost"),
                None,
                crate::core::Nodes::ALL,
                6,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
    }
}
