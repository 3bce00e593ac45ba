//! Group commit. One thread owns the writing connection. It takes every job that queued up
//! while the previous transaction was committing and commits them together, so a burst of
//! messages pays one sync, not one each. Only after the commit does it hand the jobs' stanzas
//! to the link: nothing is reflected or acknowledged before it is stored.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Completion, FactWriter};
use crate::core::Fact;

/// What a job sends: serialized stanzas, in the service's representation (the store sits
/// inside the wire and names only the core). The writer hands a batch's to the sink together,
/// each job's as it is (no copy).
pub trait Outbound: Default + Send + 'static {
    /// What is sent instead when the job is not stored (the requester's error), written only
    /// then.
    type Failure: Send + 'static;

    /// The stanzas `failure` says.
    fn failed(failure: Self::Failure) -> Self;

    fn is_empty(&self) -> bool;
}

/// Where committed stanzas go: the link, in the service. The store sits inside the wire and
/// dependencies point inward, so the writer does not name the link; the service hands it a
/// sink (a closure over the link's outbox) instead. Called from the writer thread, once per
/// batch, in commit order, with each job's stanzas in order.
pub trait Sink<S>: Send + 'static {
    fn send(&self, stanzas: Vec<S>);
}

impl<S, F: Fn(Vec<S>) + Send + 'static> Sink<S> for F {
    fn send(&self, stanzas: Vec<S>) {
        self(stanzas)
    }
}

/// What one command changed and what to send once that is stored.
pub struct Job<S: Outbound> {
    pub facts: Vec<Fact>,
    /// Replies and deliveries, sent in order after the commit.
    pub outbound: S,
    /// Sent instead of `outbound` when the commit fails (the requester's error).
    pub on_failure: Option<S::Failure>,
    /// Told whether the job was stored, after its stanzas went out (the control socket's
    /// answer to the operator, see `control.rs`).
    pub stored: Option<tokio::sync::oneshot::Sender<bool>>,
    /// Run after the commit as `outbound` is handed on, never when the commit failed: what
    /// counts the deliveries (counted before the commit, a failed one's were counted too).
    pub sent: Option<Box<dyn FnOnce() + Send>>,
}

// Not derived: a derive would ask the failure for a default too.
impl<S: Outbound> Default for Job<S> {
    fn default() -> Self {
        Job {
            facts: Vec::new(),
            outbound: S::default(),
            on_failure: None,
            stored: None,
            sent: None,
        }
    }
}

/// What a commit means for the service beyond sending the jobs' stanzas.
#[derive(Debug)]
pub enum Committed {
    /// Receipts made these messages delivered to (or seen by) every member.
    Completed(Vec<Completion>),
    /// The batch was not stored.
    Failed,
}

/// What the writer reports of each batch, for monitoring. The store sits inside the wire and
/// names only the core, so the service hands the writer a watcher rather than the writer
/// naming the metrics. Called on the writer thread once per batch, before its stanzas are
/// handed to the link (so a counter has moved by the time a client sees the result).
pub trait Watch: Send + 'static {
    fn batch(&self, batch: &Batch<'_>);
}

/// One batch as the writer committed it (or failed to).
pub struct Batch<'a> {
    pub jobs: usize,
    pub facts: &'a [&'a Fact],
    /// From the start of the transaction to its commit (or failure).
    pub took: Duration,
    pub stored: bool,
    /// The part of `took` the writer spent in a checkpoint step of its own, if it ran one
    /// (`FactWriter::checkpointed`).
    pub checkpointed: Option<Duration>,
    /// Error replies sent instead of the batch's stanzas when it was not stored.
    pub refusals: usize,
}

/// How far behind the writer is: jobs submitted and not yet committed, and since when the
/// oldest of them waits. Shared with whoever watches the writer (the health check).
#[derive(Debug)]
pub struct Backlog {
    jobs: AtomicUsize,
    /// Microseconds after `epoch` at which the oldest job of the batch being committed was
    /// submitted; 0 while the writer waits for work.
    busy_since: AtomicU64,
    epoch: Instant,
}

impl Backlog {
    fn new() -> Self {
        Backlog {
            jobs: AtomicUsize::new(0),
            busy_since: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Jobs submitted and not yet committed.
    pub fn jobs(&self) -> usize {
        self.jobs.load(Ordering::Relaxed)
    }

    /// How long the oldest job not yet committed has waited. Jobs are committed in order and
    /// the writer takes every waiting job into its next batch, so the oldest pending job is
    /// the first of the batch being committed: zero when the writer is idle.
    pub fn oldest_pending(&self) -> Duration {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_micros(since)),
        }
    }

    fn busy_from(&self, submitted: Instant) {
        // At least 1: 0 means idle.
        let since = submitted.duration_since(self.epoch).as_micros().max(1);
        self.busy_since.store(since as u64, Ordering::Relaxed);
    }

    fn done(&self, jobs: usize) {
        self.busy_since.store(0, Ordering::Relaxed);
        // Release: whoever reads 0 (`Writer::is_idle`) also sees the stanzas handed on.
        self.jobs.fetch_sub(jobs, Ordering::Release);
    }
}

/// The most jobs in one transaction, so one commit's latency stays bounded under load.
const MAX_BATCH: usize = 4096;

pub struct Writer<S: Outbound> {
    /// Each job with the moment it was submitted.
    jobs: mpsc::Sender<(Instant, Job<S>)>,
    backlog: Arc<Backlog>,
    thread: JoinHandle<()>,
}

impl<S: Outbound> Writer<S> {
    /// Starts the writer thread. `sink` takes each batch's stanzas after its commit (or its
    /// error replies after a failed one). `events` is told what the service must act on after
    /// a commit: messages every member now has, and failed commits (the core's state then runs
    /// ahead of the store and must be reloaded). `watch` is told of every batch.
    pub fn spawn(
        mut store: impl FactWriter,
        sink: impl Sink<S>,
        events: tokio::sync::mpsc::UnboundedSender<Committed>,
        watch: impl Watch,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<(Instant, Job<S>)>();
        let backlog = Arc::new(Backlog::new());
        let behind = backlog.clone();
        let thread = std::thread::Builder::new()
            .name("mixd-writer".into())
            .spawn(move || {
                while let Ok((submitted, first)) = queue.recv() {
                    behind.busy_from(submitted);
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok((_, job)) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let started = Instant::now();
                    let facts: Vec<&Fact> = batch.iter().flat_map(|j| &j.facts).collect();
                    let result = if facts.is_empty() { Ok(Vec::new()) } else { store.commit(&facts) };
                    let took = started.elapsed();
                    let checkpointed = store.checkpointed();
                    let stored = result.is_ok();
                    let event = match result {
                        Ok(completions) if completions.is_empty() => None,
                        Ok(completions) => Some(Committed::Completed(completions)),
                        Err(error) => {
                            tracing::error!(%error, jobs = batch.len(), "commit failed; refusing the batch");
                            Some(Committed::Failed)
                        }
                    };
                    let jobs = batch.len();
                    let refusals = if stored { 0 } else { batch.iter().filter(|j| j.on_failure.is_some()).count() };
                    watch.batch(&Batch { jobs, facts: &facts, took, checkpointed, stored, refusals });
                    drop(facts);
                    let mut stanzas = Vec::with_capacity(jobs);
                    let mut waiting = Vec::new();
                    let mut sent = Vec::new();
                    for job in batch {
                        match (stored, job.on_failure) {
                            (true, _) if !job.outbound.is_empty() => stanzas.push(job.outbound),
                            (false, Some(failure)) => stanzas.push(S::failed(failure)),
                            _ => {}
                        }
                        waiting.extend(job.stored);
                        sent.extend(job.sent.filter(|_| stored));
                    }
                    // Counted as they are handed on, so that a counter has moved by the time
                    // a client sees what it counts.
                    for sent in sent {
                        sent();
                    }
                    if !stanzas.is_empty() {
                        sink.send(stanzas);
                    }
                    for told in waiting {
                        let _ = told.send(stored);
                    }
                    behind.done(jobs);
                    if let Some(event) = event {
                        let _ = events.send(event);
                    }
                }
            })
            .expect("spawning the writer thread");
        Writer {
            jobs,
            backlog,
            thread,
        }
    }

    pub fn submit(&self, job: Job<S>) {
        self.backlog.jobs.fetch_add(1, Ordering::Relaxed);
        // The thread only ends when every sender is gone, so this cannot fail while `self` lives.
        let _ = self.jobs.send((Instant::now(), job));
    }

    /// Whether every job submitted so far has been committed and its stanzas handed to the
    /// sink: then a stanza the caller sends on its own cannot overtake one of them.
    pub fn is_idle(&self) -> bool {
        self.backlog.jobs.load(Ordering::Acquire) == 0
    }

    /// How far behind the writer is, to watch from elsewhere.
    pub fn backlog(&self) -> Arc<Backlog> {
        self.backlog.clone()
    }

    /// Commits what is queued and stops the thread.
    pub fn finish(self) {
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The tests' stanzas: one string each, the failure a stanza of its own.
    impl Outbound for Vec<String> {
        type Failure = String;

        fn failed(failure: String) -> Self {
            vec![failure]
        }

        fn is_empty(&self) -> bool {
            <[String]>::is_empty(self)
        }
    }

    /// A store whose commits wait until the test lets each one through.
    struct Gated(mpsc::Receiver<()>);

    impl FactWriter for Gated {
        fn commit(&mut self, _: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
            self.0.recv()?;
            Ok(Vec::new())
        }

        fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
            Ok([0; 16])
        }

        fn checkpointed(&mut self) -> Option<Duration> {
            None
        }
    }

    /// The batches the writer reported: (jobs, facts, stored).
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(usize, usize, bool)>>>);

    impl Watch for Seen {
        fn batch(&self, batch: &Batch<'_>) {
            let seen = (batch.jobs, batch.facts.len(), batch.stored);
            self.0.lock().unwrap().push(seen);
        }
    }

    fn cleared() -> Job<Vec<String>> {
        Job {
            facts: vec![Fact::HistoryCleared {
                key: 1,
                member: "a@test".parse().unwrap(),
                upto: 1,
            }],
            ..Job::default()
        }
    }

    #[test]
    fn the_backlog_shows_how_long_the_oldest_uncommitted_job_waits() {
        let (gate, gated) = mpsc::channel();
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let seen = Seen::default();
        let writer = Writer::spawn(Gated(gated), |_: Vec<Vec<String>>| {}, events, seen.clone());
        let backlog = writer.backlog();
        assert_eq!(
            (backlog.jobs(), backlog.oldest_pending()),
            (0, Duration::ZERO)
        );
        writer.submit(cleared());
        std::thread::sleep(Duration::from_millis(50));
        writer.submit(cleared());
        writer.submit(cleared());
        assert_eq!(backlog.jobs(), 3);
        // The first job's commit is held: it has waited since it was submitted.
        assert!(backlog.oldest_pending() >= Duration::from_millis(50));
        gate.send(()).unwrap();
        gate.send(()).unwrap();
        writer.finish();
        assert_eq!(
            (backlog.jobs(), backlog.oldest_pending()),
            (0, Duration::ZERO)
        );
        // The first job alone, then the two that queued up behind it, together.
        assert_eq!(*seen.0.lock().unwrap(), [(1, 1, true), (2, 2, true)]);
    }

    /// A store that stores, or fails every commit.
    struct Store {
        fails: bool,
    }

    impl FactWriter for Store {
        fn commit(&mut self, _: &[&Fact]) -> anyhow::Result<Vec<Completion>> {
            anyhow::ensure!(!self.fails, "the disk is full");
            Ok(Vec::new())
        }

        fn id_key(&mut self) -> anyhow::Result<[u8; 16]> {
            Ok([0; 16])
        }

        fn checkpointed(&mut self) -> Option<Duration> {
            None
        }
    }

    /// Runs one job with a waiter; returns what the waiter was told and what had been sent
    /// by then (`<counted/>` when the job's `sent` ran).
    fn one_job(fails: bool) -> (bool, Vec<String>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let sent = sent.clone();
            move |jobs: Vec<Vec<String>>| sent.lock().unwrap().extend(jobs.into_iter().flatten())
        };
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let writer = Writer::spawn(Store { fails }, sink, events, Seen::default());
        let (stored, told) = tokio::sync::oneshot::channel();
        let counted = sent.clone();
        writer.submit(Job {
            facts: vec![Fact::HistoryCleared {
                key: 1,
                member: jid::BareJid::new("alice@localhost").unwrap(),
                upto: 1,
            }],
            outbound: vec!["<told/>".into()],
            on_failure: Some("<error/>".into()),
            stored: Some(stored),
            sent: Some(Box::new(move || {
                counted.lock().unwrap().push("<counted/>".into())
            })),
        });
        let told = told.blocking_recv().unwrap();
        let sent = sent.lock().unwrap().clone();
        writer.finish();
        (told, sent)
    }

    #[test]
    fn a_waiter_is_told_after_the_stanzas_went_out_whether_the_job_was_stored() {
        // What was sent is counted after it went out, and only if it was stored.
        assert_eq!(
            one_job(false),
            (true, vec!["<counted/>".to_string(), "<told/>".to_string()])
        );
        assert_eq!(one_job(true), (false, vec!["<error/>".to_string()]));
    }
}
