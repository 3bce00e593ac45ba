//! `router::handle` on a fresh core with three channels (MIX, FlyChat, one with a pending
//! join request): any stanza becomes a `Handled` without a panic, and every stanza mixd would
//! send for it (replies, deliveries, archive reads, finished look-ups) is well-formed XML.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let service = common::service();
    let mut groups = common::core(&service);
    let text = common::stanza_text(data);
    let mut out = Vec::new();
    for (stanza, head) in common::stanzas(&text, common::LIMITS) {
        let handled = common::handle(&mut groups, &service, &stanza, &head);
        common::finish(&mut groups, &service, handled, &mut out);
    }
    common::check_well_formed(&out);
});
