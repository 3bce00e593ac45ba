//! Messages to a channel (XEP-0369 §7.1.7). A `groupchat` message is, by its payload:
//!
//! - a retraction (XEP-0424 `<retract id=…/>`), a correction (XEP-0308 `<replace id=…/>`)
//!   or a reaction (XEP-0444 `<reactions id=…/>`) of an archived message;
//! - without a body, a receipt or marker (XEP-0184 `<received/>`, XEP-0333) or a chat state
//!   (XEP-0085): recorded or relayed, never archived;
//! - otherwise a new message: archived with its payload as sent, then reflected to every
//!   participant subscribed to the messages node.
//!
//! What a message may carry is an allow-list shared with FlyChat (`dialect::payload`), to
//! which MIX adds the elements that say what a message does ([`COMMANDS`]). Anything else —
//! a `<mix/>`, a pubsub event, a delay, an archive result, mixd's own notices — is refused
//! with `not-acceptable` before the core is asked: the channel re-sends what it keeps under
//! its own JID. A `<stanza-id/>` and chat states are dropped; the sender's XEP-0359
//! `<origin-id/>` stays, so its client can match the reflection to what it sent. A post or
//! a correction may not carry another kind's command (a receipt riding on a body would be
//! re-sent as the channel's receipt).

use jid::FullJid;
use minidom::Element;

use crate::core::{
    ChatState, Condition, Groups, MessageRef, Micros, Outcome, Quota, ReceiptKind, Refusal,
    Repeats, Submission,
};
use crate::dialect::payload::{self, Allowed, Screened};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled};
use crate::xml::{children_fragment, ns};

/// What MIX adds to the shared allow-list: the elements that make a message a retraction,
/// a correction, a reaction, a receipt or a marker. They are read, never stored as payload.
pub const COMMANDS: &[Allowed] = &[
    Allowed::command(ns::RETRACT, "retract"),
    Allowed::command(ns::CORRECT, "replace"),
    Allowed::command(ns::REACTIONS, "reactions"),
    Allowed::command(ns::RECEIPTS, "received"),
    Allowed::command(ns::MARKERS, "received"),
    Allowed::command(ns::MARKERS, "displayed"),
    Allowed::command(ns::MARKERS, "acknowledged"),
];

/// A `groupchat` message to a channel, by what it does. A message may carry the marks of
/// several kinds (a retraction or reaction with a fallback `<body/>` for clients that lack
/// the XEP, a post with a chat state, a correction, which always has a body); the first of
/// retraction, correction, reaction, post, receipt and chat state that it carries is what it
/// is, and the rest is payload (see the module's note on what may be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A new message, archived and reflected (XEP-0369 §7.1.7). A message that is none of
    /// the others is a post too, even without a body: what it carries is the sender's.
    Post(Submission),
    /// XEP-0085: relayed to the participants online, never archived.
    ChatState(ChatState),
    Retract(Retraction),
    Correct(Correction),
    React(Reaction),
    Receipt(Receipt),
}

/// XEP-0424: the sender takes back one of its own messages; the archive keeps a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    pub reference: String,
}

/// XEP-0308: the sender replaces the content of one of its messages with this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub reference: String,
    pub submission: Submission,
}

/// XEP-0444: the sender's reactions to a message, all of them (an empty set takes its
/// reactions back), as the XEP has each update carry the full set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub reference: String,
    pub reactions: Vec<String>,
}

/// An XEP-0184 receipt or an XEP-0333 marker: the sender got (or saw) a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub reference: String,
    pub kind: ReceiptKind,
}

impl Message {
    /// The message `stanza` of type `message_type`, sent to a channel. The references are
    /// taken as sent: a missing `id` names no message, which the core refuses once the
    /// look-up has found nothing, as it refuses an id that names nothing. A payload that is
    /// not allowed is refused here, whatever the message is.
    pub fn parse(env: &Envelope, stanza: &Element, message_type: Option<&str>) -> Outcome<Self> {
        Self::parse_with(env, stanza, message_type, payload::namespaces())
    }

    /// [`Message::parse`] with the operator's namespaces for opaque payloads given.
    fn parse_with(
        env: &Envelope,
        stanza: &Element,
        message_type: Option<&str>,
        namespaces: &[String],
    ) -> Outcome<Self> {
        match message_type {
            Some("groupchat") => {}
            None | Some("normal" | "chat" | "headline") => {
                return Err(Refusal::new(
                    Condition::NotAcceptable,
                    "messages to a channel must be of type groupchat",
                ));
            }
            Some(other) => return Err(bad_request(format!("'{other}' is not a message type"))),
        }
        let screened = payload::screen(stanza, COMMANDS, namespaces)?;
        let reference = |e: &Element| e.attr("id").unwrap_or_default().to_owned();
        Ok(
            if let Some(retract) = stanza.get_child("retract", ns::RETRACT) {
                Message::Retract(Retraction {
                    reference: reference(retract),
                })
            } else if let Some(replace) = stanza.get_child("replace", ns::CORRECT) {
                screened.no_other_command(Some((ns::CORRECT, "replace")))?;
                Message::Correct(Correction {
                    reference: reference(replace),
                    submission: submission(env, stanza, &screened),
                })
            } else if let Some(reactions) = stanza.get_child("reactions", ns::REACTIONS) {
                Message::React(Reaction {
                    reference: reference(reactions),
                    reactions: reactions
                        .children()
                        .filter(|r| r.is("reaction", ns::REACTIONS))
                        .map(|r| r.text())
                        .collect(),
                })
            } else if stanza.get_child("body", ns::COMPONENT).is_some() {
                screened.no_other_command(None)?;
                Message::Post(submission(env, stanza, &screened))
            } else if let Some((reference, kind)) = receipt(stanza) {
                Message::Receipt(Receipt {
                    reference: reference.to_owned(),
                    kind,
                })
            } else if let Some(state) = chat_state(stanza) {
                Message::ChatState(state)
            } else {
                screened.no_other_command(None)?;
                Message::Post(submission(env, stanza, &screened))
            },
        )
    }

    /// The archived message this one names, if it names one.
    fn reference(&self) -> Option<&str> {
        match self {
            Message::Post(_) | Message::ChatState(_) => None,
            Message::Retract(Retraction { reference })
            | Message::Correct(Correction { reference, .. })
            | Message::React(Reaction { reference, .. })
            | Message::Receipt(Receipt { reference, .. }) => Some(reference),
        }
    }

    /// The quota the message takes from: a correction is a post again; the rest are signals.
    fn quota(&self) -> Quota {
        match self {
            Message::Post(_) | Message::Correct(_) => Quota::Messages,
            Message::ChatState(_)
            | Message::Retract(_)
            | Message::React(_)
            | Message::Receipt(_) => Quota::Signals,
        }
    }

    /// Runs the message. One that names an archived message is finished once the archive
    /// says which (off the rules task: the archive is not in memory); the look-up carries
    /// the request.
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Handled {
        let Some(reference) = self.reference().map(str::to_owned) else {
            return self.finish(groups, env, None, now);
        };
        // Over the sender's quota, refused before the archive is read for it.
        if let Err(refusal) = groups.afford(&env.sender(), self.quota(), 1, now) {
            return changed(env, Err(refusal));
        }
        let key = groups
            .channel(env.channel_name())
            .map(|c| c.key)
            .unwrap_or_default();
        let owned = env.clone();
        Handled::lookup(env, key, &reference, move |groups, _, found, now| {
            self.finish(groups, &owned, found.as_ref(), now)
        })
    }

    /// The core command, against `target` for the kinds that name a message.
    fn finish(
        self,
        groups: &mut Groups,
        env: &Envelope,
        target: Option<&MessageRef>,
        now: Micros,
    ) -> Handled {
        let name = env.channel_name();
        let sender = env.sender();
        let outcome = match self {
            Message::Post(submission) => groups.post(name, &sender, submission, now),
            Message::ChatState(state) => {
                groups.chat_state(name, &sender, state, Repeats::Dropped, now)
            }
            Message::Retract(Retraction { .. }) => groups.retract(name, &sender, target, None, now),
            Message::Correct(Correction { submission, .. }) => {
                groups.correct(name, &sender, target, submission, now)
            }
            Message::React(Reaction { reactions, .. }) => {
                groups.react(name, &sender, target, reactions, now)
            }
            Message::Receipt(Receipt { kind, .. }) => {
                groups.receipt(name, &sender, target, kind, now)
            }
        };
        changed(env, outcome)
    }
}

/// A message's facts to store, or the error its sender gets.
fn changed(env: &Envelope, outcome: Outcome) -> Handled {
    match outcome {
        // Nothing to store, tell or answer (a repeated chat state): not even a trip through
        // the writer.
        Ok(facts) if facts.is_empty() => Handled::Nothing,
        Ok(facts) => Handled::Changed {
            facts,
            reply: None,
            on_failure: Some(env.reply_to().if_not_stored(ErrorKind::Message)),
        },
        Err(refusal) => Handled::Reply(env.error(&refusal)),
    }
}

/// What the sender submitted, as it will be archived: the content the allow-list kept.
fn submission(env: &Envelope, stanza: &Element, screened: &Screened) -> Submission {
    Submission {
        content: children_fragment(ns::COMPONENT, screened.content.iter().copied()),
        origin_id: stanza
            .get_child("origin-id", ns::SID)
            .and_then(|o| o.attr("id"))
            .map(str::to_owned),
        client_id: env.id.clone(),
        media: shares_a_file(stanza),
    }
}

/// XEP-0447 file sharing, XEP-0385 SIMS (inside an XEP-0372 reference) or XEP-0066 OOB.
fn shares_a_file(stanza: &Element) -> bool {
    stanza.children().any(|c| {
        c.is("file-sharing", ns::SFS)
            || c.is("x", ns::OOB)
            || (c.is("reference", ns::REFERENCE) && c.has_child("media-sharing", ns::SIMS))
    })
}

/// An XEP-0184 receipt or XEP-0333 marker: the id it acknowledges and what it says.
fn receipt(stanza: &Element) -> Option<(&str, ReceiptKind)> {
    // `has_ns` compares in place; `ns()` would copy the namespace for every child of
    // every message.
    stanza.children().find_map(|c| {
        let kind = match (c.has_ns(ns::RECEIPTS), c.has_ns(ns::MARKERS), c.name()) {
            (true, _, "received") | (_, true, "received") => ReceiptKind::Delivered,
            (_, true, "displayed" | "acknowledged") => ReceiptKind::Displayed,
            _ => return None,
        };
        Some((c.attr("id")?, kind))
    })
}

fn chat_state(stanza: &Element) -> Option<ChatState> {
    stanza.children().find_map(|c| {
        if !c.has_ns(ns::CHATSTATES) {
            return None;
        }
        ChatState::ALL.into_iter().find(|s| s.name() == c.name())
    })
}

/// A delivery came back as an error: the full JID it went to is not online any more, and
/// sending it more would only bounce again (XEP-0403 leaves it to the channel to notice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounced {
    pub to: FullJid,
}

impl Bounced {
    /// The error's sender is the full JID the delivery went to; other errors say nothing.
    pub fn parse(stanza: &Element) -> Option<Self> {
        let to = stanza.attr("from").and_then(|f| FullJid::new(f).ok())?;
        Some(Bounced { to })
    }

    pub fn apply(self, groups: &mut Groups) -> Handled {
        let facts = groups.bounced(&self.to);
        if facts.is_empty() {
            return Handled::Nothing;
        }
        tracing::debug!(to = %self.to, "delivery bounced; no longer delivering live to it");
        Handled::Changed {
            facts,
            reply: None,
            on_failure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::{element, envelope};

    fn env() -> Envelope {
        envelope(
            ErrorKind::Message,
            "hag@example.org/broom",
            "coven@mix.example.org",
        )
    }

    /// A groupchat message to the channel carrying `payload`.
    fn parse(payload: &str) -> Outcome<Message> {
        parse_typed(payload, Some("groupchat"))
    }

    fn parse_typed(payload: &str, message_type: Option<&str>) -> Outcome<Message> {
        let stanza = element(&format!(
            "<message xmlns='jabber:component:accept' from='hag@example.org/broom' \
             to='coven@mix.example.org' id='req-1'>{payload}</message>"
        ));
        Message::parse(&env(), &stanza, message_type)
    }

    #[test]
    fn a_post_keeps_its_payload_and_origin_id_and_drops_what_is_not_the_senders() {
        let Message::Post(submission) = parse(
            "<body>Double, double</body>\
             <origin-id xmlns='urn:xmpp:sid:0' id='o-1'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' id='99' by='coven@mix.example.org'/>\
             <active xmlns='http://jabber.org/protocol/chatstates'/>\
             <reply xmlns='urn:xmpp:reply:0' to='coven@mix.example.org' id='41'/>\
             <store xmlns='urn:xmpp:hints'/>",
        )
        .unwrap() else {
            panic!("not a post");
        };
        assert_eq!(submission.origin_id.as_deref(), Some("o-1"));
        assert_eq!(submission.client_id.as_deref(), Some("req-1"));
        assert!(!submission.media);
        let content = &submission.content;
        for kept in [
            "Double, double",
            "origin-id",
            "urn:xmpp:reply:0",
            "urn:xmpp:hints",
        ] {
            assert!(content.contains(kept), "{kept} not in {content}");
        }
        for dropped in ["stanza-id", "active"] {
            assert!(!content.contains(dropped), "{dropped} in {content}");
        }
    }

    /// `payload`'s refusal text, which must be `not-acceptable` and name `element`.
    fn refused_naming(payload: &str, element: &str) {
        let refusal = parse(payload).unwrap_err();
        assert_eq!(refusal.condition, Condition::NotAcceptable, "{payload}");
        assert!(
            refusal.text.contains(element),
            "{payload}: {}",
            refusal.text
        );
    }

    #[test]
    fn a_message_carrying_what_only_the_channel_writes_is_refused_whatever_it_is() {
        let forged = [
            (
                "<mix xmlns='urn:xmpp:mix:core:1'><nick>forged</nick></mix>",
                "<mix xmlns='urn:xmpp:mix:core:1'/>",
            ),
            (
                "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:mix:nodes:info'/></event>",
                "<event xmlns='http://jabber.org/protocol/pubsub#event'/>",
            ),
            (
                "<delay xmlns='urn:xmpp:delay' stamp='2001-01-01T00:00:00Z'/>",
                "<delay xmlns='urn:xmpp:delay'/>",
            ),
            (
                "<result xmlns='urn:xmpp:mam:2' id='1'/>",
                "<result xmlns='urn:xmpp:mam:2'/>",
            ),
            (
                "<notice xmlns='urn:mixd:notice:0' kind='made-admin' code='5'/>",
                "<notice xmlns='urn:mixd:notice:0'/>",
            ),
            (
                "<jid xmlns='urn:example'>alice@example.org</jid>",
                "<jid xmlns='urn:example'/>",
            ),
        ];
        // A post, a bodyless post, a correction, a retraction, a reaction, a receipt and a
        // chat state alike.
        let kinds = [
            "<body>hi</body>",
            "",
            "<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='1'/>",
            "<retract xmlns='urn:xmpp:message-retract:1' id='1'/>",
            "<reactions xmlns='urn:xmpp:reactions:0' id='1'><reaction>x</reaction></reactions>",
            "<received xmlns='urn:xmpp:receipts' id='1'/>",
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
        ];
        for (element, name) in forged {
            for kind in kinds {
                refused_naming(&format!("{kind}{element}"), name);
            }
        }
    }

    #[test]
    fn a_receipt_or_reaction_riding_on_a_post_or_correction_is_refused() {
        refused_naming(
            "<body>hi</body><received xmlns='urn:xmpp:receipts' id='5'/>",
            "<received xmlns='urn:xmpp:receipts'/>",
        );
        refused_naming(
            "<displayed xmlns='urn:xmpp:chat-markers:0'/>",
            "<displayed xmlns='urn:xmpp:chat-markers:0'/>",
        );
        refused_naming(
            "<body>b</body><replace xmlns='urn:xmpp:message-correct:0' id='1'/>\
             <reactions xmlns='urn:xmpp:reactions:0' id='3'/>",
            "<reactions xmlns='urn:xmpp:reactions:0'/>",
        );
    }

    #[test]
    fn a_post_that_shares_a_file_says_so() {
        for share in [
            "<x xmlns='jabber:x:oob'><url>https://example.org/a.png</url></x>",
            "<file-sharing xmlns='urn:xmpp:sfs:0'/>",
            "<reference xmlns='urn:xmpp:reference:0' type='data'><media-sharing xmlns='urn:xmpp:sims:1'/></reference>",
        ] {
            let Ok(Message::Post(submission)) = parse(&format!("<body>look</body>{share}")) else {
                panic!("not a post: {share}");
            };
            assert!(submission.media, "{share}");
        }
        let Ok(Message::Post(plain)) =
            parse("<body>look</body><reference xmlns='urn:xmpp:reference:0' type='mention'/>")
        else {
            panic!("not a post");
        };
        assert!(!plain.media);
    }

    #[test]
    fn a_message_of_nothing_known_is_refused_unless_the_operator_listed_its_namespace() {
        refused_naming("<x xmlns='urn:example'>hi</x>", "<x xmlns='urn:example'/>");
        let stanza = element(
            "<message xmlns='jabber:component:accept' from='hag@example.org/broom' \
             to='coven@mix.example.org' id='req-1'><x xmlns='urn:example'>hi</x></message>",
        );
        let listed = ["urn:example".to_owned()];
        let Ok(Message::Post(submission)) =
            Message::parse_with(&env(), &stanza, Some("groupchat"), &listed)
        else {
            panic!("not a post");
        };
        assert!(submission.content.contains("urn:example"));
    }

    #[test]
    fn a_retraction_names_its_message_even_with_a_fallback_body() {
        assert_eq!(
            parse(
                "<retract xmlns='urn:xmpp:message-retract:1' id='42'/>\
                 <body>This person attempted to retract a previous message.</body>"
            )
            .unwrap(),
            Message::Retract(Retraction {
                reference: "42".into()
            })
        );
    }

    #[test]
    fn a_correction_names_its_message_and_carries_the_new_content() {
        let Message::Correct(correction) =
            parse("<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='o-1'/>")
                .unwrap()
        else {
            panic!("not a correction");
        };
        assert_eq!(correction.reference, "o-1");
        assert!(correction.submission.content.contains("fixed"));
        assert!(!correction.submission.content.contains("replace"));
    }

    #[test]
    fn a_reaction_carries_the_whole_set() {
        assert_eq!(
            parse(
                "<reactions xmlns='urn:xmpp:reactions:0' id='7'>\
                 <reaction>🔮</reaction><reaction>🐈‍⬛</reaction></reactions>"
            )
            .unwrap(),
            Message::React(Reaction {
                reference: "7".into(),
                reactions: vec!["🔮".into(), "🐈‍⬛".into()],
            })
        );
        assert_eq!(
            parse("<reactions xmlns='urn:xmpp:reactions:0' id='7'/>").unwrap(),
            Message::React(Reaction {
                reference: "7".into(),
                reactions: vec![],
            })
        );
    }

    #[test]
    fn receipts_and_markers_say_delivered_or_displayed() {
        for (payload, kind) in [
            (
                "<received xmlns='urn:xmpp:receipts' id='5'/>",
                ReceiptKind::Delivered,
            ),
            (
                "<received xmlns='urn:xmpp:chat-markers:0' id='5'/>",
                ReceiptKind::Delivered,
            ),
            (
                "<displayed xmlns='urn:xmpp:chat-markers:0' id='5'/>",
                ReceiptKind::Displayed,
            ),
            (
                "<acknowledged xmlns='urn:xmpp:chat-markers:0' id='5'/>",
                ReceiptKind::Displayed,
            ),
        ] {
            assert_eq!(
                parse(payload).unwrap(),
                Message::Receipt(Receipt {
                    reference: "5".into(),
                    kind
                }),
                "{payload}"
            );
        }
    }

    #[test]
    fn a_chat_state_without_a_body_is_relayed() {
        assert_eq!(
            parse("<composing xmlns='http://jabber.org/protocol/chatstates'/>").unwrap(),
            Message::ChatState(ChatState::Composing)
        );
    }

    #[test]
    fn the_first_kind_a_message_carries_is_what_it_is() {
        // A retraction wins over a correction, a correction over a reaction, a body over a
        // receipt or chat state.
        let both = parse(
            "<replace xmlns='urn:xmpp:message-correct:0' id='1'/>\
             <retract xmlns='urn:xmpp:message-retract:1' id='2'/>",
        );
        assert_eq!(
            both.unwrap(),
            Message::Retract(Retraction {
                reference: "2".into()
            })
        );
        let corrected = parse(
            "<body>b</body><replace xmlns='urn:xmpp:message-correct:0' id='1'/>\
             <composing xmlns='http://jabber.org/protocol/chatstates'/>",
        );
        assert!(matches!(corrected, Ok(Message::Correct(c)) if c.reference == "1"));
        let posted =
            parse("<body>hi</body><composing xmlns='http://jabber.org/protocol/chatstates'/>");
        assert!(matches!(posted, Ok(Message::Post(_))));
        // A reaction with a fallback body is a reaction.
        let reacted = parse(
            "<reactions xmlns='urn:xmpp:reactions:0' id='3'><reaction>x</reaction></reactions>\
             <body>x</body>",
        );
        assert!(matches!(reacted, Ok(Message::React(r)) if r.reference == "3"));
        // A receipt without an id acknowledges nothing: the chat state beside it counts.
        let state = parse(
            "<received xmlns='urn:xmpp:receipts'/>\
             <paused xmlns='http://jabber.org/protocol/chatstates'/>",
        );
        assert_eq!(state.unwrap(), Message::ChatState(ChatState::Paused));
    }

    #[test]
    fn a_reference_without_an_id_names_no_message() {
        assert_eq!(
            parse("<retract xmlns='urn:xmpp:message-retract:1'/>").unwrap(),
            Message::Retract(Retraction {
                reference: String::new()
            })
        );
    }

    #[test]
    fn a_message_that_is_not_groupchat_is_refused() {
        for message_type in [None, Some("chat"), Some("normal"), Some("headline")] {
            let refusal = parse_typed("<body>hi</body>", message_type).unwrap_err();
            assert_eq!(
                refusal.condition,
                Condition::NotAcceptable,
                "{message_type:?}"
            );
            assert_eq!(
                refusal.text,
                "messages to a channel must be of type groupchat"
            );
        }
        let refusal = parse_typed("<body>hi</body>", Some("shout")).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "'shout' is not a message type");
    }

    #[test]
    fn a_bounce_names_the_full_jid_it_came_back_from() {
        let bounce = element(
            "<message xmlns='jabber:component:accept' type='error' from='hag@example.org/broom'/>",
        );
        assert_eq!(
            Bounced::parse(&bounce),
            Some(Bounced {
                to: FullJid::new("hag@example.org/broom").unwrap()
            })
        );
        let bare = element(
            "<message xmlns='jabber:component:accept' type='error' from='hag@example.org'/>",
        );
        assert_eq!(Bounced::parse(&bare), None);
        let none = element("<message xmlns='jabber:component:accept' type='error'/>");
        assert_eq!(Bounced::parse(&none), None);
    }
}
