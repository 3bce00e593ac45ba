//! `<leave/>` to a channel (XEP-0369 §7.1.4).

use minidom::Element;

use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{Envelope, Handled};
use crate::xml::{ns, Xml};

/// A leave: the channel is the address and the participant the sender, so the payload
/// carries nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leave;

impl Leave {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(Leave)
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.leave(env.channel_name(), &env.sender(), now)?;
        let mut x = Xml::new();
        x.open("leave", ns::MIX_CORE).close();
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::element;

    #[test]
    fn a_leave_carries_nothing() {
        let payload = element("<leave xmlns='urn:xmpp:mix:core:1'/>");
        assert_eq!(Leave::parse(&payload).unwrap(), Leave);
    }
}
