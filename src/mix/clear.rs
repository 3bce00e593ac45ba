//! Clearing one's own history: `<clear xmlns='urn:mixd:history:0' upto='…'/>` hides every
//! message up to that archive id (all of them without `upto`) from the requester's MAM
//! results; the result says up to which id history is now hidden.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{ns, Xml};

/// A clear of the requester's view of the archive. Only the requester's view changes: the
/// archive is shared by every participant, so nothing is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clear {
    /// The last archive id to hide; `None`: everything so far.
    pub upto: Option<i64>,
}

impl Clear {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let upto = match payload.attr("upto") {
            Some(id) => Some(
                id.parse::<i64>()
                    .map_err(|_| bad_request(format!("upto: '{id}' is not an archive id")))?,
            ),
            None => None,
        };
        Ok(Clear { upto })
    }

    pub fn apply(self, groups: &mut Groups, env: &Envelope) -> Outcome<Handled> {
        let (upto, facts) = groups.clear_history(env.channel_name(), &env.sender(), self.upto)?;
        let mut x = Xml::new();
        x.open("clear", ns::MIXD_HISTORY)
            .attr("upto", &upto.to_string());
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::element;

    #[test]
    fn upto_is_an_archive_id_or_absent() {
        let clear = element("<clear xmlns='urn:mixd:history:0' upto='42'/>");
        assert_eq!(Clear::parse(&clear).unwrap(), Clear { upto: Some(42) });
        let all = element("<clear xmlns='urn:mixd:history:0'/>");
        assert_eq!(Clear::parse(&all).unwrap(), Clear { upto: None });
    }

    #[test]
    fn upto_that_is_no_archive_id_is_a_bad_request() {
        let clear = element("<clear xmlns='urn:mixd:history:0' upto='yesterday'/>");
        let refusal = Clear::parse(&clear).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "upto: 'yesterday' is not an archive id");
    }
}
