//! Group messages from FlyChat clients: `type='normal'` with `<chatcontent
//! xmlns='urn:xmpp:content' message_type='…'/>`. The body is end-to-end encrypted by the
//! SDK: it is stored byte for byte and never read.

use minidom::Element;

use super::CONTENT;
use crate::core::{Groups, Micros, Submission};
use crate::dialect::{Envelope, ErrorKind, Handled};
use crate::xml::{children_fragment, ns};

/// Media kinds the SDK sends as `message_type`.
const MEDIA: [&str; 5] = ["image", "video", "audio", "file", "document"];

pub fn is_flychat_message(stanza: &Element) -> bool {
    matches!(stanza.attr("type"), None | Some("normal")) && stanza.has_child("chatcontent", CONTENT)
}

pub fn post(groups: &mut Groups, env: &Envelope, stanza: &Element, now: Micros) -> Handled {
    let reply_to = env.reply_to();
    let Some(name) = &env.channel else {
        return Handled::Reply(
            reply_to.service_unavailable(ErrorKind::Message, "group messages go to a group"),
        );
    };
    let kind = stanza
        .get_child("chatcontent", CONTENT)
        .and_then(|c| c.attr("message_type"))
        .unwrap_or("text");
    let kept = stanza
        .children()
        .filter(|c| !(c.is("mix", ns::MIX_CORE) || c.is("stanza-id", ns::SID)));
    let submission = Submission {
        content: children_fragment(ns::COMPONENT, kept),
        origin_id: None,
        client_id: env.id.clone(),
        media: MEDIA.contains(&kind),
    };
    match groups.post(name, &env.sender(), submission, now) {
        Ok(facts) => Handled::Changed {
            facts,
            reply: None,
            on_failure: Some(reply_to.storage_failed(ErrorKind::Message)),
        },
        Err(refusal) => Handled::Reply(env.error(&refusal)),
    }
}
