//! Messages to a channel (XEP-0369 §7.1.7): a `groupchat` message from a participant is
//! archived with its payload as sent, then reflected to every participant subscribed to the
//! messages node. A `<mix/>` or `<stanza-id/>` the sender put in is dropped: those are the
//! channel's to write. The sender's XEP-0359 `<origin-id/>` stays, so its client can match
//! the reflection to what it sent.

use jid::FullJid;
use minidom::Element;

use super::{bad_request, Envelope, ErrorKind, Handled};
use crate::core::{Condition, Groups, Micros, Refusal};
use crate::xml::{children_fragment, ns};

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
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
            return Handled::Reply(reply_to.error(ErrorKind::Message, &refusal));
        }
        Some(other) => {
            let refusal = bad_request(format!("'{other}' is not a message type"));
            return Handled::Reply(reply_to.error(ErrorKind::Message, &refusal));
        }
    }
    let kept = env
        .stanza
        .children()
        .filter(|c| !(c.is("mix", ns::MIX_CORE) || c.is("stanza-id", ns::SID)));
    let content = children_fragment(ns::COMPONENT, kept);
    let origin_id = env
        .stanza
        .get_child("origin-id", ns::SID)
        .and_then(|o| o.attr("id"))
        .map(str::to_owned);
    match groups.post(name, &env.sender(), origin_id, content, now) {
        Ok(facts) => Handled::Changed {
            facts,
            reply: None,
            on_failure: Some(reply_to.storage_failed(ErrorKind::Message)),
        },
        Err(refusal) => Handled::Reply(reply_to.error(ErrorKind::Message, &refusal)),
    }
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
