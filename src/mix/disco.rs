//! Service discovery (XEP-0030) of the service and of each channel (XEP-0369 §6.3, §7.2.1).
//! `#create-channel` is offered only to users who may create. XEP-0199 pings are answered
//! here too: a ping asks whether the entity is there, which disco also tells.

use minidom::Element;

use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::dialect::{Envelope, Handled, Service};
use crate::xml::node;
use crate::xml::{ns, Xml};

/// A disco#info query (XEP-0030 §3) of the service or a channel: what it is and what it
/// does. The answer depends on the address (and, for the service, on who asks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The node queried, echoed in the result as XEP-0030 asks; mixd answers every node alike.
    pub node: Option<String>,
}

impl Info {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(Info {
            node: payload.attr("node").map(str::to_owned),
        })
    }

    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        info(groups, env, self.node.as_deref())
    }
}

/// A disco#items query (XEP-0030 §4): of the service, the channels (XEP-0369 §6.3); of a
/// channel, its nodes (§7.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Items {
    /// The node queried, echoed in the result.
    pub node: Option<String>,
}

impl Items {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(Items {
            node: payload.attr("node").map(str::to_owned),
        })
    }

    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        items(groups, service, env, self.node.as_deref())
    }
}

/// An XEP-0199 ping: answered with an empty result as long as the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping;

impl Ping {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(Ping)
    }

    pub fn apply(self, env: &Envelope) -> Outcome<Handled> {
        Ok(env.iq_result(None))
    }
}

fn info(groups: &Groups, env: &Envelope, node: Option<&str>) -> Outcome<Handled> {
    let mut x = Xml::new();
    x.open("query", ns::DISCO_INFO).attr_opt("node", node);
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

fn items(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    node: Option<&str>,
) -> Outcome<Handled> {
    let mut x = Xml::new();
    x.open("query", ns::DISCO_ITEMS).attr_opt("node", node);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::element;

    #[test]
    fn disco_queries_keep_the_node_they_ask_about() {
        let info = element(
            "<query xmlns='http://jabber.org/protocol/disco#info' node='urn:xmpp:mix:nodes:info'/>",
        );
        assert_eq!(
            Info::parse(&info).unwrap(),
            Info {
                node: Some(node::INFO.into())
            }
        );
        let items = element("<query xmlns='http://jabber.org/protocol/disco#items'/>");
        assert_eq!(Items::parse(&items).unwrap(), Items { node: None });
        let ping = element("<ping xmlns='urn:xmpp:ping'/>");
        assert_eq!(Ping::parse(&ping).unwrap(), Ping);
    }
}
