//! Creating a channel (XEP-0369 §7.3.2): named by the creator, or ad hoc with a name the
//! service makes up (128 random bits from the OS, as 32 hex digits: not to be guessed).
//! Only users of the configured domains may create; the creator owns it.

use jid::{BareJid, NodePart};

use super::{
    check_info, Condition, Dialect, Fact, Groups, InfoChange, Micros, Outcome, Refusal,
    MAX_ADDED_PER_REQUEST,
};

impl Groups {
    /// Creates channel `name`, or an ad-hoc channel when `name` is `None`.
    /// Returns the channel's (normalized) name with the facts.
    pub fn create(
        &mut self,
        actor: &BareJid,
        name: Option<&str>,
        now: Micros,
    ) -> Outcome<(String, Vec<Fact>)> {
        self.create_listed(actor, name, name.is_some(), now)
    }

    /// [`Groups::create`], saying whether the channel is listed (see [`Channel::listed`]).
    ///
    /// [`Channel::listed`]: super::Channel::listed
    fn create_listed(
        &mut self,
        actor: &BareJid,
        name: Option<&str>,
        listed: bool,
        now: Micros,
    ) -> Outcome<(String, Vec<Fact>)> {
        if !self.may_create(actor) {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("users of {} may not create channels here", actor.domain()),
            ));
        }
        let limit = self.rules.max_groups_per_creator;
        let created = self.created.get(actor).copied().unwrap_or(0);
        if limit > 0 && created >= limit {
            return Err(Refusal::new(
                Condition::ResourceConstraint,
                format!("{actor} has created {created} groups, the most one user may have"),
            ));
        }
        let name = match name {
            Some(requested) => {
                let name = valid_channel_name(requested)?;
                if self.channels.contains(&name) {
                    return Err(Refusal::new(
                        Condition::Conflict,
                        format!("channel '{name}' already exists"),
                    ));
                }
                name
            }
            None => loop {
                let candidate = self.ids.next();
                if !self.channels.contains(&candidate) {
                    break candidate;
                }
            },
        };
        self.charge(actor, super::Quota::Channels, 1, now)?;
        let fact = Fact::ChannelCreated {
            key: self.next_channel_key(),
            name: name.clone(),
            owner: actor.clone(),
            at: now,
            listed,
        };
        Ok((name, self.apply_noted(vec![fact], now)))
    }
}

impl Groups {
    /// Creates a group with its information and first participants (for the FlyChat SDK's
    /// createGroup, the creator among them): everything is checked before anything is
    /// applied, so a refusal leaves no group behind. A MIX channel created with a name is
    /// listed; an ad-hoc one and every FlyChat group are not.
    pub fn create_group(
        &mut self,
        actor: &BareJid,
        name: Option<&str>,
        info: InfoChange,
        members: &[BareJid],
        dialect: Dialect,
        now: Micros,
    ) -> Outcome<(String, Vec<Fact>)> {
        check_info(&info)?;
        if members.len() > MAX_ADDED_PER_REQUEST {
            return Err(Refusal::new(
                Condition::NotAcceptable,
                format!("a group starts with at most {MAX_ADDED_PER_REQUEST} participants"),
            ));
        }
        let limit = self.rules.max_members;
        if members.len() > limit {
            return Err(Refusal::new(
                Condition::ResourceConstraint,
                format!("a group has at most {limit} participants"),
            ));
        }
        if let Some(user) = members.iter().find(|m| m.node().is_none()) {
            return Err(Refusal::new(
                Condition::BadRequest,
                format!("{user} is not a user's JID"),
            ));
        }
        let others = members
            .iter()
            .filter(|m| *m != actor)
            .collect::<std::collections::HashSet<_>>();
        self.afford(actor, super::Quota::Adds, others.len(), now)?;
        let listed = name.is_some() && dialect == Dialect::Mix;
        let (name, mut facts) = self.create_listed(actor, name, listed, now)?;
        if info != InfoChange::default() {
            facts.extend(self.set_info(&name, actor, info, now)?.1);
        }
        facts.extend(self.add_participants(&name, actor, members, dialect, now)?);
        // A group without shared history hides what was said before one joined; its first
        // members were there from the start, so they see its creation and first profile.
        for fact in &mut facts {
            if let Fact::Joined { participant, .. } = fact {
                participant.cleared_upto = 0;
            }
        }
        if let Some(channel) = self.channels.get_mut(&name) {
            channel.participants.update_all(|p| p.cleared_upto = 0);
        }
        Ok((name, facts))
    }
}

/// A channel name is a JID localpart without `#` (MIX reserves `#` for participant proxies).
fn valid_channel_name(requested: &str) -> Outcome<String> {
    let invalid = |why: &str| {
        Refusal::new(
            Condition::BadRequest,
            format!("'{requested}' is not a valid channel name: {why}"),
        )
    };
    if requested.contains('#') {
        return Err(invalid("it contains '#'"));
    }
    let node = NodePart::new(requested).map_err(|e| invalid(&e.to_string()))?;
    Ok(node.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn named_channel_is_created_once() {
        let mut g = groups();
        let (name, facts) = g.create(&jid("alice@localhost"), Some("Coven"), 1).unwrap();
        assert_eq!(name, "coven");
        assert!(matches!(facts[0], Fact::ChannelCreated { key: 1, .. }));
        assert!(g
            .channel("coven")
            .unwrap()
            .is_owner(&jid("alice@localhost")));
        let again = g
            .create(&jid("bob@localhost"), Some("coven"), 2)
            .unwrap_err();
        assert_eq!(again.condition, Condition::Conflict);
    }

    #[test]
    fn only_mix_channels_created_with_a_name_are_listed() {
        let mut g = groups();
        let alice = jid("alice@localhost");
        let none = InfoChange::default();
        let (named, _) = g
            .create_group(&alice, Some("coven"), none.clone(), &[], Dialect::Mix, 1)
            .unwrap();
        let (ad_hoc, _) = g
            .create_group(&alice, None, none.clone(), &[], Dialect::Mix, 1)
            .unwrap();
        let (flychat, _) = g
            .create_group(&alice, Some("trip"), none, &[], Dialect::FlyChat, 1)
            .unwrap();
        assert!(g.channel(&named).unwrap().listed);
        assert!(!g.channel(&ad_hoc).unwrap().listed);
        assert!(!g.channel(&flychat).unwrap().listed);
    }

    #[test]
    fn ad_hoc_channels_get_distinct_names() {
        let mut g = groups();
        let (a, _) = g.create(&jid("alice@localhost"), None, 1).unwrap();
        let (b, _) = g.create(&jid("alice@localhost"), None, 1).unwrap();
        assert_ne!(a, b);
        assert_eq!(g.channel(&b).unwrap().key, 2);
        // 128 bits from the OS: nothing in common with the time or each other.
        for name in [&a, &b] {
            assert_eq!(name.len(), 32, "{name}");
            assert!(name.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
            assert_eq!(valid_channel_name(name).as_ref(), Ok(name));
        }
        let shared = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(shared < 8, "{a} and {b} share a prefix of {shared}");
    }

    #[test]
    fn groups_per_creator_are_limited_and_deleting_frees_a_place() {
        let mut g = groups();
        g.rules.max_groups_per_creator = 2;
        let alice = jid("alice@localhost");
        g.create(&alice, Some("a"), 1).unwrap();
        g.create(&alice, Some("b"), 1).unwrap();
        let err = g.create(&alice, Some("c"), 1).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert!(g.channel("c").is_none());
        g.create(&jid("bob@localhost"), Some("c"), 1).unwrap();
        g.destroy(&alice, "a", 2).unwrap();
        g.create(&alice, Some("d"), 3).unwrap();
    }

    #[test]
    fn a_group_created_with_too_many_members_is_not_created() {
        let mut g = groups();
        g.rules.max_members = 2;
        let members = [
            jid("alice@localhost"),
            jid("bob@localhost"),
            jid("carol@localhost"),
        ];
        let err = alices_group(&mut g, Some("trip"), &members, 1).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert!(g.channel("trip").is_none());
        let (name, _) = alices_group(&mut g, None, &members[..2], 1).unwrap();
        assert_eq!(g.channel(&name).unwrap().participants.len(), 2);
    }

    #[test]
    fn the_first_members_see_the_creation_even_without_shared_history() {
        let mut g = groups();
        let alice = jid("alice@localhost");
        let private = InfoChange {
            name: Some("Quiet".into()),
            history_visible: Some(false),
            ..InfoChange::default()
        };
        let (name, facts) = g
            .create_group(
                &alice,
                None,
                private,
                &[jid("bob@localhost")],
                Dialect::FlyChat,
                1,
            )
            .unwrap();
        let channel = g.channel(&name).unwrap();
        assert!(!channel.info.history_visible);
        assert!(channel.participants.iter().all(|p| p.cleared_upto == 0));
        let joined: Vec<_> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::Joined { participant, .. } => Some(participant.cleared_upto),
                _ => None,
            })
            .collect();
        assert!(
            !joined.is_empty() && joined.iter().all(|c| *c == 0),
            "{joined:?}"
        );
        // Someone added later starts where it came in.
        let carol = jid("carol@localhost");
        g.add_participants(
            &name,
            &alice,
            std::slice::from_ref(&carol),
            Dialect::FlyChat,
            2,
        )
        .unwrap();
        let later = g
            .channel(&name)
            .unwrap()
            .participant(&carol)
            .unwrap()
            .cleared_upto;
        assert!(later > 0, "carol sees the creation: {later}");
    }

    #[test]
    fn foreign_users_and_bad_names_are_refused() {
        let mut g = groups();
        let foreign = g.create(&jid("eve@elsewhere"), Some("x"), 1).unwrap_err();
        assert_eq!(foreign.condition, Condition::Forbidden);
        for bad in ["a#b", "a@b", "", "a b\u{0}"] {
            let err = g.create(&jid("alice@localhost"), Some(bad), 1).unwrap_err();
            assert_eq!(err.condition, Condition::BadRequest, "{bad}");
        }
    }
}
