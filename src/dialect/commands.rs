//! The requests both dialects turn into the same core command and answer the same way (an
//! empty iq result once stored, an error if not): each dialect reads its own wire shape into
//! one of these, and one `apply` serves both, so that what a decision or an access change
//! does cannot drift apart between MIX and FlyChat clients.

use jid::BareJid;

use super::{Envelope, Handled};
use crate::core::{AccessList, Groups, Micros, Outcome};

/// An owner's or admin's answer to a join request: `requester` let in (`approve`) or turned
/// away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub requester: BareJid,
    pub approve: bool,
}

impl Decision {
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.decide(
            env.channel_name(),
            &env.sender(),
            &self.requester,
            self.approve,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}

/// An entry (a user's bare JID, or a domain for every user of that server) put on
/// (`present`) or taken off the allowed or the banned list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessChange {
    pub list: AccessList,
    pub entry: BareJid,
    pub present: bool,
}

impl AccessChange {
    pub fn apply(self, groups: &mut Groups, env: &Envelope, now: Micros) -> Outcome<Handled> {
        let facts = groups.set_access(
            env.channel_name(),
            &env.sender(),
            self.list,
            &self.entry,
            self.present,
            now,
        )?;
        Ok(Handled::iq_changed(env, facts, None))
    }
}
