//! Reading the participants and info nodes (XEP-0369 §7.2.2, §7.2.3) with a pubsub
//! `<items/>` get. The participant list is for participants; the info node is public.

use minidom::Element;

use super::render::{self, NODE_INFO, NODE_PARTICIPANTS};
use super::{bad_request, channel_name, Envelope, Handled};
use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::xml::{ns, Xml};

pub fn get(groups: &Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
    let items = payload
        .get_child("items", ns::PUBSUB)
        .ok_or_else(|| bad_request("a pubsub get on a channel must be <items node='…'/>"))?;
    let name = channel_name(env);
    let channel = groups
        .channel(name)
        .ok_or_else(|| Refusal::new(Condition::ItemNotFound, format!("no channel '{name}'")))?;
    let node = items.attr("node").unwrap_or_default();
    let mut x = Xml::new();
    x.open("pubsub", ns::PUBSUB)
        .open("items", "")
        .attr("node", node);
    match node {
        NODE_PARTICIPANTS => {
            if channel.participant(&env.sender()).is_none() {
                return Err(Refusal::new(
                    Condition::Forbidden,
                    format!("only participants of '{name}' may list its participants"),
                ));
            }
            for p in &channel.participants {
                x.open("item", "").attr("id", &p.id.to_string());
                render::participant(&mut x, p);
                x.close();
            }
        }
        NODE_INFO => {
            x.open("item", "")
                .attr("id", &render::timestamp(channel.info.updated_at));
            render::info_form(&mut x, &channel.info);
            x.close();
        }
        other => {
            return Err(Refusal::new(
                Condition::ItemNotFound,
                format!("channel '{name}' has no readable node '{other}'"),
            ))
        }
    }
    Ok(env.iq_result(Some(&x.finish())))
}
