//! Channel history through MAM (XEP-0313 v2) with RSM paging (XEP-0059), on the channel JID.
//!
//! Filters: `with` (a sender's bare JID), `start`, `end`, and those of `urn:xmpp:mam:2#extended`
//! (§4.1.4): `after-id`, `before-id`, `ids`; mixd's own media and notices filters. A field it
//! does not know is `feature-not-implemented` (§4.1.5); an iq get asks for the form (§4.1.5,
//! [`Fields`]). Paging: `max` (default 50, at most 250), `after`, `before` (empty for the last
//! page), `index`; `<flip-page/>` reverses a page.
//! The `<fin/>` carries `first` (with its index), `last`, `count` and `complete`. Result ids
//! and RSM ids are the opaque ids of `dialect::ids`; paging runs on the archive ids they
//! decode to.
//! Who may read, and from which message on, is the core's `history_scope`.

use jid::BareJid;
use minidom::Element;

use super::render;
use crate::core::iso_time;
use crate::core::{Condition, Groups, Micros, Outcome, Refusal};
use crate::dialect::ids::{Ids, Paging};
use crate::dialect::{bad_request, Envelope, ErrorKind, Handled, Service};
use crate::store::{HistoryError, HistoryPage, HistoryQuery};
use crate::xml::{ns, Xml};

/// mixd's filter for messages that share files (XEP-0447, XEP-0385, XEP-0066).
pub const MEDIA_FIELD: &str = "{urn:mixd:mam:0}media";
/// Group events (notices) too: who joined, left, changed roles or settings, and when.
pub const NOTICES_FIELD: &str = "{urn:mixd:mam:0}notices";
pub const DEFAULT_PAGE: usize = 50;
/// The largest page, and the most messages one query may name in `ids`.
pub const MAX_PAGE: usize = 250;
/// The furthest RSM `index` (XEP-0059 §2.5): the store steps over every message before it,
/// so a page far into a large archive by index would cost in proportion to the archive.
/// Paging by id (`after`, `before`) goes anywhere at the same cost.
pub const MAX_INDEX: usize = 1000;

/// The query form's fields (XEP-0313 §4.1.5): the standard ones, then mixd's, each with its
/// XEP-0004 type.
const FIELDS: [(&str, &str); 8] = [
    ("with", "jid-single"),
    ("start", "text-single"),
    ("end", "text-single"),
    ("before-id", "text-single"),
    ("after-id", "text-single"),
    ("ids", "list-multi"),
    (MEDIA_FIELD, "boolean"),
    (NOTICES_FIELD, "boolean"),
];

/// A MAM query on a channel, as the client asked it: the filters of its form, the RSM page
/// and how to label and order the results. Who may read and from which message on is
/// decided when it runs (the core's `history_scope`), not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Echoed in each result message (XEP-0313 §4.1.2), so the client can tell queries apart.
    pub queryid: Option<String>,
    pub with: Option<BareJid>,
    pub start: Option<Micros>,
    pub end: Option<Micros>,
    pub media_only: bool,
    pub with_notices: bool,
    /// `after-id`, `before-id` and `ids` as sent (opaque ids, decoded when the query runs).
    pub after_id: Option<String>,
    pub before_id: Option<String>,
    pub ids: Vec<String>,
    /// The page size, already bounded by [`MAX_PAGE`].
    pub max: usize,
    /// RSM's page, with `after` and `before` as sent (decoded when the query runs).
    pub page: Paging,
    /// `<flip-page/>` (XEP-0313 §5.1): the page's messages newest first.
    pub flip: bool,
}

/// What a bare `<query/>` asks for: no filter, the first page of the default size, oldest
/// first; a query's form and RSM set change it from there.
impl Default for Query {
    fn default() -> Self {
        Query {
            queryid: None,
            with: None,
            start: None,
            end: None,
            media_only: false,
            with_notices: false,
            after_id: None,
            before_id: None,
            ids: Vec::new(),
            max: DEFAULT_PAGE,
            page: Paging::First,
            flip: false,
        }
    }
}

impl Query {
    pub fn parse(payload: &Element) -> Outcome<Self> {
        let query = xmpp_parsers::mam::Query::try_from(payload.clone())
            .map_err(|e| bad_request(format!("invalid MAM query: {e}")))?;
        let mut parsed = Query {
            queryid: query.queryid.map(|q| q.0),
            flip: query.flip_page,
            ..Query::default()
        };
        if let Some(form) = &query.form {
            for field in &form.fields {
                let value = field.values.first().map(String::as_str).unwrap_or_default();
                match field.var.as_deref().unwrap_or_default() {
                    "FORM_TYPE" => {}
                    "with" => {
                        parsed.with = Some(BareJid::new(value).map_err(|_| {
                            bad_request(format!("with: '{value}' is not a bare JID"))
                        })?)
                    }
                    "start" => parsed.start = Some(render::parse_timestamp("start", value)?),
                    "end" => parsed.end = Some(render::parse_timestamp("end", value)?),
                    "after-id" => parsed.after_id = Some(value.to_owned()),
                    "before-id" => parsed.before_id = Some(value.to_owned()),
                    "ids" if field.values.len() > MAX_PAGE => {
                        return Err(bad_request(format!(
                            "ids: {} ids; at most {MAX_PAGE} in one query",
                            field.values.len()
                        )))
                    }
                    "ids" => parsed.ids = field.values.clone(),
                    MEDIA_FIELD => parsed.media_only = matches!(value, "1" | "true"),
                    NOTICES_FIELD => parsed.with_notices = matches!(value, "1" | "true"),
                    other => {
                        return Err(Refusal::new(
                            Condition::FeatureNotImplemented,
                            format!(
                                "this archive has no field '{other}'; its fields are {}",
                                FIELDS.map(|(var, _)| var).join(", ")
                            ),
                        ))
                    }
                }
            }
        }
        if let Some(set) = &query.set {
            parsed.max = set.max.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
            parsed.page = match (&set.after, &set.before, set.index) {
                (_, Some(before), _) if before.is_empty() => Paging::Last,
                (_, Some(before), _) => Paging::Before(before.clone()),
                (Some(after), None, _) => Paging::After(after.clone()),
                (None, None, Some(index)) if index > MAX_INDEX => {
                    return Err(Refusal::new(
                        Condition::FeatureNotImplemented,
                        format!(
                            "paging by index goes up to {MAX_INDEX}; page with after or before beyond it"
                        ),
                    ))
                }
                (None, None, Some(index)) => Paging::Index(index),
                (None, None, None) => Paging::First,
            };
        }
        Ok(parsed)
    }

    /// Reads the page on the reader threads; the archive is not in memory. An RSM id that is
    /// none of this service's names no message: `item-not-found`, as for one of another
    /// channel (checked after the requester, so that it tells outsiders nothing).
    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        let name = env.channel_name();
        let scope = groups.history_scope(name, &env.sender())?;
        // XEP-0404: the archive shows JIDs only to those who may see them, and lets no one
        // else find out who sent what by filtering on a JID.
        let jids_shown = groups
            .channel(name)
            .is_some_and(|c| c.shows_jids_to(&env.sender()));
        if self.with.is_some() && !jids_shown {
            return Err(Refusal::new(
                Condition::Forbidden,
                format!("in JID-hidden '{name}' only owners and admins filter history by JID"),
            ));
        }
        let page = self
            .page
            .resolve(&service.ids)
            .map_err(|id| no_message(&id))?;
        let decode = |id: &String| service.ids.decode(id).ok_or_else(|| no_message(id));
        let after_id = self.after_id.as_ref().map(decode).transpose()?;
        let before_id = self.before_id.as_ref().map(decode).transpose()?;
        let ids = self.ids.iter().map(decode).collect::<Outcome<Vec<_>>>()?;
        let history = HistoryQuery {
            after_id,
            before_id,
            ids,
            with: self.with,
            start: self.start,
            end: self.end,
            page,
            max: self.max,
            media_only: self.media_only,
            with_notices: self.with_notices,
            with_actions: true,
            counted: true,
            ..HistoryQuery::within(scope)
        };
        let respond = respond(
            env,
            service.ids.clone(),
            service.channel_jid(name),
            self.queryid,
            self.flip,
            jids_shown,
        );
        Ok(Handled::read(env, move |reader| {
            respond(reader.history(&history))
        }))
    }
}

/// A request for the query form (XEP-0313 §4.1.5, an iq get): the fields this archive filters
/// by. It tells nothing of the channel beyond that it is there, so whoever may see the
/// channel may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields;

impl Fields {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(Fields)
    }

    pub fn apply(self, groups: &Groups, env: &Envelope) -> Outcome<Handled> {
        groups.visible(env.channel_name(), &env.sender())?;
        let mut x = Xml::new();
        x.open("query", ns::MAM)
            .open("x", ns::DATA_FORMS)
            .attr("type", "form");
        x.open("field", "")
            .attr("type", "hidden")
            .attr("var", "FORM_TYPE")
            .leaf("value", "", ns::MAM)
            .close();
        for (var, kind) in FIELDS {
            x.open("field", "").attr("type", kind).attr("var", var);
            // §4.1.5: `ids` is open to any value, which XEP-0122 says so.
            if var == "ids" {
                x.open("validate", ns::XDATA_VALIDATE)
                    .attr("datatype", "xs:string")
                    .open("open", "")
                    .close()
                    .close();
            }
            x.close();
        }
        Ok(env.iq_result(Some(&x.finish())))
    }
}

/// The refusal of an RSM id that names no message here; it says the id as the client knows
/// it, never an archive id.
fn no_message(id: &str) -> Refusal {
    Refusal::new(
        Condition::ItemNotFound,
        format!("no message '{id}' in this archive"),
    )
}

/// About how many bytes a result message takes beyond its requester's address and its
/// payload: its fixed elements and namespaces (~460 bytes), the channel's JID three times,
/// two ids, a time, a nick and a JID. Each result is written into a buffer of about its size,
/// which grew by doubling from 256 bytes before (docs/benchmarks.md, "A history page's
/// rendering, cheaper"); reactions, when a message has some, grow it once more.
const RESULT_BYTES: usize = 768;

/// Writes the result messages and the final iq for one page, once it is read.
fn respond(
    env: &Envelope,
    ids: Ids,
    channel_jid: String,
    queryid: Option<String>,
    flip: bool,
    jids_shown: bool,
) -> impl FnOnce(Result<HistoryPage, HistoryError>) -> Vec<String> + Send + 'static {
    let requester = env.from.to_string();
    let reply_to = env.reply_to();
    let shown = jids_shown;
    move |result| {
        let page = match result {
            Ok(page) => page,
            Err(HistoryError::UnknownId(id)) => {
                return vec![reply_to.error(ErrorKind::Iq, &no_message(&ids.encode(id)))];
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
            let id = ids.encode(posted.id);
            let mut x = Xml::with_capacity(
                RESULT_BYTES + requester.len() + posted.submission.content.len(),
            );
            x.open("message", ns::COMPONENT)
                .attr("from", &channel_jid)
                .attr("to", &requester)
                .open("result", ns::MAM)
                .attr_opt("queryid", queryid.as_deref())
                .attr("id", &id)
                .open("forwarded", ns::FORWARD)
                .open("delay", ns::DELAY)
                .attr("stamp", &iso_time(posted.at))
                .close();
            render::archived_message(&mut x, &ids, &channel_jid, archived, &id, shown);
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
                .text(&ids.encode(first.posted.id))
                .close()
                .leaf("last", "", &ids.encode(last.posted.id));
        }
        fin.leaf("count", "", &page.count.to_string());
        out.push(reply_to.iq_result(Some(&fin.finish())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::pages::{self, PageArchive};
    use crate::dialect::testing::{element, envelope};
    use crate::store::Reader;

    fn query(inner: &str) -> Outcome<Query> {
        Query::parse(&element(&format!(
            "<query xmlns='urn:xmpp:mam:2' queryid='q1'>{inner}</query>"
        )))
    }

    fn form(fields: &str) -> String {
        format!(
            "<x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>{fields}</x>"
        )
    }

    fn set(inner: &str) -> String {
        format!("<set xmlns='http://jabber.org/protocol/rsm'>{inner}</set>")
    }

    /// The stanzas a page of `archive` is answered with, for a requester whose resource
    /// needs escaping.
    fn rendered(
        archive: &PageArchive,
        queryid: Option<&str>,
        flip: bool,
        shown: bool,
    ) -> Vec<String> {
        let env = envelope(
            ErrorKind::Iq,
            "alice@localhost/r'&<>\"1",
            "coven@mix.example.org",
        );
        let ids = crate::dialect::testing::service().ids;
        let respond = respond(
            &env,
            ids,
            "coven@mix.example.org".into(),
            queryid.map(str::to_owned),
            flip,
            shown,
        );
        respond(archive.history(&HistoryQuery::default()))
    }

    /// Every kind of row, with every character that must be escaped, JIDs shown and hidden,
    /// flipped: the same bytes as the rendering before (`testdata/mam_pages.xml`, written by
    /// it), one stanza a line.
    #[test]
    fn a_page_renders_as_it_did() {
        let archive = pages::hand_cases();
        let all = pages::lines(
            [(Some("q'1\"<&>"), false, true), (None, true, false)]
                .map(|(queryid, flip, shown)| rendered(&archive, queryid, flip, shown)),
        );
        assert_eq!(all, include_str!("testdata/mam_pages.xml"));
    }

    /// Renders pages of 50 of the bench's rows, for callgrind.
    #[test]
    #[ignore]
    fn renders_pages_for_callgrind() {
        let archive = pages::plain(50);
        pages::render_for_callgrind(|| rendered(&archive, Some("q1"), false, true));
    }

    #[test]
    fn a_bare_query_asks_for_the_first_page() {
        assert_eq!(
            query("").unwrap(),
            Query {
                queryid: Some("q1".into()),
                ..Query::default()
            }
        );
    }

    #[test]
    fn the_form_gives_the_filters() {
        let parsed = query(&form(&format!(
            "<field var='with'><value>hag@example.org</value></field>\
             <field var='start'><value>1970-01-01T00:00:01Z</value></field>\
             <field var='end'><value>1970-01-01T00:00:02.5Z</value></field>\
             <field var='{MEDIA_FIELD}'><value>true</value></field>\
             <field var='{NOTICES_FIELD}'><value>1</value></field>"
        )))
        .unwrap();
        assert_eq!(parsed.with, Some(BareJid::new("hag@example.org").unwrap()));
        assert_eq!(parsed.start, Some(1_000_000));
        assert_eq!(parsed.end, Some(2_500_000));
        assert!(parsed.media_only && parsed.with_notices);
    }

    #[test]
    fn rsm_gives_the_page_and_its_size() {
        // Ids are taken as sent; they are decoded when the query runs.
        for (inner, max, page) in [
            (
                "<max>10</max><after>Kq3x0Zb9-Q_</after>",
                10,
                Paging::After("Kq3x0Zb9-Q_".into()),
            ),
            (
                "<max>1000</max><before>41</before>",
                MAX_PAGE,
                Paging::Before("41".into()),
            ),
            ("<before/>", DEFAULT_PAGE, Paging::Last),
            ("<max>5</max><index>20</index>", 5, Paging::Index(20)),
            ("<max>5</max>", 5, Paging::First),
        ] {
            let parsed = query(&set(inner)).unwrap();
            assert_eq!((parsed.max, parsed.page), (max, page), "{inner}");
        }
        let flipped = query(&format!("{}<flip-page/>", set("<before/>"))).unwrap();
        assert!(flipped.flip);
        let furthest = format!("<index>{MAX_INDEX}</index>");
        assert_eq!(
            query(&set(&furthest)).unwrap().page,
            Paging::Index(MAX_INDEX)
        );
        // XEP-0059 §2.5: an index too costly to reach is not implemented.
        let beyond = format!("<index>{}</index>", MAX_INDEX + 1);
        let refusal = query(&set(&beyond)).unwrap_err();
        assert_eq!(refusal.condition, Condition::FeatureNotImplemented);
        assert!(refusal.text.contains("after or before"), "{}", refusal.text);
    }

    #[test]
    fn bad_forms_are_bad_requests() {
        let refusal = query(&form(
            "<field var='with'><value>not a jid@@</value></field>",
        ))
        .unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert_eq!(refusal.text, "with: 'not a jid@@' is not a bare JID");
        let refusal =
            query(&form("<field var='start'><value>yesterday</value></field>")).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert!(
            refusal.text.starts_with("start: 'yesterday'"),
            "{}",
            refusal.text
        );
    }

    #[test]
    fn an_unknown_field_is_not_implemented() {
        let refusal = query(&form("<field var='color'><value>red</value></field>")).unwrap_err();
        assert_eq!(refusal.condition, Condition::FeatureNotImplemented);
        assert!(
            refusal
                .text
                .starts_with("this archive has no field 'color'; its fields are with, "),
            "{}",
            refusal.text
        );
    }

    #[test]
    fn the_extended_fields_name_messages_by_their_opaque_ids() {
        let parsed = query(&form(
            "<field var='after-id'><value>Kq3x0Zb9-Q_</value></field>\
             <field var='before-id'><value>Lq3x0Zb9-Q_</value></field>\
             <field var='ids'><value>A</value><value>B</value></field>",
        ))
        .unwrap();
        assert_eq!(parsed.after_id.as_deref(), Some("Kq3x0Zb9-Q_"));
        assert_eq!(parsed.before_id.as_deref(), Some("Lq3x0Zb9-Q_"));
        assert_eq!(parsed.ids, ["A", "B"]);
        let many = "<value>A</value>".repeat(MAX_PAGE + 1);
        let refusal = query(&form(&format!("<field var='ids'>{many}</field>"))).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
    }

    #[test]
    fn bad_rsm_values_are_refused() {
        let refusal = query(&set("<max>many</max>")).unwrap_err();
        assert_eq!(refusal.condition, Condition::BadRequest);
        assert!(
            refusal.text.starts_with("invalid MAM query"),
            "{}",
            refusal.text
        );
    }

    #[test]
    fn rsm_ids_decode_to_archive_ids_or_name_no_message() {
        let ids = crate::dialect::ids::testing::ids(4);
        let after = format!("<after>{}</after>", ids.encode(41));
        let parsed = query(&set(&after)).unwrap();
        assert_eq!(parsed.page.resolve(&ids), Ok(crate::store::Page::After(41)));
        for (inner, sent) in [
            ("<after>abc</after>", "abc"),
            ("<before>41</before>", "41"),
            ("<after>999999999</after>", "999999999"),
        ] {
            let page = query(&set(inner)).unwrap().page;
            let refused = page.resolve(&ids).map_err(|id| no_message(&id));
            let refusal = refused.unwrap_err();
            assert_eq!(refusal.condition, Condition::ItemNotFound, "{inner}");
            assert_eq!(refusal.text, format!("no message '{sent}' in this archive"));
        }
    }
}
