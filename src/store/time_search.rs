//! Where a time falls in a channel's archive: the first archive id whose time is at or after
//! it, found from a few `(id, time)` probes of the archive's id index. Archive times grow
//! with archive ids (mixd assigns both, and its clock never goes back while it runs), and
//! mostly at a steady pace, so the id where a time falls is well guessed from the ids and
//! times around it (interpolation): about 3–5 probes at 10 M messages where bisection took
//! about 40. Every other step is a bisection whenever a guess did not halve what is left, so
//! that an archive whose pace changes (a burst, a quiet year) never costs more than twice
//! bisection. A backend whose probes are round trips to a server (PostgreSQL) reads several
//! at once ([`Probe::width`]): the guess, the id before it (so that an exact guess ends the
//! search in that read) and ids spread evenly between the ends, which bound every read's
//! remainder by a `width`-ary search's. A window's two times are searched side by side, each
//! read carrying the probes of both; such a backend may also probe each time's first guess in
//! the read of the range's ends ([`Ends::probed`]). No I/O here: the store gives the probes.

/// One archive row as the search sees it: its id and its time.
pub type Row = (i64, i64);

/// A range's first and last rows ([`Probe::ends`]), and what the same read probed besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ends {
    pub first: Row,
    pub last: Row,
    /// Ids in the range, each with the range's first row from there below `last`'s id, if
    /// any, which the search takes as its first read. A backend whose reads are round trips
    /// probes each time's first guess in the read that finds the ends: for each time after
    /// the first row's and not after the last row's, the id where it would lie on the line
    /// through them (rounded up) and the id before it, each kept within the range
    /// (`first_guesses`, in the tests). Any ids would do (the search learns from each what it
    /// says), but only those guesses spare a read.
    pub probed: Vec<(i64, Option<Row>)>,
}

/// How the search reads the archive; each call is one read of the id index.
pub trait Probe {
    /// How many ids one [`Probe::first_from_each`] read probes at most for each time searched:
    /// 1 where a probe is a call into the process (SQLite), more where each read is a round
    /// trip.
    fn width(&self) -> usize;
    /// The rows with the smallest and the largest id in `floor + 1..ceiling`, if any (the
    /// same row when there is one), and, where that pays, probes for `times` read with them
    /// ([`Ends::probed`]).
    fn ends(&mut self, floor: i64, ceiling: i64, times: &[i64]) -> anyhow::Result<Option<Ends>>;
    /// For each of `froms` (ascending, at most [`Probe::width`] for each time searched), the
    /// row with the smallest id in `from..below`, if any.
    fn first_from_each(&mut self, froms: &[i64], below: i64) -> anyhow::Result<Vec<Option<Row>>>;
}

/// For each of `times`, the row with the smallest archive id whose time is at or after it in
/// the range whose first and last rows are `ends` ([`Probe::ends`], read by the caller for
/// these times), if any row there reaches it. The times are searched side by side, each read
/// probing for all of them at once (each as if searched alone): a window's start and end cost
/// the reads of the slower one, not of both (on PostgreSQL one round trip where they took
/// two). What the ends' read probed is the first read, when it probed anything.
pub fn first_at_or_after_each(
    archive: &mut impl Probe,
    ends: Ends,
    times: &[i64],
) -> anyhow::Result<Vec<Option<Row>>> {
    let width = archive.width().max(1);
    let range = (ends.first, ends.last);
    let mut searches: Vec<Search> = times.iter().map(|&time| Search::new(range, time)).collect();
    let mut probed = ends.probed;
    probed.sort_unstable_by_key(|&(from, _)| from);
    probed.dedup_by_key(|&mut (from, _)| from);
    loop {
        // Each probe answered up to the highest of the searches' upper ends (the ends' read:
        // up to the last row, every search's highest): a row at or above a search's own
        // `high` is none for it (no row below `high` from there on).
        let Some(below) = searches.iter().filter(|s| !s.done()).map(|s| s.high).max() else {
            return Ok(searches.iter().map(|s| s.found).collect());
        };
        let given = !probed.is_empty();
        let (froms, rows, own): (Vec<i64>, Vec<Option<Row>>, Vec<Vec<i64>>) =
            match std::mem::take(&mut probed) {
                probed if probed.is_empty() => {
                    let own: Vec<Vec<i64>> = searches.iter().map(|s| s.froms(width)).collect();
                    let mut froms = own.concat();
                    froms.sort_unstable();
                    froms.dedup();
                    let rows = archive.first_from_each(&froms, below)?;
                    (froms, rows, own)
                }
                // Every search learns from each probe within what it has left, its own
                // guesses or the other time's.
                probed => {
                    let (froms, rows): (Vec<i64>, Vec<Option<Row>>) = probed.into_iter().unzip();
                    let own = searches.iter().map(|s| s.unknown(&froms)).collect();
                    (froms, rows, own)
                }
            };
        for (search, own) in searches.iter_mut().zip(own) {
            let answered = own.iter().map(|from| {
                let row = froms.binary_search(from).ok().and_then(|i| rows[i]);
                row.filter(|&(id, _)| id < search.high)
            });
            search.learn(&own, answered.collect());
            // The ends' read cost no read of its own: the alternation starts afresh.
            if given {
                search.bisect = false;
            }
        }
    }
}

/// One time's search: `low` is a row before `time`, `found` the lowest row known to reach
/// it; `high` bounds what is still unknown (rows in `low + 1..high`).
struct Search {
    time: i64,
    low: Row,
    found: Option<Row>,
    high: i64,
    bisect: bool,
}

impl Search {
    fn new(((first, first_at), (last, last_at)): (Row, Row), time: i64) -> Search {
        // The newest row not reaching `time` means that none does while times grow with ids;
        // a clock stepped back across a restart breaks that, so the rows before it are still
        // searched, by bisection until one that reaches gives the search its upper end.
        let reached = first_at >= time;
        Search {
            time,
            low: (first, first_at),
            found: match reached {
                true => Some((first, first_at)),
                false => (last_at >= time).then_some((last, last_at)),
            },
            // The first row reaching `time` is the answer: nothing is left to search.
            high: if reached { first } else { last },
            bisect: false,
        }
    }

    fn done(&self) -> bool {
        self.low.0.saturating_add(1) >= self.high
    }

    /// The ids this search probes in the next read, none once it is done.
    fn froms(&self, width: usize) -> Vec<i64> {
        if self.done() {
            return Vec::new();
        }
        let (low, high) = (self.low.0, self.high);
        let guess = match self.found {
            Some(found) if !self.bisect => interpolated(self.low, found, self.time),
            _ => low + (high - low) / 2,
        };
        spread(guess, low, high, width)
    }

    /// Those of `froms` (ascending) that lie within what this search has left.
    fn unknown(&self, froms: &[i64]) -> Vec<i64> {
        match self.done() {
            true => Vec::new(),
            false => froms
                .iter()
                .copied()
                .filter(|&from| from > self.low.0 && from < self.high)
                .collect(),
        }
    }

    /// What a read answered for `froms` (this search's, ascending), each the first row from
    /// there below `high`.
    fn learn(&mut self, froms: &[i64], rows: Vec<Option<Row>>) {
        if froms.is_empty() {
            return;
        }
        let before = self.high - self.low.0;
        // In ascending order: each row not reaching `time` raises `low`; the first that
        // reaches it (or finds nothing up to `high`) ends the read, as what lies above it is
        // no longer asked.
        for (&from, row) in froms.iter().zip(rows) {
            match row {
                // No row from `from` on: the answer, if not `found`, is below it.
                None => {
                    self.high = from;
                    break;
                }
                Some((id, at)) if at >= self.time => {
                    self.found = Some((id, at));
                    self.high = from;
                    break;
                }
                Some(row) => self.low = row,
            }
        }
        self.bisect = !self.bisect && (self.high - self.low.0) * 2 > before;
    }
}

/// The ids [`Ends::probed`] names for `times` between the rows `first` and `last`: each
/// search's own first probes at width 2 when it interpolates (the guess and the id before it).
#[cfg(test)]
pub(crate) fn first_guesses(first: Row, last: Row, times: &[i64]) -> Vec<i64> {
    let mut froms: Vec<i64> = times
        .iter()
        .map(|&time| Search::new((first, last), time))
        .filter(|s| s.found.is_some() && !s.done())
        .flat_map(|s| s.froms(2))
        .collect();
    froms.sort_unstable();
    froms.dedup();
    froms
}

/// The ids one read probes, ascending, all in `low + 1..high`: `guess`, and with a `width`
/// over 1 the id before it and ids spread evenly between `low` and `high`.
fn spread(guess: i64, low: i64, high: i64, width: usize) -> Vec<i64> {
    let inside = |id: i64| id.clamp(low + 1, high - 1);
    let mut froms = vec![inside(guess)];
    if width > 1 {
        froms.push(inside(guess - 1));
        let span = i128::from(high - low);
        let parts = (width - 1) as i128;
        froms.extend((1..parts).map(|j| inside(low + (span * j / parts) as i64)));
    }
    froms.sort_unstable();
    froms.dedup();
    froms
}

/// The id where `time` would lie on the line through `low` and `high` (`low`'s time before
/// `time`, `high`'s at or after it), rounded up: the first id whose time may reach it.
fn interpolated((low, low_at): Row, (high, high_at): Row, time: i64) -> i64 {
    let span = i128::from(high - low);
    let elapsed = i128::from(time) - i128::from(low_at);
    let pace = i128::from(high_at) - i128::from(low_at);
    let offset = (elapsed * span + pace - 1) / pace;
    low.saturating_add(offset.min(span) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search as a page makes it: the range's ends read, then the search within them.
    fn first_at_or_after(
        archive: &mut impl Probe,
        floor: i64,
        ceiling: i64,
        time: i64,
    ) -> anyhow::Result<Option<Row>> {
        match archive.ends(floor, ceiling, &[time])? {
            Some(ends) => Ok(first_at_or_after_each(archive, ends, &[time])?[0]),
            None => Ok(None),
        }
    }

    /// An archive in memory: rows sorted by id, read `width` probes at a time for each of at
    /// most two times (a window's), with `guesses` the times' first guesses probed with the
    /// ends (as PostgreSQL does), and how many reads were made.
    struct Rows {
        rows: Vec<Row>,
        width: usize,
        guesses: bool,
        reads: usize,
    }

    impl Rows {
        fn first_from(&self, from: i64, below: i64) -> Option<Row> {
            self.rows
                .iter()
                .copied()
                .find(|&(id, _)| id >= from && id < below)
        }
    }

    impl Probe for Rows {
        fn width(&self) -> usize {
            self.width
        }
        fn ends(
            &mut self,
            floor: i64,
            ceiling: i64,
            times: &[i64],
        ) -> anyhow::Result<Option<Ends>> {
            self.reads += 1;
            let mut inside = self
                .rows
                .iter()
                .copied()
                .filter(|&(id, _)| id > floor && id < ceiling);
            let Some(first) = inside.next() else {
                return Ok(None);
            };
            let last = inside.next_back().unwrap_or(first);
            Ok(Some(ends(self.guesses, first, last, times, |from| {
                self.first_from(from, last.0)
            })))
        }
        fn first_from_each(
            &mut self,
            froms: &[i64],
            below: i64,
        ) -> anyhow::Result<Vec<Option<Row>>> {
            self.reads += 1;
            assert!(froms.len() <= 2 * self.width && froms.windows(2).all(|w| w[0] < w[1]));
            Ok(froms
                .iter()
                .map(|&from| self.first_from(from, below))
                .collect())
        }
    }

    /// The range's ends, with each time's first guesses probed by `first_from` where the
    /// archive `guesses` as PostgreSQL's ends statement does.
    fn ends(
        guesses: bool,
        first: Row,
        last: Row,
        times: &[i64],
        mut first_from: impl FnMut(i64) -> Option<Row>,
    ) -> Ends {
        let probed = match guesses {
            true => first_guesses(first, last, times)
                .into_iter()
                .map(|from| (from, first_from(from)))
                .collect(),
            false => Vec::new(),
        };
        Ends {
            first,
            last,
            probed,
        }
    }

    /// What a scan of every row finds.
    fn scanned(rows: &[Row], floor: i64, ceiling: i64, time: i64) -> Option<i64> {
        rows.iter()
            .find(|&&(id, at)| id > floor && id < ceiling && at >= time)
            .map(|&(id, _)| id)
    }

    fn check(rows: Vec<Row>, width: usize, floor: i64, ceiling: i64, time: i64) -> usize {
        check_guessing(rows, width, false, floor, ceiling, time)
    }

    fn check_guessing(
        rows: Vec<Row>,
        width: usize,
        guesses: bool,
        floor: i64,
        ceiling: i64,
        time: i64,
    ) -> usize {
        let expected = scanned(&rows, floor, ceiling, time);
        let mut archive = Rows {
            rows,
            width,
            guesses,
            reads: 0,
        };
        let got = first_at_or_after(&mut archive, floor, ceiling, time)
            .unwrap()
            .map(|(id, _)| id);
        assert_eq!(got, expected, "floor {floor} ceiling {ceiling} time {time}");
        archive.reads
    }

    /// Ids `1..=n`, id `i` at time `1_000 + i`: as the bench seeds its archive.
    struct Steady {
        n: i64,
        width: usize,
        guesses: bool,
        reads: usize,
    }

    impl Steady {
        fn row(&self, id: i64) -> Option<Row> {
            (1..=self.n).contains(&id).then_some((id, 1_000 + id))
        }
    }

    impl Probe for Steady {
        fn width(&self) -> usize {
            self.width
        }
        fn ends(
            &mut self,
            floor: i64,
            ceiling: i64,
            times: &[i64],
        ) -> anyhow::Result<Option<Ends>> {
            self.reads += 1;
            let (first, last) = (floor.saturating_add(1).max(1), (ceiling - 1).min(self.n));
            if first > last {
                return Ok(None);
            }
            let (first, last) = (self.row(first).unwrap(), self.row(last).unwrap());
            Ok(Some(ends(self.guesses, first, last, times, |from| {
                self.row(from).filter(|&(id, _)| id < last.0)
            })))
        }
        fn first_from_each(
            &mut self,
            froms: &[i64],
            below: i64,
        ) -> anyhow::Result<Vec<Option<Row>>> {
            self.reads += 1;
            Ok(froms
                .iter()
                .map(|&from| {
                    Some(from.max(1))
                        .filter(|&id| id < below)
                        .and_then(|id| self.row(id))
                })
                .collect())
        }
    }

    /// How many reads each width takes for a steady archive of 10 M at most: one probe at a
    /// time as SQLite reads, eight at a time as PostgreSQL does.
    #[test]
    fn a_steady_archive_takes_a_few_reads_where_bisection_took_forty() {
        let n = 10_000_000i64;
        // With the first guesses probed in the ends' read (PostgreSQL), that read alone.
        for (width, guesses, most) in [(1, false, 4), (8, false, 2), (8, true, 1)] {
            for id in [4_321_987, n, 1, 9_999_999, 2] {
                let mut archive = Steady {
                    n,
                    width,
                    guesses,
                    reads: 0,
                };
                let found = first_at_or_after(&mut archive, 0, i64::MAX, 1_000 + id).unwrap();
                assert_eq!(found, Some((id, 1_000 + id)));
                assert!(archive.reads <= most, "{} reads for {id}", archive.reads);
            }
            let mut archive = Steady {
                n,
                width,
                guesses,
                reads: 0,
            };
            assert_eq!(
                first_at_or_after(&mut archive, 0, i64::MAX, 1_001 + n).unwrap(),
                None
            );
        }
    }

    /// Bursts (many rows at one time), quiet spells (big time jumps), gaps in the ids (other
    /// channels' messages).
    fn uneven() -> Vec<Row> {
        let mut rows = Vec::new();
        let (mut id, mut at) = (3i64, 50i64);
        for step in 0..5_000i64 {
            rows.push((id, at));
            id += 1 + (step * 7919) % 5;
            at += match step % 97 {
                0 => 1_000_000,
                1..=40 => 0,
                _ => (step * 31) % 3,
            };
        }
        rows
    }

    #[test]
    fn uneven_paces_gaps_ties_and_bounds_find_what_a_scan_finds() {
        // Times before, inside and after the archive.
        let rows = uneven();
        let last = rows.last().unwrap().1;
        // Never much worse than bisection (2·log₂ of the ids), or than a search of `width`
        // branches.
        // The first guesses probed with the ends (PostgreSQL's) find the same rows, within the
        // same bounds (a read or two more than without them for a few times here, fewer for
        // more).
        for (width, most) in [(1, 2 * 15 + 1), (8, 2 * 6 + 1)] {
            let mut worst = 0;
            for time in (0..=last + 2).step_by(((last / 400) as usize).max(1)) {
                for (floor, ceiling) in [(0, i64::MAX), (100, 9_000), (7_000, 7_001), (5, 4)] {
                    let alone = check(rows.clone(), width, floor, ceiling, time);
                    let guessing = check_guessing(rows.clone(), width, true, floor, ceiling, time);
                    worst = worst.max(alone).max(guessing);
                }
            }
            assert!(worst <= most, "{worst} reads at width {width}");
        }
    }

    #[test]
    fn an_empty_archive_or_range_has_no_answer() {
        for width in [1, 8] {
            assert_eq!(check(vec![], width, 0, i64::MAX, 10), 1);
            assert_eq!(check(vec![(5, 10)], width, 5, i64::MAX, 10), 1);
        }
    }

    /// A window's two times searched side by side find what each finds alone, in as many
    /// reads as the slower of the two takes alone (the ends read once).
    #[test]
    fn a_window_costs_the_reads_of_its_slower_time() {
        let rows = uneven();
        let last = rows.last().unwrap().1;
        for width in [1, 8] {
            let step = ((last / 30) as usize).max(1);
            for start in (0..=last + 2).step_by(step) {
                for end in (start..=last + 2).step_by(step) {
                    let alone =
                        [start, end].map(|time| check(rows.clone(), width, 0, i64::MAX, time));
                    let mut archive = Rows {
                        rows: rows.clone(),
                        width,
                        guesses: false,
                        reads: 0,
                    };
                    let ends = archive.ends(0, i64::MAX, &[start, end]).unwrap().unwrap();
                    let found = first_at_or_after_each(&mut archive, ends, &[start, end]).unwrap();
                    let expected = [start, end].map(|time| scanned(&rows, 0, i64::MAX, time));
                    assert_eq!(
                        found
                            .iter()
                            .map(|r| r.map(|(id, _)| id))
                            .collect::<Vec<_>>(),
                        expected
                    );
                    assert_eq!(archive.reads, alone[0].max(alone[1]), "{start}..{end}");
                }
            }
        }
    }
}
