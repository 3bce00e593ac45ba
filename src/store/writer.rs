//! Group commit. One thread owns the writing connection. It takes every job that queued up
//! while the previous transaction was committing and commits them together, so a burst of
//! messages pays one sync, not one each. Only after the commit does it hand the jobs' stanzas
//! to the link: nothing is reflected or acknowledged before it is stored.

use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{Completion, FactWriter};
use crate::core::Fact;

/// Where committed stanzas go: the link, in the service. The store sits inside the wire and
/// dependencies point inward, so the writer does not name the link; the service hands it a
/// sink (a closure over the link's outbox) instead. Called from the writer thread, once per
/// batch, in commit order.
pub trait Sink: Send + 'static {
    fn send(&self, stanzas: Vec<String>);
}

impl<F: Fn(Vec<String>) + Send + 'static> Sink for F {
    fn send(&self, stanzas: Vec<String>) {
        self(stanzas)
    }
}

/// What one command changed and what to send once that is stored.
#[derive(Debug, Default)]
pub struct Job {
    pub facts: Vec<Fact>,
    /// Replies and deliveries, sent in order after the commit.
    pub outbound: Vec<String>,
    /// Sent instead of `outbound` when the commit fails (error replies to the requesters).
    pub on_failure: Vec<String>,
    /// Told whether the job was stored, after its stanzas went out (the control socket's
    /// answer to the operator, see `control.rs`).
    pub stored: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// What a commit means for the service beyond sending the jobs' stanzas.
#[derive(Debug)]
pub enum Committed {
    /// Receipts made these messages delivered to (or seen by) every member.
    Completed(Vec<Completion>),
    /// The batch was not stored.
    Failed,
}

/// The most jobs in one transaction, so one commit's latency stays bounded under load.
const MAX_BATCH: usize = 4096;

pub struct Writer {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer thread. `sink` takes each batch's stanzas after its commit (or its
    /// error replies after a failed one). `events` is told what the service must act on after
    /// a commit: messages every member now has, and failed commits (the core's state then runs
    /// ahead of the store and must be reloaded).
    pub fn spawn(
        mut store: impl FactWriter,
        sink: impl Sink,
        events: tokio::sync::mpsc::UnboundedSender<Committed>,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("mixd-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let facts: Vec<&Fact> = batch.iter().flat_map(|j| &j.facts).collect();
                    let result = if facts.is_empty() { Ok(Vec::new()) } else { store.commit(&facts) };
                    let stored = result.is_ok();
                    let event = match result {
                        Ok(completions) if completions.is_empty() => None,
                        Ok(completions) => Some(Committed::Completed(completions)),
                        Err(error) => {
                            tracing::error!(%error, jobs = batch.len(), "commit failed; refusing the batch");
                            Some(Committed::Failed)
                        }
                    };
                    let mut stanzas = Vec::new();
                    let mut waiting = Vec::new();
                    for job in batch {
                        stanzas.extend(if stored { job.outbound } else { job.on_failure });
                        waiting.extend(job.stored);
                    }
                    if !stanzas.is_empty() {
                        sink.send(stanzas);
                    }
                    for told in waiting {
                        let _ = told.send(stored);
                    }
                    if let Some(event) = event {
                        let _ = events.send(event);
                    }
                }
            })
            .expect("spawning the writer thread");
        Writer { jobs, thread }
    }

    pub fn submit(&self, job: Job) {
        // The thread only ends when every sender is gone, so this cannot fail while `self` lives.
        let _ = self.jobs.send(job);
    }

    /// Commits what is queued and stops the thread.
    pub fn finish(self) {
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

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
    }

    /// Runs one job with a waiter; returns what the waiter was told and what had been sent
    /// by then.
    fn one_job(fails: bool) -> (bool, Vec<String>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let sent = sent.clone();
            move |stanzas: Vec<String>| sent.lock().unwrap().extend(stanzas)
        };
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let writer = Writer::spawn(Store { fails }, sink, events);
        let (stored, told) = tokio::sync::oneshot::channel();
        writer.submit(Job {
            facts: vec![Fact::HistoryCleared {
                key: 1,
                member: jid::BareJid::new("alice@localhost").unwrap(),
                upto: 1,
            }],
            outbound: vec!["<told/>".into()],
            on_failure: vec!["<error/>".into()],
            stored: Some(stored),
        });
        let told = told.blocking_recv().unwrap();
        let sent = sent.lock().unwrap().clone();
        writer.finish();
        (told, sent)
    }

    #[test]
    fn a_waiter_is_told_after_the_stanzas_went_out_whether_the_job_was_stored() {
        assert_eq!(one_job(false), (true, vec!["<told/>".to_string()]));
        assert_eq!(one_job(true), (false, vec!["<error/>".to_string()]));
    }
}
