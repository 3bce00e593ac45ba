//! `status=composing` / `status=gone` (with a `<no-store/>` hint): typing, relayed to the
//! other members and never stored.

use crate::core::{ChatState, Groups, Outcome};
use crate::dialect::{Envelope, Handled};

pub fn handle(groups: &mut Groups, env: &Envelope, state: ChatState) -> Outcome<Handled> {
    let name = env.channel.as_deref().unwrap_or_default();
    let facts = groups.chat_state(name, &env.sender(), state)?;
    Ok(Handled::iq_changed(env, facts, None))
}
