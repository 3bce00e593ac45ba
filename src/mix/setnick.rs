//! `<setnick><nick/></setnick>` to a channel (XEP-0369 §7.1.6); `conflict` if taken.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{ns, Xml};

/// A nick change. The nick is taken as sent: whether it is valid (not blank, within the
/// limit) and free is the core's to decide, and the result carries the nick as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNick {
    pub nick: String,
}

impl SetNick {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let nick = payload
            .get_child("nick", ns::MIX_CORE)
            .map(|n| n.text())
            .ok_or_else(|| bad_request("<setnick/> needs a <nick/>"))?;
        Ok(SetNick { nick })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope) -> Outcome<Handled> {
        let (nick, facts) = groups.set_nick(env.channel_name(), &env.sender(), &self.nick)?;
        let mut x = Xml::new();
        x.open("setnick", ns::MIX_CORE)
            .leaf("nick", "", &nick)
            .close();
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn a_setnick_carries_the_nick() {
        let payload = element("<setnick xmlns='urn:xmpp:mix:core:1'><nick>Hecate</nick></setnick>");
        assert_eq!(
            SetNick::parse(&payload).unwrap(),
            SetNick {
                nick: "Hecate".into()
            }
        );
    }

    #[test]
    fn a_setnick_without_a_nick_is_a_bad_request() {
        for xml in [
            "<setnick xmlns='urn:xmpp:mix:core:1'/>",
            "<setnick xmlns='urn:xmpp:mix:core:1'><nick xmlns='urn:example'>x</nick></setnick>",
        ] {
            let refusal = SetNick::parse(&element(xml)).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, "<setnick/> needs a <nick/>");
        }
    }
}
