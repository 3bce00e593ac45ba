//! FlyChat group operations (flychat-wire.md §1), each on the core command a MIX request
//! would run: create (with its profile and first participants), profile get and set,
//! participant list, add, exit or removal, delete, and the user's groups.
//!
//! Each request is read off its `<query>` first and run after, so that a malformed request
//! is refused before the core is asked anything, and parsing can be tested without a server.
//! The group a request acts on is the address of the iq (`Envelope::channel_name`): the
//! router only routes group operations that are addressed to a group.

use jid::BareJid;
use minidom::Element;

use super::render;
use super::wire::{descendant_text, named_participant, participant_jids, NS, VCARD};
use crate::core::iso_time;
use crate::core::{Channel, Dialect, Groups, InfoChange, Micros, Outcome};
use crate::dialect::proxy::Naming;
use crate::dialect::{bad_request, Envelope, Handled, Service};
use crate::xml::Xml;

/// The profile fields of a `<vCard>`: nickName is the group's name, image and thumbImage its
/// picture (URLs or upload tokens, kept as given); `history` 0 hides the archive from later
/// members. Fields left out keep their value (the SDK sends what it has).
fn profile_change(query: &Element) -> InfoChange {
    InfoChange {
        name: descendant_text(query, "nickName"),
        avatar: descendant_text(query, "image"),
        thumbnail: descendant_text(query, "thumbImage"),
        history_visible: descendant_text(query, "history").map(|h| h.trim() != "0"),
        ..InfoChange::default()
    }
}

/// `status='create_group'`, an iq set to the service: a group with its profile and its
/// first participants (the creator comes first and owns it).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateGroup {
    /// `group_id`: the SDK makes up a UUID; without one (or an empty one), mixd makes one up.
    pub id: Option<String>,
    pub profile: InfoChange,
    /// The participants besides the creator, as listed.
    pub participants: Vec<BareJid>,
}

impl CreateGroup {
    pub fn parse(query: &Element) -> Outcome<Self> {
        Ok(CreateGroup {
            id: query
                .attr("group_id")
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            profile: profile_change(query),
            participants: participant_jids(query)?,
        })
    }

    /// The result names the group, since mixd may have chosen its name.
    pub fn apply(
        self,
        groups: &mut Groups,
        service: &Service,
        env: &Envelope,
        now: Micros,
    ) -> Outcome<Handled> {
        let creator = env.sender();
        let mut members = vec![creator.clone()];
        members.extend(self.participants);
        let (name, facts) = groups.create_group(
            &creator,
            self.id.as_deref(),
            self.profile,
            &members,
            Dialect::FlyChat,
            now,
        )?;
        let mut x = Xml::new();
        x.open("query", NS)
            .attr("status", "create_group")
            .attr("group_id", &name)
            .attr("groupjid", &service.channel_jid(&name))
            .close();
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

/// `status='get_group_profile'`: the group as its participant sees it. The SDK's `group_id`
/// attribute repeats the address, so nothing is read.
#[derive(Debug, Clone, PartialEq)]
pub struct GetProfile;

impl GetProfile {
    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let (channel, participant) = groups.participant_of(env.channel_name(), &env.sender())?;
        let mut x = Xml::new();
        x.open("query", NS)
            .attr("status", "get_group_profile")
            .open("group", "");
        group_item(&mut x, service, channel, &participant.jid);
        x.close().close();
        Ok(env.iq_result(Some(&x.finish())))
    }
}

/// "My groups" (`status='get_user_groups'`, an iq get to the service; mixd's, for the SDK's
/// getGroupsList): each group the sender takes part in, as get_group_profile shows one, plus
/// `role` (owner, admin or member). The sender is the only argument.
#[derive(Debug, Clone, PartialEq)]
pub struct UserGroups;

impl UserGroups {
    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let user = env.sender();
        let mut mine: Vec<_> = groups
            .groups_of(&user)
            .filter(|c| c.participant(&user).is_some())
            .collect();
        mine.sort_by(|a, b| a.name.cmp(&b.name));
        let mut x = Xml::new();
        x.open("query", NS)
            .attr("status", "get_user_groups")
            .open("groups", "");
        for channel in mine {
            group_item(&mut x, service, channel, &user);
        }
        x.close().close();
        Ok(env.iq_result(Some(&x.finish())))
    }
}

/// One group as get_group_profile lists it, seen by `viewer`.
fn group_item(x: &mut Xml, service: &Service, channel: &Channel, viewer: &BareJid) {
    let role = channel.role_of(viewer);
    x.open("item", "")
        .attr("groupid", &channel.name)
        .attr("groupjid", &service.channel_jid(&channel.name))
        .attr("createddate", &iso_time(channel.created_at))
        .attr("item_id", &channel.info.updated_at.to_string())
        .attr("affiliation", render::affiliation(role))
        .attr("role", role.name())
        .attr("is_admin_blocked", "0");
    render::group_vcard(x, &channel.info);
    x.close();
}

/// `status='get_participants'`: every participant, as child elements the SDK reads.
#[derive(Debug, Clone, PartialEq)]
pub struct GetParticipants;

impl GetParticipants {
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let (channel, _) = groups.participant_of(env.channel_name(), &env.sender())?;
        // In a JID-hidden channel a member sees proxy JIDs (XEP-0404), and its own.
        let names = Naming::for_viewer(channel, &env.to.to_bare().to_string(), &env.sender());
        let mut x = Xml::new();
        x.open("query", NS)
            .attr("status", "get_participants")
            .open("participants", "");
        for p in &channel.participants {
            // Child elements: the SDK reads a participant's children, never its attributes,
            // and a participant without `<jid>` throws inside its handler (the call hangs).
            x.open("participant", "")
                .leaf("jid", "", &names.participant(p))
                .leaf(
                    "affiliation",
                    "",
                    render::affiliation(channel.role_of(&p.jid)),
                )
                .leaf("itemid", "", &p.id.to_string())
                .leaf("created_at", "", &iso_time(p.joined_at))
                .leaf("is_admin_blocked", "", "0")
                .open("user_profile", "")
                .open("vCard", VCARD)
                .leaf("nickName", "", &p.nick)
                .leaf("name", "", &p.nick)
                .leaf("email", "", "")
                .leaf("mobileNumber", "", "")
                .leaf("image", "", "")
                .leaf("status", "", "")
                .close()
                .close()
                .close();
        }
        x.close().close();
        Ok(env.iq_result(Some(&x.finish())))
    }
}

/// `status='add_participants'`: users added directly (owners and admins). The SDK also sends
/// `<subscriptions>` and the group's name as `<nick>`; a FlyChat participant gets every node
/// and the group has one name, so neither is read.
#[derive(Debug, Clone, PartialEq)]
pub struct AddParticipants {
    pub users: Vec<BareJid>,
}

impl AddParticipants {
    /// An add of nobody is a mistake on the client's side, not a no-op to store.
    pub fn parse(query: &Element) -> Outcome<Self> {
        let users = participant_jids(query)?;
        if users.is_empty() {
            return Err(bad_request("add_participants names no <participant/>"));
        }
        Ok(AddParticipants { users })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.add_participants(
            env.channel_name(),
            &env.sender(),
            &self.users,
            Dialect::FlyChat,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `status='set_group_info'`: the profile fields the vCard carries (owners and admins).
#[derive(Debug, Clone, PartialEq)]
pub struct SetInfo {
    pub profile: InfoChange,
}

impl SetInfo {
    pub fn parse(query: &Element) -> Outcome<Self> {
        Ok(SetInfo {
            profile: profile_change(query),
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let (_, facts) = groups.set_info(env.channel_name(), &env.sender(), self.profile, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `status='user_exit_group'`: one stanza for leaving and for removal. Which one it is
/// depends on who sends it, so the core decides (`Groups::remove`: a leave when it names the
/// sender, a removal by an owner or admin otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct ExitGroup {
    pub participant: BareJid,
}

impl ExitGroup {
    pub fn parse(query: &Element) -> Outcome<Self> {
        Ok(ExitGroup {
            participant: named_participant(query)?,
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.remove(env.channel_name(), &env.sender(), &self.participant, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// `status='user_delete_group'`. The SDK names the sender as `<participant>`; only the
/// sender may delete, so that is not read. The SDK exits the group before it deletes it; an
/// owner who has just left keeps the right to delete (see `core/destroy.rs`), so the pair
/// works.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteGroup;

impl DeleteGroup {
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.destroy(&env.sender(), env.channel_name(), now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::flychat::testing::{jid, parse_iq, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    #[test]
    fn create_group_reads_the_id_the_profile_and_the_participants() {
        let request = parse_iq(
            SERVICE,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='create_group' \
             group_id='0f8e5b1c-6a4e-4c59-9d51-2b7c1f1d2e3a'><profile><vCard xmlns='vcard-temp'>\
             <nickName>Coven</nickName><history>0</history><image>img-token</image>\
             <thumbImage>thumb-token</thumbImage></vCard></profile><participants>\
             <participant>bob@localhost</participant><participant>carol@localhost</participant>\
             </participants></query>",
        );
        let Ok(Request::CreateGroup(create)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            create,
            CreateGroup {
                id: Some("0f8e5b1c-6a4e-4c59-9d51-2b7c1f1d2e3a".into()),
                profile: InfoChange {
                    name: Some("Coven".into()),
                    avatar: Some("img-token".into()),
                    thumbnail: Some("thumb-token".into()),
                    history_visible: Some(false),
                    ..InfoChange::default()
                },
                participants: vec![jid("bob@localhost"), jid("carol@localhost")],
            }
        );
    }

    #[test]
    fn create_group_without_an_id_or_members_leaves_both_to_mixd() {
        let request = parse_iq(
            SERVICE,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='create_group' group_id=''>\
             <profile><vCard xmlns='vcard-temp'><nickName>Solo</nickName><history>1</history>\
             </vCard></profile></query>",
        );
        let Ok(Request::CreateGroup(create)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(create.id, None);
        assert!(create.participants.is_empty());
        assert_eq!(create.profile.name.as_deref(), Some("Solo"));
        assert_eq!(create.profile.history_visible, Some(true));
    }

    #[test]
    fn create_group_refuses_a_domain_as_participant_and_a_group_address() {
        let domain = "<query xmlns='jabber:iq:mixgroupchat' status='create_group' \
                      group_id='half-made'><participants><participant>localhost</participant>\
                      </participants></query>";
        assert_eq!(refused(SERVICE, true, domain), Condition::BadRequest);
        // Groups are created at the service, never at a group, and only by a set.
        let create = "<query xmlns='jabber:iq:mixgroupchat' status='create_group'/>";
        assert_eq!(refused(GROUP, true, create), Condition::BadRequest);
        assert_eq!(refused(SERVICE, false, create), Condition::BadRequest);
    }

    #[test]
    fn get_group_profile_is_a_get_to_a_group() {
        let query = "<query xmlns='jabber:iq:mixgroupchat' status='get_group_profile' \
                     group_id='coven'/>";
        let request = parse_iq(GROUP, false, query);
        assert!(
            matches!(request, Ok(Request::GetProfile(GetProfile))),
            "{request:?}"
        );
        assert_eq!(refused(GROUP, true, query), Condition::BadRequest);
        assert_eq!(refused(SERVICE, false, query), Condition::BadRequest);
    }

    #[test]
    fn get_participants_is_a_get_to_a_group() {
        let query = "<query xmlns='jabber:iq:mixgroupchat' status='get_participants'/>";
        let request = parse_iq(GROUP, false, query);
        assert!(
            matches!(request, Ok(Request::GetParticipants(GetParticipants))),
            "{request:?}"
        );
        assert_eq!(refused(GROUP, true, query), Condition::BadRequest);
        assert_eq!(refused(SERVICE, false, query), Condition::BadRequest);
    }

    #[test]
    fn get_user_groups_is_a_get_to_the_service() {
        let query = "<query xmlns='jabber:iq:mixgroupchat' status='get_user_groups'/>";
        let request = parse_iq(SERVICE, false, query);
        assert!(
            matches!(request, Ok(Request::UserGroups(UserGroups))),
            "{request:?}"
        );
        assert_eq!(refused(GROUP, false, query), Condition::BadRequest);
        assert_eq!(refused(SERVICE, true, query), Condition::BadRequest);
    }

    #[test]
    fn add_participants_reads_the_sdk_stanza() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='add_participants'><subscriptions>\
             <subscribe node='urn:xmpp:mix:nodes:messages'/>\
             <subscribe node='urn:xmpp:mix:nodes:presence'/></subscriptions><participants>\
             <participant>dave@localhost</participant><participant>erin@localhost</participant>\
             </participants><nick>Coven</nick></query>",
        );
        let Ok(Request::AddParticipants(add)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            add,
            AddParticipants {
                users: vec![jid("dave@localhost"), jid("erin@localhost")]
            }
        );
    }

    #[test]
    fn add_participants_needs_someone_and_only_users() {
        let nobody = "<query xmlns='jabber:iq:mixgroupchat' status='add_participants'/>";
        assert_eq!(refused(GROUP, true, nobody), Condition::BadRequest);
        let garbage = "<query xmlns='jabber:iq:mixgroupchat' status='add_participants'>\
                       <participants><participant>dave@localhost</participant>\
                       <participant>not a jid@@</participant></participants></query>";
        assert_eq!(refused(GROUP, true, garbage), Condition::BadRequest);
    }

    #[test]
    fn set_group_info_reads_what_the_vcard_carries() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='set_group_info'><profile>\
             <vCard xmlns='vcard-temp'><nickName>Renamed</nickName><image/><history>0</history>\
             <thumbImage/></vCard></profile></query>",
        );
        let Ok(Request::SetInfo(set)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            set.profile,
            InfoChange {
                name: Some("Renamed".into()),
                avatar: Some(String::new()),
                thumbnail: Some(String::new()),
                history_visible: Some(false),
                ..InfoChange::default()
            }
        );
    }

    #[test]
    fn set_group_info_is_a_set_to_a_group() {
        let query = "<query xmlns='jabber:iq:mixgroupchat' status='set_group_info'/>";
        assert_eq!(refused(GROUP, false, query), Condition::BadRequest);
        assert_eq!(refused(SERVICE, true, query), Condition::BadRequest);
        // Nothing named: nothing changes, which the core decides.
        let request = parse_iq(GROUP, true, query);
        let Ok(Request::SetInfo(set)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(set.profile, InfoChange::default());
    }

    #[test]
    fn user_exit_group_names_one_participant() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='user_exit_group'>\
             <participant>bob@localhost</participant></query>",
        );
        let Ok(Request::ExitGroup(exit)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            exit,
            ExitGroup {
                participant: jid("bob@localhost")
            }
        );
    }

    #[test]
    fn user_exit_group_without_a_valid_participant_is_refused() {
        for query in [
            "<query xmlns='jabber:iq:mixgroupchat' status='user_exit_group'/>",
            "<query xmlns='jabber:iq:mixgroupchat' status='user_exit_group'>\
             <participant>not a jid@@</participant></query>",
        ] {
            assert_eq!(
                refused(GROUP, true, query),
                Condition::BadRequest,
                "{query}"
            );
        }
    }

    #[test]
    fn user_delete_group_is_a_set_to_a_group() {
        let query = "<query xmlns='jabber:iq:mixgroupchat' status='user_delete_group'>\
                     <participant>alice@localhost</participant></query>";
        let request = parse_iq(GROUP, true, query);
        assert!(
            matches!(request, Ok(Request::DeleteGroup(DeleteGroup))),
            "{request:?}"
        );
        assert_eq!(refused(SERVICE, true, query), Condition::BadRequest);
        assert_eq!(refused(GROUP, false, query), Condition::BadRequest);
    }
}
