//! `<setnick><nick/></setnick>` to a channel (XEP-0369 §7.1.6); `conflict` if taken. A
//! blank nick asks the channel to assign one, which the result carries; a `<setnick/>`
//! without `<nick/>` is taken as blank, since that is what slixmpp sends for an empty nick.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{Envelope, Handled};
use crate::xml::{ns, Xml};

/// A nick change. The nick is taken as sent: whether it is valid (within the limit) and free
/// is the core's to decide, and the result carries the nick as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNick {
    /// `None`: the nick was blank or left out, and the channel generates one.
    pub nick: Option<String>,
}

impl SetNick {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let nick = payload
            .get_child("nick", ns::MIX_CORE)
            .map(|n| n.text())
            .filter(|nick| !nick.trim().is_empty());
        Ok(SetNick { nick })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope) -> Outcome<Handled> {
        let (nick, facts) =
            groups.set_nick(env.channel_name(), &env.sender(), self.nick.as_deref())?;
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
    use crate::dialect::testing::element;

    #[test]
    fn a_setnick_carries_the_nick() {
        let payload = element("<setnick xmlns='urn:xmpp:mix:core:1'><nick>Hecate</nick></setnick>");
        assert_eq!(
            SetNick::parse(&payload).unwrap(),
            SetNick {
                nick: Some("Hecate".into())
            }
        );
        let blank = element("<setnick xmlns='urn:xmpp:mix:core:1'><nick> </nick></setnick>");
        assert_eq!(SetNick::parse(&blank).unwrap(), SetNick { nick: None });
    }

    #[test]
    fn a_setnick_without_a_nick_asks_for_one() {
        for xml in [
            "<setnick xmlns='urn:xmpp:mix:core:1'/>",
            "<setnick xmlns='urn:xmpp:mix:core:1'><nick xmlns='urn:example'>x</nick></setnick>",
        ] {
            assert_eq!(
                SetNick::parse(&element(xml)).unwrap(),
                SetNick { nick: None }
            );
        }
    }
}
