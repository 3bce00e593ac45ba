//! Service discovery (XEP-0030) of the service and of each channel (XEP-0369 §6.3, §7.2.1).
//! `#create-channel` is offered only to users who may create.

use minidom::Element;

use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::dialect::{Envelope, Handled, Service};
use crate::xml::node;
use crate::xml::{ns, Xml};

pub fn info(groups: &Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
    let mut x = Xml::new();
    x.open("query", ns::DISCO_INFO)
        .attr_opt("node", payload.attr("node"));
    let features: &[&str] = match &env.channel {
        None => {
            x.open("identity", "")
                .attr("category", "conference")
                .attr("type", "mix")
                .attr("name", "mixd group chat")
                .close();
            if groups.may_create(&env.sender()) {
                &[
                    ns::MIX_CORE,
                    "urn:xmpp:mix:core:1#searchable",
                    "urn:xmpp:mix:core:1#create-channel",
                    ns::MIXD_ADMIN,
                    ns::DISCO_INFO,
                    ns::DISCO_ITEMS,
                    ns::PING,
                ]
            } else {
                &[
                    ns::MIX_CORE,
                    "urn:xmpp:mix:core:1#searchable",
                    ns::MIXD_ADMIN,
                    ns::DISCO_INFO,
                    ns::DISCO_ITEMS,
                    ns::PING,
                ]
            }
        }
        Some(name) => {
            let channel = groups.channel(name).ok_or_else(|| missing(name))?;
            x.open("identity", "")
                .attr("category", "conference")
                .attr("type", "mix")
                .attr("name", &channel.info.name)
                .close();
            &[
                ns::MIX_CORE,
                ns::MAM,
                ns::MIX_ADMIN,
                ns::MIX_MISC,
                ns::MIXD_ADMIN,
                ns::DISCO_INFO,
                ns::DISCO_ITEMS,
                ns::PING,
            ]
        }
    };
    for feature in features {
        x.open("feature", "").attr("var", feature).close();
    }
    Ok(env.iq_result(Some(&x.finish())))
}

pub fn items(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
) -> Outcome<Handled> {
    let mut x = Xml::new();
    x.open("query", ns::DISCO_ITEMS)
        .attr_opt("node", payload.attr("node"));
    match &env.channel {
        None => {
            let mut channels: Vec<_> = groups.channels().collect();
            channels.sort_by(|a, b| a.name.cmp(&b.name));
            for channel in channels {
                x.open("item", "")
                    .attr("jid", &service.channel_jid(&channel.name))
                    .attr("name", &channel.info.name)
                    .close();
            }
        }
        Some(name) => {
            groups.channel(name).ok_or_else(|| missing(name))?;
            let jid = service.channel_jid(name);
            for node in [
                node::PRESENCE,
                node::PARTICIPANTS,
                node::MESSAGES,
                node::INFO,
                node::CONFIG,
                node::ALLOWED,
                node::BANNED,
            ] {
                x.open("item", "")
                    .attr("jid", &jid)
                    .attr("node", node)
                    .close();
            }
        }
    }
    Ok(env.iq_result(Some(&x.finish())))
}

fn missing(name: &str) -> Refusal {
    Refusal::new(Condition::ItemNotFound, format!("no channel '{name}'"))
}
