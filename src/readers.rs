//! The archive's readers: threads of their own, each taking the next read (a history page,
//! receipt states, the messages a request names) from one queue and running it against the
//! store's [`Reader`]. Reads used to go to tokio's shared blocking pool, where each one
//! handed a closure to whichever pool thread was free (or started one) under the pool's
//! lock; here a few threads stay, each keeping the reader connection (and its prepared
//! statements and page cache) warm.
//!
//! The queue is fair and bounded: reads wait in one queue per user and the readers take one
//! read of each user in turn (`turns.rs`, as the intake does with stanzas), so that a user's
//! read waits for at most one read of each other user with reads waiting, never behind a
//! flooder's whole backlog (first come, first served let one member's MAM flood hold every
//! other user's history back). At most [`READS_PER_USER`] of one user and [`READS_WAITING`]
//! in all wait; a read beyond either is refused at once with `resource-constraint`, so
//! memory stays bounded. The rate of reads is the core's history quota (`core/quota.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::core::{Condition, Refusal};
use crate::store::Reader;
use crate::turns::Turns;

/// The most reads waiting in all (each a few hundred bytes: a query and its requester).
pub const READS_WAITING: usize = 4096;
/// The most reads of one user waiting: more than a client syncing all its channels at once
/// asks for, within the history quota's burst.
pub const READS_PER_USER: usize = 256;

/// What a read does with the store's reader; it sends its own results on.
pub type Run = Box<dyn FnOnce(&dyn Reader) + Send>;

/// One read, queued in its user's turn.
pub struct Task {
    /// Whose turn it waits for: the requester's bare JID.
    pub user: String,
    pub run: Run,
    /// Run instead of the rest of `run` when `run` panicked: the requester must still get an
    /// answer.
    pub if_panicked: Box<dyn FnOnce() + Send>,
}

/// The queue the readers take from; they stop once it is dropped and empty.
pub struct Readers {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled for each read queued, and when the queue closes.
    ready: Condvar,
}

struct Queue {
    turns: Turns<Task>,
    open: bool,
}

impl Shared {
    /// The queue; nothing panics while holding it, but a poisoned lock is still the queue.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Readers {
    /// `threads` readers (at least one) over `reader`.
    pub fn spawn(reader: Arc<dyn Reader>, threads: usize) -> std::io::Result<Readers> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                turns: Turns::new(READS_PER_USER),
                open: true,
            }),
            ready: Condvar::new(),
        });
        for n in 0..threads.max(1) {
            let (shared, reader) = (shared.clone(), reader.clone());
            std::thread::Builder::new()
                .name(format!("mixd-reader-{n}"))
                .spawn(move || read(&shared, reader.as_ref()))?;
        }
        Ok(Readers { shared })
    }

    /// Queues `task` behind its user's earlier reads, or refuses it (and drops it) when too
    /// many reads wait.
    pub fn run(&self, task: Task) -> Result<(), Refusal> {
        let mut queue = self.shared.lock();
        if queue.turns.len() >= READS_WAITING {
            return Err(Refusal::new(
                Condition::ResourceConstraint,
                format!("the archive has {READS_WAITING} reads waiting; try again in a moment"),
            ));
        }
        if queue.turns.push(task, |task| &task.user).is_err() {
            return Err(Refusal::new(
                Condition::ResourceConstraint,
                format!(
                    "{READS_PER_USER} of your reads of the archive are waiting; send this one \
                     again once they are answered"
                ),
            ));
        }
        drop(queue);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.shared.lock().open = false;
        self.shared.ready.notify_all();
    }
}

/// A reader's loop: the next user's read, until the queue is closed and empty. A read that
/// panics fails alone, not the thread (the readers are few), and its requester is answered.
fn read(shared: &Shared, reader: &dyn Reader) {
    loop {
        let task = {
            let mut queue = shared.lock();
            loop {
                if let Some(task) = queue.turns.take_turn() {
                    break task;
                }
                if !queue.open {
                    return;
                }
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let Task {
            user,
            run,
            if_panicked,
        } = task;
        if catch_unwind(AssertUnwindSafe(|| run(reader))).is_err() {
            tracing::error!(
                user,
                "an archive read panicked; its requester is told it failed"
            );
            if catch_unwind(AssertUnwindSafe(if_panicked)).is_err() {
                tracing::error!(user, "answering a read that panicked panicked too");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{open, Durability};
    use std::sync::mpsc;

    fn readers(threads: usize) -> (tempfile::TempDir, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let (_writer, reader) = open(&dir.path().join("r.db"), Durability::Normal).unwrap();
        let readers = Readers::spawn(Arc::new(reader), threads).unwrap();
        (dir, readers)
    }

    /// A read of `user`'s that says `what` on `done` when it runs.
    fn task(user: &str, what: &'static str, done: &mpsc::Sender<&'static str>) -> Task {
        let done = done.clone();
        Task {
            user: user.into(),
            run: Box::new(move |_| done.send(what).unwrap()),
            if_panicked: Box::new(|| unreachable!()),
        }
    }

    /// A read that holds its reader until `go` is sent, saying it started on `started`.
    fn blocker(started: mpsc::Sender<()>, go: mpsc::Receiver<()>) -> Task {
        Task {
            user: "blocker@localhost".into(),
            run: Box::new(move |_| {
                started.send(()).unwrap();
                go.recv().unwrap();
            }),
            if_panicked: Box::new(|| unreachable!()),
        }
    }

    #[test]
    fn reads_run_on_the_readers_and_a_panic_answers_its_requester() {
        let (_dir, readers) = readers(2);
        let (done, results) = mpsc::channel();
        let told = done.clone();
        readers
            .run(Task {
                user: "bad@localhost".into(),
                run: Box::new(|_| panic!("a bad read")),
                if_panicked: Box::new(move || told.send((99, 0, "answered".into())).unwrap()),
            })
            .unwrap();
        for n in 0..4 {
            let done = done.clone();
            readers
                .run(Task {
                    user: format!("u{n}@localhost"),
                    run: Box::new(move |reader| {
                        let channels = reader.snapshot().unwrap().channels.len();
                        let thread = std::thread::current().name().unwrap_or("").to_owned();
                        done.send((n, channels, thread)).unwrap();
                    }),
                    if_panicked: Box::new(|| unreachable!()),
                })
                .unwrap();
        }
        let mut answered: Vec<_> = results.iter().take(5).collect();
        answered.sort();
        assert_eq!(
            answered
                .iter()
                .map(|(n, c, _)| (*n, *c))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 0), (2, 0), (3, 0), (99, 0)]
        );
        assert!(answered[..4]
            .iter()
            .all(|(_, _, t)| t.starts_with("mixd-reader-")));
        assert_eq!(answered[4].2, "answered");
    }

    #[test]
    fn users_take_turns_and_a_flood_is_refused_beyond_its_share() {
        let (_dir, readers) = readers(1);
        let (started_tx, started) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        readers.run(blocker(started_tx, go_rx)).unwrap();
        started.recv().unwrap();
        let (done, results) = mpsc::channel();
        for _ in 0..READS_PER_USER {
            readers
                .run(task("flood@localhost", "flood", &done))
                .unwrap();
        }
        let refused = readers
            .run(task("flood@localhost", "flood", &done))
            .unwrap_err();
        assert_eq!(refused.condition, Condition::ResourceConstraint);
        assert_eq!(
            refused.text,
            "256 of your reads of the archive are waiting; send this one again once they \
             are answered"
        );
        // A quiet user queued behind the flood is read second, not after it.
        readers
            .run(task("quiet@localhost", "quiet", &done))
            .unwrap();
        go.send(()).unwrap();
        let order: Vec<_> = results.iter().take(READS_PER_USER + 1).collect();
        assert_eq!(order[..2], ["flood", "quiet"]);
        assert!(order[2..].iter().all(|what| *what == "flood"));
    }

    #[test]
    fn the_queue_is_bounded_in_all() {
        let (_dir, readers) = readers(1);
        let (started_tx, started) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        readers.run(blocker(started_tx, go_rx)).unwrap();
        started.recv().unwrap();
        let (done, results) = mpsc::channel();
        for n in 0..READS_WAITING {
            readers
                .run(task(&format!("u{}@localhost", n % 100), "read", &done))
                .unwrap();
        }
        let refused = readers
            .run(task("late@localhost", "late", &done))
            .unwrap_err();
        assert_eq!(refused.condition, Condition::ResourceConstraint);
        assert_eq!(
            refused.text,
            "the archive has 4096 reads waiting; try again in a moment"
        );
        go.send(()).unwrap();
        assert_eq!(results.iter().take(READS_WAITING).count(), READS_WAITING);
        // Once they are read, there is room again.
        readers.run(task("late@localhost", "late", &done)).unwrap();
        assert_eq!(results.recv().unwrap(), "late");
    }
}
