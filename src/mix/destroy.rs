//! `<destroy channel='…'/>` to the service (XEP-0369 §7.3.4), by an owner. The participants
//! are told by delivery; the archive goes with the channel unless the service keeps it.

use minidom::Element;

use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};

/// A channel to destroy. It goes to the service, not to the channel, so the payload names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destroy {
    /// The channel's name, lowercased as channel names are kept.
    pub channel: String,
}

impl Destroy {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let name = payload
            .attr("channel")
            .ok_or_else(|| bad_request("<destroy/> needs the channel attribute"))?;
        Ok(Destroy {
            channel: name.to_lowercase(),
        })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.destroy(&env.sender(), &self.channel, now)?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn a_destroy_names_the_channel_in_lower_case() {
        let payload = element("<destroy xmlns='urn:xmpp:mix:core:1' channel='Coven'/>");
        assert_eq!(
            Destroy::parse(&payload).unwrap(),
            Destroy {
                channel: "coven".into()
            }
        );
    }

    #[test]
    fn a_destroy_without_a_channel_is_a_bad_request() {
        let payload = element("<destroy xmlns='urn:xmpp:mix:core:1'/>");
        let refusal = Destroy::parse(&payload).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "<destroy/> needs the channel attribute");
    }
}
