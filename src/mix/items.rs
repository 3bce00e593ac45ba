//! Reading the participants, info, configuration, allowed and banned nodes (XEP-0369
//! §7.2.2, §7.2.3, XEP-0406) with a pubsub `<items/>` get. The participant list and the
//! configuration are for participants, the access lists for owners and admins; the info node
//! is public.

use minidom::Element;

use super::render;
use crate::core::iso_time;
use crate::core::{Channel, Condition, Groups, Outcome, Refusal, Role};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

pub fn get(groups: &Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
    let items = payload
        .get_child("items", ns::PUBSUB)
        .ok_or_else(|| bad_request("a pubsub get on a channel must be <items node='…'/>"))?;
    let name = env.channel_name();
    let channel = groups
        .channel(name)
        .ok_or_else(|| Refusal::new(Condition::ItemNotFound, format!("no channel '{name}'")))?;
    let node = items.attr("node").unwrap_or_default();
    let mut x = Xml::new();
    x.open("pubsub", ns::PUBSUB)
        .open("items", "")
        .attr("node", node);
    match node {
        node::PARTICIPANTS => {
            participant_only(channel, env, "list its participants")?;
            for p in &channel.participants {
                x.open("item", "").attr("id", &p.id.to_string());
                render::participant(&mut x, p);
                x.close();
            }
        }
        node::INFO => {
            x.open("item", "")
                .attr("id", &iso_time(channel.info.updated_at));
            render::info_form(&mut x, &channel.info);
            x.close();
        }
        node::CONFIG => {
            participant_only(channel, env, "read its configuration")?;
            x.open("item", "").attr("id", super::config::ITEM);
            super::config::form(&mut x, channel, groups.rules.max_members, None);
            x.close();
        }
        other => {
            let Some(list) = super::access::list_of(other) else {
                return Err(Refusal::new(
                    Condition::ItemNotFound,
                    format!("channel '{name}' has no readable node '{other}'"),
                ));
            };
            if channel.role_of(&env.sender()) < Role::Admin {
                return Err(Refusal::new(
                    Condition::Forbidden,
                    format!("only an owner or admin of '{name}' may read its access lists"),
                ));
            }
            super::access::items(&mut x, channel, list);
        }
    }
    Ok(env.iq_result(Some(&x.finish())))
}

fn participant_only(channel: &Channel, env: &Envelope, to: &str) -> Outcome<()> {
    if channel.participant(&env.sender()).is_none() && !channel.is_owner(&env.sender()) {
        return Err(Refusal::new(
            Condition::Forbidden,
            format!("only participants of '{}' may {to}", channel.name),
        ));
    }
    Ok(())
}
