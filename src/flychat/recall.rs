//! `status=recall msgid='id1,id2,…'` (delete for everyone): the sender recalls its own
//! messages, an owner or admin anyone's. Each becomes a tombstone in history and everyone
//! is told. The ids are the ones the SDK gave the messages.

use minidom::Element;

use crate::core::{Condition, Groups, MessageRef, Micros, Outcome, Quota, Refusal, Role};
use crate::dialect::{bad_request, Envelope, Handled};

/// The most messages one recall names: each is looked up and told to everyone.
pub const MAX_RECALLED: usize = 100;

/// The messages to recall, by the ids their senders gave them, in the order named.
#[derive(Debug, Clone, PartialEq)]
pub struct Recall {
    pub ids: Vec<String>,
}

impl Recall {
    /// Blank entries (`msgid='a,,b'`, a trailing comma) are the SDK's joining, not ids.
    pub fn parse(query: &Element) -> Outcome<Self> {
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
        Ok(Recall { ids })
    }

    /// Only participants may recall; that is checked before the archive is read. The
    /// request travels with the look-up and finishes once every id is known.
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        let key = groups
            .participant_of(env.channel_name(), &env.sender())?
            .0
            .key;
        let references = self.ids.clone();
        let env = env.clone();
        Ok(Handled::lookup_all(
            &env.clone(),
            key,
            references,
            move |groups, _, found, now| {
                self.recall(groups, &env, found, now)
                    .unwrap_or_else(|refusal| Handled::Reply(env.error(&refusal)))
            },
        ))
    }

    /// Recalls the messages found for the ids, once all of them are known.
    fn recall(
        self,
        groups: &mut Groups,
        env: &Envelope,
        found: Vec<Option<MessageRef>>,
        now: Micros,
    ) -> Outcome<Handled> {
        let name = env.channel_name();
        let actor = env.sender();
        let role = groups.participant_of(name, &actor)?.0.role_of(&actor);
        // Every id is looked up and checked before any is recalled: all or nothing.
        let mut targets = Vec::with_capacity(self.ids.len());
        for (id, found) in self.ids.iter().zip(found) {
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
        // Each retraction takes a token: all of them must be there before the first is made.
        groups.afford(&actor, Quota::Signals, targets.len(), now)?;
        let mut facts = Vec::new();
        for message in &targets {
            let moderation = (message.sender != actor).then_some(None);
            facts.extend(groups.retract(name, &actor, Some(message), moderation, now)?);
        }
        Ok(Handled::iq_changed(env, facts, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flychat::testing::{parse_iq, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    #[test]
    fn recall_reads_each_id_in_order() {
        let request = parse_iq(
            GROUP,
            true,
            "<query xmlns='jabber:iq:mixgroupchat' status='recall' chat_type='normal' \
             msgid='msg-1, msg-2,,msg-3,'/>",
        );
        let Ok(Request::Recall(recall)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            recall,
            Recall {
                ids: vec!["msg-1".into(), "msg-2".into(), "msg-3".into()]
            }
        );
    }

    #[test]
    fn recall_needs_ids_and_not_too_many() {
        for msgid in ["", " msgid=''", " msgid=' , ,'"] {
            let query = format!(
                "<query xmlns='jabber:iq:mixgroupchat' status='recall' chat_type='normal'{msgid}/>"
            );
            assert_eq!(
                refused(GROUP, true, &query),
                Condition::BadRequest,
                "{msgid}"
            );
        }
        let many: Vec<String> = (0..=MAX_RECALLED).map(|i| format!("m{i}")).collect();
        let query = format!(
            "<query xmlns='jabber:iq:mixgroupchat' status='recall' msgid='{}'/>",
            many.join(",")
        );
        assert_eq!(refused(GROUP, true, &query), Condition::ResourceConstraint);
        let query = "<query xmlns='jabber:iq:mixgroupchat' status='recall' msgid='m1'/>";
        assert_eq!(refused(SERVICE, true, query), Condition::BadRequest);
        assert_eq!(refused(GROUP, false, query), Condition::BadRequest);
    }
}
