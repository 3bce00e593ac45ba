//! One message looked up by its id: `<query xmlns='jabber:iq:user_activities'
//! status='reply_message' chat_type='…' message_id='…' reply_id='…'/>`, sent to the user's own
//! server (which forwards it here, `mod_mixd_flychat`). The SDK sends it before
//! `downloadMedia()` (the file's token and key are in the message's encrypted body), before
//! `editTextMessage()` and `editMediaCaption()` (which re-encrypt the body and check the asker
//! sent it), before `forwardMessages()`, all with `message_id` and `reply_id` both the id, and
//! for `getReplyMessage()` (the message a reply quotes) with `message_id=''`.
//!
//! The query names no group: the message is sought in the groups the asker takes part in,
//! within what each lets it read (`Groups::history_scope`: what it cleared, or what came
//! before it joined a group that hides history), by the id its sender gave it (or its archive
//! id). A message found nowhere is `item-not-found`, whatever the reason, so that an id in
//! another group cannot be probed.

use jid::BareJid;
use minidom::Element;

use super::render::{self, ReceiptStates};
use super::wire::HISTORY_NS;
use crate::core::{iso_time, Condition, Groups, HistoryScope, MessageRef, Outcome, Refusal};
use crate::dialect::ids::Ids;
use crate::dialect::proxy::Naming;
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, ReplyTo, Service};
use crate::store::{Archived, HistoryQuery, Reader};
use crate::xml::Xml;

/// Which SDK call asks, which decides what `<replyfromuser>` holds: the two parse it
/// differently for a group message (`chat_type` `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// `getReplyMessage()` (`message_id=''`): it reads the group from `<replyfromuser>` and
    /// the sender from `<from_notification>`.
    Reply,
    /// The SDK's own look-up (`message_id` given): it reads the sender's user id from
    /// `<replyfromuser>` (an edit is only sent when that is the asker's own) and the group
    /// from `<to_user>`.
    Message,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplyMessage {
    /// The message's id as the SDK knows it.
    pub id: String,
    pub asked: Asked,
}

impl ReplyMessage {
    /// `reply_id` is the id in both shapes; `message_id` is the id too, or empty. `chat_type`
    /// (`chat` by default, whatever the chat) is not read.
    pub fn parse(query: &Element) -> Outcome<Self> {
        let given = |name| query.attr(name).map(str::trim).filter(|v| !v.is_empty());
        let id = given("reply_id")
            .or_else(|| given("message_id"))
            .ok_or_else(|| bad_request("reply_message needs reply_id"))?;
        let asked = match given("message_id") {
            Some(_) => Asked::Message,
            None => Asked::Reply,
        };
        Ok(ReplyMessage {
            id: id.to_owned(),
            asked,
        })
    }

    /// What the asker may read of each of its groups is taken here, on the rules task; the
    /// archive is read off it.
    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Handled {
        let asker = env.sender();
        let readable: Vec<Readable> = groups
            .groups_of(&asker)
            .filter_map(|channel| {
                let scope = groups.history_scope(&channel.name, &asker).ok()?;
                let jid = service.channel_jid(&channel.name);
                Some(Readable {
                    scope,
                    group: channel.name.clone(),
                    names: Naming::for_viewer(channel, &jid, &asker),
                    jid,
                })
            })
            .collect();
        let reply_to = env.reply_to();
        let ids = service.ids.clone();
        Handled::read(env, move |reader| {
            match self.find(reader, &ids, &readable, &asker) {
                Ok(Some((readable, row, states))) => {
                    let answer = self.answer(readable, &row, &states);
                    vec![reply_to.iq_result(Some(&answer))]
                }
                Ok(None) => vec![reply_to.error(
                    ErrorKind::Iq,
                    &Refusal::new(
                        Condition::ItemNotFound,
                        format!("no message '{}' in your groups", self.id),
                    ),
                )],
                Err(error) => failed(&reply_to, error),
            }
        })
    }

    /// The newest message with the id that the asker may read, in whichever of its groups,
    /// with its receipt states as the asker is shown them.
    fn find<'a>(
        &self,
        reader: &dyn Reader,
        ids: &Ids,
        readable: &'a [Readable],
        asker: &BareJid,
    ) -> anyhow::Result<Option<(&'a Readable, Archived, ReceiptStates)>> {
        let archive_id = ids.decode(&self.id);
        let mut newest: Option<(MessageRef, &Readable)> = None;
        for group in readable {
            let Some(found) = reader.find_message(group.scope.channel, archive_id, &self.id)?
            else {
                continue;
            };
            let visible = found.id > group.scope.hidden_upto;
            if visible && newest.as_ref().is_none_or(|(m, _)| found.id > m.id) {
                newest = Some((found, group));
            }
        }
        let Some((message, group)) = newest else {
            return Ok(None);
        };
        let query = HistoryQuery {
            ids: vec![message.id],
            max: 1,
            ..HistoryQuery::within(group.scope)
        };
        let Some(row) = reader.history(&query)?.messages.into_iter().next() else {
            return Ok(None);
        };
        let receipts = reader.receipts(message.id)?;
        let states = ReceiptStates::of(&row.posted, asker, &receipts);
        Ok(Some((group, row, states)))
    }

    /// `<replymessage>` with one child whose child elements are the message's fields, as the
    /// SDK reads them (flychat-wire.md §0: elements, not attributes).
    fn answer(&self, group: &Readable, row: &Archived, states: &ReceiptStates) -> String {
        let posted = &row.posted;
        let payload = render::Payloads::default().read(row);
        let msgid = posted
            .submission
            .client_id
            .clone()
            .unwrap_or_else(|| self.id.clone());
        let sender = group.names.jid(&posted.sender);
        let sender_id = sender
            .split_once('@')
            .map_or(sender.as_str(), |(node, _)| node);
        let recalled = if row.retraction.is_some() { "1" } else { "0" };
        let recalled_by = row
            .retraction
            .as_ref()
            .map(|r| group.names.jid(&r.by))
            .unwrap_or_default();
        let edited = row.edited_at.is_some();
        let mut x = Xml::new();
        x.open("query", HISTORY_NS)
            .attr("status", "reply_message")
            .open("replymessage", "")
            .open("message", "")
            .leaf("chat_type", "", "normal")
            .leaf("msgid", "", &msgid)
            .leaf(
                "replyfromuser",
                "",
                match self.asked {
                    Asked::Reply => &group.group,
                    Asked::Message => sender_id,
                },
            )
            .leaf("from_notification", "", &sender)
            .leaf("to_user", "", &group.jid)
            .leaf("created_at", "", &iso_time(posted.at))
            .leaf("message_time", "", &render::time(posted.at))
            // The SDK shows it as the message's state (`msgStatus`), as in history.
            .leaf("status", "", states.group)
            .leaf("recall_status", "", recalled)
            .leaf("deleted_status", "", recalled)
            .leaf("deleted_by", "", &recalled_by)
            .leaf("edit_msg_status", "", if edited { "1" } else { "0" })
            // The SDK's reply takes this for the id of the message it quotes: the edit's
            // id once edited, the message's own before.
            .leaf(
                "editmsgid",
                "",
                if edited { &payload.edit_id } else { &msgid },
            )
            .leaf("message_notification", "", "")
            .leaf("to_notification", "", "")
            .leaf("msgtype", "", &payload.message_type)
            .leaf("meta_data", "", &payload.meta_data)
            .leaf("topic_id", "", "")
            .leaf(
                "body",
                "",
                if row.retraction.is_some() {
                    ""
                } else {
                    &payload.body
                },
            );
        x.finish()
    }
}

/// One group of the asker: what it may read of it, and how its users are shown to it.
struct Readable {
    scope: HistoryScope,
    group: String,
    jid: String,
    names: Naming,
}

fn failed(reply_to: &ReplyTo, error: anyhow::Error) -> Vec<String> {
    tracing::error!(%error, "looking a message up failed");
    vec![reply_to.storage_failed(ErrorKind::Iq)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flychat::testing::{parse_iq, refused, SERVICE};
    use crate::flychat::Request;

    fn parsed(attributes: &str) -> ReplyMessage {
        let query = format!(
            "<query xmlns='jabber:iq:user_activities' status='reply_message' {attributes}/>"
        );
        match parse_iq(SERVICE, false, &query) {
            Ok(Request::ReplyMessage(lookup)) => lookup,
            other => panic!("{attributes}: {other:?}"),
        }
    }

    #[test]
    fn the_sdks_two_shapes_name_the_message_and_who_asks() {
        // getMessageById (downloadMedia, edits, forwards) and getReplyMessage, as sent.
        assert_eq!(
            parsed("chat_type='chat' message_id='BA12' reply_id='BA12'"),
            ReplyMessage {
                id: "BA12".into(),
                asked: Asked::Message
            }
        );
        assert_eq!(
            parsed("chat_type='groupchat' message_id='' reply_id='BA12'"),
            ReplyMessage {
                id: "BA12".into(),
                asked: Asked::Reply
            }
        );
        assert_eq!(parsed("message_id='BA12'").id, "BA12");
    }

    #[test]
    fn a_look_up_without_an_id_is_refused() {
        for attributes in ["", "message_id='' reply_id=''", "reply_id='  '"] {
            let query = format!(
                "<query xmlns='jabber:iq:user_activities' status='reply_message' {attributes}/>"
            );
            assert_eq!(
                refused(SERVICE, false, &query),
                Condition::BadRequest,
                "{attributes}"
            );
        }
    }
}
