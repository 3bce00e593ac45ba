//! `<leave/>` to a channel (XEP-0369 §7.1.4).

use crate::core::{Groups, Micros, Outcome};
use crate::dialect::{Envelope, Handled};
use crate::xml::{ns, Xml};

pub fn handle(groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
    let facts = groups.leave(env.channel_name(), &env.sender(), now)?;
    let mut x = Xml::new();
    x.open("leave", ns::MIX_CORE).close();
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}
