//! `status=recall msgid='id1,id2,…'` (delete for everyone): the sender recalls its own
//! messages, an owner or admin anyone's. Each becomes a tombstone in history and everyone
//! is told. The ids are the ones the SDK gave the messages.

use minidom::Element;

use crate::core::{Condition, Groups, MessageRef, Micros, Outcome, Refusal, Role};
use crate::dialect::{bad_request, Envelope, Handled};

/// The most messages one recall names: each is looked up and told to everyone.
pub const MAX_RECALLED: usize = 100;

pub fn handle(
    groups: &mut Groups,
    env: &Envelope,
    query: &Element,
    _now: Micros,
) -> Outcome<Handled> {
    let name = env.channel.as_deref().unwrap_or_default();
    let actor = env.sender();
    let ids: Vec<String> = query
        .attr("msgid")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(bad_request("recall needs msgid"));
    }
    if ids.len() > MAX_RECALLED {
        return Err(Refusal::new(
            Condition::ResourceConstraint,
            format!("one recall names at most {MAX_RECALLED} messages"),
        ));
    }
    let key = groups.participant_of(name, &actor)?.0.key;
    let env = env.clone();
    Ok(Handled::lookup_all(
        &env.clone(),
        key,
        ids.clone(),
        move |groups, _, found, now| {
            recall(groups, &env, &ids, found, now)
                .unwrap_or_else(|refusal| Handled::Reply(env.error(&refusal)))
        },
    ))
}

/// Recalls the messages found for `ids`, once all of them are known.
fn recall(
    groups: &mut Groups,
    env: &Envelope,
    ids: &[String],
    found: Vec<Option<MessageRef>>,
    now: Micros,
) -> Outcome<Handled> {
    let name = env.channel_name();
    let actor = env.sender();
    let role = groups.participant_of(name, &actor)?.0.role_of(&actor);
    // Every id is looked up and checked before any is recalled: all or nothing.
    let mut targets = Vec::with_capacity(ids.len());
    for (id, found) in ids.iter().zip(found) {
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
