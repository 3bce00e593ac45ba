//! Roles and group administration in the FlyChat dialect. `make_admin` is the SDK's; the
//! rest are mixd's (docs/protocol.md, "FlyChat administration"), shaped like it: a
//! `<query xmlns='jabber:iq:mixgroupchat' status='…'>` naming its `<participant>`, with
//! settings as attributes of the query.
//!
//! - `revoke_admin`, `transfer_ownership`: the participant named;
//! - `set_group_settings`: `policy='open|invite|request'`, `muted='0|1'`,
//!   `max_members='N|default'`;
//! - `mute_participant`: `until` in microseconds since the epoch (16 digits, as the SDK's
//!   times), `0` to unmute;
//! - `set_access`: `list='banned|allowed'`, `entry='<bare JID or domain>'`, `present='1|0'`.
//!
//! Every value is checked while parsing, so a request with one bad attribute changes nothing.

use jid::BareJid;
use minidom::Element;

use super::wire::named_participant;
use crate::core::{AccessList, Groups, JoinPolicy, Micros, Outcome, Role, SettingsChange};
use crate::dialect::{bad_request, bool_attr, AccessChange, Envelope, Handled};

/// `make_admin` (to admin), `revoke_admin` (to member) and `transfer_ownership` (to owner):
/// the status names the role, the query the participant.
#[derive(Debug, Clone, PartialEq)]
pub struct SetRole {
    pub participant: BareJid,
    pub role: Role,
}

impl SetRole {
    pub fn parse(query: &Element, role: Role) -> Outcome<Self> {
        Ok(SetRole {
            participant: named_participant(query)?,
            role,
        })
    }

    /// Ownership passes with its own command: the old owner stays, as an admin.
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let name = env.channel_name();
        let facts = if self.role == Role::Owner {
            groups.transfer(name, &env.sender(), &self.participant, now)?
        } else {
            groups.set_role(name, &env.sender(), &self.participant, self.role, now)?
        };
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `set_group_settings`: only the settings given change.
#[derive(Debug, Clone)]
pub struct SetSettings {
    pub change: SettingsChange,
}

impl SetSettings {
    pub fn parse(query: &Element) -> Outcome<Self> {
        let policy = match query.attr("policy") {
            Some(p) => Some(JoinPolicy::from_name(p).ok_or_else(|| {
                bad_request(format!("policy='{p}' is not one of open, invite, request"))
            })?),
            None => None,
        };
        // `default` goes back to the service's limit.
        let max_members = match query.attr("max_members") {
            Some("default") => Some(None),
            Some(m) => Some(Some(m.parse().map_err(|_| {
                bad_request(format!("max_members='{m}' is not a number"))
            })?)),
            None => None,
        };
        Ok(SetSettings {
            change: SettingsChange {
                policy,
                muted: bool_attr(query, "muted")?,
                max_members,
                jids_hidden: bool_attr(query, "jids_hidden")?,
            },
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.change_settings(env.channel_name(), &env.sender(), self.change, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `mute_participant`: the participant may not post until `until` (0 unmutes).
#[derive(Debug, Clone, PartialEq)]
pub struct MuteParticipant {
    pub participant: BareJid,
    pub until: Micros,
}

impl MuteParticipant {
    pub fn parse(query: &Element) -> Outcome<Self> {
        let participant = named_participant(query)?;
        let until = query.attr("until").unwrap_or_default();
        let until: Micros = until
            .parse()
            .map_err(|_| bad_request(format!("until='{until}' is not a time in microseconds")))?;
        Ok(MuteParticipant { participant, until })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.mute(
            env.channel_name(),
            &env.sender(),
            &self.participant,
            self.until,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `set_access`: puts an entry on (or, with `present='0'`, takes it off) the banned or the
/// allowed list. An entry is a user or a whole domain, hence a bare JID without a local part
/// is fine here. `present` defaults to on: naming an entry means putting it on the list.
pub fn set_access(query: &Element) -> Outcome<AccessChange> {
    let list = match query.attr("list") {
        Some("banned") => AccessList::Banned,
        Some("allowed") => AccessList::Allowed,
        other => {
            return Err(bad_request(format!(
                "list={other:?} is not 'banned' or 'allowed'"
            )))
        }
    };
    let entry = query.attr("entry").unwrap_or_default();
    let entry = BareJid::new(entry.trim())
        .map_err(|_| bad_request(format!("entry='{entry}' is not a bare JID or a domain")))?;
    let present = bool_attr(query, "present")?.unwrap_or(true);
    Ok(AccessChange {
        list,
        entry,
        present,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::flychat::testing::{jid, parse_iq, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    fn role_of(status: &str) -> SetRole {
        let request = parse_iq(
            GROUP,
            true,
            &format!(
                "<query xmlns='jabber:iq:mixgroupchat' status='{status}'>\
                 <participant>bob@localhost</participant></query>"
            ),
        );
        let Ok(Request::SetRole(set)) = request else {
            panic!("{request:?}")
        };
        set
    }

    #[test]
    fn each_role_status_names_its_role() {
        for (status, role) in [
            ("make_admin", Role::Admin),
            ("revoke_admin", Role::Member),
            ("transfer_ownership", Role::Owner),
        ] {
            assert_eq!(
                role_of(status),
                SetRole {
                    participant: jid("bob@localhost"),
                    role
                },
                "{status}"
            );
        }
    }

    #[test]
    fn a_role_change_needs_a_user_in_a_group() {
        for status in ["make_admin", "revoke_admin", "transfer_ownership"] {
            let nobody = format!("<query xmlns='jabber:iq:mixgroupchat' status='{status}'/>");
            assert_eq!(refused(GROUP, true, &nobody), Condition::BadRequest);
            let domain = format!(
                "<query xmlns='jabber:iq:mixgroupchat' status='{status}'>\
                 <participant>localhost</participant></query>"
            );
            assert_eq!(refused(GROUP, true, &domain), Condition::BadRequest);
            let named = format!(
                "<query xmlns='jabber:iq:mixgroupchat' status='{status}'>\
                 <participant>bob@localhost</participant></query>"
            );
            assert_eq!(refused(SERVICE, true, &named), Condition::BadRequest);
        }
    }

    #[test]
    fn settings_read_each_attribute() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='set_group_settings' \
             policy='request' muted='1' max_members='50'/>",
        );
        let Ok(Request::SetSettings(set)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(set.change.policy, Some(JoinPolicy::Request));
        assert_eq!(set.change.muted, Some(true));
        assert_eq!(set.change.max_members, Some(Some(50)));

        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='set_group_settings' \
             muted='false' max_members='default'/>",
        );
        let Ok(Request::SetSettings(set)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(set.change.policy, None);
        assert_eq!(set.change.muted, Some(false));
        assert_eq!(set.change.max_members, Some(None));
    }

    #[test]
    fn settings_refuse_unknown_values() {
        for attributes in [
            "policy='anarchy'",
            "muted='maybe'",
            "max_members='lots'",
            "max_members='-1'",
        ] {
            let query = format!(
                "<query xmlns='jabber:iq:mixgroupchat' status='set_group_settings' {attributes}/>"
            );
            assert_eq!(
                refused(GROUP, true, &query),
                Condition::BadRequest,
                "{attributes}"
            );
        }
    }

    #[test]
    fn mute_reads_the_participant_and_the_time() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='mute_participant' \
             until='1767225600000000'><participant>bob@localhost</participant></query>",
        );
        let Ok(Request::Mute(mute)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            mute,
            MuteParticipant {
                participant: jid("bob@localhost"),
                until: 1_767_225_600_000_000
            }
        );
    }

    #[test]
    fn mute_needs_a_time_and_a_participant() {
        for query in [
            "<query xmlns='jabber:iq:mixgroupchat' status='mute_participant' until='soon'>\
             <participant>bob@localhost</participant></query>",
            "<query xmlns='jabber:iq:mixgroupchat' status='mute_participant'>\
             <participant>bob@localhost</participant></query>",
            "<query xmlns='jabber:iq:mixgroupchat' status='mute_participant' until='0'/>",
        ] {
            assert_eq!(
                refused(GROUP, true, query),
                Condition::BadRequest,
                "{query}"
            );
        }
    }

    #[test]
    fn access_reads_list_entry_and_presence() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='set_access' list='banned' \
             entry=' spam.example ' present='0'/>",
        );
        let Ok(Request::Access(access)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            access,
            AccessChange {
                list: AccessList::Banned,
                entry: jid("spam.example"),
                present: false
            }
        );
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='set_access' list='allowed' \
             entry='bob@localhost'/>",
        );
        let Ok(Request::Access(access)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(access.list, AccessList::Allowed);
        assert_eq!(access.entry, jid("bob@localhost"));
        assert!(access.present);
    }

    #[test]
    fn access_refuses_unknown_lists_entries_and_booleans() {
        for attributes in [
            "list='grey' entry='bob@localhost'",
            "entry='bob@localhost'",
            "list='banned'",
            "list='banned' entry='not a jid@@'",
            "list='banned' entry='bob@localhost' present='perhaps'",
        ] {
            let query =
                format!("<query xmlns='jabber:iq:mixgroupchat' status='set_access' {attributes}/>");
            assert_eq!(
                refused(GROUP, true, &query),
                Condition::BadRequest,
                "{attributes}"
            );
        }
    }
}
