//! Bounded adaptive spinning before a thread sleeps for its next piece of work.
//!
//! On a virtual machine whose idle vCPUs halt at once (`cpuidle_haltpoll` with no poll
//! window, the machines mixd is measured on), a thread that sleeps on an empty queue and is
//! woken by the next job costs a wake-up: a host round trip before it runs again, tens of
//! microseconds, on every hand-off between mixd's threads. A thread that has just finished a
//! piece of work therefore first polls its queue for a short while ([`Spinner::wait`]), giving
//! the vCPU to any other runnable thread between two polls (`yield_now`), and sleeps only if
//! nothing came within the window. This is what glibc's adaptive mutexes, PostgreSQL's spin
//! locks and the kernel's haltpoll do.
//!
//! The spin is bounded twice: never longer than the window per wait, and only while work
//! arrives that fast. A thread spins only while it is *hot*: when, the last time it ran out
//! of work, the next piece came within [`HOT_WITHIN`] windows (found by its spin, or after a
//! sleep that short). A spin that finds nothing and the sleep after it together last more
//! than that unless the work came just after the spin gave up, so a thread whose work comes
//! at longer gaps goes cold after one spin, and spins again only once a sleep of its own
//! showed the work coming faster. A thread that starts, or an idle server's, is cold: it
//! spins not at all. The CPU a spin takes is the window at most per wait, and a spinning
//! thread yields its vCPU to any other runnable thread between two polls.
//!
//! It sits in the store because the writer, its first user, may name nothing outside the
//! store and the core; the archive's readers (`readers.rs`) and the rules task
//! (`service.rs`) take it from here.

use std::time::{Duration, Instant};

/// Work that came within this many windows of the thread running out makes it hot: the wake
/// itself takes some of a sleep's time, so a sleep of up to two windows may still have been
/// work a spin of one would have caught.
pub const HOT_WITHIN: u32 = 2;

/// The longest window a setting may ask for: beyond this a spin costs more CPU than the
/// wake-up it saves.
pub const MAX_WINDOW: Duration = Duration::from_millis(1);

/// One thread's spinning state, kept across its waits.
#[derive(Debug)]
pub struct Spinner {
    window: Duration,
    hot: bool,
}

/// A thread that spun (or did not) and found no work: since when it has been out of work.
/// Handed back to [`Spinner::woke`] once work comes.
#[must_use]
pub struct Idle(Instant);

impl Spinner {
    /// A cold spinner that polls for at most `window` (capped at [`MAX_WINDOW`]); a zero
    /// window never spins.
    pub fn new(window: Duration) -> Self {
        Spinner {
            window: window.min(MAX_WINDOW),
            hot: false,
        }
    }

    /// The next piece of work: `poll` (which must not block) until it gives one, for at most
    /// the window while this thread is hot, then `sleep` (which blocks until there is work,
    /// or gives `None` when there never will be).
    pub fn wait<T>(
        &mut self,
        mut poll: impl FnMut() -> Option<T>,
        sleep: impl FnOnce() -> Option<T>,
    ) -> Option<T> {
        match self.spin(&mut poll) {
            Ok(work) => Some(work),
            Err(idle) => {
                let work = sleep();
                self.woke(idle);
                work
            }
        }
    }

    /// `poll` (which must not block) until it gives work, for at most the window while this
    /// thread is hot; without work, the caller sleeps and then tells [`woke`](Self::woke).
    /// For a caller whose sleep is not a blocking call ([`wait`](Self::wait) is, for those).
    pub fn spin<T>(&mut self, mut poll: impl FnMut() -> Option<T>) -> Result<T, Idle> {
        let since = Instant::now();
        if self.hot {
            let until = since + self.window;
            loop {
                if let Some(work) = poll() {
                    return Ok(work);
                }
                if Instant::now() >= until {
                    break;
                }
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        }
        Err(Idle(since))
    }

    /// Work came after the thread slept: it stays (or becomes) hot only if the work came
    /// soon enough after the thread ran out that a spin would have caught it.
    pub fn woke(&mut self, Idle(since): Idle) {
        self.hot = !self.window.is_zero() && since.elapsed() <= self.window * HOT_WITHIN;
    }

    /// Whether the next wait spins.
    #[cfg(test)]
    fn is_hot(&self) -> bool {
        self.hot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = MAX_WINDOW;

    #[test]
    fn a_cold_spinner_sleeps_at_once() {
        let mut spinner = Spinner::new(WINDOW);
        let mut polls = 0;
        let work = spinner.wait(
            || {
                polls += 1;
                None::<u8>
            },
            || Some(1),
        );
        assert_eq!((work, polls), (Some(1), 0));
        // Woken at once: work is arriving fast enough, the next wait spins.
        assert!(spinner.is_hot());
    }

    #[test]
    fn a_hot_spinner_polls_for_no_longer_than_its_window_then_sleeps() {
        let mut spinner = Spinner::new(WINDOW);
        spinner.wait(|| None::<u8>, || Some(1));
        let started = Instant::now();
        let mut polls = 0;
        let work = spinner.wait(
            || {
                polls += 1;
                None::<u8>
            },
            || {
                std::thread::sleep(WINDOW);
                Some(2)
            },
        );
        let spun = started.elapsed() - WINDOW;
        assert_eq!(work, Some(2));
        assert!(polls > 1);
        assert!(spun >= WINDOW, "spun {spun:?}");
        // Bounded: the window, and what one last poll takes beyond it (a yield on a loaded
        // machine may give the vCPU away for a scheduler's slice, a few milliseconds).
        assert!(spun < WINDOW + Duration::from_millis(20), "spun {spun:?}");
        // The spin and the sleep together took longer than a spin may: the next wait does not
        // spin, and a short sleep of its own makes it spin again.
        assert!(!spinner.is_hot());
        spinner.wait(|| unreachable!("cold: no poll"), || Some(3));
        assert!(spinner.is_hot());
    }

    #[test]
    fn a_hot_spinner_takes_what_arrives_within_its_window() {
        let mut spinner = Spinner::new(WINDOW);
        spinner.wait(|| None::<u8>, || Some(1));
        let mut polls = 0;
        let work = spinner.wait(
            || {
                polls += 1;
                (polls == 3).then_some(7)
            },
            || unreachable!("the work came within the window"),
        );
        assert_eq!(work, Some(7));
        assert!(spinner.is_hot());
    }

    #[test]
    fn a_zero_window_never_spins_and_the_window_is_capped() {
        let mut spinner = Spinner::new(Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(
                spinner.wait(|| unreachable!("no window, no poll"), || Some(1)),
                Some(1)
            );
        }
        assert!(!spinner.is_hot());
        assert_eq!(Spinner::new(Duration::from_secs(1)).window, MAX_WINDOW);
    }
}
