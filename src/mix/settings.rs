//! Membership settings and mutes for MIX clients, in `urn:mixd:admin:0`:
//! `<settings policy='open|invite|request' muted='true|false' max-members='N|default'
//! jid-visibility='hidden|visible'/>` (each attribute optional) and `<mute jid='…' until='XEP-0082 time'/>` (without `until`:
//! unmute). Subscribers of the configuration node see the result.

use jid::BareJid;
use minidom::Element;

use super::render;
use crate::core::{Groups, JoinPolicy, Micros, Outcome, SettingsChange};
use crate::dialect::{bad_request, bool_attr, jid_attr, Envelope, Handled};

/// A change of the channel's settings; an attribute left out keeps its setting, so that a
/// client changes one without knowing the others.
#[derive(Debug, Clone)]
pub struct Settings {
    pub change: SettingsChange,
}

impl Settings {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let policy = payload
            .attr("policy")
            .map(|p| policy("policy=", p))
            .transpose()?;
        let max_members = payload
            .attr("max-members")
            .map(|m| member_limit("max-members=", m))
            .transpose()?;
        let jids_hidden = payload
            .attr("jid-visibility")
            .map(|v| match v {
                "hidden" => Ok(true),
                "visible" => Ok(false),
                v => Err(bad_request(format!(
                    "jid-visibility='{v}' is not one of hidden, visible"
                ))),
            })
            .transpose()?;
        Ok(Settings {
            change: SettingsChange {
                policy,
                muted: bool_attr(payload, "muted")?,
                max_members,
                jids_hidden,
            },
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.change_settings(env.channel_name(), &env.sender(), self.change, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// A join policy by name; the text of a refusal starts with `what` (here `policy=`, in
/// the configuration form the field's name).
pub fn policy(what: &str, name: &str) -> Outcome<JoinPolicy> {
    JoinPolicy::from_name(name).ok_or_else(|| {
        bad_request(format!(
            "{what}'{name}' is not one of open, invite, request"
        ))
    })
}

/// A member limit: a number, or `default` for the service's (`None`).
pub fn member_limit(what: &str, value: &str) -> Outcome<Option<usize>> {
    match value {
        "default" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| bad_request(format!("{what}'{n}' is not a number"))),
    }
}

/// A participant muted until a time, or unmuted. A mute ends by itself: a time, not a flag,
/// so that nobody has to remember to lift it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub target: BareJid,
    /// `None` unmutes.
    pub until: Option<Micros>,
}

impl Mute {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let target = jid_attr(payload, "jid")?;
        let until = match payload.attr("until") {
            Some(until) => Some(render::parse_timestamp("until", until)?),
            None => None,
        };
        Ok(Mute { target, until })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let until = self.until.unwrap_or(0);
        let facts = groups.mute(env.channel_name(), &env.sender(), &self.target, until, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn settings_read_each_attribute_given() {
        let payload = element(
            "<settings xmlns='urn:mixd:admin:0' policy='request' muted='true' max-members='12' jid-visibility='hidden'/>",
        );
        let Settings { change } = Settings::parse(&payload).unwrap();
        assert_eq!(change.jids_hidden, Some(true));
        assert_eq!(change.policy, Some(JoinPolicy::Request));
        assert_eq!(change.muted, Some(true));
        assert_eq!(change.max_members, Some(Some(12)));
        let default = element("<settings xmlns='urn:mixd:admin:0' max-members='default'/>");
        let Settings { change } = Settings::parse(&default).unwrap();
        assert_eq!(
            (change.policy, change.muted, change.max_members),
            (None, None, Some(None))
        );
    }

    #[test]
    fn settings_with_bad_values_are_bad_requests() {
        for (attrs, text) in [
            (
                "policy='anarchy'",
                "policy='anarchy' is not one of open, invite, request",
            ),
            ("max-members='lots'", "max-members='lots' is not a number"),
            ("max-members='-1'", "max-members='-1' is not a number"),
            (
                "jid-visibility='maybe'",
                "jid-visibility='maybe' is not one of hidden, visible",
            ),
            (
                "muted='maybe'",
                "muted='maybe' is not a boolean (true or false)",
            ),
        ] {
            let payload = element(&format!("<settings xmlns='urn:mixd:admin:0' {attrs}/>"));
            let refusal = Settings::parse(&payload).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, text);
        }
    }

    #[test]
    fn a_mute_names_the_participant_and_until_when() {
        let payload = element(
            "<mute xmlns='urn:mixd:admin:0' jid='crone@example.org' until='1970-01-01T00:01:00Z'/>",
        );
        assert_eq!(
            Mute::parse(&payload).unwrap(),
            Mute {
                target: BareJid::new("crone@example.org").unwrap(),
                until: Some(60_000_000)
            }
        );
        let unmute = element("<mute xmlns='urn:mixd:admin:0' jid='crone@example.org'/>");
        assert_eq!(Mute::parse(&unmute).unwrap().until, None);
    }

    #[test]
    fn a_mute_with_a_bad_time_or_no_jid_is_a_bad_request() {
        let bad_time =
            element("<mute xmlns='urn:mixd:admin:0' jid='crone@example.org' until='tomorrow'/>");
        let refusal = Mute::parse(&bad_time).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert!(
            refusal.text.starts_with("until: 'tomorrow'"),
            "{}",
            refusal.text
        );
        let no_jid = element("<mute xmlns='urn:mixd:admin:0' until='1970-01-01T00:01:00Z'/>");
        assert_eq!(
            Mute::parse(&no_jid).unwrap_err().text,
            "<mute/> needs the jid attribute"
        );
    }
}
