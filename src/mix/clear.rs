//! Clearing one's own history: `<clear xmlns='urn:mixd:history:0' upto='…'/>` hides every
//! message up to that message (all of them without `upto`) from the requester's MAM
//! results; the result says up to which message history is now hidden. Both are opaque ids
//! (`dialect::ids`).

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled, Service};
use crate::xml::{ns, Xml};

/// A clear of the requester's view of the archive. Only the requester's view changes: the
/// archive is shared by every participant, so nothing is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clear {
    /// The last message to hide, by its id as sent; `None`: everything so far.
    pub upto: Option<String>,
}

impl Clear {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        Ok(Clear {
            upto: payload.attr("upto").map(str::to_owned),
        })
    }

    pub fn apply(self, groups: &mut Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let upto = match self.upto {
            Some(id) => Some(upto(service, &id)?),
            None => None,
        };
        let (upto, facts) = groups.clear_history(env.channel_name(), &env.sender(), upto)?;
        let mut x = Xml::new();
        x.open("clear", ns::MIXD_HISTORY)
            .attr("upto", &service.ids.encode(upto));
        Ok(Handled::iq_changed(env, facts, Some(x.finish())))
    }
}

/// The archive id an `upto` names; one that is no id of this service is a bad request.
fn upto(service: &Service, id: &str) -> Outcome<i64> {
    service
        .ids
        .decode(id)
        .ok_or_else(|| bad_request(format!("upto: '{id}' is not an archive id")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Condition;
    use crate::dialect::testing::{element, service};

    #[test]
    fn upto_is_an_id_as_sent_or_absent() {
        let clear = element("<clear xmlns='urn:mixd:history:0' upto='Kq3x0Zb9-Q_'/>");
        assert_eq!(
            Clear::parse(&clear).unwrap(),
            Clear {
                upto: Some("Kq3x0Zb9-Q_".into())
            }
        );
        let all = element("<clear xmlns='urn:mixd:history:0'/>");
        assert_eq!(Clear::parse(&all).unwrap(), Clear { upto: None });
    }

    #[test]
    fn upto_decodes_to_the_archive_id_or_is_a_bad_request() {
        let service = service();
        assert_eq!(upto(&service, &service.ids.encode(42)), Ok(42));
        for id in ["yesterday", "42"] {
            let refusal = upto(&service, id).unwrap_err();
            assert_eq!(refusal.condition, Condition::BadRequest);
            assert_eq!(refusal.text, format!("upto: '{id}' is not an archive id"));
        }
    }
}
