//! History queries told from their envelope, for the gate (`gate.rs`) to refuse a user out
//! of reads before the query is read into a tree.
//!
//! When the history quota (`core/quota.rs`) refuses a user's read of the archive, that user's
//! bucket has no token until a time the quota knows: every read before then is refused too,
//! with the same text but for the wait. The rules task publishes that time to the gate
//! (from [`crate::core::OutOfTokens`]), which answers such a user's history queries with the
//! quota's own `policy-violation`: never parsed, queued, routed or handled
//! (docs/benchmarks.md, "A history flood beside a quiet reader").
//!
//! Only what is surely a history query is refused there, from its envelope: an iq in the
//! component namespace with one child, a `<query/>` declaring as its default namespace
//! either MAM's (a `set` to a channel of this service) or the FlyChat SDK's history
//! (`jabber:iq:user_activities`, a `get` to this service or one of its channels: every get in
//! that namespace is a history page or a `reply_message` look-up, both reads). Anything else
//! goes on to the rules as before. One order changes: a query the dialect would refuse for
//! another reason (a channel it may not read, a malformed form) is refused for the quota
//! first while its sender is out of reads (and says no more about the channel than that).

use crate::flychat::HISTORY_NS;
use crate::link::reader::Envelope;
use crate::xml::ns;

/// Whether a stanza addressed `to` is a history query, told from its envelope (see the
/// module's doc).
pub(crate) fn is_history_query(envelope: &Envelope, to: Addressed) -> bool {
    if envelope.name != b"iq" || envelope.xmlns.is_some_and(|x| x != ns::COMPONENT) {
        return false;
    }
    let Some([query]) = envelope.children else {
        return false;
    };
    if query.name() != b"query" {
        return false;
    }
    let namespace = query.namespace();
    match (envelope.kind, to) {
        (Some("set"), Addressed::Channel) => namespace == Some(ns::MAM.as_bytes()),
        (Some("get"), Addressed::Channel | Addressed::Service) => {
            namespace == Some(HISTORY_NS.as_bytes())
        }
        _ => false,
    }
}

/// Where a stanza is addressed, as the gate tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressed {
    /// `name@domain` of this service, with or without a resource.
    Channel,
    /// This service's domain itself.
    Service,
    Elsewhere,
}
