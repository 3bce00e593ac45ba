//! Muting a member until a time: owners and admins mute members, only owners mute admins.
//! A muted member keeps reading; its posts are refused with the time the mute ends. The
//! whole group is muted through its settings (`settings.rs`).

use jid::BareJid;

use super::{Channel, Condition, Fact, Groups, Micros, Outcome, Refusal};

impl Groups {
    /// Mutes `target` until `until`; `until` 0 unmutes.
    pub fn mute(
        &mut self,
        name: &str,
        actor: &BareJid,
        target: &BareJid,
        until: Micros,
        now: Micros,
    ) -> Outcome {
        let channel = self.existing(name)?;
        Self::may_mute(channel, actor, target, until, now)?;
        let current = match channel.muted_until(target) {
            until if until > now => until,
            _ => 0,
        };
        if current == until {
            return Ok(Vec::new());
        }
        let fact = Fact::Muted {
            key: channel.key,
            jid: target.clone(),
            until,
            by: actor.clone(),
        };
        Ok(self.apply_noted(vec![fact], now))
    }
}

impl Groups {
    /// Refuses unless `actor` may mute `target` (a participant, not an owner) until `until`
    /// (0: unmute), which must be in the future.
    pub(super) fn may_mute(
        channel: &Channel,
        actor: &BareJid,
        target: &BareJid,
        until: Micros,
        now: Micros,
    ) -> Outcome<()> {
        Self::named(channel, target)?;
        if channel.is_owner(target) {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("{target} owns '{}' and cannot be muted", channel.name),
            ));
        }
        let needed = Self::above(channel, target);
        Self::at_least(channel, actor, needed, &format!("mute {target}"))?;
        if until != 0 && until <= now {
            return Err(Refusal::new(
                Condition::BadRequest,
                "a mute must end in the future",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::settings::SettingsChange;

    #[test]
    fn muted_members_cannot_post_until_the_time() {
        let mut g = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let err = g.mute("coven", &bob, &alice, 100, 5).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.mute("coven", &alice, &bob, 100, 5).unwrap();
        let err = g.post("coven", &bob, text("hi"), 50).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        assert!(err.text.contains("muted"), "{}", err.text);
        g.post("coven", &bob, text("later"), 100).unwrap();
        g.mute("coven", &alice, &bob, 200, 150).unwrap();
        g.mute("coven", &alice, &bob, 0, 151).unwrap();
        g.post("coven", &bob, text("free"), 152).unwrap();
    }

    #[test]
    fn a_muted_group_lets_only_admins_post() {
        let mut g = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let mute = SettingsChange {
            muted: Some(true),
            ..Default::default()
        };
        g.change_settings("coven", &alice, mute, 5).unwrap();
        let err = g.post("coven", &bob, text("hi"), 6).unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        g.post("coven", &alice, text("announcement"), 6).unwrap();
    }
}
