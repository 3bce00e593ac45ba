//! [`Stanzas`]: serialized stanzas on their way to the link, in the slices a vectored write
//! sends as they lie.

use std::borrow::Cow;
use std::io::IoSlice;
use std::sync::Arc;

use super::escape_into;

/// Serialized stanzas to send, in order: runs of whole stanzas back to back (up to
/// [`RUN_BYTES`]), and runs of one template's copies, held as the template's bytes once and
/// each recipient's address.
///
/// A fan-out writes one copy per recipient: as one `String` each, that was an allocation and a
/// free per delivery, on two threads (docs/benchmarks.md, "The per-message cost outside the
/// store"); then each copy was written whole into a shared buffer, its template's bytes copied
/// once a recipient (`Template::address`'s memmove, ~5 % of the rules thread's cycles in
/// fan-out: docs/benchmarks.md, branch `rules4`). Now only the addresses are written a copy,
/// and the write call gathers the template's bytes around them (branch `fanout7`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stanzas {
    /// Runs filled before `last`; none of them empty.
    full: Vec<Run>,
    /// The run being written.
    last: Run,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Whole(Whole),
    Copies(Copies),
}

impl Default for Run {
    fn default() -> Self {
        Run::Whole(Whole::default())
    }
}

/// Stanzas back to back in one buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Whole {
    text: String,
    /// The end of each stanza in `text`, in order.
    ends: Vec<usize>,
}

/// Copies of one template that differ only in the address in the hole: on the wire `head to₁
/// tail head to₂ tail … head toₙ tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Copies {
    /// The template's bytes after the hole, then those before it (`tail head`): all that lies
    /// between two copies' addresses, so that n copies are 2n + 1 slices of a write.
    between: Arc<String>,
    /// Where the head begins in `between` (the tail's length).
    head_at: usize,
    /// The recipients' addresses, escaped, back to back.
    to: String,
    /// The end of each address in `to`, in order.
    ends: Vec<usize>,
}

/// The size a run of whole stanzas is filled to (a single larger stanza makes a larger one):
/// well below glibc's threshold for mapping an allocation of its own (128 KiB), which matters
/// to users of the library on the system allocator (mixd's binary runs on jemalloc,
/// `src/main.rs`).
const RUN_BYTES: usize = 64 * 1024;

/// A template's bytes as [`Copies`] hold them: see [`Copies::between`].
#[derive(Debug)]
pub(super) struct Shared {
    between: Arc<String>,
    head_at: usize,
}

impl Shared {
    /// `text` with its hole at `hole`, turned about in place (no second buffer).
    pub(super) fn new(text: String, hole: usize) -> Self {
        let mut bytes = text.into_bytes();
        bytes.rotate_left(hole);
        let head_at = bytes.len() - hole;
        let between = String::from_utf8(bytes).expect("turned about at a character's start");
        Shared {
            between: Arc::new(between),
            head_at,
        }
    }
}

impl Copies {
    fn head(&self) -> &str {
        &self.between[self.head_at..]
    }

    fn tail(&self) -> &str {
        &self.between[..self.head_at]
    }

    fn addresses(&self) -> impl Iterator<Item = &str> + '_ {
        self.ends.iter().scan(0, |start, &end| {
            let to = &self.to[*start..end];
            *start = end;
            Some(to)
        })
    }
}

impl Run {
    fn len(&self) -> usize {
        match self {
            Run::Whole(whole) => whole.ends.len(),
            Run::Copies(copies) => copies.ends.len(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Run::Whole(whole) => whole.text.len(),
            Run::Copies(copies) => copies.ends.len() * copies.between.len() + copies.to.len(),
        }
    }

    /// How many slices [`slices_into`](Self::slices_into) gives.
    fn slice_count(&self) -> usize {
        match self {
            Run::Whole(whole) => usize::from(!whole.text.is_empty()),
            Run::Copies(copies) if copies.ends.is_empty() => 0,
            Run::Copies(copies) => 2 * copies.ends.len() + 1,
        }
    }

    /// Appends the run's bytes as they go on the wire, in pieces none empty: a whole run in
    /// one; copies as their head, then each address followed by `between` (the last by the
    /// tail only). Plain loops: nested iterators cost a fan-out message 3,000 instructions
    /// more than the copies spared (docs/benchmarks.md, branch `fanout7`).
    fn slices_into<'a>(&'a self, slices: &mut Vec<IoSlice<'a>>) {
        match self {
            Run::Whole(whole) => {
                if !whole.text.is_empty() {
                    slices.push(IoSlice::new(whole.text.as_bytes()));
                }
            }
            Run::Copies(copies) => {
                let Some((&last, ends)) = copies.ends.split_last() else {
                    return;
                };
                slices.push(IoSlice::new(copies.head().as_bytes()));
                let mut start = 0;
                for &end in ends {
                    slices.push(IoSlice::new(&copies.to.as_bytes()[start..end]));
                    slices.push(IoSlice::new(copies.between.as_bytes()));
                    start = end;
                }
                slices.push(IoSlice::new(&copies.to.as_bytes()[start..last]));
                slices.push(IoSlice::new(copies.tail().as_bytes()));
            }
        }
    }

    /// Each stanza's first bytes (all of it, or a copy's head: enough to tell its kind) and
    /// its length.
    fn heads(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        let (whole, copies) = match self {
            Run::Whole(whole) => (Some(whole), None),
            Run::Copies(copies) => (None, Some(copies)),
        };
        let whole = whole
            .into_iter()
            .flat_map(|whole| whole_stanzas(whole).map(|stanza| (stanza, stanza.len())));
        let copies = copies.into_iter().flat_map(|copies| {
            copies
                .addresses()
                .map(|to| (copies.head(), copies.between.len() + to.len()))
        });
        whole.chain(copies)
    }

    /// The run as whole stanzas back to back.
    fn whole(&self) -> Cow<'_, Whole> {
        match self {
            Run::Whole(whole) => Cow::Borrowed(whole),
            Run::Copies(copies) => {
                let mut whole = Whole::default();
                for to in copies.addresses() {
                    whole.text.extend([copies.head(), to, copies.tail()]);
                    whole.ends.push(whole.text.len());
                }
                Cow::Owned(whole)
            }
        }
    }
}

impl Stanzas {
    /// The run of whole stanzas to write `bytes` more into: the last one, or a new one if
    /// they would take it over [`RUN_BYTES`] or the last holds copies.
    fn room(&mut self, bytes: usize) -> &mut Whole {
        let full = match &self.last {
            Run::Whole(whole) => !whole.text.is_empty() && whole.text.len() + bytes > RUN_BYTES,
            Run::Copies(_) => true,
        };
        if full {
            let mut whole = Whole::default();
            whole.text.reserve(RUN_BYTES.max(bytes));
            self.close_last(Run::Whole(whole));
        }
        match &mut self.last {
            Run::Whole(whole) => whole,
            Run::Copies(_) => unreachable!("a run of copies was just closed"),
        }
    }

    /// Makes `next` the run being written, keeping the last one unless it is empty.
    fn close_last(&mut self, next: Run) {
        let last = std::mem::replace(&mut self.last, next);
        if last.len() > 0 {
            self.full.push(last);
        }
    }

    /// The run of `template`'s copies to add to, with room for `more` addresses.
    fn copies_of(&mut self, template: &Shared, more: usize) -> &mut Copies {
        let same = matches!(&self.last,
            Run::Copies(copies) if Arc::ptr_eq(&copies.between, &template.between));
        if !same {
            self.close_last(Run::Copies(Copies {
                between: template.between.clone(),
                head_at: template.head_at,
                to: String::new(),
                ends: Vec::new(),
            }));
        }
        match &mut self.last {
            Run::Copies(copies) => {
                copies.to.reserve(more * super::TYPICAL_JID);
                copies.ends.reserve(more);
                copies
            }
            Run::Whole(_) => unreachable!("a run of copies was just opened"),
        }
    }

    /// Makes room for `copies` more copies of `template`.
    pub(super) fn reserve_copies(&mut self, template: &Shared, copies: usize) {
        if copies > 0 {
            self.copies_of(template, copies);
        }
    }

    /// Appends `template`'s copy for `recipient` (escaped here).
    pub(super) fn copy(&mut self, template: &Shared, recipient: &str) {
        let copies = self.copies_of(template, 0);
        escape_into(&mut copies.to, recipient);
        copies.ends.push(copies.to.len());
    }

    /// Appends one serialized stanza.
    pub fn push(&mut self, stanza: &str) {
        let run = self.room(stanza.len());
        run.text.push_str(stanza);
        run.ends.push(run.text.len());
    }

    /// How many stanzas.
    pub fn len(&self) -> usize {
        self.all_runs().map(Run::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.last.len() == 0
    }

    /// Bytes of all of them.
    pub fn bytes(&self) -> usize {
        self.all_runs().map(Run::bytes).sum()
    }

    /// Appends the bytes as they go on the wire, in order, in the pieces they lie in (none
    /// empty), to a vectored write's `slices`.
    pub fn slices_into<'a>(&'a self, slices: &mut Vec<IoSlice<'a>>) {
        for run in self.all_runs() {
            run.slices_into(slices);
        }
    }

    /// How many slices [`slices_into`](Self::slices_into) gives.
    pub fn slice_count(&self) -> usize {
        self.all_runs().map(Run::slice_count).sum()
    }

    /// Each stanza's first bytes, enough to tell its kind (for the metrics), in order.
    pub fn heads(&self) -> impl Iterator<Item = &str> + '_ {
        self.all_runs().flat_map(Run::heads).map(|(head, _)| head)
    }

    /// Each stanza whole, in order (a copy is written out for this: for tests and tools).
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, str>> + '_ {
        self.all_runs().flat_map(|run| -> Vec<Cow<'_, str>> {
            match run {
                Run::Whole(whole) => whole_stanzas(whole).map(Cow::Borrowed).collect(),
                Run::Copies(copies) => copies
                    .addresses()
                    .map(|to| Cow::Owned([copies.head(), to, copies.tail()].concat()))
                    .collect(),
            }
        })
    }

    fn all_runs(&self) -> impl Iterator<Item = &Run> + '_ {
        self.full.iter().chain(std::iter::once(&self.last))
    }

    /// The heads (see [`heads`](Self::heads)) of the stanzas whose first byte is among the
    /// first `written` bytes: those a write that stopped there has sent, or begun to.
    pub fn begun(&self, written: usize) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.all_runs()
            .flat_map(Run::heads)
            .take_while(move |&(_, len)| {
                let begun = start < written;
                start += len;
                begun
            })
            .map(|(head, _)| head)
    }

    /// What is left to write once the first `written` bytes are on the wire: the end of a
    /// stanza cut in two, as a run that holds no stanza (its bytes go out, the stanza is
    /// [`begun`](Self::begun)), then the stanzas not begun. A copy, of whole stanzas: only a
    /// write the socket took part of makes one.
    pub fn unwritten(&self, written: usize) -> Stanzas {
        let mut left = Vec::new();
        let mut offset = 0;
        for run in self.all_runs() {
            let (start, len) = (offset, run.bytes());
            offset += len;
            if start + len <= written {
                continue;
            }
            let cut = written.saturating_sub(start);
            let run = run.whole();
            // The stanzas of this run that end past the cut; the first may begin before it.
            let ends: Vec<usize> = run.ends.iter().copied().filter(|&end| end > cut).collect();
            let whole_from = match run.ends.iter().rev().find(|&&end| end <= cut) {
                Some(&end) => end,
                None => 0,
            };
            let mut from = cut;
            if whole_from < cut {
                // A stanza cut in two: its end alone, counted where it began.
                let end = ends.first().copied().unwrap_or(len);
                left.push(Run::Whole(Whole {
                    text: run.text[cut..end].to_owned(),
                    ends: Vec::new(),
                }));
                from = end;
            }
            let rest = Whole {
                text: run.text[from..].to_owned(),
                ends: ends
                    .iter()
                    .filter(|&&end| end > from)
                    .map(|end| end - from)
                    .collect(),
            };
            if !rest.text.is_empty() {
                left.push(Run::Whole(rest));
            }
        }
        let last = left.pop().unwrap_or_default();
        Stanzas { full: left, last }
    }
}

/// The stanzas of a run of whole ones.
fn whole_stanzas(whole: &Whole) -> impl Iterator<Item = &str> + '_ {
    whole.ends.iter().scan(0, |start, &end| {
        let stanza = &whole.text[*start..end];
        *start = end;
        Some(stanza)
    })
}

impl From<String> for Stanzas {
    fn from(stanza: String) -> Self {
        let ends = vec![stanza.len()];
        Stanzas {
            full: Vec::new(),
            last: Run::Whole(Whole { text: stanza, ends }),
        }
    }
}

impl From<Vec<String>> for Stanzas {
    fn from(stanzas: Vec<String>) -> Self {
        let mut all = Stanzas::default();
        let bytes = stanzas.iter().map(String::len).sum::<usize>();
        all.room(0).text.reserve(bytes.min(RUN_BYTES));
        for stanza in &stanzas {
            all.push(stanza);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ns, Template};
    use super::*;

    /// The slices a write is given, as text.
    fn slices_of(stanzas: &Stanzas) -> Vec<String> {
        let mut slices = Vec::new();
        stanzas.slices_into(&mut slices);
        let texts: Vec<String> = slices
            .iter()
            .map(|slice| String::from_utf8(slice.to_vec()).unwrap())
            .collect();
        assert_eq!(texts.len(), stanzas.slice_count());
        texts
    }

    fn template(body: &str) -> Template {
        Template::new(|x| {
            x.open("message", ns::COMPONENT)
                .attr("to", Template::TO)
                .leaf("body", "", body);
        })
    }

    /// Whole stanzas, copies of two templates in turn and whole ones again, as delivery and
    /// replies mix them.
    fn mixed() -> Stanzas {
        let (a, b) = (template("a"), template(&"b".repeat(RUN_BYTES / 3)));
        let mut stanzas = Stanzas::default();
        stanzas.push("<iq id='1'/>");
        a.reserve_copies(2, &mut stanzas);
        a.address("x@y/r", &mut stanzas);
        a.address("a'b@c", &mut stanzas);
        b.address("z@y", &mut stanzas);
        a.address("w@y", &mut stanzas);
        stanzas.push("<iq id='22'/>");
        for n in 0..4 {
            b.address(&format!("u{n}@y"), &mut stanzas);
        }
        stanzas.push("<iq id='333'/>");
        stanzas
    }

    /// A write cut anywhere leaves the bytes after the cut, in order, with each stanza
    /// counted once: begun before the cut, or whole after it.
    #[test]
    fn what_a_partial_write_leaves_is_the_rest_with_each_stanza_counted_once() {
        let big = "x".repeat(RUN_BYTES - 10);
        let mut whole = Stanzas::default();
        for stanza in ["<iq id='1'/>", "<iq id='22'/>", &big, "<iq id='333'/>"] {
            whole.push(stanza);
        }
        for stanzas in [whole, mixed()] {
            let wire: String = slices_of(&stanzas).concat();
            assert_eq!(wire, stanzas.iter().collect::<String>());
            // Every cut near a slice's edge, a few within the big ones.
            let mut edges = vec![0];
            for slice in slices_of(&stanzas) {
                edges.push(edges.last().unwrap() + slice.len());
            }
            let cuts = (0..=wire.len())
                .filter(|&w| edges.iter().any(|&at| w.abs_diff(at) < 40) || w % 997 == 0);
            for written in cuts {
                let left = stanzas.unwritten(written);
                assert_eq!(slices_of(&left).concat(), wire[written..], "{written}");
                assert_eq!(
                    stanzas.begun(written).count() + left.len(),
                    stanzas.len(),
                    "{written}"
                );
                // The begun ones cover the cut, and the last of them begins before it.
                let lens: Vec<usize> = stanzas.iter().map(|s| s.len()).collect();
                let begun = stanzas.begun(written).count();
                assert!(lens[..begun].iter().sum::<usize>() >= written, "{written}");
                if begun > 0 {
                    assert!(
                        lens[..begun - 1].iter().sum::<usize>() < written,
                        "{written}"
                    );
                }
            }
            assert_eq!(stanzas.begun(wire.len()).count(), stanzas.len());
            assert_eq!(stanzas.unwritten(wire.len()).bytes(), 0);
        }
    }

    #[test]
    fn copies_are_the_template_with_each_address_escaped_in_order() {
        let stanzas = mixed();
        let all: Vec<String> = stanzas.iter().map(Cow::into_owned).collect();
        let copy = |to: &str, body: &str| {
            format!(
                "<message xmlns='jabber:component:accept' to='{to}'><body>{body}</body></message>"
            )
        };
        let b = "b".repeat(RUN_BYTES / 3);
        let mut expected = vec![
            "<iq id='1'/>".to_owned(),
            copy("x@y/r", "a"),
            copy("a&apos;b@c", "a"),
            copy("z@y", &b),
            copy("w@y", "a"),
            "<iq id='22'/>".to_owned(),
        ];
        expected.extend((0..4).map(|n| copy(&format!("u{n}@y"), &b)));
        expected.push("<iq id='333'/>".to_owned());
        assert_eq!(all, expected);
        assert_eq!(stanzas.len(), expected.len());
        assert_eq!(stanzas.bytes(), expected.concat().len());
        assert_eq!(slices_of(&stanzas).concat(), expected.concat());
        assert!(slices_of(&stanzas).iter().all(|slice| !slice.is_empty()));
        let heads: Vec<&str> = stanzas.heads().collect();
        assert_eq!(heads.len(), expected.len());
        for (head, stanza) in heads.iter().zip(&expected) {
            assert!(stanza.starts_with(head) && head.starts_with("<"), "{head}");
        }
        // Four copies of one template are 2 × 4 + 1 slices, not a stanza each.
        assert_eq!(slices_of(&stanzas).len(), 1 + 5 + 3 + 3 + 1 + 9 + 1);
    }

    #[test]
    fn stanzas_keep_each_stanza_whole() {
        let mut all = Stanzas::from(vec!["<a/>".to_string(), "<b>x</b>".to_string()]);
        all.push("<c/>");
        assert_eq!(all.len(), 3);
        assert_eq!(slices_of(&all), ["<a/><b>x</b><c/>"]);
        assert_eq!(all.iter().collect::<Vec<_>>(), ["<a/>", "<b>x</b>", "<c/>"]);
        assert_eq!(Stanzas::default().iter().count(), 0);
        assert_eq!(slices_of(&Stanzas::default()).len(), 0);
        assert!(Stanzas::default().is_empty());
        let mut reserved = Stanzas::default();
        template("a").reserve_copies(3, &mut reserved);
        assert!(reserved.is_empty());
        assert_eq!(slices_of(&reserved).len(), 0);
        assert_eq!(
            Stanzas::from("<d/>".to_string()).iter().collect::<Vec<_>>(),
            ["<d/>"]
        );
    }

    #[test]
    fn whole_stanzas_fill_runs_of_at_most_run_bytes() {
        let big = "b".repeat(1000);
        let mut out = Stanzas::default();
        for _ in 0..1000 {
            out.push(&big);
        }
        assert_eq!(out.len(), 1000);
        let runs = slices_of(&out);
        assert!(runs.len() > 1, "{} runs", runs.len());
        for run in &runs {
            assert!(
                run.len() <= RUN_BYTES && run.len() % 1000 == 0,
                "{}",
                run.len()
            );
        }
        assert_eq!(runs.concat().len(), out.bytes());
    }
}
