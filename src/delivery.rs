//! Delivery: what each stored fact means for each participant's clients, in the dialect
//! each understands. A group may mix both kinds of client, so every fact goes to both
//! dialects' delivery, and each addresses only its own participants in its own way:
//! `mix::deliver` to the online full JIDs (XEP-0403 presence) of those subscribed to the node
//! the fact concerns, `flychat::deliver` to bare JIDs (`normal` messages, which stock servers
//! deliver to every resource or keep offline). Each writes a fact once as a template and
//! copies it per recipient.
//!
//! What is the same in both dialects stays here: invitations, join requests and decisions
//! (to bare JIDs, since the invitee and the requester take no part yet and follow no node),
//! and the dispatch of receipt completions by the author's dialect.

use jid::BareJid;

use crate::core::iso_time;
use crate::core::{Channel, Dialect, Fact, Groups, Notice, Participant, Pending, PendingKind};
use crate::dialect::ids::Ids;
use crate::dialect::proxy::Naming;
use crate::dialect::{shapes, Service};
use crate::flychat;
use crate::mix;
use crate::store::Completion;
use crate::xml::{ns, Stanzas, Template};

/// Appends to `out` the stanzas that tell participants about `facts`, which the core has
/// already applied to `groups`. Fact by fact, so that each client learns of them in the order
/// they happened — except what one operation did to many users at once, which is told
/// together (see [`together`]): the stanzas of an add then grow with the number added plus
/// the group's size, not with their product. Says how many stanzas each dialect wrote.
pub fn deliver(groups: &Groups, service: &Service, facts: &[Fact], out: &mut Stanzas) -> Delivered {
    let mut delivered = Delivered::default();
    let mut rest = facts;
    while let Some(first) = rest.first() {
        let (run, tail) = rest.split_at(together(rest));
        rest = tail;
        match first {
            Fact::Joined { key, by, .. } if run.len() > 1 => {
                let added: Vec<&Participant> = run.iter().filter_map(joined).collect();
                delivered.mix += written(out, |out| {
                    mix::deliver::joined(groups, service, *key, &added, out)
                });
                delivered.flychat += written(out, |out| {
                    flychat::deliver::joined(groups, service, *key, by, &added, out)
                });
            }
            // FlyChat clients have no notices (`flychat::deliver::fact`).
            Fact::Noticed(_) if run.len() > 1 => {
                let notices: Vec<&Notice> = run.iter().filter_map(noticed).collect();
                delivered.mix += written(out, |out| {
                    mix::deliver::noticed(groups, service, &notices, out)
                });
            }
            _ => {
                delivered.mix +=
                    written(out, |out| mix::deliver::fact(groups, service, first, out));
                delivered.flychat += written(out, |out| {
                    flychat::deliver::fact(groups, service, first, out)
                });
            }
        }
        for fact in run {
            delivered.shared += written(out, |out| membership(groups, service, fact, out));
        }
    }
    delivered
}

/// How many stanzas [`deliver`] wrote, by whose shape they have.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub mix: usize,
    pub flychat: usize,
    /// Membership notices, the same in both dialects.
    pub shared: usize,
}

/// How many stanzas `write` appended to `out`.
fn written(out: &mut Stanzas, write: impl FnOnce(&mut Stanzas)) -> usize {
    let before = out.len();
    write(out);
    out.len() - before
}

/// How many facts at the head of `facts` (not empty) are told together: the joins of one
/// operation (one channel, one actor: an add of several users, a group created with its
/// members), or the notices of one kind in one channel that such an operation notes. Any other
/// fact is told alone.
fn together(facts: &[Fact]) -> usize {
    let same = |a: &Fact, b: &Fact| match (a, b) {
        (
            Fact::Joined {
                key: k1, by: by1, ..
            },
            Fact::Joined {
                key: k2, by: by2, ..
            },
        ) => k1 == k2 && by1 == by2,
        (Fact::Noticed(n1), Fact::Noticed(n2)) => n1.channel == n2.channel && n1.kind == n2.kind,
        _ => false,
    };
    1 + facts[1..].iter().take_while(|f| same(&facts[0], f)).count()
}

fn joined(fact: &Fact) -> Option<&Participant> {
    match fact {
        Fact::Joined { participant, .. } => Some(participant),
        _ => None,
    }
}

fn noticed(fact: &Fact) -> Option<&Notice> {
    match fact {
        Fact::Noticed(notice) => Some(notice),
        _ => None,
    }
}

/// Tells authors that every member got (or saw) their message, each in its own dialect.
pub fn completions(
    groups: &Groups,
    service: &Service,
    completions: &[Completion],
    out: &mut Stanzas,
) {
    for done in completions {
        // The channel may be gone, or the author have left, since the receipt was stored.
        let Some(channel) = groups.channel_by_key(done.channel) else {
            continue;
        };
        let Some(author) = channel.participant(&done.author) else {
            continue;
        };
        match author.dialect {
            Dialect::Mix => mix::deliver::completion(service, channel, author, done, out),
            Dialect::FlyChat => flychat::deliver::completion(service, channel, author, done, out),
        }
    }
}

/// Invitations, join requests and their outcomes, the same in both dialects: to the invitee,
/// to the owners and admins who decide, and to the requester. Each carries a readable
/// `<body>` too, which clients that know nothing of these elements show. Every other fact
/// is a dialect's own, listed so that a new fact does not compile until it is placed.
fn membership(groups: &Groups, service: &Service, fact: &Fact, out: &mut Stanzas) {
    match fact {
        Fact::PendingAdded { key, pending } => {
            let Some(channel) = groups.channel_by_key(*key) else {
                return;
            };
            let jid = service.channel_jid(&channel.name);
            // The invitee, not yet a participant, sees what a member sees (XEP-0404).
            let names = Naming::for_viewer(channel, &jid, &pending.jid);
            match pending.kind {
                PendingKind::Invited => send(
                    &invitation(&service.ids, &jid, pending, &names.jid(&pending.by)),
                    [&pending.jid],
                    out,
                ),
                PendingKind::Requested => {
                    send(&join_request(&jid, pending), deciders(channel), out)
                }
            }
        }
        Fact::PendingResolved {
            key,
            pending,
            by,
            accepted,
        } => {
            let Some(channel) = groups.channel_by_key(*key) else {
                return;
            };
            let jid = service.channel_jid(&channel.name);
            // The invitee or requester sees the decider as a member would (XEP-0404).
            let names = Naming::for_viewer(channel, &jid, &pending.jid);
            let mut recipients = deciders(channel);
            if names.shows_jids() {
                recipients.push(&pending.jid);
            }
            send(
                &decision(&jid, pending, by.as_str(), *accepted),
                recipients,
                out,
            );
            if !names.shows_jids() {
                let template = decision(&jid, pending, &names.jid(by), *accepted);
                send(&template, [&pending.jid], out);
            }
        }
        Fact::ChannelCreated { .. }
        | Fact::ChannelDestroyed { .. }
        | Fact::Joined { .. }
        | Fact::Left { .. }
        | Fact::RoleChanged { .. }
        | Fact::SettingsChanged { .. }
        | Fact::AccessChanged { .. }
        | Fact::Muted { .. }
        | Fact::NickChanged { .. }
        | Fact::SubscriptionChanged { .. }
        | Fact::Posted(_)
        | Fact::Noticed(_)
        | Fact::InfoChanged { .. }
        | Fact::PresenceChanged { .. }
        | Fact::ChatState { .. }
        | Fact::Receipt(_)
        | Fact::Retracted(_)
        | Fact::Corrected(_)
        | Fact::Reacted(_)
        | Fact::HistoryCleared { .. } => {}
    }
}

/// One copy of `template` per bare JID.
fn send<'a>(
    template: &Template,
    recipients: impl IntoIterator<Item = &'a BareJid>,
    out: &mut Stanzas,
) {
    for recipient in recipients {
        template.address(recipient.as_str(), out);
    }
}

/// Owners and admins, whether or not they take part (an owner need not be a participant).
fn deciders(channel: &Channel) -> Vec<&BareJid> {
    let mut deciders: Vec<&BareJid> = channel.admins().map(|p| &*p.jid).collect();
    for owner in &channel.owners {
        if !deciders.contains(&owner) {
            deciders.push(owner);
        }
    }
    deciders
}

/// To the invitee: an XEP-0407 invitation.
fn invitation(ids: &Ids, channel_jid: &str, pending: &Pending, inviter: &str) -> Template {
    shapes::normal_message(channel_jid, |x| {
        x.leaf(
            "body",
            "",
            &format!("{inviter} invites you to join {channel_jid}"),
        );
        shapes::invitation(x, ids, channel_jid, pending, inviter);
    })
}

/// To the deciders: someone asks to join.
fn join_request(channel_jid: &str, pending: &Pending) -> Template {
    shapes::normal_message(channel_jid, |x| {
        x.leaf(
            "body",
            "",
            &format!("{} asks to join {channel_jid}", pending.jid),
        );
        x.open("join-request", ns::MIXD_ADMIN)
            .attr("channel", channel_jid)
            .attr("jid", pending.jid.as_str())
            .attr("at", &iso_time(pending.at))
            .close();
    })
}

/// To the deciders and the invitee or requester: how an invitation or request was answered.
fn decision(channel_jid: &str, pending: &Pending, by: &str, accepted: bool) -> Template {
    let outcome = if accepted { "accepted" } else { "declined" };
    let (kind, text) = match pending.kind {
        PendingKind::Invited => (
            "invitation",
            format!("{by} {outcome} the invitation to {channel_jid}"),
        ),
        PendingKind::Requested => (
            "request",
            format!(
                "{by} {outcome} the request of {} to join {channel_jid}",
                pending.jid
            ),
        ),
    };
    shapes::normal_message(channel_jid, |x| {
        x.leaf("body", "", &text);
        x.open("decision", ns::MIXD_ADMIN)
            .attr("channel", channel_jid)
            .attr("kind", kind)
            .attr("jid", pending.jid.as_str())
            .attr("accepted", if accepted { "true" } else { "false" })
            .attr("by", by)
            .close();
    })
}

#[cfg(test)]
mod tests {
    //! Who is told what, without a server: a channel built with the core's commands, whose
    //! facts go through `deliver`; the stanzas are parsed back and checked by recipient and
    //! shape.
    //!
    //! The channel `coven`: alice (owner) with two clients online, bob with one and carol
    //! with none, all three MIX and subscribed to every node; dave and erin, FlyChat.

    use jid::FullJid;
    use minidom::Element;

    use super::*;
    use crate::core::testing::{chat_state, coven, groups, jid, member, text};
    use crate::core::{
        ChatState, InfoChange, JoinPolicy, MessageRef, Nodes, Posted, ReceiptKind, SettingsChange,
        Snapshot,
    };
    use crate::xml::node;

    const CHANNEL: &str = "coven@mix.localhost";
    const MIX_CLIENTS: [&str; 3] = [
        "alice@localhost/laptop",
        "alice@localhost/phone",
        "bob@localhost/pc",
    ];

    fn service() -> Service {
        crate::dialect::testing::service_at("mix.localhost")
    }

    fn online(g: &mut Groups, client: &str) {
        g.presence("coven", &FullJid::new(client).unwrap(), true)
            .unwrap();
    }

    /// `coven` as the module describes it.
    fn mixed() -> Groups {
        let mut g = mix_only();
        g.join(
            "coven",
            &jid("carol@localhost"),
            Some("carol"),
            Nodes::ALL,
            4,
        )
        .unwrap();
        let flychat = [jid("dave@localhost"), jid("erin@localhost")];
        g.add_participants(
            "coven",
            &jid("alice@localhost"),
            &flychat,
            Dialect::FlyChat,
            5,
        )
        .unwrap();
        g
    }

    /// `coven` with only its MIX participants alice and bob, online as in `mixed`.
    fn mix_only() -> Groups {
        let mut g = coven();
        for client in MIX_CLIENTS {
            online(&mut g, client);
        }
        g
    }

    /// One stanza sent: to whom, and the stanza.
    struct Sent {
        to: String,
        stanza: Element,
    }

    impl Sent {
        fn from(&self) -> &str {
            self.stanza.attr("from").unwrap_or_default()
        }

        /// The first descendant named `name` in namespace `ns`.
        fn find(&self, name: &str, ns: &str) -> Option<&Element> {
            fn walk<'e>(e: &'e Element, name: &str, ns: &str) -> Option<&'e Element> {
                e.children()
                    .find_map(|c| (c.is(name, ns)).then_some(c).or_else(|| walk(c, name, ns)))
            }
            walk(&self.stanza, name, ns)
        }

        fn has(&self, name: &str, ns: &str) -> bool {
            self.find(name, ns).is_some()
        }

        fn kind(&self) -> &str {
            self.stanza.attr("type").unwrap_or("")
        }
    }

    /// What `deliver` sends for `facts`, parsed.
    fn deliver_all(g: &Groups, facts: &[Fact]) -> Vec<Sent> {
        let mut out = Stanzas::default();
        deliver(g, &service(), facts, &mut out);
        parse(out)
    }

    fn parse(out: Stanzas) -> Vec<Sent> {
        out.iter()
            .map(|s| {
                let stanza: Element = s.parse().unwrap_or_else(|e| panic!("{e}: {s}"));
                assert!(stanza.is("message", ns::COMPONENT), "{s}");
                let from = stanza.attr("from").unwrap_or_default();
                let (bare, _) = from.split_once('/').unwrap_or((from, ""));
                assert_eq!(bare, CHANNEL, "{s}");
                Sent {
                    to: stanza.attr("to").unwrap().to_owned(),
                    stanza,
                }
            })
            .collect()
    }

    /// The recipients of the stanzas that `matches`, sorted (repeats kept).
    fn to(sent: &[Sent], matches: impl Fn(&Sent) -> bool) -> Vec<&str> {
        let mut to: Vec<&str> = sent
            .iter()
            .filter(|s| matches(s))
            .map(|s| s.to.as_str())
            .collect();
        to.sort_unstable();
        to
    }

    /// A MIX pubsub event on `node` (FlyChat's events are `normal` messages).
    fn on_node(s: &Sent, node: &str) -> bool {
        s.kind() == "headline"
            && s.find("items", ns::PUBSUB_EVENT)
                .is_some_and(|items| items.attr("node") == Some(node))
    }

    /// A FlyChat group event: a `normal` message with an `<event>`.
    fn flychat_event(s: &Sent) -> bool {
        s.kind() == "normal" && s.has("event", ns::PUBSUB_EVENT)
    }

    /// A notice to the configuration node's followers.
    fn notice(s: &Sent) -> bool {
        s.kind() == "headline" && s.has("notice", ns::MIXD_NOTICE)
    }

    fn post(g: &mut Groups, who: &str, body: &str, now: i64) -> Vec<Fact> {
        g.post("coven", &jid(who), text(body), now).unwrap()
    }

    /// A post of `who`'s, and the reference to it a retraction names (`client_id`: the id
    /// its sender gave it).
    fn referenced_post(
        g: &mut Groups,
        who: &str,
        body: &str,
        now: i64,
        client_id: Option<&str>,
    ) -> (std::sync::Arc<Posted>, MessageRef) {
        let facts = post(g, who, body, now);
        let Fact::Posted(posted) = &facts[0] else {
            panic!("{facts:?}")
        };
        let message = MessageRef {
            id: posted.id,
            channel: posted.channel,
            sender: posted.sender.clone(),
            client_id: client_id.map(str::to_owned),
            retracted: false,
        };
        (posted.clone(), message)
    }

    #[test]
    fn a_post_reaches_each_online_mix_client_once_and_the_other_flychat_members() {
        let mut g = mixed();
        let facts = post(&mut g, "alice@localhost", "hi", 10);
        let Fact::Posted(posted) = &facts[0] else {
            panic!("{facts:?}")
        };
        let sent = deliver_all(&g, &facts);
        // The sender's own clients get the reflection; carol has no client online.
        assert_eq!(to(&sent, |s| s.kind() == "groupchat"), MIX_CLIENTS);
        assert_eq!(
            to(&sent, |s| s.kind() == "normal"),
            ["dave@localhost", "erin@localhost"]
        );
        assert_eq!(sent.len(), 5, "nothing else");
        // The archive id's opaque form, in each dialect's spelling, as stanza id and
        // stanza-id alike.
        let ids = service().ids;
        for s in &sent {
            let body = s.stanza.get_child("body", ns::COMPONENT).unwrap();
            assert_eq!(body.text(), "hi");
            let id = match s.kind() {
                "groupchat" => ids.encode(posted.id),
                _ => ids.encode_digits(posted.id),
            };
            assert_ne!(id, posted.id.to_string());
            let sid = s.find("stanza-id", ns::SID).unwrap();
            assert_eq!(sid.attr("id"), Some(id.as_str()));
            assert_eq!(s.stanza.attr("id"), Some(id.as_str()));
            assert_eq!(ids.decode(&id), Some(posted.id));
            let mix = s.find("mix", ns::MIX_CORE).unwrap();
            let sender = mix.get_child("jid", ns::MIX_CORE).unwrap().text();
            assert_eq!(sender, "alice@localhost");
            if s.kind() == "groupchat" {
                assert!(mix.has_child("nick", ns::MIX_CORE));
                // XEP-0369 §7.1.6: from the channel, with the sender's id as resource.
                let alice = g.channel("coven").unwrap().participant(&posted.sender);
                assert_eq!(s.from(), format!("{CHANNEL}/{}", alice.unwrap().id));
            } else {
                assert!(mix.has_child("submission-id", ns::MIX_CORE), "FlyChat's id");
                assert!(s.has("timestamp", "urn:xmpp:timestamp"));
            }
        }
    }

    #[test]
    fn a_flychat_sender_gets_no_copy_of_its_own_post() {
        let mut g = mixed();
        let facts = post(&mut g, "dave@localhost", "hello", 10);
        let sent = deliver_all(&g, &facts);
        assert_eq!(to(&sent, |s| s.kind() == "groupchat"), MIX_CLIENTS);
        assert_eq!(to(&sent, |s| s.kind() == "normal"), ["erin@localhost"]);
    }

    #[test]
    fn who_unsubscribed_from_messages_still_follows_the_participants() {
        let mut g = mixed();
        g.update_subscription("coven", &jid("bob@localhost"), Nodes::NONE, Nodes::MESSAGES)
            .unwrap();
        let facts = post(&mut g, "alice@localhost", "hi", 10);
        let sent = deliver_all(&g, &facts);
        assert_eq!(
            to(&sent, |s| s.kind() == "groupchat"),
            ["alice@localhost/laptop", "alice@localhost/phone"]
        );
        let (_, facts) = g
            .join(
                "coven",
                &jid("frank@localhost"),
                Some("frank"),
                Nodes::ALL,
                11,
            )
            .unwrap();
        let sent = deliver_all(&g, &facts);
        assert_eq!(to(&sent, |s| on_node(s, node::PARTICIPANTS)), MIX_CLIENTS);
    }

    #[test]
    fn a_channel_without_flychat_members_gets_no_flychat_stanza() {
        let mut g = mix_only();
        let alice = jid("alice@localhost");
        let mut facts = post(&mut g, "bob@localhost", "hi", 10);
        facts.extend(chat_state(&mut g, "alice@localhost", ChatState::Composing));
        let (_, joined) = g
            .join("coven", &jid("frank@localhost"), None, Nodes::ALL, 11)
            .unwrap();
        facts.extend(joined);
        let change = InfoChange {
            name: Some("Sabbath".into()),
            ..InfoChange::default()
        };
        facts.extend(g.set_info("coven", &alice, change, 12).unwrap().1);
        let bob = jid("bob@localhost");
        facts.extend(g.make_admin("coven", &alice, &bob, 13).unwrap());
        facts.extend(g.leave("coven", &jid("frank@localhost"), 14).unwrap());
        let sent = deliver_all(&g, &facts);
        assert!(!sent.is_empty());
        for s in &sent {
            assert!(MIX_CLIENTS.contains(&s.to.as_str()), "to {}", s.to);
            assert_ne!(s.kind(), "normal", "{:?}", s.stanza);
        }
    }

    #[test]
    fn a_join_is_published_to_mix_subscribers_and_told_to_flychat_members() {
        let mut g = mixed();
        let (_, facts) = g
            .join(
                "coven",
                &jid("frank@localhost"),
                Some("frank"),
                Nodes::ALL,
                10,
            )
            .unwrap();
        let sent = deliver_all(&g, &facts);
        let items: Vec<&Sent> = sent
            .iter()
            .filter(|s| on_node(s, node::PARTICIPANTS))
            .collect();
        assert_eq!(items.len(), 3);
        let frank = member(&g, "frank@localhost");
        for s in &items {
            let item = s.find("item", ns::PUBSUB_EVENT).unwrap();
            assert_eq!(item.attr("id"), Some(frank.id.to_string().as_str()));
            let participant = item.get_child("participant", ns::MIX_CORE).unwrap();
            let nick = participant.get_child("nick", ns::MIX_CORE).unwrap().text();
            assert_eq!(nick, "frank");
        }
        assert_eq!(
            to(&sent, flychat_event),
            ["dave@localhost", "erin@localhost"]
        );
        let added = sent.iter().find(|s| flychat_event(s)).unwrap();
        let participant = added.find("participant", ns::MIX_CORE).unwrap();
        assert_eq!(participant.attr("jid"), Some("frank@localhost"));
        // The configuration node's followers (everyone here) see the notice.
        assert_eq!(to(&sent, notice), MIX_CLIENTS);
        let kind = sent.iter().find(|s| notice(s)).unwrap();
        let kind = kind.find("notice", ns::MIXD_NOTICE).unwrap().attr("kind");
        assert_eq!(kind, Some("added"));
        assert_eq!(sent.len(), 3 + 2 + 3, "nothing else");
    }

    #[test]
    fn a_flychat_member_who_leaves_is_told_and_a_removed_mix_member_is_not() {
        let mut g = mixed();
        let dave = member(&g, "dave@localhost");
        let facts = g.leave("coven", &jid("dave@localhost"), 10).unwrap();
        let sent = deliver_all(&g, &facts);
        assert_eq!(
            to(&sent, flychat_event),
            ["dave@localhost", "erin@localhost"]
        );
        let retracts = to(&sent, |s| {
            on_node(s, node::PARTICIPANTS)
                && s.find("retract", ns::PUBSUB_EVENT).unwrap().attr("id")
                    == Some(dave.id.to_string().as_str())
        });
        assert_eq!(retracts, MIX_CLIENTS);

        let facts = g
            .remove("coven", &jid("alice@localhost"), &jid("bob@localhost"), 11)
            .unwrap();
        let sent = deliver_all(&g, &facts);
        assert_eq!(
            to(&sent, |s| on_node(s, node::PARTICIPANTS)),
            ["alice@localhost/laptop", "alice@localhost/phone"]
        );
        assert!(sent.iter().all(|s| !s.to.starts_with("bob@")));
        let left = sent.iter().find(|s| flychat_event(s)).unwrap();
        assert_eq!(left.to, "erin@localhost");
        let item = left.find("item", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(item.attr("publisher"), Some("alice@localhost"));
    }

    #[test]
    fn an_info_change_goes_to_the_info_node_and_flychat_profiles() {
        let mut g = mixed();
        let change = InfoChange {
            name: Some("Sabbath".into()),
            ..InfoChange::default()
        };
        let (_, facts) = g
            .set_info("coven", &jid("alice@localhost"), change, 10)
            .unwrap();
        let sent = deliver_all(&g, &facts);
        let info: Vec<&Sent> = sent.iter().filter(|s| on_node(s, node::INFO)).collect();
        assert_eq!(info.len(), 3);
        for s in info {
            let form = s.find("x", ns::DATA_FORMS).unwrap();
            let name = form
                .children()
                .find(|f| f.attr("var") == Some("Name"))
                .unwrap();
            assert_eq!(
                name.get_child("value", ns::DATA_FORMS).unwrap().text(),
                "Sabbath"
            );
        }
        assert_eq!(
            to(&sent, flychat_event),
            ["dave@localhost", "erin@localhost"]
        );
        let profile = sent.iter().find(|s| flychat_event(s)).unwrap();
        let update = profile.find("info", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(update.attr("status"), Some("group_profile_updated"));
        let vcard = update.get_child("vCard", "vcard-temp").unwrap();
        assert_eq!(
            vcard.get_child("nickName", "vcard-temp").unwrap().text(),
            "Sabbath"
        );
    }

    #[test]
    fn a_role_change_updates_the_configuration_node_and_tells_flychat_members() {
        let mut g = mixed();
        let facts = g
            .make_admin("coven", &jid("alice@localhost"), &jid("bob@localhost"), 10)
            .unwrap();
        let sent = deliver_all(&g, &facts);
        assert_eq!(to(&sent, |s| on_node(s, node::CONFIG)), MIX_CLIENTS);
        assert!(sent
            .iter()
            .filter(|s| on_node(s, node::CONFIG))
            .all(|s| s.has("x", ns::DATA_FORMS)));
        assert_eq!(
            to(&sent, flychat_event),
            ["dave@localhost", "erin@localhost"]
        );
        let made = sent.iter().find(|s| flychat_event(s)).unwrap();
        let info = made.find("info", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(info.attr("new_admin"), Some("bob@localhost"));
        assert_eq!(info.attr("done_by"), Some("alice@localhost"));
    }

    #[test]
    fn a_retraction_comes_from_its_author_and_a_moderation_from_the_channel_naming_the_moderator() {
        let mut g = mixed();
        let (posted, message) = referenced_post(&mut g, "bob@localhost", "oops", 10, None);
        let bob = jid("bob@localhost");
        let facts = g.retract("coven", &bob, Some(&message), None, 11).unwrap();
        let Fact::Retracted(retraction) = &facts[0] else {
            panic!("{facts:?}")
        };
        let sent = deliver_all(&g, &facts);
        let ids = service().ids;
        let id = ids.encode(posted.id);
        // Archived (XEP-0424 §6): its own archive id as id and stanza-id.
        let own = ids.encode(retraction.id);
        let retracted = to(&sent, |s| {
            s.kind() == "groupchat"
                && s.find("retract", ns::RETRACT).unwrap().attr("id") == Some(id.as_str())
                && s.stanza.attr("id") == Some(own.as_str())
                && s.find("stanza-id", ns::SID).unwrap().attr("id") == Some(own.as_str())
                && !s.has("moderated", ns::MODERATE)
        });
        assert_eq!(retracted, MIX_CLIENTS, "the retracter's clients too");
        let bob_id = g.channel("coven").unwrap().participant(&bob).unwrap().id;
        for s in sent.iter().filter(|s| s.kind() == "groupchat") {
            assert_eq!(s.from(), format!("{CHANNEL}/{bob_id}"), "from its author");
        }
        // FlyChat names a message its sender gave no id by the opaque id in digits.
        let digits = ids.encode_digits(posted.id);
        let recalls = to(&sent, |s| {
            s.kind() == "normal"
                && s.find("recall", flychat::NS).unwrap().attr("id") == Some(&*digits)
        });
        assert_eq!(recalls, ["dave@localhost", "erin@localhost"]);

        let (_, message) = referenced_post(&mut g, "dave@localhost", "spam", 12, Some("m-1"));
        let reason = Some(Some("spam".to_owned()));
        let facts = g
            .retract("coven", &jid("alice@localhost"), Some(&message), reason, 13)
            .unwrap();
        let sent = deliver_all(&g, &facts);
        let moderated: Vec<&Sent> = sent.iter().filter(|s| s.kind() == "groupchat").collect();
        assert_eq!(moderated.len(), 3);
        let alice = g.channel("coven").unwrap();
        let alice_id = alice.participant(&jid("alice@localhost")).unwrap().id;
        for s in moderated {
            // XEP-0425: from the channel, naming the moderator by its JID in the channel.
            assert_eq!(s.from(), CHANNEL);
            let by = s.find("moderated", ns::MODERATE).unwrap().attr("by");
            assert_eq!(by, Some(format!("{CHANNEL}/{alice_id}").as_str()));
            assert_eq!(s.find("reason", ns::RETRACT).unwrap().text(), "spam");
        }
        let recall = sent.iter().find(|s| s.has("recall", flychat::NS)).unwrap();
        let recall = recall.find("recall", flychat::NS).unwrap();
        assert_eq!(
            recall.attr("id"),
            Some("m-1"),
            "FlyChat names it by its own id"
        );
    }

    #[test]
    fn chat_states_go_to_everyone_but_the_sender() {
        let mut g = mixed();
        let facts = chat_state(&mut g, "bob@localhost", ChatState::Composing);
        let sent = deliver_all(&g, &facts);
        let mix = to(&sent, |s| {
            s.has("composing", ns::CHATSTATES) && s.kind() == "groupchat"
        });
        assert_eq!(mix, ["alice@localhost/laptop", "alice@localhost/phone"]);
        let flychat = to(&sent, |s| s.kind() == "normal");
        assert_eq!(flychat, ["dave@localhost", "erin@localhost"]);
        let typing = sent.iter().find(|s| s.kind() == "normal").unwrap();
        let composing = typing.find("composing", ns::CHATSTATES).unwrap();
        assert_eq!(composing.attr("group_id"), Some("coven@mix.localhost"));
        assert_eq!(sent.len(), 4);

        let facts = chat_state(&mut g, "dave@localhost", ChatState::Paused);
        let sent = deliver_all(&g, &facts);
        assert_eq!(to(&sent, |s| s.has("paused", ns::CHATSTATES)), MIX_CLIENTS);
        // FlyChat knows composing and, for every other state, gone.
        assert_eq!(
            to(&sent, |s| s.has("gone", ns::CHATSTATES)),
            ["erin@localhost"]
        );
    }

    #[test]
    fn a_destroyed_channel_tells_every_participant_whatever_it_follows() {
        let mut g = mixed();
        g.update_subscription("coven", &jid("bob@localhost"), Nodes::NONE, Nodes::ALL)
            .unwrap();
        let facts = g.destroy(&jid("alice@localhost"), "coven", 10).unwrap();
        let sent = deliver_all(&g, &facts);
        let destroyed = to(&sent, |s| {
            s.find("destroy", ns::MIX_CORE)
                .is_some_and(|d| d.attr("channel") == Some("coven"))
                && s.find("delete", ns::PUBSUB_EVENT).is_some()
        });
        assert_eq!(destroyed, MIX_CLIENTS);
        let deleted = to(&sent, |s| {
            s.find("groupdelete", flychat::NS)
                .is_some_and(|d| d.attr("group_id") == Some("coven"))
        });
        assert_eq!(deleted, ["dave@localhost", "erin@localhost"]);
        assert_eq!(sent.len(), 5);
    }

    #[test]
    fn an_invitation_reaches_the_invitee_and_the_members_hear_of_it() {
        let mut g = mixed();
        let (_, facts) = g
            .invite(
                "coven",
                &jid("alice@localhost"),
                &[jid("hank@localhost")],
                10,
            )
            .unwrap();
        let sent = deliver_all(&g, &facts);
        assert_eq!(
            to(&sent, |s| s.has("invitation", ns::MIX_MISC)),
            ["hank@localhost"]
        );
        let invitation = sent.iter().find(|s| s.to == "hank@localhost").unwrap();
        assert_eq!(invitation.kind(), "normal");
        let x = invitation.find("invitation", ns::MIX_MISC).unwrap();
        assert_eq!(
            x.get_child("inviter", ns::MIX_MISC).unwrap().text(),
            "alice@localhost"
        );
        assert_eq!(
            x.get_child("channel", ns::MIX_MISC).unwrap().text(),
            CHANNEL
        );
        assert!(invitation.stanza.has_child("body", ns::COMPONENT));
        let invited = to(&sent, |s| {
            s.find("admin", ns::MIXD_ADMIN)
                .is_some_and(|i| i.attr("status") == Some("user_invited"))
        });
        assert_eq!(invited, ["dave@localhost", "erin@localhost"]);
        assert_eq!(to(&sent, notice), MIX_CLIENTS);
        assert_eq!(sent.len(), 1 + 2 + 3, "nothing else");
    }

    #[test]
    fn a_join_request_reaches_the_deciders_and_the_decision_the_requester() {
        let mut g = mixed();
        let alice = jid("alice@localhost");
        let change = SettingsChange {
            policy: Some(JoinPolicy::Request),
            ..SettingsChange::default()
        };
        g.change_settings("coven", &alice, change, 10).unwrap();
        g.make_admin("coven", &alice, &jid("erin@localhost"), 11)
            .unwrap();
        let ivy = jid("ivy@localhost");
        let facts = g.request_join("coven", &ivy, Dialect::Mix, 12).unwrap();
        let sent = deliver_all(&g, &facts);
        let requests = to(&sent, |s| s.has("join-request", ns::MIXD_ADMIN));
        assert_eq!(requests, ["alice@localhost", "erin@localhost"]);
        assert!(sent.iter().all(|s| s.to != "ivy@localhost"));

        let facts = g.decide("coven", &alice, &ivy, true, 13).unwrap();
        let sent = deliver_all(&g, &facts);
        let decisions = to(&sent, |s| {
            s.find("decision", ns::MIXD_ADMIN).is_some_and(|d| {
                d.attr("accepted") == Some("true") && d.attr("kind") == Some("request")
            })
        });
        assert_eq!(
            decisions,
            ["alice@localhost", "erin@localhost", "ivy@localhost"]
        );
        // The approval is told to FlyChat members as the join it is, and no more.
        let added = to(&sent, flychat_event);
        assert_eq!(added, ["dave@localhost", "erin@localhost"]);
    }

    #[test]
    fn a_completion_reaches_the_author_in_its_dialect() {
        let mut g = mixed();
        let done = |author: &str, kind| Completion {
            channel: g.channel("coven").unwrap().key,
            message: 7,
            client_id: Some("c-7".into()),
            author: jid(author),
            kind,
        };
        let batch = [
            done("alice@localhost", ReceiptKind::Delivered),
            done("dave@localhost", ReceiptKind::Displayed),
            done("carol@localhost", ReceiptKind::Delivered),
            done("zed@localhost", ReceiptKind::Delivered),
            done("alice@localhost", ReceiptKind::Displayed),
        ];
        let mut out = Stanzas::default();
        completions(&g, &service(), &batch, &mut out);
        let sent = parse(out);
        // XEP-0184: a receipt names the author's own message by the id it gave it.
        let received = to(&sent, |s| {
            s.find("received", ns::RECEIPTS)
                .is_some_and(|r| r.attr("id") == Some("c-7"))
        });
        assert_eq!(
            received,
            ["alice@localhost/laptop", "alice@localhost/phone"],
            "carol has no client online; zed takes no part"
        );
        // XEP-0333 in group chats: a marker names it by the channel's stanza-id.
        let seven = service().ids.encode(7);
        let displayed = to(&sent, |s| {
            s.find("displayed", ns::MARKERS)
                .is_some_and(|r| r.attr("id") == Some(seven.as_str()))
        });
        assert_eq!(
            displayed,
            ["alice@localhost/laptop", "alice@localhost/phone"]
        );
        let seen = to(&sent, |s| {
            s.find("seen", ns::RECEIPTS).is_some_and(|r| {
                r.attr("id") == Some("c-7") && r.attr("message_status") == Some("2")
            })
        });
        assert_eq!(seen, ["dave@localhost"]);
        assert_eq!(sent.len(), 5);

        g.leave("coven", &jid("dave@localhost"), 10).unwrap();
        let mut out = Stanzas::default();
        completions(&g, &service(), &batch[1..2], &mut out);
        assert!(out.is_empty(), "an author who left is not told");
    }

    #[test]
    fn what_concerns_one_participant_alone_is_told_to_nobody() {
        let mut g = mixed();
        let bob = jid("bob@localhost");
        let mut facts = Vec::new();
        let phone = FullJid::new("bob@localhost/phone").unwrap();
        facts.extend(g.presence("coven", &phone, true).unwrap());
        let (_, changed) = g
            .update_subscription("coven", &bob, Nodes::NONE, Nodes::INFO)
            .unwrap();
        facts.extend(changed);
        assert_eq!(facts.len(), 2);
        assert!(deliver_all(&g, &facts).is_empty());
    }

    /// `n` users `user0@localhost` … .
    fn users(n: usize) -> Vec<BareJid> {
        (0..n).map(|i| jid(&format!("user{i}@localhost"))).collect()
    }

    /// The `userAdded` events: (to, the participant it names).
    fn user_added(sent: &[Sent]) -> Vec<(&str, &str)> {
        let mut added: Vec<(&str, &str)> = sent
            .iter()
            .filter(|s| flychat_event(s))
            .filter_map(|s| Some((s.to.as_str(), s.find("participant", ns::MIX_CORE)?)))
            .map(|(to, p)| (to, p.attr("jid").unwrap()))
            .collect();
        added.sort_unstable();
        added
    }

    #[test]
    fn a_group_created_with_255_members_is_told_in_stanzas_linear_in_its_size() {
        let mut g = groups();
        let alice = jid("alice@localhost");
        let mut members = users(254);
        members.insert(0, alice.clone());
        let info = InfoChange {
            name: Some("Trip".into()),
            ..InfoChange::default()
        };
        let (_, facts) = g
            .create_group(&alice, Some("trip"), info, &members, Dialect::FlyChat, 1)
            .unwrap();
        let mut out = Stanzas::default();
        deliver(&g, &service(), &facts, &mut out);
        let sent: Vec<Element> = out.iter().map(|s| s.parse().unwrap()).collect();
        // Each member: the event of its own addition and the profile set at creation. Told
        // of everyone, it was 255 × 255 + 255 = 65,280.
        assert_eq!(sent.len(), 2 * 255, "one stanza per member and event");
        for member in &members {
            let mine: Vec<&Element> = sent
                .iter()
                .filter(|s| s.attr("to") == Some(member.as_str()))
                .collect();
            assert_eq!(mine.len(), 2, "{member}");
            let added = mine.iter().find_map(|s| {
                s.get_child("event", ns::PUBSUB_EVENT)?
                    .get_child("items", ns::PUBSUB_EVENT)?
                    .get_child("item", ns::PUBSUB_EVENT)?
                    .get_child("participant", ns::MIX_CORE)
            });
            assert_eq!(added.unwrap().attr("jid"), Some(member.as_str()));
        }
    }

    #[test]
    fn an_add_of_many_users_is_one_stanza_per_recipient() {
        let mut g = mixed();
        let added = users(100);
        let facts = g
            .add_participants(
                "coven",
                &jid("alice@localhost"),
                &added,
                Dialect::FlyChat,
                10,
            )
            .unwrap();
        assert_eq!(facts.len(), 200, "a join and a notice each");
        let sent = deliver_all(&g, &facts);
        // MIX: one participants-node event per online client, with an item per added user,
        // and one message with the notices.
        let items = to(&sent, |s| on_node(s, node::PARTICIPANTS));
        assert_eq!(items, MIX_CLIENTS);
        for s in sent.iter().filter(|s| on_node(s, node::PARTICIPANTS)) {
            let items = s.find("items", ns::PUBSUB_EVENT).unwrap();
            assert_eq!(items.children().count(), 100);
        }
        assert_eq!(to(&sent, notice), MIX_CLIENTS);
        for s in sent.iter().filter(|s| notice(s)) {
            let notices: Vec<&Element> = s
                .stanza
                .children()
                .filter(|c| c.is("notice", ns::MIXD_NOTICE))
                .collect();
            assert!(notices.iter().all(|n| n.attr("kind") == Some("added")));
            assert_eq!(notices.len(), 100);
        }
        // FlyChat: each added user hears of itself, dave and erin of the first added (their
        // SDK reads one user per event and fetches the list again after it).
        let told = user_added(&sent);
        assert_eq!(told.len(), 102);
        assert!(told.contains(&("dave@localhost", "user0@localhost")));
        assert!(told.contains(&("erin@localhost", "user0@localhost")));
        for user in &added {
            assert!(told.contains(&(user.as_str(), user.as_str())), "{user}");
        }
        assert_eq!(sent.len(), 3 + 3 + 102, "nothing else");
    }

    #[test]
    fn what_changed_nothing_is_told_to_nobody() {
        let mut g = mixed();
        let bob = jid("bob@localhost");
        let alice = jid("alice@localhost");
        let carol = jid("carol@localhost");
        g.make_admin("coven", &alice, &carol, 9).unwrap();
        let mut facts = Vec::new();
        for client in MIX_CLIENTS {
            let again = FullJid::new(client).unwrap();
            facts.extend(g.presence("coven", &again, true).unwrap());
        }
        facts.extend(g.join("coven", &bob, None, Nodes::ALL, 10).unwrap().1);
        facts.extend(
            g.join("coven", &bob, Some("bob"), Nodes::ALL, 10)
                .unwrap()
                .1,
        );
        let dave = jid("dave@localhost");
        facts.extend(
            g.join_or_ask("coven", &dave, Dialect::FlyChat, 10)
                .unwrap()
                .1,
        );
        facts.extend(g.set_nick("coven", &bob, Some("bob")).unwrap().1);
        let (_, changed) = g
            .update_subscription("coven", &bob, Nodes::MESSAGES, Nodes::NONE)
            .unwrap();
        facts.extend(changed);
        let (_, changed) = g
            .set_info("coven", &alice, InfoChange::default(), 11)
            .unwrap();
        facts.extend(changed);
        facts.extend(
            g.change_settings("coven", &alice, SettingsChange::default(), 12)
                .unwrap(),
        );
        facts.extend(g.make_admin("coven", &alice, &carol, 13).unwrap());
        assert!(facts.is_empty(), "{facts:?}");
        // Re-joining from many clients, each online, tells the others nothing.
        for i in 0..50 {
            let client = FullJid::new(&format!("bob@localhost/r{i}")).unwrap();
            let mut facts = g.presence("coven", &client, true).unwrap();
            facts.extend(g.join("coven", &bob, None, Nodes::ALL, 20).unwrap().1);
            assert!(deliver_all(&g, &facts).is_empty());
        }
    }

    #[test]
    fn after_a_restart_or_a_reload_posts_reach_the_clients_that_were_online() {
        let before = mixed();
        // A restart: the core starts from what the store loads, presence included.
        let snapshot = || Snapshot {
            last_channel_key: 1,
            last_message_id: before.last_message_id(),
            departures: Vec::new(),
            ..Snapshot::of(before.channels().cloned().map(Box::new).collect())
        };
        let mut restarted = Groups::new(before.rules.clone(), snapshot());
        let facts = post(&mut restarted, "dave@localhost", "still here?", 20);
        let sent = deliver_all(&restarted, &facts);
        assert_eq!(to(&sent, |s| s.kind() == "groupchat"), MIX_CLIENTS);
        // A failed commit: the store has no presence (say), the core keeps what it knew.
        let mut bare = snapshot();
        for channel in &mut bare.channels {
            channel.participants.update_all(|p| p.online.clear());
        }
        let mut reloaded = Groups::new(before.rules.clone(), bare);
        reloaded.keep_presence_of(before);
        let facts = post(&mut reloaded, "dave@localhost", "and now?", 21);
        let sent = deliver_all(&reloaded, &facts);
        assert_eq!(to(&sent, |s| s.kind() == "groupchat"), MIX_CLIENTS);
    }

    #[test]
    fn a_new_channel_tells_nobody() {
        let mut g = groups();
        let (_, facts) = g.create(&jid("alice@localhost"), Some("coven"), 1).unwrap();
        assert!(deliver_all(&g, &facts).is_empty());
    }
}
