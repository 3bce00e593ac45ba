//! The FlyChat dialect's `Request::parse`: any iq payload or message becomes a request or a
//! refusal, without a panic, and the refusal's error reply is well-formed XML.
#![no_main]

use jid::Jid;
use libfuzzer_sys::fuzz_target;
use mixd::dialect::{Envelope, ErrorKind};
use mixd::flychat::Request;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let from = common::SENDERS[selector as usize % common::SENDERS.len()];
    let to = common::TARGETS[(selector as usize / 8) % common::TARGETS.len()];
    let (kind, set) = match selector >> 6 {
        0 => (ErrorKind::Iq, false),
        1 => (ErrorKind::Iq, true),
        2 => (ErrorKind::Message, false),
        _ => (ErrorKind::Presence, false),
    };
    let to = Jid::new(to).unwrap();
    let env = Envelope {
        kind,
        from: Jid::new(from).unwrap(),
        channel: to.node().map(|n| n.to_string()),
        to,
        id: Some("f1".into()),
    };
    for (element, _) in common::stanzas(rest, common::LIMITS) {
        if let Err(refusal) = Request::parse(&env, &element, set) {
            assert!(!refusal.text.is_empty(), "a refusal without a text");
            common::check_well_formed(&[env.error(&refusal)]);
        }
    }
});
