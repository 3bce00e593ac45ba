//! A group's membership settings: its join policy (open, invitation, request), whether the
//! whole group is muted, and its own member limit. Owners change the policy and the limit;
//! owners and admins mute and unmute the group.

use jid::BareJid;

use super::{Condition, Fact, Groups, JoinPolicy, Micros, Outcome, Refusal, Role, Settings};

/// The settings a change sets; `None` keeps the current value.
#[derive(Debug, Default, Clone)]
pub struct SettingsChange {
    pub policy: Option<JoinPolicy>,
    pub muted: Option<bool>,
    /// `Some(None)` goes back to the service's limit.
    pub max_members: Option<Option<usize>>,
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
        let needed = if change.policy.is_some() || change.max_members.is_some() {
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
