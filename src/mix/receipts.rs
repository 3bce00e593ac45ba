//! The receipt state of a message, for any participant: an iq get
//! `<message-state xmlns='urn:mixd:receipts:0' id='…'/>` answered with every member (the
//! participants other than the author), when each got and saw it, and the counts. Each
//! member is named by its JID, or — for a requester from whom a JID-hidden channel hides
//! JIDs (XEP-0404) — by its participant id.

use jid::BareJid;
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
                        let names = member_names(groups, &env, &members);
                        member_states(&env, message, members, move |m, s| {
                            render(&ids, m, s, &names)
                        })
                    }
                    Err(refusal) => Handled::Reply(env.error(&refusal)),
                }
            },
        ))
    }
}

/// How each of `members` is named to the requester: `(attribute, value)`, its JID where
/// the requester may see JIDs, else its participant id.
fn member_names(
    groups: &Groups,
    env: &Envelope,
    members: &[BareJid],
) -> Vec<(&'static str, String)> {
    let channel = groups.channel(env.channel_name());
    let shown = channel.is_none_or(|c| c.shows_jids_to(&env.sender()));
    members
        .iter()
        .map(|member| {
            if shown {
                return ("jid", member.to_string());
            }
            let id = channel.and_then(|c| c.participant(member)).map(|p| p.id);
            ("id", id.map(|id| id.to_string()).unwrap_or_default())
        })
        .collect()
}

/// The state, naming the message by its opaque id and each member as `names` says.
fn render(
    ids: &Ids,
    message: &crate::core::MessageRef,
    states: &[MemberState],
    names: &[(&'static str, String)],
) -> String {
    let delivered = states.iter().filter(|s| s.delivered_at.is_some()).count();
    let displayed = states.iter().filter(|s| s.displayed_at.is_some()).count();
    let mut x = Xml::new();
    x.open("message-state", ns::MIXD_RECEIPTS)
        .attr("id", &ids.encode(message.id))
        .attr("members", &states.len().to_string())
        .attr("delivered", &delivered.to_string())
        .attr("displayed", &displayed.to_string());
    for (state, (attribute, name)) in states.iter().zip(names) {
        x.open("member", "")
            .attr(attribute, name)
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
