//! The service loop: the one place where the link, the dialect, the core, the store and
//! delivery meet. Stanzas are handled one at a time, in arrival order, so the core needs no
//! locks; storing and archive reads happen on other threads.
//!
//! One stanza's path: link → `router::handle` (the envelope, then its dialect: parse, run the
//! core command, write the reply) →
//! `delivery::deliver` (stanzas for the participants) → the writer (commit, then hand the
//! stanzas to the link). Archive queries go to the archive's reader threads (`readers`)
//! instead, and so do look-ups of archived messages, whose requests then finish back on this
//! task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::sync::mpsc;

use crate::bootstrap;
use crate::config::Settings;
use crate::control;
use crate::core::{Fact, Groups, MessageRef, Micros};
use crate::delivery::{self, Delivered};
use crate::dialect::ids::Ids;
use crate::dialect::{Asker, Handled, IfNotStored, Lookup, Read, Resume, Service};
use crate::gate::Gate;
use crate::intake::Intake;
use crate::link::{self, LinkSettings, Outbox};
use crate::metrics::{self, Metrics};
use crate::readers::{Readers, Task};
use crate::reload::{self, Reload};
use crate::router;
use crate::store;
use crate::store::writer::{Committed, Job, Outbound, Writer};
use crate::xml::Stanzas;

pub async fn run(settings: Settings, reload: Reload) -> anyhow::Result<()> {
    // A PostgreSQL standby waits here until it is the active instance.
    let store::Opened {
        writer: mut store,
        reader,
        follows_an_active,
    } = store::open(&settings.database, settings.durability)?;
    let key = store.id_key()?;
    let ids = Ids::new(&key);
    // Bound before anything is served, so that a second mixd on this database stops here.
    let (mut orders, _control) = control::listen(&settings.control_socket)?;
    let mut groups = Groups::new(reload::rules(&settings, key), reader.snapshot()?);
    let metrics = Arc::new(Metrics::new());
    tracing::info!(channels = groups.channels().count(), database = %settings.database, "state loaded");
    let service = Service {
        domain: settings.domain.clone(),
        archive: reader.clone(),
        ids,
    };
    let gate = Arc::new(Gate::new(&settings.domain));
    let mut link = link::spawn(LinkSettings {
        server: settings.server.clone(),
        domain: settings.domain.clone(),
        secret: settings.secret.clone(),
        keepalive: settings.keepalive,
        limits: link::reader::Limits {
            max_bytes: settings.max_stanza_bytes,
            max_depth: settings.max_stanza_depth,
        },
        max_outbox_bytes: settings.max_outbox_bytes,
        write_timeout: settings.write_timeout,
        wait_out_conflict: follows_an_active,
        metrics: metrics.clone(),
        screen: Some(gate.clone()),
    });
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut running = settings;
    tokio::select! {
        first = &mut link.first_connection => match first {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return Err(anyhow!(refused)),
            Err(_) => bail!("the component link ended before it connected"),
        },
        _ = &mut shutdown => return Ok(()),
    }
    // The bootstrap's questions about the groups, answered between two stanzas.
    let (asks_tx, mut asks) = mpsc::unbounded_channel::<bootstrap::Ask>();
    let bootstrap = match running.bootstrap.clone() {
        Some(bootstrap_settings) => Some(
            bootstrap::spawn(
                bootstrap_settings,
                running.domain.clone(),
                &running.secret,
                asks_tx,
            )
            .await?,
        ),
        None => None,
    };
    let (committed_tx, mut committed) = mpsc::unbounded_channel();
    // The writer's own clone of the outbox, dropped when the writer finishes.
    let to_link = link.outbox.clone();
    let writer = Writer::spawn(
        store,
        move |runs| to_link.write_runs_now(runs),
        committed_tx,
        metrics.clone(),
    );
    // Scrapes ask this loop to measure what it holds; kept open even with metrics off.
    let (measure_tx, mut measure) = mpsc::channel(1);
    if let Some(address) = running.metrics {
        metrics::http::serve(
            address,
            metrics.clone(),
            writer.backlog(),
            measure_tx.clone(),
        )
        .await?;
    }
    let (found_tx, mut found) = mpsc::unbounded_channel();
    let readers = Readers::spawn(reader.clone(), READER_THREADS)?;
    let outlets = Outlets {
        writer: &writer,
        readers: &readers,
        outbox: &link.outbox,
        found: &found_tx,
        metrics: &metrics,
    };
    // Back-pressure (see `link::Outbox`): while the outbound queue is over its cap, no new
    // stanza is taken; results already under way (look-ups, commits) still finish.
    let mut held_back = false;
    let mut intake = Intake::default();
    let mut addresses = router::Addresses::default();
    // The gate's ticket of the last stanza handled (see `gate.rs`).
    let mut ticket = 0;
    loop {
        // Who the last stanza's quota refused: the link refuses their posts or signals from
        // here on;
        // whose chat states the rules dropped: the link drops the next ones.
        gate.publish(groups.take_out_of_tokens());
        gate.publish_quiet(groups.take_quiet_states(), ticket);
        let room = link.outbox.has_room();
        if room == held_back {
            held_back = !room;
            if held_back {
                tracing::warn!(
                    queued_bytes = link.outbox.queued_bytes(),
                    "the server is not reading fast enough; holding inbound stanzas back"
                );
            } else {
                tracing::info!("the server caught up; taking inbound stanzas again");
            }
        }
        if room {
            // Everything the link has read joins its sender's queue before the next turn.
            while intake.has_space() {
                let Ok(stanza) = link.inbound.try_recv() else {
                    break;
                };
                if let Some(refusal) = intake.push(stanza) {
                    link.outbox.send(refusal.into());
                }
            }
        }
        tokio::select! {
            _ = link.outbox.room(), if !room => {}
            stanza = link.inbound.recv(), if room && intake.is_empty() => {
                let Some(stanza) = stanza else { break };
                if let Some(refusal) = intake.push(stanza) {
                    link.outbox.send(refusal.into());
                }
            }
            _ = std::future::ready(()), if room && !intake.is_empty() => {
                if let Some(stanza) = intake.take_turn() {
                    ticket = stanza.ticket;
                    let route = router::route(&stanza, &stanza.head);
                    if let Some(route) = route {
                        metrics.stanza_in(route.kind, route.dialect);
                    }
                    let handled = router::handle(
                        &mut groups,
                        &service,
                        &mut addresses,
                        &stanza,
                        &stanza.head,
                        route,
                        now(),
                    );
                    outlets.dispatch(&mut groups, &service, handled);
                }
            }
            Some(order) = orders.recv() => {
                if let Some((facts, stored)) = control::decide(&mut groups, &service.domain, order, now()) {
                    outlets.changed(&mut groups, &service, facts, Job { stored: Some(stored), ..Job::default() });
                }
            }
            Some(()) = hangup.recv() => {
                running = reloaded(running, &reload);
                groups.rules = reload::rules(&running, key);
                gate.clear();
            }
            Some((resume, messages)) = found.recv() => {
                let handled = resume(&mut groups, &service, messages, now());
                outlets.dispatch(&mut groups, &service, handled);
            }
            Some(ask) = asks.recv() => ask(&groups),
            Some(event) = committed.recv() => match event {
                Committed::Completed(done) => {
                    let mut out = Stanzas::default();
                    delivery::completions(&groups, &service, &done, &mut out);
                    link.outbox.send(out);
                }
                Committed::Failed => {
                    // The core applied facts that were not stored: start again from the store,
                    // keeping who is online (what clients said, stored or not): clients do not
                    // send presence again by themselves, and live delivery must go on.
                    tracing::warn!("reloading state after a failed commit");
                    let reloaded = Groups::new(reload::rules(&running, key), reader.snapshot()?);
                    let mut before = std::mem::replace(&mut groups, reloaded);
                    // What the gate was told was of the state now gone.
                    gate.clear();
                    groups.keep_quotas_of(&mut before);
                    groups.keep_presence_of(before);
                }
            },
            Some(measured) = measure.recv() => {
                metrics.observe_state(&state(&groups, &link));
                let _ = measured.send(());
            }
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
        }
    }
    if let Some(bootstrap) = bootstrap {
        bootstrap.abort();
    }
    writer.finish();
    let link::Link { outbox, task, .. } = link;
    drop(outbox);
    if tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .is_err()
    {
        tracing::warn!("the XMPP server did not take the last stanzas within 5 s");
    }
    Ok(())
}

/// What the service holds, for a scrape.
fn state(groups: &Groups, link: &link::Link) -> metrics::State {
    let mut state = metrics::State {
        inbound_stanzas: link.inbound.len(),
        outbox_bytes: link.outbox.queued_bytes(),
        ..metrics::State::default()
    };
    for channel in groups.channels() {
        state.channels += 1;
        state.participants += channel.participants.len();
        state.online_resources += channel
            .participants
            .iter()
            .map(|p| p.online.len())
            .sum::<usize>();
    }
    state
}

/// The archive's reader threads: two keep both cores busy when reads pile up; more would
/// only wait for a core (each read is a few index look-ups and rows, from the OS's cache).
const READER_THREADS: usize = 2;

/// Where a handled stanza's results go: changes and replies to the writer (in order), reads
/// and look-ups to the reader threads, whose look-ups come back on `found`. What goes out is
/// counted in `metrics` as it is handed on.
struct Outlets<'a> {
    writer: &'a Writer<Stanzas>,
    readers: &'a Readers,
    outbox: &'a Outbox,
    found: &'a mpsc::UnboundedSender<Found>,
    metrics: &'a Arc<Metrics>,
}

/// A look-up's result, to finish its request with on the rules task.
type Found = (Resume, Vec<Option<MessageRef>>);

impl Outlets<'_> {
    /// A change: what the participants are told is added to `job` (after its reply), and it
    /// goes to the writer with `facts`, to be stored before any of it is sent.
    fn changed(
        &self,
        groups: &mut Groups,
        service: &Service,
        facts: Vec<Fact>,
        mut job: Job<Stanzas>,
    ) {
        let delivered = delivery::deliver(groups, service, &facts, &mut job.outbound);
        if delivered != Delivered::default() {
            let metrics = self.metrics.clone();
            job.sent = Some(Box::new(move || metrics.delivered(&delivered)));
        }
        job.facts = facts;
        self.writer.submit(job);
    }

    /// Queues `run` on the reader threads in `asker`'s turn; `asker` is told
    /// `internal-server-error` if it panics, and the queue's refusal if it is full.
    fn read(
        &self,
        groups: &mut Groups,
        service: &Service,
        asker: Asker,
        run: impl FnOnce(&dyn store::Reader) + Send + 'static,
    ) {
        let outbox = self.outbox.clone();
        let metrics = self.metrics.clone();
        let failed = asker.storage_failed();
        let queued = self.readers.run(Task {
            user: asker.user.to_string(),
            run: Box::new(run),
            if_panicked: Box::new(move || {
                metrics.reply(&failed);
                outbox.write_now(failed.into());
            }),
        });
        if let Err(refusal) = queued {
            self.dispatch(groups, service, Handled::Reply(asker.error(&refusal)));
        }
    }

    fn dispatch(&self, groups: &mut Groups, service: &Service, handled: Handled) {
        match handled {
            Handled::Changed {
                facts,
                reply,
                on_failure,
            } => self.changed(
                groups,
                service,
                facts,
                Job {
                    outbound: reply.map(Stanzas::from).unwrap_or_default(),
                    on_failure,
                    ..Job::default()
                },
            ),
            // Through the writer while it holds jobs, so that a reply never overtakes an
            // earlier change; straight to the link when it holds none (there is nothing to
            // overtake then), which spares the writer thread a wake-up per reply: under a
            // flood, the replies are the refusals, one per stanza (docs/benchmarks.md,
            // "Fairness").
            Handled::Reply(reply) => {
                self.metrics.reply(&reply);
                if self.writer.is_idle() {
                    self.outbox.send(reply.into());
                } else {
                    self.writer.submit(Job {
                        outbound: reply.into(),
                        ..Job::default()
                    })
                }
            }
            Handled::Read(Read { asker, run }) => {
                // Counted as it is queued, whichever dialect asked (`core/quota.rs`).
                if let Err(refusal) = groups.charge_read(&asker.user, now()) {
                    return self.dispatch(groups, service, Handled::Reply(asker.error(&refusal)));
                }
                let outbox = self.outbox.clone();
                let metrics = self.metrics.clone();
                self.read(groups, service, asker, move |reader| {
                    let started = std::time::Instant::now();
                    let answer = run(reader);
                    metrics.archive_read(started.elapsed());
                    // A read that failed answers with an error instead of its pages.
                    for stanza in &answer {
                        metrics.reply(stanza);
                    }
                    // Written on this thread when nothing is queued before it: no hop to the
                    // link's task (`link::Outbox::write_now`).
                    outbox.write_now(answer.into())
                });
            }
            Handled::Lookup(Lookup {
                asker,
                channel,
                references,
                resume,
            }) => {
                let outbox = self.outbox.clone();
                let found = self.found.clone();
                let metrics = self.metrics.clone();
                let on_failure = asker.storage_failed();
                // Each reference as the client sent it, and the archive id it names if it is
                // one of the opaque ids clients are shown (`dialect::ids`).
                let references: Vec<(Option<i64>, String)> = references
                    .into_iter()
                    .map(|r| (service.ids.decode(&r), r))
                    .collect();
                self.read(groups, service, asker, move |reader| {
                    let messages: anyhow::Result<Vec<_>> = references
                        .iter()
                        .map(|(id, sent)| reader.find_message(channel, *id, sent))
                        .collect();
                    match messages {
                        Ok(messages) => {
                            let _ = found.send((resume, messages));
                        }
                        Err(error) => {
                            tracing::error!(%error, "looking up a message failed");
                            metrics.reply(&on_failure);
                            outbox.write_now(on_failure.into());
                        }
                    }
                });
            }
            Handled::Nothing => {}
        }
    }
}

/// The writer's stanzas are the link's runs; a change's error reply is written only if its
/// commit failed.
impl Outbound for Stanzas {
    type Failure = IfNotStored;

    fn failed(failure: IfNotStored) -> Stanzas {
        failure.reply().into()
    }

    fn is_empty(&self) -> bool {
        Stanzas::is_empty(self)
    }
}

/// SIGHUP: the settings read again, what can change live applied, one log line per change.
fn reloaded(running: Settings, reload: &Reload) -> Settings {
    let new = match (reload.settings)() {
        Ok(new) => new,
        Err(error) => {
            tracing::error!("reload: the configuration is not valid, nothing changed: {error:#}");
            return running;
        }
    };
    let (now, outcome) = reload::apply(&running, &new, &*reload.log_filter);
    for (setting, from, to) in &outcome.applied {
        tracing::info!(setting, from, to, "reload: applied");
    }
    for (setting, why) in &outcome.not_applied {
        tracing::warn!(setting, why, "reload: changed but not applied");
    }
    if outcome.applied.is_empty() && outcome.not_applied.is_empty() {
        tracing::info!("reload: no setting changed");
    }
    now
}

/// The time the rules stamp on what they decide: the system clock, but never earlier than a
/// time already given out, so that archive times grow with archive ids while mixd runs (a
/// history `start`/`end` finds its id bounds by searching the archive's times,
/// `store/time_search.rs`, which a clock stepped back would mislead).
fn now() -> Micros {
    static LATEST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or_default();
    let latest = LATEST.fetch_max(system, std::sync::atomic::Ordering::Relaxed);
    latest.max(system)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
