//! A history page (MAM and FlyChat history), once for both backends: which ids must exist,
//! the id bounds a query's times become, the page's order and completeness, its count. Each
//! backend runs the statements ([`Archive`]), each an index probe or a read bounded by the
//! page, in its own SQL; no statement reads more of a channel as its archive grows.

use jid::BareJid;

use super::time_search::{first_at_or_after_each, Ends, Probe, Row};
use super::{Archived, HistoryError, HistoryPage, HistoryQuery, Page};

/// Up to how many matches a filtered `<count/>` counts; beyond, it is estimated from how
/// densely those matches lie (XEP-0059 §2.1: the count MAY be approximate), so that no query
/// reads more of the archive than a few pages, whatever its size.
pub const COUNTED_EXACTLY: usize = 256;

/// The order a page's rows are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

impl Order {
    pub fn sql(self) -> &'static str {
        match self {
            Order::Ascending => "ASC",
            Order::Descending => "DESC",
        }
    }
}

/// The archive ids a query's rows lie strictly between. One lower and one upper bound in the
/// SQL, never two on a side: SQLite would range-scan from the looser one (that cost 34 ms
/// a page at 1 M messages once), and PostgreSQL needs only these two to bound its scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub floor: i64,
    pub ceiling: i64,
}

/// What a page's count reads besides its rows ([`count`]): each backend reads it with them
/// ([`Archive::page_rows`]), one whose every statement is a round trip to a server in the
/// same statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Nothing: the query does not count.
    Nothing,
    /// What a query that filters nothing out matches: the channel's messages and actions,
    /// not its notices, as the running total `channels.message_count` keeps them.
    Total,
    /// How many of the query's first rows in id order within `bounds` (not narrowed by the
    /// page) there are, up to `limit`, and the last of those counted; with `newest`, when
    /// `limit` rows were counted, the channel's newest id too (what an estimate spans to when
    /// the bounds have no ceiling).
    Upto {
        bounds: Bounds,
        limit: usize,
        newest: bool,
    },
}

/// What a [`Counting`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Total(usize),
    /// How many rows were counted, the last of them, and the channel's newest id if asked.
    Upto(usize, Option<i64>, Option<i64>),
}

/// What [`Archive::page_rows`] read: the rows, and what the page's [`Counting`] asked for
/// (none when it asked for nothing).
pub type PageRows = (Vec<Archived>, Option<Counted>);

/// The statements of a history page on one backend; the page's logic over them is [`page`].
/// Every method that takes a query reads its rows under the conditions of the query other
/// than its ids' bounds (channel, notices, actions, media, sender, times, picked ids), and
/// strictly within `bounds`.
pub trait Archive {
    /// Whether `id` is a message of `channel`: one key look-up.
    fn exists(&mut self, channel: i64, id: i64) -> anyhow::Result<bool>;
    /// How many ids one [`Archive::first_from_each`] probes at most: 1 where a probe is a
    /// call into the process, more where each statement is a round trip to a server.
    fn probe_width(&self) -> usize;
    /// The id and time of the channel's first and last rows with `floor < id < ceiling`: a
    /// step into each end of the `(channel, id)` index; where each read is a round trip, with
    /// the first guesses for `times` probed in the same read ([`Ends::probed`]).
    fn ends(
        &mut self,
        channel: i64,
        floor: i64,
        ceiling: i64,
        times: &[i64],
    ) -> anyhow::Result<Option<Ends>>;
    /// For each of `froms`, the id and time of the channel's first row with
    /// `from <= id < below`: one step into the `(channel, id)` index each.
    fn first_from_each(
        &mut self,
        channel: i64,
        froms: &[i64],
        below: i64,
    ) -> anyhow::Result<Vec<Option<Row>>>;
    /// Up to `limit` of `q`'s rows in `order` after skipping `offset`, with the reactions of
    /// the first `q.max` (the row beyond them only tells whether more follow) filled in
    /// ([`add_reaction`]); the error [`HistoryError::UnknownId`] when the id the page reads
    /// after or before ([`anchor`]) is not in the archive; and what `counting` asks for. One
    /// method, so that a backend whose every statement is a round trip to a server reads them
    /// all in one.
    fn page_rows(
        &mut self,
        q: &HistoryQuery,
        bounds: Bounds,
        order: Order,
        limit: usize,
        offset: usize,
        counting: Counting,
    ) -> anyhow::Result<Result<PageRows, HistoryError>>;
}

/// One page of `q`. An unknown id the query names is the requester's error, told apart from
/// a storage error.
pub fn page(
    archive: &mut impl Archive,
    q: &HistoryQuery,
) -> anyhow::Result<Result<HistoryPage, HistoryError>> {
    // XEP-0313 §4.1.4: an id the form names that is not in the archive is an error, and
    // so is an RSM id (looked up with the rows, `Archive::page_rows`).
    for &id in q.after_id.iter().chain(&q.before_id).chain(&q.ids) {
        if !archive.exists(q.channel, id)? {
            return Ok(Err(HistoryError::UnknownId(id)));
        }
    }
    let bounds = Bounds::of(archive, q)?;
    let (order, offset) = match q.page {
        Page::First | Page::After(_) => (Order::Ascending, 0),
        Page::Index(i) => (Order::Ascending, i),
        Page::Before(_) | Page::Last => (Order::Descending, 0),
    };
    // What the count reads, asked for with the rows: a page that is not a complete first
    // one needs it.
    let counting = match q.counted {
        false => Counting::Nothing,
        true if !filtered(q) => Counting::Total,
        true => Counting::Upto {
            bounds,
            limit: COUNTED_EXACTLY + 1,
            // A ceiling is an archive row's id (`before-id`, or the first row after `end`)
            // or none: only then may the rows end below it, and the newest id is read.
            newest: bounds.ceiling == i64::MAX,
        },
    };
    let page = archive.page_rows(q, bounds.paged(&q.page), order, q.max + 1, offset, counting)?;
    let (mut messages, counted) = match page {
        Ok(read) => read,
        Err(unknown) => return Ok(Err(unknown)),
    };
    let complete = messages.len() <= q.max;
    messages.truncate(q.max);
    if order == Order::Descending {
        messages.reverse();
    }
    // Only where it is known without counting: after an arbitrary id it would take a
    // scan of everything before it.
    let first_index = match q.page {
        Page::First => Some(0),
        Page::Index(i) => Some(i),
        Page::After(_) | Page::Before(_) | Page::Last => None,
    };
    let count = match first_index {
        _ if !q.counted => 0,
        // A first page that holds all there is has counted them.
        Some(first) if complete && !messages.is_empty() => first + messages.len(),
        // An estimate never says that a page with more after it is the last.
        Some(first) if !complete => count(counting, counted).max(first + messages.len() + 1),
        _ => count(counting, counted),
    };
    Ok(Ok(HistoryPage {
        messages,
        count,
        first_index,
        complete,
    }))
}

/// The archive id a page reads after or before, if it has one (an RSM id).
pub fn anchor(page: &Page) -> Option<i64> {
    match *page {
        Page::After(id) | Page::Before(id) => Some(id),
        Page::First | Page::Last | Page::Index(_) => None,
    }
}

impl Bounds {
    /// What the requester cleared, `after-id`, `before-id` and the times `start` and `end`,
    /// the last two found by interpolation search on the `(channel, id)` index
    /// ([`time_search`]). That takes archive times to grow with archive ids, as mixd assigns
    /// both (the service's clock never goes back while it runs; only a clock stepped back
    /// across a restart can break it, and then the times' own conditions in each backend's
    /// SQL still keep every row outside them out).
    fn of(archive: &mut impl Archive, q: &HistoryQuery) -> anyhow::Result<Bounds> {
        let mut bounds = Bounds {
            floor: q.hidden_upto.max(q.after_id.unwrap_or(0)),
            ceiling: q.before_id.unwrap_or(i64::MAX),
        };
        if q.start.is_none() && q.end.is_none() {
            return Ok(bounds);
        }
        let mut index = IdIndex {
            archive,
            channel: q.channel,
        };
        // The range's first and last rows, read once for both times, which are searched
        // side by side: the first row at or after the start, and the first after the end.
        let end_after = q.end.map(|end| end.saturating_add(1));
        let times: Vec<i64> = q.start.iter().chain(&end_after).copied().collect();
        let Some(ends) = index.ends(bounds.floor, bounds.ceiling, &times)? else {
            return Ok(bounds);
        };
        let mut found = first_at_or_after_each(&mut index, ends, &times)?.into_iter();
        if q.start.is_some() {
            match found.next().flatten() {
                Some((first, _)) => bounds.floor = first - 1,
                // No row reaches the start: the bounds hold nothing.
                None => {
                    bounds.floor = bounds.ceiling;
                    return Ok(bounds);
                }
            }
        }
        if let Some((after, _)) = found.next().flatten() {
            bounds.ceiling = after;
        }
        Ok(bounds)
    }

    /// The same bounds, narrowed by the page: after one id, or before one.
    fn paged(self, page: &Page) -> Bounds {
        match *page {
            Page::After(id) => Bounds {
                floor: self.floor.max(id),
                ..self
            },
            Page::Before(id) => Bounds {
                ceiling: self.ceiling.min(id),
                ..self
            },
            Page::First | Page::Last | Page::Index(_) => self,
        }
    }
}

/// One channel's `(channel, id)` index as the time search probes it.
struct IdIndex<'a, A> {
    archive: &'a mut A,
    channel: i64,
}

impl<A: Archive> Probe for IdIndex<'_, A> {
    fn width(&self) -> usize {
        self.archive.probe_width()
    }

    fn ends(&mut self, floor: i64, ceiling: i64, times: &[i64]) -> anyhow::Result<Option<Ends>> {
        self.archive.ends(self.channel, floor, ceiling, times)
    }

    fn first_from_each(&mut self, froms: &[i64], below: i64) -> anyhow::Result<Vec<Option<Row>>> {
        self.archive.first_from_each(self.channel, froms, below)
    }
}

/// Whether `q` leaves out any of the channel's messages, so that its running total does not
/// count it.
fn filtered(q: &HistoryQuery) -> bool {
    q.with_notices
        || !q.with_actions
        || q.after_id.is_some()
        || q.before_id.is_some()
        || !q.ids.is_empty()
        || q.with.is_some()
        || q.start.is_some()
        || q.end.is_some()
        || q.media_only
        || q.hidden_upto > 0
}

/// How many rows match `q` on all its pages, from what its `counting` read (`counted`): the
/// channel's running total when nothing is filtered out; else counted up to
/// [`COUNTED_EXACTLY`], and beyond that estimated from where the last one counted lies within
/// the bounds.
fn count(counting: Counting, counted: Option<Counted>) -> usize {
    let (bounds, (counted, last, newest)) = match (counting, counted) {
        (Counting::Total, Some(Counted::Total(total))) => return total,
        (Counting::Upto { bounds, .. }, Some(Counted::Upto(counted, last, newest))) => {
            (bounds, (counted, last, newest))
        }
        // Nothing asked for, or (a backend's fault, which its tests catch) not what was.
        _ => return 0,
    };
    let (Some(last), true) = (last, counted > COUNTED_EXACTLY) else {
        return counted;
    };
    let ceiling = match bounds.ceiling {
        i64::MAX => newest.unwrap_or(last) + 1,
        ceiling => ceiling,
    };
    let span = (ceiling - bounds.floor - 1) as f64;
    let sampled = (last - bounds.floor) as f64;
    ((counted as f64 * span / sampled).round() as usize).max(counted)
}

/// Adds one member's `reactions` (one a line) to `message`'s: the members' reactions are
/// added by time, then member, each reaction listed where it first came.
pub fn add_reaction(message: &mut Archived, member: &BareJid, reactions: &str) {
    for reaction in reactions.split('\n') {
        match message.reactions.iter_mut().find(|(r, _)| r == reaction) {
            Some((_, members)) => members.push(member.clone()),
            None => message
                .reactions
                .push((reaction.to_owned(), vec![member.clone()])),
        }
    }
}
