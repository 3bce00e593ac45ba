//! Group messages from FlyChat clients: `type='normal'` with `<chatcontent
//! xmlns='urn:xmpp:content' message_type='…'/>`. The body is end-to-end encrypted by the
//! SDK: it is stored byte for byte and never read.
//!
//! What a group message may carry is the allow-list both dialects share
//! (`dialect::payload`) plus `<chatcontent/>` ([`EXTRAS`]). The SDK reads a message's
//! sender, id and time from the first `<jid>`, `<submission-id>` and `<timestamp>` it finds
//! below the stanza, before mixd's own: a message carrying one anywhere is refused with
//! `not-acceptable`, as is any other element only the group or the server writes.

use minidom::Element;

use super::wire::CONTENT;
use crate::core::{Groups, Micros, Outcome, Submission};
use crate::dialect::payload::{self, Allowed};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled};
use crate::xml::{children_fragment, ns};

/// What FlyChat adds to the shared allow-list: the SDK's `<chatcontent/>`, kept as sent
/// (its attributes are what the SDK shows: the kind, media metadata).
pub const EXTRAS: &[Allowed] = &[Allowed::content(CONTENT, "chatcontent")];

/// Media kinds the SDK sends as `message_type`.
const MEDIA: [&str; 5] = ["image", "video", "audio", "file", "document"];

/// Whether `stanza`, of type `stanza_type` (as the link read it), is a FlyChat post.
pub fn is_flychat_message(stanza: &Element, stanza_type: Option<&str>) -> bool {
    matches!(stanza_type, None | Some("normal")) && stanza.has_child("chatcontent", CONTENT)
}

/// A group message, as it will be archived and reflected.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    /// The children as sent, minus a `<stanza-id>` (mixd's to write) and chat states; a
    /// message carrying anything else the allow-list does not keep is refused. The stanza's
    /// `id` is the SDK's message id, which receipts, recalls and history name the message by.
    pub submission: Submission,
}

impl Post {
    pub fn parse(env: &Envelope, stanza: &Element) -> Outcome<Self> {
        Self::parse_with(env, stanza, payload::namespaces())
    }

    /// [`Post::parse`] with the operator's namespaces for opaque payloads given.
    fn parse_with(env: &Envelope, stanza: &Element, namespaces: &[String]) -> Outcome<Self> {
        let content = stanza
            .get_child("chatcontent", CONTENT)
            .ok_or_else(|| bad_request("a group message carries <chatcontent/>"))?;
        let kind = content.attr("message_type").unwrap_or("text");
        let screened = payload::screen(stanza, EXTRAS, namespaces)?;
        // FlyChat has no commands: a receipt, retraction or correction rides on nothing.
        screened.no_other_command(None)?;
        Ok(Post {
            submission: Submission {
                content: children_fragment(ns::COMPONENT, screened.content.iter().copied()),
                origin_id: None,
                client_id: env.id.clone(),
                media: MEDIA.contains(&kind),
            },
        })
    }

    /// The SDK does not wait for an answer: success is silent, a refusal is an error message.
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Handled {
        let reply_to = env.reply_to();
        let Some(name) = &env.channel else {
            return Handled::Reply(
                reply_to.service_unavailable(ErrorKind::Message, "group messages go to a group"),
            );
        };
        match groups.post(name, &env.sender(), self.submission, now) {
            Ok(facts) => Handled::Changed {
                facts,
                reply: None,
                on_failure: Some(reply_to.if_not_stored(ErrorKind::Message)),
            },
            Err(refusal) => Handled::Reply(env.error(&refusal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::{element, envelope};
    use crate::flychat::testing::{parse_message, GROUP, SERVICE};
    use crate::flychat::Request;

    /// As the SDK sends a new message: `edit_msg_id` is its id (`req-1`, the envelope's).
    const TEXT: &str = "<message xmlns='jabber:client' to='coven@mix.localhost' type='normal' \
        id='req-1'><chatcontent xmlns='urn:xmpp:content' message_type='text' \
        edit_msg_id='req-1'/><subject>text</subject><body>U2FsdGVkX1+abc==</body></message>";

    #[test]
    fn a_text_message_keeps_its_payload_and_its_id() {
        let request = parse_message(GROUP, TEXT);
        let Ok(Request::Post(post)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(post.submission.client_id.as_deref(), Some("req-1"));
        assert_eq!(post.submission.origin_id, None);
        assert!(!post.submission.media);
        let content = &post.submission.content;
        assert!(
            content.contains("message_type=\"text\"") || content.contains("message_type='text'")
        );
        assert!(content.contains("U2FsdGVkX1+abc=="), "{content}");
        assert!(content.contains("<subject"), "{content}");
    }

    #[test]
    fn media_kinds_are_marked_and_a_copied_stanza_id_dropped() {
        let request = parse_message(
            GROUP,
            "<message xmlns='jabber:client' to='coven@mix.localhost' id='m2'>\
             <chatcontent xmlns='urn:xmpp:content' message_type='image' meta_data='{}'/>\
             <body>cipher</body>\
             <stanza-id xmlns='urn:xmpp:sid:0' id='1' by='coven@mix.localhost'/></message>",
        );
        let Ok(Request::Post(post)) = request else {
            panic!("{request:?}")
        };
        assert!(post.submission.media);
        let content = &post.submission.content;
        assert!(!content.contains("stanza-id"), "{content}");
        assert!(content.contains("cipher"), "{content}");
        assert!(content.contains("meta_data"), "{content}");
    }

    /// A text message with `extra` after its body.
    fn with(extra: &str) -> String {
        TEXT.replace("</body></message>", &format!("</body>{extra}</message>"))
    }

    #[test]
    fn a_forged_sender_id_or_time_is_refused_by_name() {
        for (extra, name) in [
            ("<jid>mallory@localhost</jid>", "<jid/>"),
            ("<submission-id>msg-0</submission-id>", "<submission-id/>"),
            ("<timestamp time='1'/>", "<timestamp/>"),
            (
                "<timestamp xmlns='urn:xmpp:timestamp' time='1'/>",
                "<timestamp xmlns='urn:xmpp:timestamp'/>",
            ),
            (
                "<mix xmlns='urn:xmpp:mix:core:1'><jid>mallory@localhost</jid></mix>",
                "<mix xmlns='urn:xmpp:mix:core:1'/>",
            ),
            (
                "<x xmlns='jabber:x:oob'><url>u</url><jid>mallory@localhost</jid></x>",
                "<jid xmlns='jabber:x:oob'/>",
            ),
            (
                "<event xmlns='http://jabber.org/protocol/pubsub#event'/>",
                "<event xmlns='http://jabber.org/protocol/pubsub#event'/>",
            ),
            (
                "<recall xmlns='jabber:iq:mixgroupchat' id='msg-0'/>",
                "<recall xmlns='jabber:iq:mixgroupchat'/>",
            ),
            (
                "<received xmlns='urn:xmpp:receipts' id='msg-0'/>",
                "<received xmlns='urn:xmpp:receipts'/>",
            ),
        ] {
            // Before the body and after it.
            let after = with(extra);
            let before = TEXT.replace("<subject>", &format!("{extra}<subject>"));
            for stanza in [after, before] {
                let refusal = parse_message(GROUP, &stanza).unwrap_err();
                assert_eq!(refusal.condition, Condition::NotAcceptable, "{stanza}");
                assert!(refusal.text.contains(name), "{stanza}: {}", refusal.text);
            }
        }
    }

    #[test]
    fn shared_extensions_pass_and_opaque_ones_only_when_listed() {
        let request = parse_message(
            GROUP,
            &with(
                "<x xmlns='jabber:x:oob'><url>https://example.org/a.png</url></x>\
                   <origin-id xmlns='urn:xmpp:sid:0' id='o1'/>",
            ),
        );
        let Ok(Request::Post(post)) = request else {
            panic!("{request:?}")
        };
        assert!(post.submission.content.contains("jabber:x:oob"));
        let opaque = with("<poll xmlns='urn:example:poll:0'/>");
        let refusal = parse_message(GROUP, &opaque).unwrap_err();
        assert_eq!(refusal.condition, Condition::NotAcceptable);
        let env = envelope(ErrorKind::Message, "alice@localhost/web", GROUP);
        let listed = ["urn:example:poll:0".to_owned()];
        let post = Post::parse_with(&env, &element(&opaque), &listed).unwrap();
        assert!(post.submission.content.contains("urn:example:poll:0"));
    }

    #[test]
    fn a_message_without_chatcontent_is_no_post() {
        let env = envelope(ErrorKind::Message, "alice@localhost/web", GROUP);
        let stanza = element(
            "<message xmlns='jabber:client' to='coven@mix.localhost' type='normal'>\
             <body>plain</body></message>",
        );
        assert!(!is_flychat_message(&stanza, stanza.attr("type")));
        let refusal = Post::parse(&env, &stanza).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        // A groupchat message with chatcontent is MIX's to handle.
        let groupchat = element(
            "<message xmlns='jabber:client' type='groupchat'>\
             <chatcontent xmlns='urn:xmpp:content'/></message>",
        );
        assert!(!is_flychat_message(&groupchat, Some("groupchat")));
        let text = element(TEXT);
        assert!(is_flychat_message(&text, text.attr("type")));
    }

    #[test]
    fn a_post_to_the_service_is_refused_before_the_core_is_asked() {
        let request = parse_message(SERVICE, TEXT);
        let Ok(Request::Post(post)) = request else {
            panic!("{request:?}")
        };
        let env = envelope(ErrorKind::Message, "alice@localhost/web", SERVICE);
        let mut groups = crate::core::testing::groups();
        let Handled::Reply(reply) = post.apply(&mut groups, &env, 1) else {
            panic!("not a reply")
        };
        assert!(reply.contains("service-unavailable"), "{reply}");
    }
}
