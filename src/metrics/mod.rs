//! Monitoring: what mixd counts, in the Prometheus text format; [`http`] serves it with a
//! health check. One [`Metrics`], shared as an `Arc`, is handed to the places that count: the
//! link (stanzas written, the link's state), the service (stanzas read, errors answered,
//! deliveries, archive reads, and the state it holds, on each scrape) and, through
//! `store::writer::Watch`, the writer (commits). Every labelled series is created up front
//! and kept as a handle, so counting on the hot path is one atomic add: no lock, no label
//! look-up, no allocation. Histograms take a lock, so they are fed once per commit batch or
//! archive read, never per stanza.

pub mod http;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::core::{Dialect, Fact};
use crate::delivery::Delivered;
use crate::dialect::ErrorKind;
use crate::store::writer::{Backlog, Batch, Watch};

type Labels<const N: usize> = [(&'static str, &'static str); N];

const KINDS: [ErrorKind; 3] = [ErrorKind::Message, ErrorKind::Iq, ErrorKind::Presence];

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Message => "message",
        ErrorKind::Iq => "iq",
        ErrorKind::Presence => "presence",
    }
}

fn kind_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Message => 0,
        ErrorKind::Iq => 1,
        ErrorKind::Presence => 2,
    }
}

const DIALECTS: [Dialect; 2] = [Dialect::Mix, Dialect::FlyChat];

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Mix => "mix",
        Dialect::FlyChat => "flychat",
    }
}

fn dialect_index(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Mix => 0,
        Dialect::FlyChat => 1,
    }
}

/// The error conditions mixd sends (RFC 6120 §8.3.3), each with a series of its own; any
/// other is counted as `other`.
const CONDITIONS: [&str; 10] = [
    "bad-request",
    "forbidden",
    "not-allowed",
    "item-not-found",
    "conflict",
    "resource-constraint",
    "not-acceptable",
    "service-unavailable",
    "internal-server-error",
    "policy-violation",
];
const OTHER_CONDITION: usize = CONDITIONS.len();

/// Every fact's label, in the order of [`fact_index`].
const FACTS: [&str; 22] = [
    "channel_created",
    "channel_destroyed",
    "joined",
    "left",
    "role_changed",
    "settings_changed",
    "access_changed",
    "muted",
    "pending_added",
    "pending_resolved",
    "nick_changed",
    "subscription_changed",
    "posted",
    "noticed",
    "info_changed",
    "presence_changed",
    "chat_state",
    "receipt",
    "retracted",
    "corrected",
    "reacted",
    "history_cleared",
];

fn fact_index(fact: &Fact) -> usize {
    match fact {
        Fact::ChannelCreated { .. } => 0,
        Fact::ChannelDestroyed { .. } => 1,
        Fact::Joined { .. } => 2,
        Fact::Left { .. } => 3,
        Fact::RoleChanged { .. } => 4,
        Fact::SettingsChanged { .. } => 5,
        Fact::AccessChanged { .. } => 6,
        Fact::Muted { .. } => 7,
        Fact::PendingAdded { .. } => 8,
        Fact::PendingResolved { .. } => 9,
        Fact::NickChanged { .. } => 10,
        Fact::SubscriptionChanged { .. } => 11,
        Fact::Posted(_) => 12,
        Fact::Noticed(_) => 13,
        Fact::InfoChanged { .. } => 14,
        Fact::PresenceChanged { .. } => 15,
        Fact::ChatState { .. } => 16,
        Fact::Receipt(_) => 17,
        Fact::Retracted(_) => 18,
        Fact::Corrected(_) => 19,
        Fact::Reacted(_) => 20,
        Fact::HistoryCleared { .. } => 21,
    }
}

/// What the service holds in memory and in its queues, measured on each scrape.
#[derive(Debug, Default)]
pub struct State {
    pub channels: usize,
    pub participants: usize,
    /// Clients online in channels (a participant reached directly counts each of its
    /// clients in each channel).
    pub online_resources: usize,
    /// Stanzas read from the server and not yet handled.
    pub inbound_stanzas: usize,
    /// Bytes queued for the server and not yet written.
    pub outbox_bytes: usize,
}

pub struct Metrics {
    registry: Registry,
    /// By [`kind_index`], then [`dialect_index`].
    stanzas_in: [[Counter; 2]; 3],
    /// By [`kind_index`].
    stanzas_out: [Counter; 3],
    deliveries_mix: Counter,
    deliveries_flychat: Counter,
    deliveries_shared: Counter,
    /// By position in [`CONDITIONS`], then other.
    errors: [Counter; CONDITIONS.len() + 1],
    /// By [`fact_index`].
    facts_stored: [Counter; FACTS.len()],
    commits_failed: Counter,
    commit_jobs: Histogram,
    commit_seconds: Histogram,
    writer_checkpoint_seconds: Histogram,
    archive_read_seconds: Histogram,
    link_up: Gauge,
    link_reconnects: Counter,
    channels: Gauge,
    participants: Gauge,
    online_resources: Gauge,
    inbound_stanzas: Gauge,
    outbox_bytes: Gauge,
    writer_jobs: Gauge,
    writer_oldest_pending: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mixd");
        let stanzas_in = Family::<Labels<2>, Counter>::default();
        registry.register(
            "stanzas_in",
            "Stanzas read from the server, by kind and by the dialect they belong to",
            stanzas_in.clone(),
        );
        let stanzas_out = Family::<Labels<1>, Counter>::default();
        registry.register(
            "stanzas_out",
            "Stanzas written to the server (replies, deliveries, errors, pings), by kind",
            stanzas_out.clone(),
        );
        let deliveries = Family::<Labels<1>, Counter>::default();
        registry.register(
            "deliveries",
            "Stanzas written for participants about stored changes, by the dialect whose shape \
             they have (shared: membership notices, the same in both)",
            deliveries.clone(),
        );
        let errors = Family::<Labels<1>, Counter>::default();
        registry.register(
            "errors",
            "Error stanzas sent to clients, by condition",
            errors.clone(),
        );
        let facts = Family::<Labels<1>, Counter>::default();
        registry.register(
            "facts_stored",
            "Changes committed to the database, by kind (posted: messages)",
            facts.clone(),
        );
        let commits_failed = Counter::default();
        registry.register(
            "commits_failed",
            "Commit batches that could not be stored",
            commits_failed.clone(),
        );
        let commit_jobs = Histogram::new(exponential_buckets(1.0, 4.0, 7));
        registry.register(
            "commit_batch_jobs",
            "Jobs (handled stanzas) per commit batch",
            commit_jobs.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 9));
        registry.register(
            "commit_seconds",
            "Time to commit one batch",
            commit_seconds.clone(),
        );
        let writer_checkpoint_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 9));
        registry.register(
            "writer_checkpoint_seconds",
            "Time the writer spent in a checkpoint step of its own (SQLite: the WAL's last pages \
             copied back, which restarts it), within the commit of one batch",
            writer_checkpoint_seconds.clone(),
        );
        let archive_read_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 9));
        registry.register(
            "archive_read_seconds",
            "Time to answer one history query or receipt-state read from the database",
            archive_read_seconds.clone(),
        );
        let link_up = Gauge::default();
        registry.register(
            "link_up",
            "1 while the component link to the XMPP server is connected",
            link_up.clone(),
        );
        let link_reconnects = Counter::default();
        registry.register(
            "link_reconnects",
            "Connections made to the XMPP server after the first",
            link_reconnects.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let channels = gauge(&mut registry, "channels", "Channels");
        let participants = gauge(
            &mut registry,
            "participants",
            "Participants, over all channels",
        );
        let online_resources = gauge(
            &mut registry,
            "online_resources",
            "Clients online in channels, over all channels",
        );
        let inbound_stanzas = gauge(
            &mut registry,
            "inbound_queue_stanzas",
            "Stanzas read from the server and waiting to be handled",
        );
        let outbox_bytes = gauge(
            &mut registry,
            "outbox_bytes",
            "Bytes queued for the server and not yet written",
        );
        let writer_jobs = gauge(
            &mut registry,
            "writer_queue_jobs",
            "Jobs waiting for, or in, a commit",
        );
        let writer_oldest_pending = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "writer_oldest_pending_seconds",
            "How long the oldest job not yet committed has waited (0 when the writer is idle)",
            writer_oldest_pending.clone(),
        );
        Metrics {
            stanzas_in: KINDS.map(|kind| {
                DIALECTS.map(|dialect| {
                    stanzas_in.get_or_create_owned(&[
                        ("kind", kind_name(kind)),
                        ("dialect", dialect_name(dialect)),
                    ])
                })
            }),
            stanzas_out: KINDS
                .map(|kind| stanzas_out.get_or_create_owned(&[("kind", kind_name(kind))])),
            deliveries_mix: deliveries.get_or_create_owned(&[("dialect", "mix")]),
            deliveries_flychat: deliveries.get_or_create_owned(&[("dialect", "flychat")]),
            deliveries_shared: deliveries.get_or_create_owned(&[("dialect", "shared")]),
            errors: std::array::from_fn(|i| {
                let condition = CONDITIONS.get(i).copied().unwrap_or("other");
                errors.get_or_create_owned(&[("condition", condition)])
            }),
            facts_stored: FACTS.map(|fact| facts.get_or_create_owned(&[("fact", fact)])),
            registry,
            commits_failed,
            commit_jobs,
            commit_seconds,
            writer_checkpoint_seconds,
            archive_read_seconds,
            link_up,
            link_reconnects,
            channels,
            participants,
            online_resources,
            inbound_stanzas,
            outbox_bytes,
            writer_jobs,
            writer_oldest_pending,
        }
    }

    /// A stanza read from the server.
    pub fn stanza_in(&self, kind: ErrorKind, dialect: Dialect) {
        self.stanzas_in[kind_index(kind)][dialect_index(dialect)].inc();
    }

    /// Stanzas the link has written (and flushed), as serialized.
    pub fn written<'a>(&self, stanzas: impl Iterator<Item = &'a str>) {
        let mut counts = [0u64; 3];
        // Iterated internally (`for_each`), which a flattened iterator over runs of stanzas
        // does in one loop per run rather than a step through every adapter per stanza.
        stanzas.for_each(|stanza| {
            if let Some(kind) = serialized_kind(stanza) {
                counts[kind_index(kind)] += 1;
            }
        });
        for (counter, count) in self.stanzas_out.iter().zip(counts) {
            if count > 0 {
                counter.inc_by(count);
            }
        }
    }

    /// What delivery wrote for one handled stanza.
    pub fn delivered(&self, delivered: &Delivered) {
        for (counter, count) in [
            (&self.deliveries_mix, delivered.mix),
            (&self.deliveries_flychat, delivered.flychat),
            (&self.deliveries_shared, delivered.shared),
        ] {
            if count > 0 {
                counter.inc_by(count as u64);
            }
        }
    }

    /// An error sent with `condition` (its RFC 6120 name).
    pub fn error(&self, condition: &str) {
        let index = CONDITIONS
            .iter()
            .position(|known| *known == condition)
            .unwrap_or(OTHER_CONDITION);
        self.errors[index].inc();
    }

    /// A reply about to be sent: counted if it is an error.
    pub fn reply(&self, stanza: &str) {
        if let Some(condition) = error_condition(stanza) {
            self.error(condition);
        }
    }

    pub fn archive_read(&self, took: Duration) {
        self.archive_read_seconds.observe(took.as_secs_f64());
    }

    /// The link connected; `again` after the first time.
    pub fn link_connected(&self, again: bool) {
        self.link_up.set(1);
        if again {
            self.link_reconnects.inc();
        }
    }

    pub fn link_lost(&self) {
        self.link_up.set(0);
    }

    pub fn link_is_up(&self) -> bool {
        self.link_up.get() == 1
    }

    pub fn observe_state(&self, state: &State) {
        let set = |gauge: &Gauge, value: usize| gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        set(&self.channels, state.channels);
        set(&self.participants, state.participants);
        set(&self.online_resources, state.online_resources);
        set(&self.inbound_stanzas, state.inbound_stanzas);
        set(&self.outbox_bytes, state.outbox_bytes);
    }

    pub fn observe_writer(&self, backlog: &Backlog) {
        self.writer_jobs
            .set(i64::try_from(backlog.jobs()).unwrap_or(i64::MAX));
        self.writer_oldest_pending
            .set(backlog.oldest_pending().as_secs_f64());
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl Watch for Arc<Metrics> {
    fn batch(&self, batch: &Batch<'_>) {
        self.commit_jobs.observe(batch.jobs as f64);
        self.commit_seconds.observe(batch.took.as_secs_f64());
        if let Some(checkpointed) = batch.checkpointed {
            self.writer_checkpoint_seconds
                .observe(checkpointed.as_secs_f64());
        }
        if batch.stored {
            let mut counts = [0u64; FACTS.len()];
            for fact in batch.facts {
                counts[fact_index(fact)] += 1;
            }
            for (counter, count) in self.facts_stored.iter().zip(counts) {
                if count > 0 {
                    counter.inc_by(count);
                }
            }
        } else {
            self.commits_failed.inc();
            for _ in 0..batch.refusals {
                self.error("internal-server-error");
            }
        }
    }
}

/// The kind of a stanza as mixd serializes it (`<message `, `<iq `, `<presence `): its head
/// compared byte for byte with each name, the message's first. Every stanza the link writes
/// passes here; searching for the name's end (`find` of three chars) was 1.1–1.7 % of mixd's
/// CPU posting into many small channels (docs/benchmarks.md, branch `percpu`).
fn serialized_kind(stanza: &str) -> Option<ErrorKind> {
    const HEADS: [(&[u8], ErrorKind); 3] = [
        (b"<message", ErrorKind::Message),
        (b"<iq", ErrorKind::Iq),
        (b"<presence", ErrorKind::Presence),
    ];
    let stanza = stanza.as_bytes();
    HEADS.into_iter().find_map(|(head, kind)| {
        let after = stanza.strip_prefix(head)?.first()?;
        matches!(after, b' ' | b'>' | b'/').then_some(kind)
    })
}

/// The condition of an error stanza as mixd writes them (`dialect/reply.rs`, the link's
/// refusals): `type='error'` in the head, then `<error type='…'><condition …`. `None` for
/// any other stanza. Read from the text rather than passed along because every reply,
/// whichever part wrote it, reaches the service as a serialized stanza.
fn error_condition(stanza: &str) -> Option<&str> {
    let head = &stanza[..stanza.find('>')?];
    if !head.contains(" type='error'") {
        return None;
    }
    let error = &stanza[head.len()..];
    let error = &error[error.find("<error")?..];
    let condition = &error[error.find('>')? + 1..];
    let condition = condition.strip_prefix('<')?;
    let end = condition.find([' ', '>', '/'])?;
    Some(&condition[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Condition, Refusal};
    use crate::dialect::ReplyTo;

    fn reply_to() -> ReplyTo {
        ReplyTo {
            from: "c@mix.test".into(),
            to: "alice@test/r".into(),
            id: Some("x".into()),
        }
    }

    #[test]
    fn an_error_reply_is_counted_by_its_condition_and_a_result_is_not() {
        let metrics = Metrics::new();
        let refusal = Refusal::new(Condition::Forbidden, "not a participant");
        metrics.reply(&reply_to().error(ErrorKind::Message, &refusal));
        metrics.reply(&reply_to().service_unavailable(ErrorKind::Iq, "no"));
        metrics.reply(&reply_to().storage_failed(ErrorKind::Iq));
        metrics.reply(&reply_to().iq_result(Some("<x xmlns='urn:x' type='error'/>")));
        let text = metrics.encode();
        for (condition, count) in [
            ("forbidden", 1),
            ("service-unavailable", 1),
            ("internal-server-error", 1),
            ("bad-request", 0),
            ("other", 0),
        ] {
            let line = format!("mixd_errors_total{{condition=\"{condition}\"}} {count}\n");
            assert!(text.contains(&line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn written_stanzas_are_counted_by_kind() {
        let metrics = Metrics::new();
        metrics.written(
            [
                "<message xmlns='jabber:component:accept' to='a@b'/>",
                "<message to='a@b'><body>x</body></message>",
                "<iq type='get'/>",
                "<presence/>",
                "</stream:stream>",
                // Not stanzas of any kind: a longer name, a head cut short, nothing.
                "<messages to='a@b'/>",
                "<iqx/>",
                "<presence",
                "",
            ]
            .into_iter(),
        );
        let text = metrics.encode();
        assert!(
            text.contains("mixd_stanzas_out_total{kind=\"message\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("mixd_stanzas_out_total{kind=\"iq\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("mixd_stanzas_out_total{kind=\"presence\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn the_writers_checkpoint_steps_are_timed_apart_from_its_commits() {
        let metrics = Arc::new(Metrics::new());
        for checkpointed in [None, Some(Duration::from_millis(3)), None] {
            metrics.batch(&Batch {
                jobs: 1,
                facts: &[],
                took: Duration::from_millis(4),
                checkpointed,
                stored: true,
                refusals: 0,
            });
        }
        let text = metrics.encode();
        assert!(text.contains("mixd_commit_seconds_count 3\n"), "{text}");
        assert!(
            text.contains("mixd_writer_checkpoint_seconds_count 1\n"),
            "{text}"
        );
        assert!(
            text.contains("mixd_writer_checkpoint_seconds_sum 0.003\n"),
            "{text}"
        );
    }

    #[test]
    fn every_series_is_exported_from_the_start() {
        let text = Metrics::new().encode();
        for fact in FACTS {
            assert!(text.contains(&format!("mixd_facts_stored_total{{fact=\"{fact}\"}} 0\n")));
        }
        assert!(
            text.contains("mixd_stanzas_in_total{kind=\"presence\",dialect=\"flychat\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("mixd_link_up 0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
