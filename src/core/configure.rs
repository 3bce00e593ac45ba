//! The channel's configuration changed as one: an owner publishes the configuration form
//! (XEP-0406, Modifying Channel Configuration) with the owner and administrator lists, the
//! settings, the muted members, and the name and description. It runs the same commands as
//! each change on its own (`settings`, `info`, `mute`, `role`), so their rules hold here
//! too; what could refuse part way is checked first, and the rest runs in an order in which
//! none can, so that a refused configuration changes nothing.

use std::collections::{HashMap, HashSet};

use jid::BareJid;

use super::{check_info, Condition, Groups, InfoChange, Micros, Outcome, Refusal, Role};
use super::{Channel, SettingsChange};

/// What a configuration sets; `None` (and the settings' and information's own `None`s)
/// keeps the current value (XEP-0406: the channel updates the fields provided, leaving the
/// others unchanged).
#[derive(Debug, Default, Clone)]
pub struct ConfigChange {
    /// Every owner, after the change.
    pub owners: Option<Vec<BareJid>>,
    /// Every administrator, after the change (an owner listed here stays an owner).
    pub admins: Option<Vec<BareJid>>,
    pub settings: SettingsChange,
    pub info: InfoChange,
    /// Every muted participant and the end of its mute, after the change.
    pub mutes: Option<Vec<(BareJid, Micros)>>,
}

impl Groups {
    /// Only owners change the configuration (XEP-0406, Roles).
    pub fn configure(
        &mut self,
        name: &str,
        actor: &BareJid,
        mut change: ConfigChange,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Owner, "change its configuration")?;
        let roles = role_changes(channel, actor, &change)?;
        let mutes = mute_changes(channel, actor, change.mutes.as_deref(), now)?;
        check_info(&change.info)?;
        // The form shows the limit in effect; sent back unchanged, it stays the service's.
        let limit = self.rules.max_members;
        if channel.settings().max_members.is_none()
            && change.settings.max_members == Some(Some(limit))
        {
            change.settings.max_members = None;
        }
        // The settings may still refuse (a limit out of range), so they go first; the
        // information, the mutes and the roles were checked above. The actor's own step down
        // comes last of all, while it still has the rights the others need.
        let mut facts = self.change_settings(name, actor, change.settings, now)?;
        if change.info != InfoChange::default() {
            facts.extend(self.set_info(name, actor, change.info, now)?.1);
        }
        for (target, until) in mutes {
            facts.extend(self.mute(name, actor, &target, until, now)?);
        }
        for (target, role) in roles {
            facts.extend(self.set_role(name, actor, &target, role, now)?);
        }
        Ok(facts)
    }
}

/// The role changes `change` calls for, in an order in which each is allowed: promotions
/// first (so that an owner remains while others step down), the actor's own last. Refuses
/// a configuration without an owner (XEP-0406: there must always be one) and one that would
/// give a role to, or take it from, a non-participant (as [`Groups::set_role`] would). In
/// time linear in the lists and the participants: the lists may be long.
fn role_changes(
    channel: &Channel,
    actor: &BareJid,
    change: &ConfigChange,
) -> Outcome<Vec<(BareJid, Role)>> {
    if change.owners.as_ref().is_some_and(Vec::is_empty) {
        return Err(Refusal::new(
            Condition::NotAcceptable,
            format!("'{}' must keep an owner", channel.name),
        ));
    }
    let owners: Option<HashSet<&BareJid>> = change.owners.as_ref().map(|o| o.iter().collect());
    let admins: Option<HashSet<&BareJid>> = change.admins.as_ref().map(|a| a.iter().collect());
    let wanted = |jid: &BareJid, current: Role| {
        let owner = owners
            .as_ref()
            .map_or(current == Role::Owner, |o| o.contains(jid));
        let admin = admins
            .as_ref()
            .map_or(current == Role::Admin, |a| a.contains(jid));
        match (owner, admin) {
            (true, _) => Role::Owner,
            (false, true) => Role::Admin,
            (false, false) => Role::Member,
        }
    };
    // A participant's role is its own (an owner's is `Owner`); anyone else holds a role only
    // as an owner who never joined.
    let participants: HashSet<&BareJid> = channel.participants.iter().map(|p| &*p.jid).collect();
    let named = change.owners.iter().chain(&change.admins).flatten();
    for jid in named
        .chain(&channel.owners)
        .filter(|j| !participants.contains(j))
    {
        let current = if channel.is_owner(jid) {
            Role::Owner
        } else {
            Role::Member
        };
        if wanted(jid, current) != current {
            Groups::named(channel, jid)?;
        }
    }
    let mut changes: Vec<(BareJid, Role, Role)> = channel
        .participants
        .iter()
        .map(|p| (p.jid.to_bare(), wanted(&p.jid, p.role), p.role))
        .filter(|(_, role, current)| role != current)
        .collect();
    changes.sort_by_key(|(jid, role, current)| (jid == actor, role <= current));
    Ok(changes
        .into_iter()
        .map(|(jid, role, _)| (jid, role))
        .collect())
}

/// The mutes `wanted` calls for (an end of 0 unmutes), each checked as [`Groups::mute`]
/// checks it. A mute given with the end it already has is no change, even one that has
/// ended: the form as read may be sent back as it is.
fn mute_changes(
    channel: &Channel,
    actor: &BareJid,
    wanted: Option<&[(BareJid, Micros)]>,
    now: Micros,
) -> Outcome<Vec<(BareJid, Micros)>> {
    let Some(wanted) = wanted else {
        return Ok(Vec::new());
    };
    let current: HashMap<&BareJid, Micros> = channel
        .administration()
        .mutes
        .iter()
        .map(|(jid, until)| (jid, *until))
        .collect();
    let listed: HashSet<&BareJid> = wanted.iter().map(|(jid, _)| jid).collect();
    let muted = wanted
        .iter()
        .filter(|(jid, until)| current.get(jid) != Some(until))
        .cloned();
    let unmuted = channel
        .administration()
        .mutes
        .iter()
        .filter(|(jid, _)| !listed.contains(jid))
        .map(|(jid, _)| (jid.clone(), 0));
    let changes: Vec<(BareJid, Micros)> = muted.chain(unmuted).collect();
    for (target, until) in &changes {
        Groups::may_mute(channel, actor, target, *until, now)?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::{Fact, JoinPolicy, Nodes};

    fn roles(g: &Groups) -> Vec<(String, Role)> {
        let channel = g.channel("coven").unwrap();
        let mut roles: Vec<_> = channel
            .participants
            .iter()
            .map(|p| (p.jid.to_string(), channel.role_of(&p.jid)))
            .collect();
        roles.sort();
        roles
    }

    fn jids(list: &[&str]) -> Option<Vec<BareJid>> {
        Some(list.iter().map(|j| jid(j)).collect())
    }

    #[test]
    fn an_owner_sets_roles_settings_and_name_at_once() {
        let mut g = with_carol();
        let alice = jid("alice@localhost");
        let change = ConfigChange {
            owners: jids(&["alice@localhost", "bob@localhost"]),
            admins: jids(&["carol@localhost"]),
            settings: SettingsChange {
                policy: Some(JoinPolicy::Request),
                ..Default::default()
            },
            info: InfoChange {
                name: Some("Witches".into()),
                ..Default::default()
            },
            mutes: None,
        };
        let facts = g.configure("coven", &alice, change, 10).unwrap();
        assert!(facts.iter().any(|f| matches!(f, Fact::InfoChanged { .. })));
        assert_eq!(
            roles(&g),
            vec![
                ("alice@localhost".into(), Role::Owner),
                ("bob@localhost".into(), Role::Owner),
                ("carol@localhost".into(), Role::Admin),
            ]
        );
        let channel = g.channel("coven").unwrap();
        assert_eq!(channel.settings().policy, JoinPolicy::Request);
        assert_eq!(channel.info.name, "Witches");
        assert_eq!(channel.configured_at(), 10);
    }

    #[test]
    fn the_muted_members_listed_are_all_there_are() {
        let mut g = with_carol();
        let (alice, bob, carol) = (
            jid("alice@localhost"),
            jid("bob@localhost"),
            jid("carol@localhost"),
        );
        let mutes = |list: Vec<(BareJid, Micros)>| ConfigChange {
            mutes: Some(list),
            ..Default::default()
        };
        g.configure("coven", &alice, mutes(vec![(bob.clone(), 500)]), 10)
            .unwrap();
        assert_eq!(g.channel("coven").unwrap().muted_until(&bob), 500);
        g.configure("coven", &alice, mutes(vec![(carol.clone(), 600)]), 20)
            .unwrap();
        let channel = g.channel("coven").unwrap();
        assert_eq!(channel.muted_until(&bob), 0, "left out: unmuted");
        assert_eq!(channel.muted_until(&carol), 600);
        // Sent back as read, even after the mute ended, the list changes nothing.
        let facts = g
            .configure("coven", &alice, mutes(vec![(carol.clone(), 600)]), 700)
            .unwrap();
        assert!(facts.is_empty());
    }

    #[test]
    fn an_owner_hands_over_and_steps_down_in_one_change() {
        let mut g = with_carol();
        let alice = jid("alice@localhost");
        let change = ConfigChange {
            owners: jids(&["carol@localhost"]),
            admins: jids(&["alice@localhost"]),
            ..Default::default()
        };
        g.configure("coven", &alice, change, 10).unwrap();
        assert_eq!(
            roles(&g),
            vec![
                ("alice@localhost".into(), Role::Admin),
                ("bob@localhost".into(), Role::Member),
                ("carol@localhost".into(), Role::Owner),
            ]
        );
        // Administrators left out are members again; fields left out keep their value.
        let carol = jid("carol@localhost");
        let change = ConfigChange {
            admins: Some(Vec::new()),
            ..Default::default()
        };
        g.configure("coven", &carol, change, 11).unwrap();
        assert_eq!(
            g.channel("coven").unwrap().role_of(&alice),
            Role::Member,
            "no longer an administrator"
        );
        assert_eq!(g.channel("coven").unwrap().owners, vec![carol]);
    }

    #[test]
    fn only_owners_configure() {
        let mut g = coven();
        let bob = jid("bob@localhost");
        g.make_admin("coven", &jid("alice@localhost"), &bob, 5)
            .unwrap();
        let change = ConfigChange {
            owners: jids(&["bob@localhost"]),
            ..Default::default()
        };
        let refusal = g.configure("coven", &bob, change, 6).unwrap_err();
        assert_eq!(refusal.condition, Condition::Forbidden);
        assert_eq!(
            refusal.text,
            "only an owner of 'coven' may change its configuration"
        );
    }

    #[test]
    fn a_refused_configuration_changes_nothing() {
        let mut g = with_carol();
        let alice = jid("alice@localhost");
        let before = format!("{:?}", g.channel("coven").unwrap());
        let policy = SettingsChange {
            policy: Some(JoinPolicy::Invite),
            ..Default::default()
        };
        let name = InfoChange {
            name: Some("Witches".into()),
            ..Default::default()
        };
        for (change, condition) in [
            (
                ConfigChange {
                    owners: Some(Vec::new()),
                    settings: policy.clone(),
                    ..Default::default()
                },
                Condition::NotAcceptable,
            ),
            (
                ConfigChange {
                    admins: jids(&["dave@localhost"]),
                    settings: policy.clone(),
                    info: name.clone(),
                    ..Default::default()
                },
                Condition::ItemNotFound,
            ),
            (
                ConfigChange {
                    admins: jids(&["bob@localhost"]),
                    info: InfoChange {
                        name: Some("x".repeat(1000)),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                Condition::NotAcceptable,
            ),
            (
                ConfigChange {
                    admins: jids(&["bob@localhost"]),
                    mutes: Some(vec![(alice.clone(), 500)]),
                    ..Default::default()
                },
                Condition::Forbidden,
            ),
            (
                ConfigChange {
                    admins: jids(&["bob@localhost"]),
                    settings: policy.clone(),
                    mutes: Some(vec![(jid("carol@localhost"), 5)]),
                    ..Default::default()
                },
                Condition::BadRequest,
            ),
            (
                ConfigChange {
                    admins: jids(&["bob@localhost"]),
                    info: name.clone(),
                    settings: SettingsChange {
                        max_members: Some(Some(1)),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                Condition::NotAcceptable,
            ),
        ] {
            let refusal = g.configure("coven", &alice, change, 10).unwrap_err();
            assert_eq!(refusal.condition, condition, "{}", refusal.text);
            let after = format!("{:?}", g.channel("coven").unwrap());
            assert_eq!(after, before, "{}", refusal.text);
        }
    }

    #[test]
    fn the_configuration_as_it_is_changes_nothing_and_keeps_its_time() {
        let mut g = coven();
        let alice = jid("alice@localhost");
        let limit = g.rules.max_members;
        let change = ConfigChange {
            owners: jids(&["alice@localhost"]),
            admins: Some(Vec::new()),
            settings: SettingsChange {
                policy: Some(JoinPolicy::Open),
                muted: Some(false),
                max_members: Some(Some(limit)),
                jids_hidden: Some(false),
            },
            info: InfoChange::default(),
            mutes: Some(Vec::new()),
        };
        assert!(g.configure("coven", &alice, change, 10).unwrap().is_empty());
        let channel = g.channel("coven").unwrap();
        assert_eq!(channel.settings().max_members, None);
        assert_eq!(channel.configured_at(), channel.created_at);
    }

    #[test]
    fn the_configuration_time_follows_role_setting_and_mute_changes_only() {
        let mut g = coven();
        let alice = jid("alice@localhost");
        let bob = jid("bob@localhost");
        g.make_admin("coven", &alice, &bob, 20).unwrap();
        assert_eq!(g.channel("coven").unwrap().configured_at(), 20);
        g.mute("coven", &alice, &bob, 100, 30).unwrap();
        assert_eq!(g.channel("coven").unwrap().configured_at(), 30);
        g.join("coven", &jid("carol@localhost"), None, Nodes::ALL, 40)
            .unwrap();
        assert_eq!(g.channel("coven").unwrap().configured_at(), 30);
    }
}
