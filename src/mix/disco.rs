//! Service discovery (XEP-0030) of the service and of each channel (XEP-0369 §6.3, §7.2.1).
//! `#create-channel` is offered only to users who may create. XEP-0199 pings are answered
//! here too: a ping asks whether the entity is there, which disco also tells.
//!
//! Each requester sees only what it may (XEP-0369, Discovery: a service returns only the
//! channels, and a channel only the nodes, the requester has rights to subscribe to; a
//! channel answers disco#info if the requester is allowed to subscribe): the service lists the public channels it may join and the
//! channels it takes part in, owns or waits on ([`Groups::visible_channels`]); a channel the
//! requester may not see answers its disco#info and disco#items as a missing one does
//! (`item-not-found`), so that names cannot be probed. A public channel answers anyone the
//! access lists admit, so a client can look at it before joining. Its allowed and banned
//! nodes are listed only to its owners and admins, who alone may subscribe to them
//! (XEP-0406).

use minidom::Element;

use crate::core::{Groups, Outcome};
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
            let channel = groups.visible(name, &env.sender())?;
            x.open("identity", "")
                .attr("category", "conference")
                .attr("type", "mix")
                .attr("name", &channel.info.name)
                .close();
            CHANNEL_FEATURES
        }
    };
    for feature in features {
        x.open("feature", "").attr("var", feature).close();
    }
    Ok(env.iq_result(Some(&x.finish())))
}

/// What a channel does, so that clients offer it (each XEP asks its feature of the entity
/// that does the work, here the channel): MIX and its administration, MAM with the extended
/// query fields, flipped pages and the form (XEP-0313 §6.2), retraction with tombstones in
/// the archive (XEP-0424 §6), moderation (XEP-0425 §3), corrections (XEP-0308), reactions
/// (XEP-0444), receipts and markers, chat states, the stanza-ids it stamps (XEP-0359 §8), and
/// mixd's message states and history clearing.
pub const CHANNEL_FEATURES: &[&str] = &[
    ns::MIX_CORE,
    ns::MAM,
    MAM_EXTENDED,
    ns::MIX_ADMIN,
    ns::MIX_MISC,
    ns::MIX_ANON,
    ns::MIXD_ADMIN,
    ns::MIXD_RECEIPTS,
    ns::MIXD_HISTORY,
    ns::RETRACT,
    RETRACT_TOMBSTONE,
    ns::MODERATE,
    ns::CORRECT,
    ns::REACTIONS,
    ns::RECEIPTS,
    ns::MARKERS,
    ns::CHATSTATES,
    ns::SID,
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::PING,
];

const MAM_EXTENDED: &str = "urn:xmpp:mam:2#extended";
const RETRACT_TOMBSTONE: &str = "urn:xmpp:message-retract:1#tombstone";

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
            let requester = env.sender();
            let mut channels: Vec<_> = groups.visible_channels(&requester).collect();
            channels.sort_by(|a, b| a.name.cmp(&b.name));
            for channel in channels {
                x.open("item", "")
                    .attr("jid", &service.channel_jid(&channel.name))
                    .attr("name", &channel.info.name)
                    .close();
            }
        }
        Some(name) => {
            let channel = groups.visible(name, &env.sender())?;
            let jid = service.channel_jid(name);
            let nodes: &[&str] = if channel.is_admin_or_owner(&env.sender()) {
                &[
                    node::PARTICIPANTS,
                    node::MESSAGES,
                    node::INFO,
                    node::CONFIG,
                    node::ALLOWED,
                    node::BANNED,
                    node::JIDMAP,
                ]
            } else {
                &[node::PARTICIPANTS, node::MESSAGES, node::INFO, node::CONFIG]
            };
            for node in nodes {
                x.open("item", "")
                    .attr("jid", &jid)
                    .attr("node", node)
                    .close();
            }
        }
    }
    Ok(env.iq_result(Some(&x.finish())))
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

    #[test]
    fn a_channel_hidden_from_the_requester_answers_disco_info_as_a_missing_one() {
        use crate::core::testing::{coven, jid};
        use crate::core::{Condition, JoinPolicy, SettingsChange};
        use crate::dialect::testing::envelope;
        use crate::dialect::ErrorKind;
        let info = |g: &Groups, who: &str, to: &str| {
            let env = envelope(ErrorKind::Iq, &format!("{who}/r"), to);
            Info { node: None }
                .apply(g, &env)
                .map(|_| ())
                .map_err(|r| (r.condition, r.text))
        };
        let mut g = coven();
        assert!(info(&g, "dave@localhost", "coven@mix.example.org").is_ok());
        let change = SettingsChange {
            policy: Some(JoinPolicy::Invite),
            ..SettingsChange::default()
        };
        g.change_settings("coven", &jid("alice@localhost"), change, 5)
            .unwrap();
        let hidden = info(&g, "dave@localhost", "coven@mix.example.org").unwrap_err();
        let missing = info(&g, "dave@localhost", "nowhere@mix.example.org").unwrap_err();
        assert_eq!(hidden.0, Condition::ItemNotFound);
        assert_eq!(hidden.1.replace("coven", "nowhere"), missing.1);
        assert!(info(&g, "bob@localhost", "coven@mix.example.org").is_ok());
    }
}
