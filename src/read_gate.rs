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
use crate::gate::Addressed;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::core::testing::{coven, jid};
    use crate::core::Micros;
    use crate::gate::{now, Gate};
    use crate::link::reader::{Item, Limits, Reader};

    const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' from='mix.localhost' id='s1'>";

    /// The reply the gate gives `stanza`, read through the link's reader; `None` when the
    /// stanza is read as usual.
    fn screened(gate: &Arc<Gate>, stanza: &str) -> Option<String> {
        let mut reader = Reader::with_screen(
            Limits {
                max_bytes: 64 * 1024,
                max_depth: 32,
            },
            gate.clone(),
        );
        let mut out = Vec::new();
        reader.feed(HEADER.as_bytes(), &mut out).unwrap();
        out.clear();
        reader.feed(stanza.as_bytes(), &mut out).unwrap();
        match out.pop() {
            Some(Item::Screened { reply }) => Some(reply),
            Some(Item::Stanza { .. }) => None,
            other => panic!("{stanza}: {other:?}"),
        }
    }

    /// Bob, out of reads: the quota refused his read a moment (`ago`) before now; what the
    /// rules said.
    fn bob_out_of_reads(gate: &Gate, ago: Micros) -> String {
        let mut g = coven();
        g.rules.history_burst = 1;
        g.rules.history_per_minute = 6;
        let at = now() - ago;
        let bob = jid("bob@localhost");
        g.charge_read(&bob, at).unwrap();
        let refusal = g.charge_read(&bob, at).unwrap_err();
        gate.publish(g.take_out_of_tokens());
        refusal.text
    }

    const MAM: &str = "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>\
        <max>10</max><before/></set></query>";
    const FLYCHAT: &str = "<query xmlns='jabber:iq:user_activities' to_user='coven@mix.localhost' \
        status='group_chat' limit='50'/>";

    fn iq(from: &str, to: &str, kind: &str, payload: &str) -> String {
        format!("<iq from='{from}' to='{to}' id='h1' type='{kind}'>{payload}</iq>")
    }

    #[test]
    fn history_queries_of_a_user_out_of_reads_are_answered_with_the_quotas_refusal() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        let mam = iq("bob@localhost/r", "coven@mix.localhost", "set", MAM);
        assert_eq!(screened(&gate, &mam), None, "nobody is out of reads");
        let said = bob_out_of_reads(&gate, 0);
        assert!(said.starts_with(
            "you are reading history too fast: at most 1 reads at once, then 6 a minute; try again in "
        ));
        let reply = screened(&gate, &mam).expect("refused");
        assert!(
            reply.starts_with(
                "<iq xmlns='jabber:component:accept' type='error' from='coven@mix.localhost' to='bob@localhost/r' id='h1'>"
            ),
            "{reply}"
        );
        assert!(
            reply.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
            "{reply}"
        );
        assert!(
            reply.contains(&said[..said.len() - " 9.9 s".len()]),
            "{reply} / {said}"
        );
        // Any client of bob's; FlyChat's history pages and look-ups, to the service or a
        // channel.
        for stanza in [
            iq("bob@localhost/other", "coven@mix.localhost", "set", MAM),
            iq("bob@localhost/r", "mix.localhost", "get", FLYCHAT),
            iq("bob@localhost/r", "coven@mix.localhost/x", "get", FLYCHAT),
            iq(
                "bob@localhost/r",
                "mix.localhost",
                "get",
                "<query xmlns='jabber:iq:user_activities' status='reply_message' message_id='m'/>",
            ),
        ] {
            assert!(screened(&gate, &stanza).is_some(), "{stanza}");
        }
        // What is not surely a history query from bob to this service goes on to the rules.
        for stanza in [
            iq("alice@localhost/r", "coven@mix.localhost", "set", MAM),
            iq("bob@localhost/r", "coven@mix.localhost", "get", MAM),
            iq("bob@localhost/r", "mix.localhost", "set", MAM),
            iq("bob@localhost/r", "coven@elsewhere", "set", MAM),
            iq("bob@localhost/r", "mix.localhost", "set", FLYCHAT),
            iq("bob@localhost/r", "elsewhere", "get", FLYCHAT),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "get",
                "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            ),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "set",
                "<m:query xmlns:m='urn:xmpp:mam:2'/>",
            ),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "set",
                "<query xmlns='urn:xmpp:mam:2&#x30;'/>",
            ),
            iq(
                "bob@localhost/r",
                "coven@mix.localhost",
                "set",
                &format!("{MAM}{MAM}"),
            ),
            "<iq from='bob@localhost/r' to='coven@mix.localhost' id='h1' type='set' xmlns='jabber:client'>\
             <query xmlns='urn:xmpp:mam:2'/></iq>"
                .into(),
            "<message from='bob@localhost/r' to='coven@mix.localhost' type='groupchat'>\
             <query xmlns='urn:xmpp:mam:2'/></message>"
                .into(),
        ] {
            assert_eq!(screened(&gate, &stanza), None, "{stanza}");
        }
    }

    #[test]
    fn an_entry_ends_at_its_time_and_a_reload_clears_them() {
        let gate = Arc::new(Gate::new("mix.localhost"));
        let mam = iq("bob@localhost/r", "coven@mix.localhost", "set", MAM);
        // Refused twenty seconds ago, for a wait of ten seconds: over now.
        bob_out_of_reads(&gate, 20_000_000);
        assert_eq!(screened(&gate, &mam), None);
        bob_out_of_reads(&gate, 0);
        assert!(screened(&gate, &mam).is_some());
        gate.clear();
        assert_eq!(screened(&gate, &mam), None);
    }
}
