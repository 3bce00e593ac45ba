//! Reading the participants, info, configuration, allowed and banned nodes (XEP-0369
//! §7.2.2, §7.2.3, XEP-0406) with a pubsub `<items/>` get. First, the requester must be one
//! who may learn of the channel ([`Channel::visible_to`]); to anyone else every node answers
//! `item-not-found`, as a missing channel does, so that nothing (not even its name in the
//! info node) can be probed. Then: the info node is open to all who see the channel (a
//! client reads it before joining: XEP-0369, Determining Information about a Channel); the
//! participant list and the configuration are for participants and owners (XEP-0406 lets a
//! channel choose who reads its configuration — 'Configuration Node Access' — and mixd's
//! channels choose their participants, who are told of each change); the allowed and banned
//! nodes only for owners and admins (XEP-0406: the only roles that may subscribe to them),
//! `forbidden` for everyone else.

use minidom::Element;

use super::render;
use crate::core::iso_time;
use crate::core::{AccessList, Channel, Condition, Groups, Outcome, Refusal, Role};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::node;
use crate::xml::{ns, Xml};

/// A pubsub `<items node='…'/>` get on a channel. Only the nodes a channel keeps as items
/// can be read: messages come from the archive (MAM) and presence is not kept (XEP-0403 has
/// clients send it instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Items {
    pub node: Node,
}

/// The nodes a channel can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Participants,
    Info,
    Config,
    /// XEP-0404: each participant id's real JID, for owners and admins.
    JidMap,
    Access(AccessList),
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Node::Participants => node::PARTICIPANTS,
            Node::Info => node::INFO,
            Node::Config => node::CONFIG,
            Node::JidMap => node::JIDMAP,
            Node::Access(list) => super::access::node_of(list),
        }
    }
}

impl Items {
    /// `payload` is the `<pubsub/>` of the get; the channel's name is only for the text.
    pub fn parse(env: &Envelope, payload: &Element) -> Outcome<Self> {
        let items = payload
            .get_child("items", ns::PUBSUB)
            .ok_or_else(|| bad_request("a pubsub get on a channel must be <items node='…'/>"))?;
        let node = match items.attr("node").unwrap_or_default() {
            node::PARTICIPANTS => Node::Participants,
            node::INFO => Node::Info,
            node::CONFIG => Node::Config,
            node::JIDMAP => Node::JidMap,
            other => match super::access::list_of(other) {
                Some(list) => Node::Access(list),
                None => {
                    return Err(Refusal::new(
                        Condition::ItemNotFound,
                        format!(
                            "channel '{}' has no readable node '{other}'",
                            env.channel_name()
                        ),
                    ))
                }
            },
        };
        Ok(Items { node })
    }

    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let name = env.channel_name();
        let channel = groups.visible(name, &env.sender())?;
        let mut x = Xml::new();
        x.open("pubsub", ns::PUBSUB)
            .open("items", "")
            .attr("node", self.node.name());
        match self.node {
            Node::Participants => {
                participant_only(channel, env, "list its participants")?;
                // XEP-0404: no JID in a JID-hidden channel's participants node, for anyone.
                let shown = !channel.settings().jids_hidden;
                for p in &channel.participants {
                    x.open("item", "").attr("id", &p.id.to_string());
                    render::participant(&mut x, p, shown);
                    x.close();
                }
            }
            Node::Info => {
                x.open("item", "")
                    .attr("id", &iso_time(channel.info.updated_at));
                render::info_form(&mut x, &channel.info);
                x.close();
            }
            Node::JidMap => {
                admin_only(channel, env, "read its JID map")?;
                for p in &channel.participants {
                    x.open("item", "")
                        .attr("id", &p.id.to_string())
                        .open("participant", ns::MIX_ANON)
                        .leaf("jid", "", p.jid.as_str())
                        .close()
                        .close();
                }
            }
            Node::Config => {
                participant_only(channel, env, "read its configuration")?;
                // The form names owners, admins and muted members by JID.
                if !channel.shows_jids_to(&env.sender()) {
                    admin_only(
                        channel,
                        env,
                        "read the configuration of a JID-hidden channel",
                    )?;
                }
                x.open("item", "")
                    .attr("id", &super::config::item_id(channel));
                super::config::form(&mut x, channel, groups.rules.max_members, None);
                x.close();
            }
            Node::Access(list) => {
                admin_only(channel, env, "read its access lists")?;
                super::access::items(&mut x, channel, list);
            }
        }
        Ok(env.iq_result(Some(&x.finish())))
    }
}

fn admin_only(channel: &Channel, env: &Envelope, to: &str) -> Outcome<()> {
    if channel.role_of(&env.sender()) < Role::Admin {
        return Err(Refusal::new(
            Condition::Forbidden,
            format!("only an owner or admin of '{}' may {to}", channel.name),
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::{element, envelope};
    use crate::dialect::ErrorKind;

    fn get(node: Option<&str>) -> Outcome<Items> {
        let env = envelope(
            ErrorKind::Iq,
            "hag@example.org/broom",
            "coven@mix.example.org",
        );
        let items = match node {
            Some(node) => format!("<items node='{node}'/>"),
            None => String::new(),
        };
        Items::parse(
            &env,
            &element(&format!("<pubsub xmlns='{}'>{items}</pubsub>", ns::PUBSUB)),
        )
    }

    #[test]
    fn each_readable_node_parses_and_keeps_its_name() {
        for (name, node) in [
            (node::PARTICIPANTS, Node::Participants),
            (node::INFO, Node::Info),
            (node::CONFIG, Node::Config),
            (node::ALLOWED, Node::Access(AccessList::Allowed)),
            (node::BANNED, Node::Access(AccessList::Banned)),
        ] {
            assert_eq!(get(Some(name)).unwrap(), Items { node });
            assert_eq!(node.name(), name);
        }
    }

    #[test]
    fn other_nodes_are_not_found_and_a_get_without_items_is_a_bad_request() {
        let refusal = get(Some(node::MESSAGES)).unwrap_err();
        assert_eq!(refusal.condition, Condition::ItemNotFound);
        assert_eq!(
            refusal.text,
            format!("channel 'coven' has no readable node '{}'", node::MESSAGES)
        );
        assert_eq!(get(None).unwrap_err().condition, Condition::BadRequest);
        assert_eq!(
            get(Some("")).unwrap_err().condition,
            Condition::ItemNotFound
        );
    }

    /// What `who` reads of `node` in the core's `coven` (alice owner, bob member): the
    /// reply's XML, or the refusal's condition.
    fn read(g: &Groups, who: &str, node: &str) -> Result<String, Condition> {
        let env = envelope(ErrorKind::Iq, &format!("{who}/r"), "coven@mix.example.org");
        let payload = element(&format!(
            "<pubsub xmlns='{}'><items node='{node}'/></pubsub>",
            ns::PUBSUB
        ));
        match Items::parse(&env, &payload).unwrap().apply(g, &env) {
            Ok(Handled::Reply(xml)) => Ok(xml),
            Ok(_) => panic!("a read that is not a reply"),
            Err(refusal) => {
                assert!(!refusal.text.is_empty());
                Err(refusal.condition)
            }
        }
    }

    #[test]
    fn access_lists_are_for_owners_and_admins_and_hidden_channels_for_nobody_else() {
        use crate::core::testing::{coven, jid};
        use crate::core::{JoinPolicy, SettingsChange};
        let mut g = coven();
        let alice = jid("alice@localhost");
        g.set_access(
            "coven",
            &alice,
            AccessList::Banned,
            &jid("eve@localhost"),
            true,
            5,
        )
        .unwrap();
        for node in [node::ALLOWED, node::BANNED] {
            assert!(read(&g, "alice@localhost", node).is_ok());
            assert_eq!(read(&g, "bob@localhost", node), Err(Condition::Forbidden));
            assert_eq!(read(&g, "dave@localhost", node), Err(Condition::Forbidden));
        }
        assert!(read(&g, "alice@localhost", node::BANNED)
            .unwrap()
            .contains("eve@localhost"));
        g.make_admin("coven", &alice, &jid("bob@localhost"), 6)
            .unwrap();
        assert!(read(&g, "bob@localhost", node::BANNED).is_ok());
        // The info node of a public channel is anyone's; participants and configuration are
        // the participants'.
        assert!(read(&g, "dave@localhost", node::INFO).is_ok());
        assert_eq!(
            read(&g, "dave@localhost", node::PARTICIPANTS),
            Err(Condition::Forbidden)
        );
        assert_eq!(
            read(&g, "dave@localhost", node::CONFIG),
            Err(Condition::Forbidden)
        );
        // Invitation only: to an outsider, every node is as if the channel did not exist.
        let change = SettingsChange {
            policy: Some(JoinPolicy::Invite),
            ..SettingsChange::default()
        };
        g.change_settings("coven", &alice, change, 7).unwrap();
        for node in [node::INFO, node::PARTICIPANTS, node::CONFIG, node::BANNED] {
            assert_eq!(
                read(&g, "dave@localhost", node),
                Err(Condition::ItemNotFound)
            );
            assert!(read(&g, "alice@localhost", node).is_ok());
        }
        assert!(read(&g, "bob@localhost", node::INFO).is_ok());
    }
}
