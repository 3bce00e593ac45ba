//! Where a time falls in a channel's archive: the first archive id whose time is at or after
//! it, found from a few `(id, time)` probes of the archive's id index. Archive times grow
//! with archive ids (mixd assigns both, and its clock never goes back while it runs), and
//! mostly at a steady pace, so the id where a time falls is well guessed from the ids and
//! times around it (interpolation): about 3–5 probes at 10 M messages where bisection took
//! about 40. Every other step is a bisection whenever a guess did not halve what is left, so
//! that an archive whose pace changes (a burst, a quiet year) never costs more than twice
//! bisection. No I/O here: the store gives the probes.

/// One archive row as the search sees it: its id and its time.
pub type Row = (i64, i64);

/// How the search reads the archive; each call is one step down the id index.
pub trait Probe {
    /// The row with the smallest id in `from..below`, if any.
    fn first_from(&mut self, from: i64, below: i64) -> anyhow::Result<Option<Row>>;
    /// The row with the largest id in `above + 1..below`, if any.
    fn last_below(&mut self, above: i64, below: i64) -> anyhow::Result<Option<Row>>;
}

/// The smallest archive id strictly between `floor` and `ceiling` whose time is at or after
/// `time`, if any row there reaches it.
pub fn first_at_or_after(
    archive: &mut impl Probe,
    floor: i64,
    ceiling: i64,
    time: i64,
) -> anyhow::Result<Option<i64>> {
    // Ends known: `low` is a row before `time`, `found` the lowest row known to reach it;
    // `high` bounds what is still unknown (rows in `low + 1..high`).
    let Some((first, first_at)) = archive.first_from(floor.saturating_add(1), ceiling)? else {
        return Ok(None);
    };
    if first_at >= time {
        return Ok(Some(first));
    }
    let Some((last, last_at)) = archive.last_below(first, ceiling)? else {
        return Ok(None);
    };
    // The newest row not reaching `time` means that none does while times grow with ids; a
    // clock stepped back across a restart breaks that, so the rows before it are still
    // searched, by bisection until one that reaches gives the search its upper end.
    let (mut low, mut low_at) = (first, first_at);
    let mut found = (last_at >= time).then_some((last, last_at));
    let mut high = last;
    let mut bisect = false;
    while low.saturating_add(1) < high {
        let before = high - low;
        let guess = match found {
            Some(found) if !bisect => interpolated((low, low_at), found, time),
            _ => low + before / 2,
        }
        .clamp(low + 1, high - 1);
        match archive.first_from(guess, high)? {
            // No row from the guess on: the answer, if not `found`, is below it.
            None => high = guess,
            Some((id, at)) if at >= time => {
                found = Some((id, at));
                high = guess;
            }
            Some((id, at)) => (low, low_at) = (id, at),
        }
        bisect = !bisect && (high - low) * 2 > before;
    }
    Ok(found.map(|(id, _)| id))
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

    /// An archive in memory: rows sorted by id, and how many probes were made.
    struct Rows {
        rows: Vec<Row>,
        probes: usize,
    }

    impl Probe for Rows {
        fn first_from(&mut self, from: i64, below: i64) -> anyhow::Result<Option<Row>> {
            self.probes += 1;
            Ok(self
                .rows
                .iter()
                .copied()
                .find(|&(id, _)| id >= from && id < below))
        }
        fn last_below(&mut self, above: i64, below: i64) -> anyhow::Result<Option<Row>> {
            self.probes += 1;
            Ok(self
                .rows
                .iter()
                .rev()
                .copied()
                .find(|&(id, _)| id > above && id < below))
        }
    }

    /// What a scan of every row finds.
    fn scanned(rows: &[Row], floor: i64, ceiling: i64, time: i64) -> Option<i64> {
        rows.iter()
            .find(|&&(id, at)| id > floor && id < ceiling && at >= time)
            .map(|&(id, _)| id)
    }

    fn check(rows: Vec<Row>, floor: i64, ceiling: i64, time: i64) -> usize {
        let expected = scanned(&rows, floor, ceiling, time);
        let mut archive = Rows { rows, probes: 0 };
        let got = first_at_or_after(&mut archive, floor, ceiling, time).unwrap();
        assert_eq!(got, expected, "floor {floor} ceiling {ceiling} time {time}");
        archive.probes
    }

    /// Ids `1..=n`, id `i` at time `1_000 + i`: as the bench seeds its archive.
    struct Steady {
        n: i64,
        probes: usize,
    }

    impl Probe for Steady {
        fn first_from(&mut self, from: i64, below: i64) -> anyhow::Result<Option<Row>> {
            self.probes += 1;
            let id = from.max(1);
            Ok((id < below && id <= self.n).then_some((id, 1_000 + id)))
        }
        fn last_below(&mut self, above: i64, below: i64) -> anyhow::Result<Option<Row>> {
            self.probes += 1;
            let id = (below - 1).min(self.n);
            Ok((id > above && id >= 1).then_some((id, 1_000 + id)))
        }
    }

    #[test]
    fn a_steady_archive_takes_a_few_probes_where_bisection_took_forty() {
        let n = 10_000_000i64;
        for id in [4_321_987, n, 1, 9_999_999, 2] {
            let mut archive = Steady { n, probes: 0 };
            let found = first_at_or_after(&mut archive, 0, i64::MAX, 1_000 + id).unwrap();
            assert_eq!(found, Some(id));
            assert!(archive.probes <= 5, "{} probes for {id}", archive.probes);
        }
        let mut archive = Steady { n, probes: 0 };
        assert_eq!(
            first_at_or_after(&mut archive, 0, i64::MAX, 1_001 + n).unwrap(),
            None
        );
    }

    #[test]
    fn uneven_paces_gaps_ties_and_bounds_find_what_a_scan_finds() {
        // Bursts (many rows at one time), quiet spells (big time jumps), gaps in the ids
        // (other channels' messages), and times before, inside and after the archive.
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
        let last = rows.last().unwrap().1;
        let mut worst = 0;
        for time in (0..=last + 2).step_by(((last / 400) as usize).max(1)) {
            for (floor, ceiling) in [(0, i64::MAX), (100, 9_000), (7_000, 7_001), (5, 4)] {
                worst = worst.max(check(rows.clone(), floor, ceiling, time));
            }
        }
        // Never much worse than bisection (2·log₂ of the ids).
        assert!(worst <= 2 * 15 + 2, "{worst} probes");
    }

    #[test]
    fn an_empty_archive_or_range_has_no_answer() {
        assert_eq!(check(vec![], 0, i64::MAX, 10), 1);
        assert_eq!(check(vec![(5, 10)], 5, i64::MAX, 10), 1);
    }
}
