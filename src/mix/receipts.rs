//! The receipt state of a message, for any participant: an iq get
//! `<message-state xmlns='urn:mixd:receipts:0' id='…'/>` answered with every member (the
//! participants other than the author), when each got and saw it, and the counts.

use minidom::Element;

use crate::core::{iso_time, Groups, Outcome};
use crate::dialect::ids::Ids;
use crate::dialect::shapes::{member_states, MemberState};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{ns, Xml};

/// A query of one message's receipt state. The message is named as a receipt names it (its
/// opaque archive id, or the author's origin-id or stanza id), since that is what clients
/// know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub reference: String,
}

impl MessageState {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let reference = payload
            .attr("id")
            .ok_or_else(|| bad_request("<message-state/> needs the id of the message"))?;
        Ok(MessageState {
            reference: reference.to_owned(),
        })
    }

    /// Only participants may ask (checked before the look-up, and again after it).
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let key = groups
            .participant_of(env.channel_name(), &env.sender())?
            .0
            .key;
        let owned = env.clone();
        Ok(Handled::lookup(
            env,
            key,
            &self.reference,
            move |groups, service, found, _| {
                let env = owned;
                let ids = service.ids.clone();
                match groups.members_of(env.channel_name(), &env.sender(), found.as_ref()) {
                    Ok((message, members)) => {
                        member_states(env.reply_to(), message, members, move |m, s| {
                            render(&ids, m, s)
                        })
                    }
                    Err(refusal) => Handled::Reply(env.error(&refusal)),
                }
            },
        ))
    }
}

/// The state, naming the message by its opaque id.
fn render(ids: &Ids, message: &crate::core::MessageRef, states: &[MemberState]) -> String {
    let delivered = states.iter().filter(|s| s.delivered_at.is_some()).count();
    let displayed = states.iter().filter(|s| s.displayed_at.is_some()).count();
    let mut x = Xml::new();
    x.open("message-state", ns::MIXD_RECEIPTS)
        .attr("id", &ids.encode(message.id))
        .attr("members", &states.len().to_string())
        .attr("delivered", &delivered.to_string())
        .attr("displayed", &displayed.to_string());
    for state in states {
        x.open("member", "")
            .attr("jid", state.member.as_str())
            .attr_opt("delivered", state.delivered_at.map(iso_time).as_deref())
            .attr_opt("displayed", state.displayed_at.map(iso_time).as_deref())
            .close();
    }
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn a_state_query_names_the_message() {
        let payload = element("<message-state xmlns='urn:mixd:receipts:0' id='origin-7'/>");
        assert_eq!(
            MessageState::parse(&payload).unwrap(),
            MessageState {
                reference: "origin-7".into()
            }
        );
    }

    #[test]
    fn a_state_query_without_an_id_is_a_bad_request() {
        let payload = element("<message-state xmlns='urn:mixd:receipts:0'/>");
        let refusal = MessageState::parse(&payload).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "<message-state/> needs the id of the message");
    }
}
