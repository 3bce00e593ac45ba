//! The service loop: the one place where the link, the dialect, the core, the store and
//! delivery meet. Stanzas are handled one at a time, in arrival order, so the core needs no
//! locks; storing and archive reads happen on other threads.
//!
//! One stanza's path: link → `router::handle` (the envelope, then its dialect: parse, run the
//! core command, write the reply) →
//! `delivery::deliver` (stanzas for the participants) → the writer (commit, then hand the
//! stanzas to the link). Archive queries go to a reader on the blocking pool instead, and so do
//! look-ups of archived messages, whose requests then finish back on this task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::core::{Groups, MessageRef, Micros, Rules};
use crate::delivery;
use crate::dialect::{Handled, Resume, Service};
use crate::link::{self, LinkSettings, Outbox};
use crate::router;
use crate::store::writer::{Committed, Job, Writer};
use crate::store::{self, Reader};

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let (store, reader) = store::open(&settings.database, settings.durability)?;
    let rules = Rules {
        user_domains: settings.user_domains.clone(),
        max_message_bytes: settings.max_message_bytes,
        max_members: settings.max_members,
        max_groups_per_creator: settings.max_groups_per_creator,
        keep_archive: settings.keep_archive,
        ..Rules::default()
    };
    let mut groups = Groups::new(rules.clone(), reader.snapshot()?);
    tracing::info!(channels = groups.channels().count(), database = %settings.database, "state loaded");
    let service = Service {
        domain: settings.domain.clone(),
        archive: reader.clone(),
    };
    let mut link = link::spawn(LinkSettings {
        server: settings.server.clone(),
        domain: settings.domain.clone(),
        secret: settings.secret.clone(),
        keepalive: settings.keepalive,
    });
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    tokio::select! {
        first = &mut link.first_connection => match first {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return Err(anyhow!(refused)),
            Err(_) => bail!("the component link ended before it connected"),
        },
        _ = &mut shutdown => return Ok(()),
    }
    let (committed_tx, mut committed) = mpsc::unbounded_channel();
    // The writer's own clone of the outbox, dropped when the writer finishes.
    let to_link = link.outbox.clone();
    let writer = Writer::spawn(store, move |stanzas| to_link.send(stanzas), committed_tx);
    let (found_tx, mut found) = mpsc::unbounded_channel();
    let outlets = Outlets {
        writer: &writer,
        reader: &reader,
        outbox: &link.outbox,
        found: &found_tx,
    };
    loop {
        tokio::select! {
            stanza = link.inbound.recv() => {
                let Some(stanza) = stanza else { break };
                let handled = router::handle(&mut groups, &service, &stanza, now());
                outlets.dispatch(&mut groups, &service, handled);
            }
            Some((resume, messages)) = found.recv() => {
                let handled = resume(&mut groups, &service, messages, now());
                outlets.dispatch(&mut groups, &service, handled);
            }
            Some(event) = committed.recv() => match event {
                Committed::Completed(done) => {
                    let mut out = Vec::new();
                    delivery::completions(&groups, &service, &done, &mut out);
                    link.outbox.send(out);
                }
                Committed::Failed => {
                    // The core applied facts that were not stored: start again from the store.
                    // Live presence is lost with it; clients' next presence restores it.
                    tracing::warn!("reloading state after a failed commit");
                    groups = Groups::new(rules.clone(), reader.snapshot()?);
                }
            },
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
        }
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

/// Where a handled stanza's results go: changes and replies to the writer (in order), reads
/// and look-ups to the blocking pool, whose look-ups come back on `found`.
struct Outlets<'a> {
    writer: &'a Writer,
    reader: &'a Arc<dyn Reader>,
    outbox: &'a Outbox,
    found: &'a mpsc::UnboundedSender<Found>,
}

/// A look-up's result, to finish its request with on the rules task.
type Found = (Resume, Vec<Option<MessageRef>>);

impl Outlets<'_> {
    fn dispatch(&self, groups: &mut Groups, service: &Service, handled: Handled) {
        match handled {
            Handled::Changed {
                facts,
                reply,
                on_failure,
            } => {
                let mut outbound: Vec<String> = reply.into_iter().collect();
                delivery::deliver(groups, service, &facts, &mut outbound);
                self.writer.submit(Job {
                    facts,
                    outbound,
                    on_failure: on_failure.into_iter().collect(),
                });
            }
            // Through the writer too, so that a reply never overtakes an earlier change.
            Handled::Reply(reply) => self.writer.submit(Job {
                outbound: vec![reply],
                ..Job::default()
            }),
            Handled::Read(read) => {
                let reader = self.reader.clone();
                let outbox = self.outbox.clone();
                tokio::task::spawn_blocking(move || outbox.send(read(reader.as_ref())));
            }
            Handled::Lookup(lookup) => {
                let reader = self.reader.clone();
                let outbox = self.outbox.clone();
                let found = self.found.clone();
                tokio::task::spawn_blocking(move || {
                    let messages: anyhow::Result<Vec<_>> = lookup
                        .references
                        .iter()
                        .map(|r| reader.find_message(lookup.channel, r))
                        .collect();
                    match messages {
                        Ok(messages) => {
                            let _ = found.send((lookup.resume, messages));
                        }
                        Err(error) => {
                            tracing::error!(%error, "looking up a message failed");
                            outbox.send(vec![lookup.on_failure]);
                        }
                    }
                });
            }
            Handled::Nothing => {}
        }
    }
}

fn now() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or_default()
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
