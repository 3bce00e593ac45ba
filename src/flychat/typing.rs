//! `status=composing` / `status=gone` (with a `<no-store/>` hint): typing, relayed to the
//! other members and never stored.

use crate::core::{ChatState, Groups, Micros, Outcome, Repeats};
use crate::dialect::{Envelope, Handled};

/// The status is the whole request: `composing`, or `gone` for every other state.
#[derive(Debug, Clone, PartialEq)]
pub struct Typing {
    pub state: ChatState,
}

impl Typing {
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.chat_state(
            env.channel_name(),
            &env.sender(),
            self.state,
            Repeats::Relayed,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::flychat::testing::{parse_iq, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    #[test]
    fn composing_and_gone_name_their_state() {
        for (status, state) in [
            ("composing", ChatState::Composing),
            ("gone", ChatState::Gone),
        ] {
            let request = parse_iq(
                GROUP,
                true,
                &format!(
                    "<query xmlns='jabber:iq:mixgroupchat' status='{status}'>\
                     <no-store xmlns='urn:xmpp:hints'/></query>"
                ),
            );
            let Ok(Request::Typing(typing)) = request else {
                panic!("{request:?}")
            };
            assert_eq!(typing, Typing { state });
        }
    }

    #[test]
    fn typing_is_a_set_to_a_group() {
        for status in ["composing", "gone", "paused"] {
            let query = format!("<query xmlns='jabber:iq:mixgroupchat' status='{status}'/>");
            assert_eq!(refused(SERVICE, true, &query), Condition::BadRequest);
            assert_eq!(refused(GROUP, false, &query), Condition::BadRequest);
        }
        // Only the SDK's two statuses are typing.
        let paused = "<query xmlns='jabber:iq:mixgroupchat' status='paused'/>";
        assert_eq!(refused(GROUP, true, paused), Condition::BadRequest);
    }
}
