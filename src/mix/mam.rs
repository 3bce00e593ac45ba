//! Channel history through MAM (XEP-0313 v2) with RSM paging (XEP-0059), on the channel JID.
//!
//! Filters: `with` (a sender's bare JID), `start`, `end`. Paging: `max` (default 50, at most
//! 250), `after`, `before` (empty for the last page), `index`; `<flip-page/>` reverses a page.
//! The `<fin/>` carries `first` (with its index), `last`, `count` and `complete`.
//! Who may read, and from which message on, is the core's `history_scope`.

use jid::BareJid;
use minidom::Element;
use xmpp_parsers::mam::Query;

use super::render;
use crate::core::iso_time;
use crate::core::{Condition, Groups, Outcome, Refusal};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::store::{HistoryError, HistoryPage, HistoryQuery, Page};
use crate::xml::{ns, Xml};

/// mixd's filter for messages that share files (XEP-0447, XEP-0385, XEP-0066).
pub const MEDIA_FIELD: &str = "{urn:mixd:mam:0}media";
/// Group events (notices) too: who joined, left, changed roles or settings, and when.
pub const NOTICES_FIELD: &str = "{urn:mixd:mam:0}notices";
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 250;

pub fn query(
    groups: &Groups,
    service: &Service,
    env: &Envelope,
    payload: &Element,
) -> Outcome<Handled> {
    let query = Query::try_from(payload.clone())
        .map_err(|e| bad_request(format!("invalid MAM query: {e}")))?;
    let name = env.channel_name();
    let mut history = HistoryQuery {
        max: DEFAULT_PAGE,
        counted: true,
        ..HistoryQuery::within(groups.history_scope(name, &env.sender())?)
    };
    if let Some(form) = &query.form {
        for field in &form.fields {
            let value = field.values.first().map(String::as_str).unwrap_or_default();
            match field.var.as_deref().unwrap_or_default() {
                "FORM_TYPE" => {}
                "with" => {
                    history.with =
                        Some(BareJid::new(value).map_err(|_| {
                            bad_request(format!("with: '{value}' is not a bare JID"))
                        })?)
                }
                "start" => history.start = Some(render::parse_timestamp("start", value)?),
                "end" => history.end = Some(render::parse_timestamp("end", value)?),
                MEDIA_FIELD => history.media_only = matches!(value, "1" | "true"),
                NOTICES_FIELD => history.with_notices = matches!(value, "1" | "true"),
                other => {
                    return Err(bad_request(format!(
                        "unsupported MAM filter field '{other}'"
                    )))
                }
            }
        }
    }
    if let Some(set) = &query.set {
        history.max = set.max.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        history.page = match (&set.after, &set.before, set.index) {
            (_, Some(before), _) if before.is_empty() => Page::Last,
            (_, Some(before), _) => Page::Before(archive_id(before)?),
            (Some(after), None, _) => Page::After(archive_id(after)?),
            (None, None, Some(index)) => Page::Index(index),
            (None, None, None) => Page::First,
        };
    }
    let respond = respond(
        env,
        service.channel_jid(name),
        query.queryid.map(|q| q.0),
        query.flip_page,
    );
    Ok(Handled::Read(Box::new(move |reader| {
        respond(reader.history(&history))
    })))
}

/// Archive ids are the decimal archive keys; anything else names no message.
fn archive_id(text: &str) -> Outcome<i64> {
    text.parse().map_err(|_| {
        Refusal::new(
            Condition::ItemNotFound,
            format!("no message '{text}' in this archive"),
        )
    })
}

/// Writes the result messages and the final iq for one page, once it is read.
fn respond(
    env: &Envelope,
    channel_jid: String,
    queryid: Option<String>,
    flip: bool,
) -> impl FnOnce(Result<HistoryPage, HistoryError>) -> Vec<String> + Send + 'static {
    let requester = env.from.to_string();
    let reply_to = env.reply_to();
    move |result| {
        let page = match result {
            Ok(page) => page,
            Err(HistoryError::UnknownId(id)) => {
                let refusal = Refusal::new(
                    Condition::ItemNotFound,
                    format!("no message {id} in this archive"),
                );
                return vec![reply_to.error(ErrorKind::Iq, &refusal)];
            }
            Err(HistoryError::Storage(error)) => {
                tracing::error!(%error, "archive read failed");
                return vec![reply_to.storage_failed(ErrorKind::Iq)];
            }
        };
        let mut out = Vec::with_capacity(page.messages.len() + 1);
        let mut ordered: Vec<_> = page.messages.iter().collect();
        if flip {
            ordered.reverse();
        }
        for archived in ordered {
            let posted = &archived.posted;
            let mut x = Xml::new();
            x.open("message", ns::COMPONENT)
                .attr("from", &channel_jid)
                .attr("to", &requester)
                .open("result", ns::MAM)
                .attr_opt("queryid", queryid.as_deref())
                .attr("id", &posted.id.to_string())
                .open("forwarded", ns::FORWARD)
                .open("delay", ns::DELAY)
                .attr("stamp", &iso_time(posted.at))
                .close();
            render::archived_message(&mut x, &channel_jid, archived);
            out.push(x.finish());
        }
        let mut fin = Xml::new();
        fin.open("fin", ns::MAM);
        if page.complete {
            fin.attr("complete", "true");
        }
        fin.open("set", ns::RSM);
        if let (Some(first), Some(last)) = (page.messages.first(), page.messages.last()) {
            fin.open("first", "")
                .attr_opt("index", page.first_index.map(|i| i.to_string()).as_deref())
                .text(&first.posted.id.to_string())
                .close()
                .leaf("last", "", &last.posted.id.to_string());
        }
        fin.leaf("count", "", &page.count.to_string());
        out.push(reply_to.iq_result(Some(&fin.finish())));
        out
    }
}
