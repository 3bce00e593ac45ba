//! `<setnick><nick/></setnick>` to a channel (XEP-0369 §7.1.6); `conflict` if taken.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{bad_request, Envelope, Handled};
use crate::xml::{ns, Xml};

pub fn handle(groups: &mut Groups, env: &Envelope, payload: &Element) -> Outcome<Handled> {
    let nick = payload
        .get_child("nick", ns::MIX_CORE)
        .map(|n| n.text())
        .ok_or_else(|| bad_request("<setnick/> needs a <nick/>"))?;
    let (nick, facts) = groups.set_nick(env.channel_name(), &env.sender(), &nick)?;
    let mut x = Xml::new();
    x.open("setnick", ns::MIX_CORE)
        .leaf("nick", "", &nick)
        .close();
    Ok(Handled::iq_changed(env, facts, Some(x.finish())))
}
