//! FlyChat group operations (flychat-wire.md §1), each on the core command a MIX request
//! would run: create (with its profile and first participants), profile get and set,
//! participant list, add, exit or removal, delete, and the user's groups.

use jid::BareJid;
use minidom::Element;

use super::{descendant_text, render, NS};
use crate::core::iso_time;
use crate::core::{Channel, Dialect, Groups, InfoChange, Micros, Outcome};
use crate::dialect::{bad_request, Envelope, Handled, Service};
use crate::xml::Xml;

/// The `<participant>jid</participant>` entries under `element`.
pub(super) fn participant_jids(element: &Element) -> Outcome<Vec<BareJid>> {
    let mut jids = Vec::new();
    collect_participants(element, &mut jids)?;
    Ok(jids)
}

fn collect_participants(element: &Element, jids: &mut Vec<BareJid>) -> Outcome<()> {
    for child in element.children() {
        if child.name() == "participant" && child.children().next().is_none() {
            let text = child.text();
            let jid = BareJid::new(text.trim())
                .ok()
                .filter(|jid| jid.node().is_some())
                .ok_or_else(|| bad_request(format!("'{text}' is not a user's JID")))?;
            jids.push(jid);
        } else {
            collect_participants(child, jids)?;
        }
    }
    Ok(())
}

/// The one participant an exit, removal or admin request names.
pub(super) fn named_participant(query: &Element) -> Outcome<BareJid> {
    participant_jids(query)?
        .into_iter()
        .next()
        .ok_or_else(|| bad_request("the request names no <participant/>"))
}

/// The profile fields of a `<vCard>`: nickName is the group's name, image and thumbImage its
/// picture (URLs or upload tokens, kept as given).
fn profile_change(query: &Element) -> InfoChange {
    InfoChange {
        name: descendant_text(query, "nickName"),
        avatar: descendant_text(query, "image"),
        thumbnail: descendant_text(query, "thumbImage"),
        history_visible: descendant_text(query, "history").map(|h| h.trim() != "0"),
        ..InfoChange::default()
    }
}

/// `group_id` is the SDK's choice; without one, mixd makes one up. The result names it.
pub fn create(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let id = query.attr("group_id").filter(|id| !id.is_empty());
    let creator = env.sender();
    let mut members = vec![creator.clone()];
    members.extend(participant_jids(query)?);
    let (name, facts) = groups.create_group(
        &creator,
        id,
        profile_change(query),
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

pub fn profile(groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
    let (channel, participant) = groups.participant_of(env.channel_name(), &env.sender())?;
    let mut x = Xml::new();
    x.open("query", NS)
        .attr("status", "get_group_profile")
        .open("group", "");
    group_item(&mut x, service, channel, &participant.jid);
    x.close().close();
    Ok(env.iq_result(Some(&x.finish())))
}

/// "My groups" (`status='get_user_groups'`, an iq get to the service; mixd's, for the SDK's
/// getGroupsList): each group the sender takes part in, as get_group_profile shows one, plus
/// `role` (owner, admin or member).
pub fn user_groups(groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
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

pub fn participants(groups: &Groups, env: &Envelope) -> Outcome<Handled> {
    let (channel, _) = groups.participant_of(env.channel_name(), &env.sender())?;
    let mut x = Xml::new();
    x.open("query", NS)
        .attr("status", "get_participants")
        .open("participants", "");
    for p in &channel.participants {
        x.open("participant", "")
            .attr("jid", p.jid.as_str())
            .attr("affiliation", render::affiliation(channel.role_of(&p.jid)))
            .attr("itemid", &p.id.to_string())
            .attr("created_at", &iso_time(p.joined_at))
            .attr("is_admin_blocked", "0")
            .open("user_profile", "")
            .open("vCard", super::VCARD)
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

pub fn add(groups: &mut Groups, env: &Envelope, query: &Element, now: Micros) -> Outcome<Handled> {
    let users = participant_jids(query)?;
    if users.is_empty() {
        return Err(bad_request("add_participants names no <participant/>"));
    }
    let facts = groups.add_participants(
        env.channel_name(),
        &env.sender(),
        &users,
        Dialect::FlyChat,
        now,
    )?;
    Ok(Handled::iq_changed(env, facts, None))
}

pub fn set_info(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let (_, facts) = groups.set_info(
        env.channel_name(),
        &env.sender(),
        profile_change(query),
        now,
    )?;
    Ok(Handled::iq_changed(env, facts, None))
}

/// One stanza for leaving and for removal: a leave when it names the sender.
pub fn exit(groups: &mut Groups, env: &Envelope, query: &Element, now: Micros) -> Outcome<Handled> {
    let target = named_participant(query)?;
    let facts = groups.remove(env.channel_name(), &env.sender(), &target, now)?;
    Ok(Handled::iq_changed(env, facts, None))
}

/// The SDK exits the group before it deletes it; an owner who has just left keeps the right
/// to delete (see `core/destroy.rs`), so the pair works.
pub fn delete(groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
    let facts = groups.destroy(&env.sender(), env.channel_name(), now)?;
    Ok(Handled::iq_changed(env, facts, None))
}
