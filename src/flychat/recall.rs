//! `status=recall msgid='id1,id2,…'` (delete for everyone): the sender recalls its own
//! messages, an owner or admin anyone's. Each becomes a tombstone in history and everyone
//! is told. The ids are the ones the SDK gave the messages.

use minidom::Element;

use crate::core::{Condition, Groups, Micros, Outcome, Refusal, Role};
use crate::dialect::{find_message, Envelope, Handled, Service};

pub fn handle(
    groups: &mut Groups,
    service: &Service,
    env: &Envelope,
    query: &Element,
    now: Micros,
) -> Outcome<Handled> {
    let name = env.channel.as_deref().unwrap_or_default();
    let actor = env.sender();
    let ids: Vec<&str> = query
        .attr("msgid")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(crate::dialect::bad_request("recall needs msgid"));
    }
    let (key, role) = {
        let (channel, _) = groups.participant_of(name, &actor)?;
        (channel.key, channel.role_of(&actor))
    };
    // Every id is looked up and checked before any is recalled: all or nothing.
    let mut targets = Vec::with_capacity(ids.len());
    for id in ids {
        let found = match find_message(service, env, key, id) {
            Ok(found) => found,
            Err(failed) => return Ok(failed),
        };
        let message = found.ok_or_else(|| {
            Refusal::new(
                Condition::ItemNotFound,
                format!("no message '{id}' in this group"),
            )
        })?;
        if message.sender != actor && role < Role::Admin {
            return Err(Refusal::new(
                Condition::Forbidden,
                "only its sender or an admin may recall a message",
            ));
        }
        targets.push(message);
    }
    let mut facts = Vec::new();
    for message in &targets {
        let moderation = (message.sender != actor).then_some(None);
        facts.extend(groups.retract(name, &actor, Some(message), moderation, now)?);
    }
    Ok(Handled::iq_changed(env, facts, None))
}
