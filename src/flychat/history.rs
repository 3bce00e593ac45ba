//! History in the FlyChat dialect (flychat-wire.md §4): `<query xmlns='jabber:iq:user_activities'
//! status='group_chat' to_user='GROUP' position='up|down' row_id='N' limit='n'>` pages through
//! the archive, notices (group events) included; `status='group_chat_media'` lists media
//! messages, 3 first and then 10 a page, keyed by the last message id. Answered whether the
//! query is addressed to the group, to the service, or forwarded from the user's server.
//!
//! Each page is in paging order: `up` (toward older rows) newest first, `down` oldest first,
//! so that the last row is always the one to continue from.
//!
//! Row ids (and the msgid of a row whose sender gave none) are the archive ids' opaque form
//! in digits (`dialect::ids`): the SDK pages only with a `lastRowId` of digits. Paging runs
//! on the archive ids they decode to.

use std::collections::HashMap;

use jid::BareJid;
use minidom::Element;

use super::render;
use super::wire::HISTORY_NS;
use crate::core::iso_time;
use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::dialect::ids::{Ids, Paging};
use crate::dialect::proxy::Naming;
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::store::{self, Archived, HistoryQuery, MemberReceipt, Page};
use crate::xml::Xml;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
const FIRST_MEDIA_PAGE: usize = 3;
const MEDIA_PAGE: usize = 10;

/// The group a history query is about: `to_user`, or the group the query is addressed to.
/// The query usually comes from the user's own server, so `to_user` is what counts; it must
/// be a group of this service (the router has checked that the query is addressed to it, so
/// the envelope's domain is the service's).
fn group_of(env: &Envelope, query: &Element) -> Outcome<String> {
    match (query.attr("to_user"), &env.channel) {
        (Some(to_user), _) => {
            let jid = BareJid::new(to_user)
                .map_err(|_| bad_request(format!("to_user: '{to_user}' is not a JID")))?;
            if jid.domain().as_str() != env.to.domain().as_str() {
                return Err(Refusal::new(
                    Condition::ItemNotFound,
                    format!("{jid} is not a group of this service"),
                ));
            }
            jid.node()
                .map(|n| n.to_string())
                .ok_or_else(|| bad_request("to_user names no group"))
        }
        (None, Some(channel)) => Ok(channel.clone()),
        (None, None) => Err(bad_request("the history query needs to_user")),
    }
}

/// `status='group_chat'`: one page of messages and notices. The SDK's `message_id` and
/// `send_seen` steer its own receipts, not the page, and are not read.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupChat {
    pub group: String,
    /// `up` without a row: the newest page; `up` from a row: `Before` it; `down`: `First`
    /// or `After` the row. An empty or `0` row_id means no row. Rows as sent, decoded when
    /// the query runs.
    pub page: Paging,
    /// `limit`, 20 when not given, within 1 to 100.
    pub limit: usize,
}

impl GroupChat {
    pub fn parse(env: &Envelope, query: &Element) -> Outcome<Self> {
        let group = group_of(env, query)?;
        let limit = match query.attr("limit").filter(|l| !l.is_empty()) {
            Some(limit) => limit
                .parse::<usize>()
                .map_err(|_| bad_request(format!("limit: '{limit}' is not a number")))?,
            None => DEFAULT_LIMIT,
        }
        .clamp(1, MAX_LIMIT);
        let row = query
            .attr("row_id")
            .filter(|r| !r.is_empty() && *r != "0")
            .map(str::to_owned);
        let up = query.attr("position") != Some("down");
        let page = match (up, row) {
            (true, Some(row)) => Paging::Before(row),
            (true, None) => Paging::Last,
            (false, Some(row)) => Paging::After(row),
            (false, None) => Paging::First,
        };
        Ok(GroupChat { group, page, limit })
    }

    /// What the requester may see of the group is the core's to decide (members only,
    /// from when they joined unless history is shared, minus what they cleared).
    /// A row id that is none of this service's names no row: `item-not-found`.
    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let mut history = HistoryQuery::within(groups.history_scope(&self.group, &env.sender())?);
        history.with_notices = true;
        history.max = self.limit;
        let newest_first = matches!(self.page, Paging::Before(_) | Paging::Last);
        history.page = self
            .page
            .resolve(&service.ids)
            .map_err(|row| no_row(&row))?;
        let who = Reader::of(groups, service, &self.group, env);
        Ok(page(
            env,
            &service.ids,
            "group_chat",
            history,
            newest_first,
            who,
        ))
    }
}

/// `status='group_chat_media'`: media messages, newest first, older than the last one shown.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupChatMedia {
    pub group: String,
    /// `message_id`: the last message of the previous page (its sender's id or archive id);
    /// none for the first page.
    pub after: Option<String>,
}

impl GroupChatMedia {
    pub fn parse(env: &Envelope, query: &Element) -> Outcome<Self> {
        Ok(GroupChatMedia {
            group: group_of(env, query)?,
            after: query
                .attr("message_id")
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }

    /// The first page is short (the SDK shows 3); each later one is keyed by a message,
    /// which is looked up off the rules task in the same read as the page: the page needs
    /// nothing of the rules' state that `apply` has not already fixed (its scope, the
    /// requester's view).
    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let mut history = HistoryQuery::within(groups.history_scope(&self.group, &env.sender())?);
        history.media_only = true;
        let who = Reader::of(groups, service, &self.group, env);
        let Some(last) = self.after else {
            history.page = Page::Last;
            history.max = FIRST_MEDIA_PAGE;
            return Ok(page(
                env,
                &service.ids,
                "group_chat_media",
                history,
                true,
                who,
            ));
        };
        history.max = MEDIA_PAGE;
        let channel = history.channel;
        let (owned, ids) = (env.clone(), service.ids.clone());
        Ok(Handled::lookup_then_read(
            env,
            service,
            channel,
            last.clone(),
            move |reader, found| match found {
                Some(message) => {
                    history.page = Page::Before(message.id);
                    reading(&owned, &ids, "group_chat_media", history, true, who)(reader)
                }
                None => vec![owned.error(&Refusal::new(
                    Condition::ItemNotFound,
                    format!("no message '{last}' in this group"),
                ))],
            },
        ))
    }
}

/// The refusal of a row id that names no row here, by the id as the client knows it.
fn no_row(row: &str) -> Refusal {
    Refusal::new(
        Condition::ItemNotFound,
        format!("no row '{row}' in this group"),
    )
}

/// Who reads a page, and of which group: the rows' `user`, `status` and `gstatus` depend on
/// it, and the JIDs it is shown (proxy JIDs for a member of a JID-hidden group, XEP-0404).
#[derive(Clone)]
struct Reader {
    group: String,
    viewer: BareJid,
    names: Naming,
}

impl Reader {
    /// The scope was checked first, so the group exists.
    fn of(groups: &Groups, service: &Service, group: &str, env: &Envelope) -> Reader {
        let channel_jid = service.channel_jid(group);
        let viewer = env.sender();
        let names = match groups.channel(group) {
            Some(channel) => Naming::for_viewer(channel, &channel_jid, &viewer),
            None => Naming::real(&channel_jid),
        };
        Reader {
            group: group.to_owned(),
            viewer,
            names,
        }
    }
}

/// Reads one page off the rules task.
fn page(
    env: &Envelope,
    ids: &Ids,
    status: &'static str,
    history: HistoryQuery,
    newest_first: bool,
    who: Reader,
) -> Handled {
    Handled::read(env, reading(env, ids, status, history, newest_first, who))
}

/// The read of one page, which writes it as the SDK parses it.
fn reading(
    env: &Envelope,
    ids: &Ids,
    status: &'static str,
    history: HistoryQuery,
    newest_first: bool,
    who: Reader,
) -> impl FnOnce(&dyn store::Reader) -> Vec<String> + Send + 'static {
    let reply_to = env.reply_to();
    let ids = ids.clone();
    move |reader| {
        // The receipts of the whole page with it (not for a media list, which shows none):
        // one per row made a page of 50 several times slower than the same page in MAM
        // (docs/benchmarks.md), and a read of its own was a second round trip on PostgreSQL.
        let read = match history.media_only {
            true => reader.history(&history).map(|page| (page, HashMap::new())),
            false => reader.history_with_receipts(&history),
        };
        let (page, receipts) = match read {
            Ok(read) => read,
            Err(crate::store::HistoryError::UnknownId(id)) => {
                let refusal = no_row(&ids.encode_digits(id));
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
        let bytes = page_bytes(&rows);
        let mut payloads = render::Payloads::default();
        if history.media_only {
            return vec![reply_to.iq_result_of(bytes, |x| {
                x.open("query", HISTORY_NS)
                    .attr("status", status)
                    .open("mediamessages", "");
                for row in rows {
                    media_row(x, &ids, &mut payloads, row);
                }
            })];
        }
        vec![reply_to.iq_result_of(bytes, |x| {
            x.open("query", HISTORY_NS)
                .attr("status", status)
                .open("history", "");
            for row in rows {
                let receipts = receipts.get(&row.posted.id).map_or(&[][..], Vec::as_slice);
                history_row(x, &ids, &who, &mut payloads, row, receipts);
            }
        })]
    }
}

/// About how many bytes a page of `rows` takes: each row's fixed elements and values
/// ([`ROW_BYTES`]), and its payload, whose text is at most the stored fragment's length.
/// The page is written into a buffer of that size, which grew by doubling from 256 bytes
/// before (seven times for 50 rows, each a copy).
fn page_bytes(rows: &[&Archived]) -> usize {
    let payloads: usize = rows
        .iter()
        .map(|row| row.posted.submission.content.len())
        .sum();
    128 + rows.len() * ROW_BYTES + payloads
}

/// A history row's elements and values without its payload's text: 16 elements (~430 bytes
/// of tags), two ids of up to 20 digits, two times, the group and the sender's JID.
const ROW_BYTES: usize = 640;

/// One row as the SDK's getChatMessages reads it: child elements (never attributes). `user`
/// is the group (the SDK's chat, and the `group_id` of the receipts it sends for the row),
/// `fromuser` the sender's JID (where those receipts go). `status` is the reader's own
/// receipt of another's message — the SDK sends delivered and seen again for every row at
/// `0` — and, on the reader's own rows, `2`: it has nothing to acknowledge. `gstatus` is what
/// the SDK shows as the message's state: the least advanced of the other members'.
fn history_row(
    x: &mut Xml,
    ids: &Ids,
    who: &Reader,
    payloads: &mut render::Payloads,
    row: &Archived,
    receipts: &[MemberReceipt],
) {
    let posted = &row.posted;
    let row_id = ids.encode_digits(posted.id);
    let msgid = posted
        .submission
        .client_id
        .clone()
        .unwrap_or_else(|| row_id.clone());
    let time = render::time(posted.at);
    let states = render::ReceiptStates::of(posted, &who.viewer, receipts);
    x.open("message", "")
        .leaf("row_id", "", &row_id)
        .leaf("time", "", &iso_time(posted.at))
        .leaf("message_time", "", &time)
        .leaf("msgid", "", &msgid)
        .leaf("user", "", &who.group)
        .leaf("fromuser", "", &who.names.jid(&posted.sender))
        .leaf("status", "", states.own)
        .leaf("gstatus", "", states.group)
        .leaf("favouritestatus", "", "0")
        .leaf(
            "recallstatus",
            "",
            if row.retraction.is_some() { "1" } else { "0" },
        )
        .leaf(
            "edit_msg_status",
            "",
            if row.edited_at.is_some() { "1" } else { "0" },
        );
    match &row.notice {
        Some((kind, target)) => {
            // `to_notification` is a user id: the SDK reports `userLeft` when it equals the
            // actor's, `userRemoved` otherwise.
            let target = target
                .as_ref()
                .map(|t| who.names.jid(t))
                .unwrap_or_default();
            let target = target.split_once('@').map_or("", |(node, _)| node);
            x.leaf("editmsgid", "", "")
                .leaf("msgtype", "", "0")
                .leaf("message_notification", "", &(*kind as i64).to_string())
                .leaf("to_notification", "", target)
                .leaf("body", "", "");
        }
        None => {
            let payload = payloads.read(row);
            let body = if row.retraction.is_some() {
                String::new()
            } else {
                payload.body
            };
            // The id of the last edit, which the SDK shows as the row's `editMessageId`.
            let edit = if row.edited_at.is_some() {
                payload.edit_id.as_str()
            } else {
                ""
            };
            x.leaf("editmsgid", "", edit)
                .leaf("msgtype", "", &payload.message_type)
                .leaf("message_notification", "", "")
                .leaf("to_notification", "", "")
                .leaf("meta_data", "", &payload.meta_data)
                .leaf("body", "", &body);
        }
    }
    x.close();
}

/// A media row: a `<groupchat>` element (the SDK reads the ciphertext from `<body>` only in
/// rows of that name) with child elements.
fn media_row(x: &mut Xml, ids: &Ids, payloads: &mut render::Payloads, row: &Archived) {
    let posted = &row.posted;
    let payload = payloads.read(row);
    x.open("groupchat", "")
        .leaf(
            "msgid",
            "",
            &posted
                .submission
                .client_id
                .clone()
                .unwrap_or_else(|| ids.encode_digits(posted.id)),
        )
        .leaf("message_time", "", &render::time(posted.at))
        .leaf("msgtype", "", &payload.message_type)
        .leaf("meta_data", "", &payload.meta_data)
        .leaf("body", "", &payload.body)
        .close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::pages::{self, PageArchive};
    use crate::dialect::testing::envelope;
    use crate::flychat::testing::{jid, parse_iq, refused, GROUP, SERVICE};
    use crate::flychat::Request;

    fn group_chat(to: &str, attributes: &str) -> GroupChat {
        let query =
            format!("<query xmlns='jabber:iq:user_activities' status='group_chat' {attributes}/>");
        match parse_iq(to, false, &query) {
            Ok(Request::History(history)) => history,
            other => panic!("{attributes}: {other:?}"),
        }
    }

    /// The stanzas a page of `archive` is answered with, read by bob: a group page, `up`
    /// (newest first) or `down`, or a media page.
    fn rendered(archive: &PageArchive, status: &'static str, newest_first: bool) -> Vec<String> {
        let channel_jid = "coven@mix.example.org";
        let env = envelope(ErrorKind::Iq, "bob@localhost/r'&<>\"1", channel_jid);
        let ids = crate::dialect::testing::service().ids;
        let history = HistoryQuery {
            media_only: status == "group_chat_media",
            ..HistoryQuery::default()
        };
        let who = Reader {
            group: "coven".into(),
            viewer: jid("bob@localhost"),
            names: Naming::real(channel_jid),
        };
        match page(&env, &ids, status, history, newest_first, who) {
            Handled::Read(read) => (read.run)(archive),
            _ => panic!("not a read"),
        }
    }

    /// Every kind of row, with every character that must be escaped, in each kind of page:
    /// the same bytes as the rendering before (`testdata/history_pages.xml`, written by it),
    /// one stanza a line.
    #[test]
    fn a_page_renders_as_it_did() {
        let archive = pages::hand_cases();
        let all = pages::lines(
            [
                ("group_chat", true),
                ("group_chat", false),
                ("group_chat_media", true),
            ]
            .map(|(status, newest_first)| rendered(&archive, status, newest_first)),
        );
        assert_eq!(all, include_str!("testdata/history_pages.xml"));
    }

    /// Renders `up` pages of 50 of the bench's rows, for callgrind.
    #[test]
    #[ignore]
    fn renders_pages_for_callgrind() {
        let archive = pages::plain(50);
        pages::render_for_callgrind(|| rendered(&archive, "group_chat", true));
    }

    #[test]
    fn the_sdk_first_page_is_the_newest() {
        let history = group_chat(
            SERVICE,
            "to_user='coven@mix.localhost' position='up' row_id='' limit='20' message_id='' \
             send_seen='0'",
        );
        assert_eq!(
            history,
            GroupChat {
                group: "coven".into(),
                page: Paging::Last,
                limit: 20
            }
        );
    }

    #[test]
    fn rows_and_positions_make_the_page() {
        // Rows are taken as sent; they are decoded when the query runs.
        for (attributes, page) in [
            (
                "position='up' row_id='1234567890123'",
                Paging::Before("1234567890123".into()),
            ),
            ("row_id='7'", Paging::Before("7".into())),
            ("position='down' row_id='5'", Paging::After("5".into())),
            ("position='down'", Paging::First),
            ("position='down' row_id='0'", Paging::First),
            ("position='up' row_id='0'", Paging::Last),
        ] {
            assert_eq!(group_chat(GROUP, attributes).page, page, "{attributes}");
        }
    }

    #[test]
    fn row_ids_decode_to_archive_ids_or_name_no_row() {
        let service = crate::dialect::testing::service();
        let ids = &service.ids;
        let row = ids.encode_digits(41);
        let history = group_chat(GROUP, &format!("position='down' row_id='{row}'"));
        assert_eq!(history.page.resolve(ids), Ok(Page::After(41)));
        for row in ["7", "abc", "-3"] {
            let history = group_chat(GROUP, &format!("row_id='{row}'"));
            let refusal = history
                .page
                .resolve(ids)
                .map_err(|r| no_row(&r))
                .unwrap_err();
            assert_eq!(refusal.condition, Condition::ItemNotFound, "{row}");
            assert_eq!(refusal.text, format!("no row '{row}' in this group"));
        }
    }

    #[test]
    fn the_limit_defaults_and_is_kept_within_bounds() {
        for (attributes, limit) in [
            ("", DEFAULT_LIMIT),
            ("limit=''", DEFAULT_LIMIT),
            ("limit='10'", 10),
            ("limit='0'", 1),
            ("limit='5000'", MAX_LIMIT),
        ] {
            assert_eq!(group_chat(GROUP, attributes).limit, limit, "{attributes}");
        }
    }

    #[test]
    fn the_group_is_to_user_or_else_the_address() {
        assert_eq!(group_chat(GROUP, "").group, "coven");
        let other = group_chat(GROUP, "to_user='hall@mix.localhost'");
        assert_eq!(other.group, "hall");
    }

    #[test]
    fn group_chat_refuses_bad_groups_rows_and_limits() {
        for (to, attributes, condition) in [
            (SERVICE, "", Condition::BadRequest),
            (SERVICE, "to_user='not a jid@@'", Condition::BadRequest),
            (SERVICE, "to_user='mix.localhost'", Condition::BadRequest),
            (
                SERVICE,
                "to_user='x@elsewhere.example'",
                Condition::ItemNotFound,
            ),
            (GROUP, "limit='lots'", Condition::BadRequest),
            (GROUP, "limit='-3'", Condition::BadRequest),
        ] {
            let query = format!(
                "<query xmlns='jabber:iq:user_activities' status='group_chat' {attributes}/>"
            );
            assert_eq!(refused(to, false, &query), condition, "{attributes}");
        }
    }

    #[test]
    fn media_pages_start_without_a_message_and_continue_from_one() {
        for (attributes, after) in [
            ("message_id=''", None),
            ("", None),
            ("message_id='msg-9'", Some("msg-9".to_owned())),
        ] {
            let query = format!(
                "<query xmlns='jabber:iq:user_activities' status='group_chat_media' \
                 to_user='coven@mix.localhost' {attributes}/>"
            );
            let request = parse_iq(SERVICE, false, &query);
            let Ok(Request::MediaHistory(media)) = request else {
                panic!("{request:?}")
            };
            assert_eq!(
                media,
                GroupChatMedia {
                    group: "coven".into(),
                    after
                }
            );
        }
    }

    #[test]
    fn media_history_refuses_what_group_chat_refuses() {
        for (attributes, condition) in [
            ("", Condition::BadRequest),
            ("to_user='x@elsewhere.example'", Condition::ItemNotFound),
            ("to_user='not a jid@@'", Condition::BadRequest),
        ] {
            let query = format!(
                "<query xmlns='jabber:iq:user_activities' status='group_chat_media' {attributes}/>"
            );
            assert_eq!(refused(SERVICE, false, &query), condition, "{attributes}");
        }
    }

    #[test]
    fn a_history_query_is_a_get_with_a_known_status() {
        let unknown = "<query xmlns='jabber:iq:user_activities' status='everything'/>";
        assert_eq!(refused(GROUP, false, unknown), Condition::BadRequest);
        let set = "<query xmlns='jabber:iq:user_activities' status='group_chat' \
                   to_user='coven@mix.localhost'/>";
        assert_eq!(refused(GROUP, true, set), Condition::BadRequest);
    }
}
