//! The archive's readers: threads of their own, each taking the next read (a history page,
//! receipt states, the messages a request names) from one queue and running it against the
//! store's [`Reader`]. Reads used to go to tokio's shared blocking pool, where each one
//! handed a closure to whichever pool thread was free (or started one) under the pool's
//! lock; here a few threads stay, each keeping the reader connection (and its prepared
//! statements and page cache) warm, and a read waits only for the one ahead of it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use crate::store::Reader;

/// One read: it gets the store's reader and sends its own results on.
pub type Task = Box<dyn FnOnce(&dyn Reader) + Send>;

/// The queue the readers take from; they stop once it is dropped and empty.
pub struct Readers {
    queue: mpsc::Sender<Task>,
}

impl Readers {
    /// `threads` readers (at least one) over `reader`.
    pub fn spawn(reader: Arc<dyn Reader>, threads: usize) -> std::io::Result<Readers> {
        let (queue, tasks) = mpsc::channel::<Task>();
        let tasks = Arc::new(Mutex::new(tasks));
        for n in 0..threads.max(1) {
            let (tasks, reader) = (tasks.clone(), reader.clone());
            std::thread::Builder::new()
                .name(format!("mixd-reader-{n}"))
                .spawn(move || read(&tasks, reader.as_ref()))?;
        }
        Ok(Readers { queue })
    }

    pub fn run(&self, task: Task) {
        // The readers only stop once this queue is gone.
        let _ = self.queue.send(task);
    }
}

/// A reader's loop. A read that panics fails alone (its requester gets no answer, as a read
/// on tokio's pool did), not the thread: the readers are few.
fn read(tasks: &Mutex<mpsc::Receiver<Task>>, reader: &dyn Reader) {
    loop {
        // The lock is held while waiting, so that one reader waits on the queue and the
        // others on the lock; it is let go before the read runs.
        let next = match tasks.lock() {
            Ok(tasks) => tasks.recv(),
            Err(_) => return,
        };
        let Ok(task) = next else { return };
        if catch_unwind(AssertUnwindSafe(|| task(reader))).is_err() {
            tracing::error!("an archive read panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{open, Durability};

    #[test]
    fn reads_run_on_the_readers_and_a_panic_fails_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (_writer, reader) = open(&dir.path().join("r.db"), Durability::Normal).unwrap();
        let readers = Readers::spawn(Arc::new(reader), 2).unwrap();
        let (done, results) = mpsc::channel();
        readers.run(Box::new(|_| panic!("a bad read")));
        for n in 0..4 {
            let done = done.clone();
            readers.run(Box::new(move |reader| {
                let channels = reader.snapshot().unwrap().channels.len();
                let thread = std::thread::current().name().unwrap_or("").to_owned();
                done.send((n, channels, thread)).unwrap();
            }));
        }
        let mut answered: Vec<_> = results.iter().take(4).collect();
        answered.sort();
        assert_eq!(
            answered
                .iter()
                .map(|(n, c, _)| (*n, *c))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 0), (2, 0), (3, 0)]
        );
        assert!(answered
            .iter()
            .all(|(_, _, t)| t.starts_with("mixd-reader-")));
    }
}
