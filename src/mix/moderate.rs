//! Moderation (XEP-0425): an owner or admin retracts someone's message with an iq
//! `<moderate id='…'><retract xmlns='urn:xmpp:message-retract:1'/><reason/></moderate>`.
//! The archive keeps a tombstone; every participant is told.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::ns;

/// A moderation of one archived message. XEP-0425 §4 names the message by its stanza id
/// (the archive id here) and asks for the retraction to be said explicitly, so that later
/// kinds of moderation are not mistaken for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderate {
    /// What names the message (found through `Reader::find_message`).
    pub reference: String,
    /// Shown to participants with the tombstone; an empty reason is none.
    pub reason: Option<String>,
}

impl Moderate {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let id = payload
            .attr("id")
            .ok_or_else(|| bad_request("<moderate/> needs the id of the message"))?;
        if !payload.has_child("retract", ns::RETRACT) {
            return Err(bad_request(
                "<moderate/> must carry <retract xmlns='urn:xmpp:message-retract:1'/>",
            ));
        }
        let reason = payload
            .get_child("reason", ns::MODERATE)
            .map(|r| r.text())
            .filter(|r| !r.is_empty());
        Ok(Moderate {
            reference: id.to_owned(),
            reason,
        })
    }

    /// Looks the message up off the rules task, then retracts it as a moderator.
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let key = groups.existing(env.channel_name())?.key;
        let reference = self.reference.clone();
        let owned = env.clone();
        Ok(Handled::lookup(
            env,
            key,
            &reference,
            move |groups, _, target, now| {
                let env = owned;
                match groups.retract(
                    env.channel_name(),
                    &env.sender(),
                    target.as_ref(),
                    Some(self.reason),
                    now,
                ) {
                    Ok(facts) => Handled::iq_changed(&env, facts, None),
                    Err(refusal) => Handled::Reply(env.error(&refusal)),
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn a_moderation_names_the_message_and_a_reason() {
        let payload = element(
            "<moderate xmlns='urn:xmpp:message-moderate:1' id='17'>\
             <retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate>",
        );
        assert_eq!(
            Moderate::parse(&payload).unwrap(),
            Moderate {
                reference: "17".into(),
                reason: Some("spam".into())
            }
        );
        let no_reason = element(
            "<moderate xmlns='urn:xmpp:message-moderate:1' id='17'>\
             <retract xmlns='urn:xmpp:message-retract:1'/><reason/></moderate>",
        );
        assert_eq!(Moderate::parse(&no_reason).unwrap().reason, None);
    }

    #[test]
    fn a_moderation_without_an_id_or_a_retract_is_a_bad_request() {
        for (xml, text) in [
            (
                "<moderate xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/></moderate>",
                "<moderate/> needs the id of the message",
            ),
            (
                "<moderate xmlns='urn:xmpp:message-moderate:1' id='1'/>",
                "<moderate/> must carry <retract xmlns='urn:xmpp:message-retract:1'/>",
            ),
        ] {
            let refusal = Moderate::parse(&element(xml)).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, text);
        }
    }
}
