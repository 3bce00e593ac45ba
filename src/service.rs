//! The service loop: the one place where the link, the dialect, the core, the store and
//! delivery meet. Stanzas are handled one at a time, in arrival order, so the core needs no
//! locks; storing and archive reads happen on other threads.
//!
//! One stanza's path: link → `dialect::handle` (parse, run the core command, write the reply) →
//! `delivery::deliver` (stanzas for the participants) → the writer (commit, then hand the
//! stanzas to the link). Archive queries go to a reader on the blocking pool instead.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use minidom::Element;
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::core::{Groups, Micros, Rules};
use crate::delivery;
use crate::dialect::{self, Handled, Service};
use crate::link::{self, LinkSettings, Outbox};
use crate::store::writer::{Committed, Job, Writer};
use crate::store::{sqlite, Reader};

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let (store, reader) = sqlite::open(&settings.database, settings.durability)?;
    let reader: Arc<dyn Reader> = Arc::new(reader);
    let rules = Rules {
        user_domains: settings.user_domains.clone(),
        max_message_bytes: settings.max_message_bytes,
        max_members: settings.max_members,
        max_groups_per_creator: settings.max_groups_per_creator,
        keep_archive: settings.keep_archive,
        ..Rules::default()
    };
    let mut groups = Groups::new(rules.clone(), reader.snapshot()?);
    tracing::info!(channels = groups.channels().count(), database = %settings.database.display(), "state loaded");
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
    loop {
        tokio::select! {
            stanza = link.inbound.recv() => {
                let Some(stanza) = stanza else { break };
                dispatch(&mut groups, &service, &writer, &reader, &link.outbox, &stanza);
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

fn dispatch(
    groups: &mut Groups,
    service: &Service,
    writer: &Writer,
    reader: &Arc<dyn Reader>,
    outbox: &Outbox,
    stanza: &Element,
) {
    match dialect::handle(groups, service, stanza, now()) {
        Handled::Changed {
            facts,
            reply,
            on_failure,
        } => {
            let mut outbound: Vec<String> = reply.into_iter().collect();
            delivery::deliver(groups, service, &facts, &mut outbound);
            writer.submit(Job {
                facts,
                outbound,
                on_failure: on_failure.into_iter().collect(),
            });
        }
        // Through the writer too, so that a reply never overtakes an earlier change.
        Handled::Reply(reply) => writer.submit(Job {
            outbound: vec![reply],
            ..Job::default()
        }),
        Handled::Read(read) => {
            let reader = reader.clone();
            let outbox = outbox.clone();
            tokio::task::spawn_blocking(move || outbox.send(read(reader.as_ref())));
        }
        Handled::Nothing => {}
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
