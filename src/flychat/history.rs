//! History in the FlyChat dialect (flychat-wire.md §4): `<query xmlns='jabber:iq:user_activities'
//! status='group_chat' to_user='GROUP' position='up|down' row_id='N' limit='n'>` pages through
//! the archive, notices (group events) included; `status='group_chat_media'` lists media
//! messages, 3 first and then 10 a page, keyed by the last message id. Answered whether the
//! query is addressed to the group, to the service, or forwarded from the user's server.
//!
//! Each page is in paging order: `up` (toward older rows) newest first, `down` oldest first,
//! so that the last row is always the one to continue from.

use jid::BareJid;
use minidom::Element;

use super::render;
use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::store::{Archived, HistoryQuery, Page};
use crate::xml::{ns, Xml};

pub const NS: &str = "jabber:iq:user_activities";
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
const FIRST_MEDIA_PAGE: usize = 3;
const MEDIA_PAGE: usize = 10;

pub fn query(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    query: &Element,
) -> Outcome<Handled> {
    let status = query.attr("status").unwrap_or_default().to_owned();
    // The group: `to_user`, or the group the query is addressed to.
    let group = match (query.attr("to_user"), &env.channel) {
        (Some(to_user), _) => {
            let jid = BareJid::new(to_user)
                .map_err(|_| bad_request(format!("to_user: '{to_user}' is not a JID")))?;
            if jid.domain().as_str() != service.domain {
                return Err(Refusal::new(
                    Condition::ItemNotFound,
                    format!("{jid} is not a group of this service"),
                ));
            }
            jid.node()
                .map(|n| n.to_string())
                .ok_or_else(|| bad_request("to_user names no group"))?
        }
        (None, Some(channel)) => channel.clone(),
        (None, None) => return Err(bad_request("the history query needs to_user")),
    };
    let mut history = HistoryQuery::within(groups.history_scope(&group, &env.sender())?);
    let newest_first = match status.as_str() {
        "group_chat" => {
            history.with_notices = true;
            history.max = match query.attr("limit").filter(|l| !l.is_empty()) {
                Some(limit) => limit
                    .parse::<usize>()
                    .map_err(|_| bad_request(format!("limit: '{limit}' is not a number")))?,
                None => DEFAULT_LIMIT,
            }
            .clamp(1, MAX_LIMIT);
            let row = match query.attr("row_id").filter(|r| !r.is_empty() && *r != "0") {
                Some(row) => Some(
                    row.parse::<i64>()
                        .map_err(|_| bad_request(format!("row_id: '{row}' is not a row id")))?,
                ),
                None => None,
            };
            let up = query.attr("position") != Some("down");
            history.page = match (up, row) {
                (true, Some(row)) => Page::Before(row),
                (true, None) => Page::Last,
                (false, Some(row)) => Page::After(row),
                (false, None) => Page::First,
            };
            up
        }
        "group_chat_media" => {
            history.media_only = true;
            match query.attr("message_id").filter(|m| !m.is_empty()) {
                None => {
                    history.page = Page::Last;
                    history.max = FIRST_MEDIA_PAGE;
                }
                Some(last) => {
                    // Keyed by the last message shown: its archive id is looked up first.
                    history.max = MEDIA_PAGE;
                    let last = last.to_owned();
                    let env = env.clone();
                    return Ok(Handled::lookup(
                        &env.clone(),
                        history.channel,
                        &last.clone(),
                        move |_, _, found, _| match found {
                            Some(message) => {
                                history.page = Page::Before(message.id);
                                page(&env, status, history, true)
                            }
                            None => Handled::Reply(env.error(&Refusal::new(
                                Condition::ItemNotFound,
                                format!("no message '{last}' in this group"),
                            ))),
                        },
                    ));
                }
            }
            true
        }
        other => return Err(bad_request(format!("unknown history query '{other}'"))),
    };
    Ok(page(env, status, history, newest_first))
}

/// Reads one page off the rules task and writes it as the SDK parses it.
fn page(env: &Envelope, status: String, history: HistoryQuery, newest_first: bool) -> Handled {
    let reply_to = env.reply_to();
    Handled::Read(Box::new(move |reader| {
        let page = match reader.history(&history) {
            Ok(page) => page,
            Err(crate::store::HistoryError::UnknownId(id)) => {
                let refusal = Refusal::new(
                    Condition::ItemNotFound,
                    format!("no row {id} in this group"),
                );
                return vec![reply_to.error(ErrorKind::Iq, &refusal)];
            }
            Err(crate::store::HistoryError::Storage(error)) => {
                tracing::error!(%error, "reading history failed");
                return vec![reply_to.storage_failed(ErrorKind::Iq)];
            }
        };
        let mut rows: Vec<&Archived> = page.messages.iter().collect();
        if newest_first {
            rows.reverse();
        }
        let mut x = Xml::new();
        x.open("query", NS).attr("status", &status);
        if history.media_only {
            x.open("mediamessages", "");
            for row in rows {
                media_row(&mut x, row);
            }
        } else {
            x.open("history", "");
            for row in rows {
                history_row(&mut x, row);
            }
        }
        vec![reply_to.iq_result(Some(&x.finish()))]
    }))
}

/// The body text and `<chatcontent/>` attributes of an archived payload.
struct Payload {
    body: String,
    message_type: String,
    meta_data: String,
}

fn payload(archived: &Archived) -> Payload {
    let parsed: Option<Element> = format!(
        "<x xmlns='{}'>{}</x>",
        ns::CLIENT,
        archived.posted.submission.content
    )
    .parse()
    .ok();
    let content = parsed
        .as_ref()
        .and_then(|x| x.get_child("chatcontent", super::CONTENT));
    Payload {
        body: parsed
            .as_ref()
            .and_then(|x| x.get_child("body", ns::CLIENT))
            .map(|b| b.text())
            .unwrap_or_default(),
        message_type: content
            .and_then(|c| c.attr("message_type"))
            .unwrap_or("text")
            .to_owned(),
        meta_data: content
            .and_then(|c| c.attr("meta_data"))
            .unwrap_or_default()
            .to_owned(),
    }
}

fn history_row(x: &mut Xml, row: &Archived) {
    let posted = &row.posted;
    let msgid = posted
        .submission
        .client_id
        .clone()
        .unwrap_or_else(|| posted.id.to_string());
    let time = render::time(posted.at);
    x.open("message", "")
        .attr("row_id", &posted.id.to_string())
        .attr("time", &time)
        .attr("message_time", &time)
        .attr("msgid", &msgid)
        .attr("user", posted.sender.as_str())
        .attr("fromuser", posted.sender.as_str())
        .attr("status", "0")
        .attr("gstatus", "0")
        .attr(
            "recallstatus",
            if row.retraction.is_some() { "1" } else { "0" },
        )
        .attr(
            "edit_msg_status",
            if row.edited_at.is_some() { "1" } else { "0" },
        )
        .attr("editmsgid", "");
    match &row.notice {
        Some((kind, target)) => {
            x.attr("msgtype", "0")
                .attr("message_notification", &(*kind as i64).to_string())
                .attr(
                    "to_notification",
                    target.as_ref().map(|t| t.as_str()).unwrap_or_default(),
                )
                .attr("body", "");
        }
        None => {
            let payload = payload(row);
            let body = if row.retraction.is_some() {
                String::new()
            } else {
                payload.body
            };
            x.attr("msgtype", &payload.message_type)
                .attr("message_notification", "")
                .attr("to_notification", "")
                .attr("body", &body);
        }
    }
    x.close();
}

fn media_row(x: &mut Xml, row: &Archived) {
    let posted = &row.posted;
    let payload = payload(row);
    x.open("message", "")
        .attr(
            "msgid",
            &posted
                .submission
                .client_id
                .clone()
                .unwrap_or_else(|| posted.id.to_string()),
        )
        .attr("message_time", &render::time(posted.at))
        .attr("msgtype", &payload.message_type)
        .attr("meta_data", &payload.meta_data)
        .attr("body", &payload.body)
        .close();
}
