//! The MIX dialect's `Request::parse`: any iq payload becomes a request or a rejection,
//! without a panic, and a rejection's error reply is well-formed XML.
#![no_main]

use jid::Jid;
use libfuzzer_sys::fuzz_target;
use mixd::dialect::{Envelope, ErrorKind};
use mixd::mix::{Rejection, Request};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let from = common::SENDERS[selector as usize % common::SENDERS.len()];
    let to = common::TARGETS[(selector as usize / 8) % common::TARGETS.len()];
    let set = selector & 0x80 != 0;
    let to = Jid::new(to).unwrap();
    let env = Envelope {
        kind: ErrorKind::Iq,
        from: Jid::new(from).unwrap(),
        channel: to.node().map(|n| n.to_string()),
        to,
        id: Some("f1".into()),
    };
    for (payload, _) in common::stanzas(rest, common::LIMITS) {
        if let Err(rejection) = Request::parse(&env, &payload, set) {
            let reply = match rejection {
                Rejection::Refused(refusal) => {
                    assert!(!refusal.text.is_empty(), "a refusal without a text");
                    env.error(&refusal)
                }
                Rejection::Unhandled(text) => env.reply_to().service_unavailable(env.kind, &text),
            };
            common::check_well_formed(&[reply]);
        }
    }
});
