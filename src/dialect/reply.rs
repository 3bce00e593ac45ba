//! Replies: iq results and the error shape every refused stanza gets (RFC 6120 §8.3) with a
//! human-readable text.

use crate::core::{Condition, Refusal};
use crate::xml::{ns, Xml};

/// Whom a reply goes to: the request's addresses swapped, and its id.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub from: String,
    pub to: String,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Iq,
    Message,
    Presence,
}

impl ErrorKind {
    fn element(self) -> &'static str {
        match self {
            ErrorKind::Iq => "iq",
            ErrorKind::Message => "message",
            ErrorKind::Presence => "presence",
        }
    }
}

/// The RFC 6120 name and error type of a core condition.
fn condition_name(condition: Condition) -> (&'static str, &'static str) {
    match condition {
        Condition::BadRequest => ("bad-request", "modify"),
        Condition::Forbidden => ("forbidden", "auth"),
        Condition::NotAllowed => ("not-allowed", "cancel"),
        Condition::ItemNotFound => ("item-not-found", "cancel"),
        Condition::Conflict => ("conflict", "cancel"),
        Condition::ResourceConstraint => ("resource-constraint", "wait"),
        Condition::NotAcceptable => ("not-acceptable", "modify"),
        Condition::FeatureNotImplemented => ("feature-not-implemented", "cancel"),
        Condition::PolicyViolation => ("policy-violation", "modify"),
    }
}

/// The bytes of an iq result besides its addresses, id and payload: the start tag with its
/// namespace and empty values, and the end tag. Counted, not guessed: a guess of 64 left every
/// result with a payload (a join's) 11 bytes short of its buffer, which then grew (a
/// reallocation and a copy of the whole result on the rules task).
const IQ_RESULT_FRAME: usize =
    "<iq xmlns='' type='result' from='' to='' id=''></iq>".len() + ns::COMPONENT.len();

impl ReplyTo {
    /// The head of a reply: same stanza kind and id, addresses swapped.
    fn head(&self, x: &mut Xml, kind: ErrorKind, stanza_type: &str) {
        x.open(kind.element(), ns::COMPONENT)
            .attr("type", stanza_type)
            .attr("from", &self.from)
            .attr("to", &self.to)
            .attr_opt("id", self.id.as_deref());
    }

    pub fn error(&self, kind: ErrorKind, refusal: &Refusal) -> String {
        let (condition, error_type) = condition_name(refusal.condition);
        self.error_with(kind, condition, error_type, &refusal.text)
    }

    /// For requests no part of mixd handles (RFC 6120 §8.4).
    pub fn service_unavailable(&self, kind: ErrorKind, text: &str) -> String {
        self.error_with(kind, "service-unavailable", "cancel", text)
    }

    /// What a requester is told when its change could not be stored (or read).
    pub fn storage_failed(&self, kind: ErrorKind) -> String {
        self.error_with(
            kind,
            "internal-server-error",
            "wait",
            "the storage failed; try again",
        )
    }

    /// What the requester is told if its change is not stored, kept unwritten until then:
    /// a commit seldom fails, and writing the error for every post in advance was a tenth of
    /// the rules task's work per post (docs/benchmarks.md, "The per-message cost outside the
    /// store").
    pub fn if_not_stored(self, kind: ErrorKind) -> IfNotStored {
        IfNotStored {
            reply_to: self,
            kind,
        }
    }

    /// An iq result carrying `payload` (already serialized), or empty.
    pub fn iq_result(&self, payload: Option<&str>) -> String {
        let bytes = payload.map_or(0, str::len);
        self.iq_result_of(bytes, |x| {
            if let Some(payload) = payload {
                x.raw(payload);
            }
        })
    }

    /// An iq result whose payload, of about `bytes`, `write` writes in place: a large one (a
    /// FlyChat history page, ~30 KB for 50 rows) is then neither copied into the result nor
    /// grown by doubling from a small buffer (docs/benchmarks.md, "A history page's
    /// rendering, cheaper").
    pub fn iq_result_of(&self, bytes: usize, write: impl FnOnce(&mut Xml)) -> String {
        let head = IQ_RESULT_FRAME
            + self.from.len()
            + self.to.len()
            + self.id.as_ref().map_or(0, String::len);
        let mut x = Xml::with_capacity(head + bytes);
        self.head(&mut x, ErrorKind::Iq, "result");
        write(&mut x);
        x.finish()
    }

    fn error_with(
        &self,
        kind: ErrorKind,
        condition: &'static str,
        error_type: &str,
        text: &str,
    ) -> String {
        let mut x = Xml::new();
        self.head(&mut x, kind, "error");
        x.open("error", "")
            .attr("type", error_type)
            .open(condition, ns::STANZAS)
            .close()
            .open("text", ns::STANZAS)
            .attr("xml:lang", "en")
            .text(text)
            .close()
            .close();
        x.finish()
    }
}

/// The error a change's requester gets if the change is not stored, written only then
/// ([`ReplyTo::if_not_stored`]).
#[derive(Debug, Clone)]
pub struct IfNotStored {
    reply_to: ReplyTo,
    kind: ErrorKind,
}

impl IfNotStored {
    /// The `internal-server-error` reply ([`ReplyTo::storage_failed`]).
    pub fn reply(&self) -> String {
        self.reply_to.storage_failed(self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_not_stored_is_answered_to_its_sender_with_internal_server_error() {
        let reply_to = ReplyTo {
            from: "coven@mix.example.org".into(),
            to: "hag@example.org/broom".into(),
            id: Some("m'1".into()),
        };
        let reply: minidom::Element = reply_to
            .if_not_stored(ErrorKind::Message)
            .reply()
            .parse()
            .unwrap();
        assert!(reply.is("message", ns::COMPONENT));
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("from"), Some("coven@mix.example.org"));
        assert_eq!(reply.attr("to"), Some("hag@example.org/broom"));
        assert_eq!(reply.attr("id"), Some("m'1"));
        let error = reply.get_child("error", ns::COMPONENT).unwrap();
        assert_eq!(error.attr("type"), Some("wait"));
        assert!(error.has_child("internal-server-error", ns::STANZAS));
        let text = error.get_child("text", ns::STANZAS).unwrap().text();
        assert_eq!(text, "the storage failed; try again");
    }

    #[test]
    fn an_iq_result_fills_the_buffer_it_reserved_without_growing() {
        let reply_to = ReplyTo {
            from: "coven@mix.example.org".into(),
            to: "hag@example.org/broom".into(),
            id: Some("j1".into()),
        };
        let payload = "<join xmlns='urn:xmpp:mix:core:1'><nick>hag</nick></join>";
        let result = reply_to.iq_result(Some(payload));
        assert_eq!(result.capacity(), result.len(), "{result}");
        assert!(result.ends_with(&format!("{payload}</iq>")), "{result}");
    }
}
