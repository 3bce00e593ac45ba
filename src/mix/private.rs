//! Private messages through a proxy JID (XEP-0404): a `chat` or `normal` message to
//! `<participant id>#<channel>@<service>` from a participant of the channel goes on to that
//! participant's bare JID (whose server delivers it to its clients or keeps it offline),
//! from the sender's own proxy JID, so that the recipient can answer it the same way and
//! neither learns the other's JID. It is not archived (XEP-0404 forbids the channel to).
//! What it may carry is the allow-list every message passes (`dialect::payload`); its `id`
//! goes along, so that receipts and replies can name it.

use minidom::Element;

use crate::core::{Condition, Groups, Outcome, ParticipantId, Refusal};
use crate::dialect::payload;
use crate::dialect::proxy;
use crate::dialect::{bad_request, Envelope, Handled, Service};
use crate::xml::{children_fragment, ns, Xml};

/// A message to a participant's proxy JID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Private {
    /// The channel's name.
    pub channel: String,
    pub to: ParticipantId,
    /// `chat` or `normal`, as sent.
    pub message_type: &'static str,
    /// The payload the allow-list kept, as an XML fragment.
    pub content: String,
}

impl Private {
    /// `Ok(None)` when the message is not addressed to a proxy JID.
    pub fn parse(
        env: &Envelope,
        stanza: &Element,
        message_type: Option<&str>,
    ) -> Outcome<Option<Self>> {
        let Some((to, channel)) = proxy::parse(env.channel_name()) else {
            return Ok(None);
        };
        let message_type = match message_type {
            None | Some("normal") => "normal",
            Some("chat") => "chat",
            Some("groupchat" | "headline") => {
                return Err(Refusal::new(
                    Condition::NotAcceptable,
                    "a private message to a proxy JID is of type chat or normal",
                ))
            }
            Some(other) => return Err(bad_request(format!("'{other}' is not a message type"))),
        };
        let to = to.map_err(|id| {
            Refusal::new(
                Condition::ItemNotFound,
                format!("'{channel}' has no participant {id}"),
            )
        })?;
        let screened = payload::screen(stanza, &[], payload::namespaces())?;
        Ok(Some(Private {
            channel: channel.to_owned(),
            to,
            message_type,
            content: children_fragment(ns::COMPONENT, screened.content.iter().copied()),
        }))
    }

    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let route = groups.private_route(&self.channel, &env.sender(), self.to)?;
        let from = proxy::proxy_jid(&service.channel_jid(&self.channel), route.from);
        let mut x = Xml::new();
        x.open("message", ns::COMPONENT)
            .attr("from", &from)
            .attr("to", route.to.as_str())
            .attr("type", self.message_type)
            .attr_opt("id", env.id.as_deref())
            .raw(&self.content)
            .close();
        Ok(Handled::Reply(x.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::{element, envelope};
    use crate::dialect::ErrorKind;

    fn parse(to: &str, message_type: Option<&str>, payload: &str) -> Outcome<Option<Private>> {
        let env = envelope(ErrorKind::Message, "hag@example.org/broom", to);
        let stanza = element(&format!(
            "<message xmlns='jabber:component:accept' from='hag@example.org/broom' to='{to}'>{payload}</message>"
        ));
        Private::parse(&env, &stanza, message_type)
    }

    #[test]
    fn a_message_to_a_proxy_jid_is_private_and_keeps_its_payload() {
        let private = parse(
            "0123456789abcdef#coven@mix.example.org",
            Some("chat"),
            "<body>Meet at midnight</body>",
        )
        .unwrap()
        .unwrap();
        assert_eq!(private.channel, "coven");
        assert_eq!(private.to, ParticipantId(0x0123_4567_89ab_cdef));
        assert_eq!(private.message_type, "chat");
        assert!(
            private.content.contains("Meet at midnight"),
            "{}",
            private.content
        );
        assert_eq!(
            parse("coven@mix.example.org", Some("chat"), "<body>x</body>").unwrap(),
            None
        );
    }

    #[test]
    fn a_groupchat_a_bad_id_or_a_forged_payload_is_refused() {
        let to = "0123456789abcdef#coven@mix.example.org";
        let refusal = parse(to, Some("groupchat"), "<body>x</body>").unwrap_err();
        assert_eq!(refusal.condition, Condition::NotAcceptable);
        let refusal = parse("nobody#coven@mix.example.org", None, "<body>x</body>").unwrap_err();
        assert_eq!(refusal.condition, Condition::ItemNotFound);
        assert_eq!(refusal.text, "'coven' has no participant nobody");
        let forged = "<body>x</body><mix xmlns='urn:xmpp:mix:core:1'><jid>a@b</jid></mix>";
        let refusal = parse(to, Some("chat"), forged).unwrap_err();
        assert_eq!(refusal.condition, Condition::NotAcceptable);
    }
}
