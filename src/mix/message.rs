//! Messages to a channel (XEP-0369 §7.1.7). A `groupchat` message is, by its payload:
//!
//! - a retraction (XEP-0424 `<retract id=…/>`), a correction (XEP-0308 `<replace id=…/>`)
//!   or a reaction (XEP-0444 `<reactions id=…/>`) of an archived message;
//! - without a body, a receipt or marker (XEP-0184 `<received/>`, XEP-0333) or a chat state
//!   (XEP-0085): recorded or relayed, never archived;
//! - otherwise a new message: archived with its payload as sent, then reflected to every
//!   participant subscribed to the messages node.
//!
//! A `<mix/>` or `<stanza-id/>` the sender put in is dropped (those are the channel's to
//! write), and so are chat states (never archived). The sender's XEP-0359 `<origin-id/>`
//! stays, so its client can match the reflection to what it sent.

use jid::FullJid;
use minidom::Element;

use crate::core::{
    ChatState, Condition, Groups, Micros, Outcome, ReceiptKind, Refusal, Submission,
};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled};
use crate::xml::{children_fragment, ns};

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
    stanza: &Element,
    message_type: Option<&str>,
    now: Micros,
) -> Handled {
    let reply_to = env.reply_to();
    let Some(name) = &env.channel else {
        return Handled::Reply(reply_to.service_unavailable(
            ErrorKind::Message,
            "messages go to a channel, not to the service",
        ));
    };
    match message_type {
        Some("groupchat") => {}
        None | Some("normal" | "chat" | "headline") => {
            let refusal = Refusal::new(
                Condition::NotAcceptable,
                "messages to a channel must be of type groupchat",
            );
            return Handled::Reply(env.error(&refusal));
        }
        Some(other) => {
            return Handled::Reply(
                env.error(&bad_request(format!("'{other}' is not a message type"))),
            );
        }
    }
    let sender = env.sender();
    // A retraction, correction, reaction or receipt names an archived message; it is
    // finished once the archive says which.
    let (reference, command) = if let Some(retract) = stanza.get_child("retract", ns::RETRACT) {
        (retract.attr("id"), OnMessage::Retract)
    } else if let Some(replace) = stanza.get_child("replace", ns::CORRECT) {
        (
            replace.attr("id"),
            OnMessage::Correct(submission(env, stanza)),
        )
    } else if let Some(reactions) = stanza.get_child("reactions", ns::REACTIONS) {
        let chosen = reactions
            .children()
            .filter(|r| r.is("reaction", ns::REACTIONS))
            .map(|r| r.text())
            .collect();
        (reactions.attr("id"), OnMessage::React(chosen))
    } else if stanza.get_child("body", ns::COMPONENT).is_some() {
        return changed(
            env,
            groups.post(name, &sender, submission(env, stanza), now),
        );
    } else if let Some((reference, kind)) = receipt(stanza) {
        (Some(reference), OnMessage::Receipt(kind))
    } else if let Some(state) = chat_state(stanza) {
        return changed(env, groups.chat_state(name, &sender, state));
    } else {
        return changed(
            env,
            groups.post(name, &sender, submission(env, stanza), now),
        );
    };
    let key = groups.channel(name).map(|c| c.key).unwrap_or_default();
    let env = env.clone();
    Handled::lookup(
        &env.clone(),
        key,
        reference.unwrap_or_default(),
        move |groups, _, found, now| {
            let name = env.channel_name();
            let target = found.as_ref();
            let outcome = match command {
                OnMessage::Retract => groups.retract(name, &sender, target, None, now),
                OnMessage::Correct(submission) => {
                    groups.correct(name, &sender, target, submission, now)
                }
                OnMessage::React(chosen) => groups.react(name, &sender, target, chosen, now),
                OnMessage::Receipt(kind) => groups.receipt(name, &sender, target, kind, now),
            };
            changed(&env, outcome)
        },
    )
}

/// What a message that names an archived message does to it.
enum OnMessage {
    Retract,
    Correct(Submission),
    React(Vec<String>),
    Receipt(ReceiptKind),
}

/// A message's facts to store, or the error its sender gets.
fn changed(env: &Envelope, outcome: Outcome) -> Handled {
    match outcome {
        Ok(facts) => Handled::Changed {
            facts,
            reply: None,
            on_failure: Some(env.reply_to().storage_failed(ErrorKind::Message)),
        },
        Err(refusal) => Handled::Reply(env.error(&refusal)),
    }
}

/// What the sender submitted, as it will be archived.
fn submission(env: &Envelope, stanza: &Element) -> Submission {
    let kept = stanza.children().filter(|c| {
        !(c.is("mix", ns::MIX_CORE)
            || c.is("stanza-id", ns::SID)
            || c.is("replace", ns::CORRECT)
            || c.ns() == ns::CHATSTATES)
    });
    Submission {
        content: children_fragment(ns::COMPONENT, kept),
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
    stanza.children().find_map(|c| {
        let kind = match (c.ns().as_str(), c.name()) {
            (ns::RECEIPTS, "received") | (ns::MARKERS, "received") => ReceiptKind::Delivered,
            (ns::MARKERS, "displayed" | "acknowledged") => ReceiptKind::Displayed,
            _ => return None,
        };
        Some((c.attr("id")?, kind))
    })
}

fn chat_state(stanza: &Element) -> Option<ChatState> {
    stanza.children().find_map(|c| {
        if c.ns() != ns::CHATSTATES {
            return None;
        }
        ChatState::ALL.into_iter().find(|s| s.name() == c.name())
    })
}

/// A delivery came back as an error: the full JID it went to is not online any more.
pub fn bounced(groups: &mut Groups, stanza: &Element) -> Handled {
    let Some(from) = stanza.attr("from").and_then(|f| FullJid::new(f).ok()) else {
        return Handled::Nothing;
    };
    let facts = groups.bounced(&from);
    if facts.is_empty() {
        return Handled::Nothing;
    }
    tracing::debug!(to = %from, "delivery bounced; no longer delivering live to it");
    Handled::Changed {
        facts,
        reply: None,
        on_failure: None,
    }
}
