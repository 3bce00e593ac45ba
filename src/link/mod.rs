//! The wire: mixd's XEP-0114 component connection to the XMPP server.
//!
//! mixd speaks the component protocol itself: it opens the stream, reads the server's header
//! and answers with the handshake; from then on [`reader`] turns the server's bytes into
//! stanzas, with every limit (stanza size, nesting depth, token size) checked as the bytes
//! arrive. A stanza over a limit never becomes a tree: the reader skips it to its end and the
//! link answers its sender with one error stanza (`policy-violation`, or `bad-request` for
//! XML the parser rejects) and goes on with the next. After `keepalive` of silence the link
//! pings the server (through itself) so that an idle link is not dropped, and gives up when
//! the ping goes unanswered. `tokio_xmpp::Component` is not used: it ends the link on any of
//! those and never reconnects (see platform-notes).
//!
//! Stanzas read wait in the inbound queue, bounded both in number and in weight (bytes plus
//! an estimate per element, see [`reader::ELEMENT_COST`]): when the service falls behind, the
//! link stops reading and TCP pushes back on the server.
//!
//! Writing: stanzas, already serialized by delivery ([`Stanzas`], a stanza's handling writes
//! one: whole stanzas back to back, and a template's bytes once with each copy's address), are
//! written where they lie, many slices a vectored write call, with no buffer of the link's
//! own. Stanzas queued while the link is down stay queued and go out after the reconnect; a
//! batch whose write failed is written again (at least once). The queue is bounded, see
//! [`Outbox`]; a reader thread writes its pages itself while nothing is queued
//! ([`Outbox::write_now`]).

pub mod reader;

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_xmpp::parsers::component::Handshake;

use crate::metrics::Metrics;
use crate::xml::{escape_into, ns, Head, Stanzas, Xml};
use reader::{Breach, Item, Limits, Reader, Refused};

/// Where to connect, as whom, and within which limits.
#[derive(Clone)]
pub struct LinkSettings {
    /// `host:port` of the server's component listener.
    pub server: String,
    /// The component's domain, e.g. `mix.localhost`.
    pub domain: String,
    pub secret: String,
    /// After this much silence from the server, mixd pings it (through itself) so that an
    /// idle link is neither dropped by the server nor mistaken for a dead one.
    pub keepalive: Duration,
    /// Largest stanza and deepest nesting read from the server.
    pub limits: Limits,
    /// Bytes of outbound stanzas queued before the service stops taking new stanzas.
    pub max_outbox_bytes: usize,
    /// How long a write may make no progress (the server reads nothing) before the link is
    /// dropped and connected again.
    pub write_timeout: Duration,
    /// Whether a `conflict` at the first handshake (another connection holds the component's
    /// name) is waited out rather than fatal: true when this mixd took over a database from
    /// a previous active instance, whose connection it most likely is, fenced and about to go
    /// (Prosody refuses a second connection until the first closes).
    pub wait_out_conflict: bool,
    /// Told of the link's state, the stanzas written and the refusals sent.
    pub metrics: Arc<Metrics>,
    /// What stanzas pass before they are parsed (see [`reader::Screen`]).
    pub screen: Option<Arc<dyn reader::Screen>>,
}

/// The queue of serialized stanzas to send. Cloned by whoever produces stanzas; the link
/// closes its stream cleanly once every clone is dropped and the queue is drained.
///
/// **Bound and policy.** The queue counts the bytes it holds (queued, and taken by the write
/// loop but not yet all written). [`Outbox::send`] never blocks and never drops: whatever was
/// handed to it — a reply, a reflection of a stored message — is what clients were promised,
/// and stays queued across reconnects. The bound is applied where new work enters: the service loop takes no
/// new inbound stanza while [`Outbox::has_room`] is false and waits on [`Outbox::room`]
/// (which also stops the link reading, so TCP pushes back on the server). So the cap is soft:
/// it may be exceeded by what was already in progress when it was reached (jobs waiting for
/// the writer thread, reads on the reader threads, one stanza's fan-out), never by new work.
/// The writer thread (`store/writer.rs`) keeps a plain non-blocking send: blocking it would
/// stall commits for every channel behind the slow socket while the rules task could still
/// fill the writer's own unbounded job queue; stopping at the service loop bounds both.
/// If the server reads nothing for `write_timeout` while stanzas wait, the link is dropped and
/// connected again; what was queued is sent on the new connection.
///
/// **Written where they were made.** A thread outside the runtime (an archive reader, the
/// writer) writes its stanzas to the socket itself when nothing is queued before them
/// ([`Outbox::write_now`], [`Outbox::write_runs_now`]): handing a page or a commit's stanzas to
/// the link's task woke a tokio worker to write them, one more thread hop each
/// (docs/benchmarks.md, issue 16, branches `histhop` and `fanout5`). Order holds because every sender
/// queues under the lock that such a write holds, and such a write happens only while the
/// queue holds no byte, i.e. while the link's task has nothing to write.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Vec<Stanzas>>,
    queue: Arc<Queued>,
}

/// The outbox as the link itself holds it: it must not keep the link open.
struct WeakOutbox {
    tx: mpsc::WeakUnboundedSender<Vec<Stanzas>>,
    queue: Arc<Queued>,
}

/// What the outbox holds, shared by its senders and the write loop.
struct Queued {
    /// Bytes queued, and taken by the write loop but not yet written.
    bytes: AtomicUsize,
    cap: usize,
    room: Notify,
    /// The connected socket, for [`Outbox::write_now`]; held while a sender queues or
    /// writes, so that senders' stanzas keep the order in which they took it.
    socket: Mutex<Option<Arc<OwnedWriteHalf>>>,
    /// Told of the stanzas [`Outbox::write_now`] writes.
    metrics: Arc<Metrics>,
}

impl Queued {
    fn socket(&self) -> MutexGuard<'_, Option<Arc<OwnedWriteHalf>>> {
        self.socket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `runs` for the write loop; the caller holds the socket's lock.
    fn queue(&self, tx: &mpsc::UnboundedSender<Vec<Stanzas>>, runs: Vec<Stanzas>) {
        let bytes = runs.iter().map(Stanzas::bytes).sum();
        self.bytes.fetch_add(bytes, Ordering::Release);
        // Fails only once the link task has ended, at shutdown: nothing can be sent then.
        if tx.send(runs).is_err() {
            self.written(bytes);
        }
    }

    fn written(&self, bytes: usize) {
        let before = self.bytes.fetch_sub(bytes, Ordering::Release);
        if before >= self.cap && before - bytes < self.cap {
            self.room.notify_waiters();
        }
    }

    fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) < self.cap
    }
}

impl Outbox {
    pub fn send(&self, stanzas: Stanzas) {
        let _socket = self.queue.socket();
        self.queue.queue(&self.tx, vec![stanzas]);
    }

    /// Sends `stanzas`, written to the socket on the calling thread if nothing is queued
    /// before them and the socket takes them (what it does not take is queued, first); else
    /// queued like [`send`](Self::send). For threads outside the runtime (the archive's
    /// readers, the writer): a write call of theirs costs what the link's would, and spares
    /// waking the link's task. Never blocks on the socket.
    pub fn write_now(&self, stanzas: Stanzas) {
        self.write_runs_now(vec![stanzas]);
    }

    /// [`write_now`](Self::write_now) for runs of stanzas in order (a commit's: each job's),
    /// in as few write calls as the socket takes. The writer thread sends each commit's so:
    /// handing them to the link's task woke a tokio worker a commit (docs/benchmarks.md,
    /// branch `fanout5`).
    pub fn write_runs_now(&self, runs: Vec<Stanzas>) {
        let socket = self.queue.socket();
        let (Some(write), 0) = (&*socket, self.queue.bytes.load(Ordering::Acquire)) else {
            return self.queue.queue(&self.tx, runs);
        };
        let mut written = write_some(write, &runs);
        let mut runs = runs.into_iter();
        for stanzas in runs.by_ref() {
            let bytes = stanzas.bytes();
            if written >= bytes {
                self.queue.metrics.written(stanzas.heads());
            } else {
                self.queue.metrics.written(stanzas.begun(written));
                let left = std::iter::once(stanzas.unwritten(written))
                    .chain(runs)
                    .collect();
                return self.queue.queue(&self.tx, left);
            }
            written -= bytes;
        }
    }

    /// Whether the queue is below its cap, so that new work may be taken on.
    pub fn has_room(&self) -> bool {
        self.queue.has_room()
    }

    /// Bytes queued and not yet written to the server.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes.load(Ordering::Relaxed)
    }

    /// Resolves once the queue is below its cap.
    pub async fn room(&self) {
        loop {
            let notified = self.queue.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_room() {
                return;
            }
            notified.await;
        }
    }

    fn downgrade(&self) -> WeakOutbox {
        WeakOutbox {
            tx: self.tx.downgrade(),
            queue: self.queue.clone(),
        }
    }
}

impl WeakOutbox {
    fn send(&self, stanzas: Vec<String>) {
        if let Some(tx) = self.tx.upgrade() {
            let _socket = self.queue.socket();
            self.queue.queue(&tx, vec![Stanzas::from(stanzas)]);
        }
    }

    /// Lends `write` to [`Outbox::write_now`] until the returned guard is dropped (when the
    /// session ends, before the socket is closed).
    fn attach(&self, write: Arc<OwnedWriteHalf>) -> Attached<'_> {
        *self.queue.socket() = Some(write);
        Attached(&self.queue)
    }
}

/// The socket lent to [`Outbox::write_now`] for one session.
struct Attached<'a>(&'a Queued);

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        *self.0.socket() = None;
    }
}

/// Writes as much of `runs` as the socket takes now, without waiting: the bytes written
/// (an error counts as none written; the write loop meets it again and reconnects).
fn write_some(write: &OwnedWriteHalf, runs: &[Stanzas]) -> usize {
    let mut slices = Vec::with_capacity(runs.iter().map(Stanzas::slice_count).sum());
    for stanzas in runs {
        stanzas.slices_into(&mut slices);
    }
    let mut rest = &mut slices[..];
    let mut written = 0;
    while !rest.is_empty() {
        match write.try_write_vectored(rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut rest, n);
            }
        }
    }
    written
}

/// Why a connection attempt or a connected link ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The server refused us: retrying will not help until the configuration changes.
    #[error("{0}")]
    Refused(String),
    /// The connection failed or was lost; retrying may help.
    #[error("{0}")]
    Lost(String),
    /// Another connection holds the component's name, and is expected to go (see
    /// [`LinkSettings::wait_out_conflict`]): try again soon, at a steady pace.
    #[error("{0}")]
    Occupied(String),
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Lost(e.to_string())
    }
}

/// A stanza from the server, holding its share of the inbound queue's weight until dropped.
pub struct Inbound {
    element: Element,
    /// Its addresses and type, read by the link's thread as it built the element.
    pub head: Head,
    /// What the link's screen gave it as it let it by (`reader::Verdict::Read`).
    pub ticket: u64,
    _weight: OwnedSemaphorePermit,
}

impl AsRef<Head> for Inbound {
    fn as_ref(&self) -> &Head {
        &self.head
    }
}

impl Deref for Inbound {
    type Target = Element;

    fn deref(&self) -> &Element {
        &self.element
    }
}

/// The running link: the stanzas it receives, and the result of its first connection.
pub struct Link {
    pub inbound: mpsc::Receiver<Inbound>,
    pub outbox: Outbox,
    /// Resolves after the first handshake: `Ok` once connected, `Err` if the server refused.
    pub first_connection: oneshot::Receiver<Result<(), LinkError>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// The namespace of `<stream:stream>` and `<stream:error>`.
const STREAM_NS: &str = "http://etherx.jabber.org/streams";
const INBOUND_QUEUE: usize = 4096;
/// The least weight (see [`reader::ELEMENT_COST`]) the inbound queue may hold; it holds at
/// least two of the heaviest stanzas the limits allow.
const INBOUND_WEIGHT: usize = 32 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How often a connection that the server refused with `conflict` is tried again while the
/// previous active mixd's connection is expected to close: a takeover waits on it.
const OCCUPIED_RETRY: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the server may take to answer the stream header, the handshake or a ping.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// Slices of stanzas written by one call: Linux's `IOV_MAX`.
const WRITE_BATCH: usize = 1024;
const READ_BUFFER: usize = 64 * 1024;

/// Starts the link task: it connects, reconnects with backoff, and ends when every
/// [`Outbox`] clone is dropped and what they queued is sent.
pub fn spawn(settings: LinkSettings) -> Link {
    let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    let (outbox_tx, mut outbox_rx) = mpsc::unbounded_channel();
    let (first_tx, first_connection) = oneshot::channel();
    let outbox = Outbox {
        tx: outbox_tx,
        queue: Arc::new(Queued {
            bytes: AtomicUsize::new(0),
            cap: settings.max_outbox_bytes,
            room: Notify::new(),
            socket: Mutex::new(None),
            metrics: settings.metrics.clone(),
        }),
    };
    let weak_outbox = outbox.downgrade();
    let weight = Arc::new(Semaphore::new(inbound_weight(settings.limits)));
    let task = tokio::spawn(async move {
        let mut first = Some(first_tx);
        let mut pending = VecDeque::new();
        let mut backoff = FIRST_BACKOFF;
        let mut told_occupied = false;
        loop {
            let mut connected = false;
            let result = session(
                &settings,
                &mut connected,
                (&inbound_tx, &weight),
                &weak_outbox,
                &mut outbox_rx,
                &mut pending,
                &mut first,
            )
            .await;
            settings.metrics.link_lost();
            match result {
                Ok(()) => {
                    tracing::info!("component stream closed");
                    return;
                }
                Err(error) => {
                    if let (Some(_), LinkError::Refused(_)) = (&first, &error) {
                        if let Some(first) = first.take() {
                            let _ = first.send(Err(error));
                        }
                        return;
                    }
                    let occupied = matches!(error, LinkError::Occupied(_));
                    if occupied {
                        // Said once: the wait lasts as long as the other connection does.
                        if !told_occupied {
                            tracing::warn!(%error, "the component's name is taken; trying again until the other connection closes");
                            told_occupied = true;
                        }
                    } else if first.is_some() {
                        tracing::warn!(%error, server = %settings.server, "cannot reach the XMPP server; retrying");
                    } else {
                        tracing::warn!(%error, queued = pending.iter().map(Stanzas::len).sum::<usize>(), queued_bytes = weak_outbox.queue.bytes.load(Ordering::Relaxed), "component link lost; reconnecting");
                    }
                    if outbox_rx.is_closed() && outbox_rx.is_empty() && pending.is_empty() {
                        return;
                    }
                    if occupied {
                        tokio::time::sleep(OCCUPIED_RETRY).await;
                        continue;
                    }
                    if connected {
                        backoff = FIRST_BACKOFF;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    Link {
        inbound,
        outbox,
        first_connection,
        task,
    }
}

/// The weight the inbound queue may hold: [`INBOUND_WEIGHT`], or two of the heaviest stanzas
/// `limits` allow (all of it empty elements, `<a/>`) if that is more, within what a semaphore
/// can count in one acquisition.
fn inbound_weight(limits: Limits) -> usize {
    let heaviest = limits
        .max_bytes
        .saturating_add((limits.max_bytes / 4 + 1).saturating_mul(reader::ELEMENT_COST));
    INBOUND_WEIGHT
        .max(heaviest.saturating_mul(2))
        .min(u32::MAX as usize)
        .min(Semaphore::MAX_PERMITS)
}

/// One connection: handshake, then read and write until it fails or the outbox closes.
async fn session(
    settings: &LinkSettings,
    connected: &mut bool,
    (inbound, weight): (&mpsc::Sender<Inbound>, &Arc<Semaphore>),
    weak_outbox: &WeakOutbox,
    outbox: &mut mpsc::UnboundedReceiver<Vec<Stanzas>>,
    pending: &mut VecDeque<Stanzas>,
    first: &mut Option<oneshot::Sender<Result<(), LinkError>>>,
) -> Result<(), LinkError> {
    let (mut stream, writer) = connect(settings).await?;
    let writer = Arc::new(writer);
    let _attached = weak_outbox.attach(writer.clone());
    *connected = true;
    settings.metrics.link_connected(first.is_none());
    tracing::info!(domain = %settings.domain, server = %settings.server, "component connected");
    if let Some(first) = first.take() {
        let _ = first.send(Ok(()));
    }
    let keepalive = keepalive_ping(&settings.domain);
    let reading = async {
        let mut pinged = false;
        loop {
            let wait = if pinged {
                RESPONSE_TIMEOUT
            } else {
                settings.keepalive
            };
            let item = match tokio::time::timeout(wait, stream.next()).await {
                Ok(item) => item?,
                Err(_) if pinged => {
                    return Err(LinkError::Lost(format!(
                        "the server did not answer a ping within {} s",
                        RESPONSE_TIMEOUT.as_secs()
                    )))
                }
                Err(_) => {
                    // Make the server send something before it, or we, give up on the link.
                    tracing::debug!("keepalive ping");
                    weak_outbox.send(vec![keepalive.clone()]);
                    pinged = true;
                    continue;
                }
            };
            pinged = false;
            match item {
                Item::Stanza {
                    element,
                    head,
                    weight: w,
                    ticket,
                } => {
                    if element.is("error", STREAM_NS) {
                        return Err(LinkError::Lost(format!(
                            "stream error from the server: {}",
                            stream_error_condition(&element)
                        )));
                    }
                    // A stanza heavier than the whole budget waits until the queue is empty.
                    let share = w.clamp(1, inbound_weight(settings.limits));
                    let Ok(permit) = weight.clone().acquire_many_owned(share as u32).await else {
                        return Ok(());
                    };
                    let stanza = Inbound {
                        element,
                        head,
                        ticket,
                        _weight: permit,
                    };
                    if inbound.send(stanza).await.is_err() {
                        return Ok(());
                    }
                }
                Item::Refused(refused) => {
                    tracing::warn!(
                        element = %refused.name,
                        from = refused.from.as_deref().unwrap_or("-"),
                        id = refused.id.as_deref().unwrap_or("-"),
                        breach = ?refused.breach,
                        "refused a stanza over a limit"
                    );
                    // Straight to the outbox, not through the writer: nothing of the stanza
                    // is stored, though the error may overtake replies to the sender's
                    // earlier stanzas that are still being committed.
                    if let Some(reply) = refusal_reply(&refused, &settings.domain) {
                        settings.metrics.reply(&reply);
                        weak_outbox.send(vec![reply]);
                    }
                }
                Item::Screened { reply } => {
                    // A flood's refusals come many to a read: queued together, with one
                    // wake-up of the writing, not one each.
                    let mut replies = vec![reply];
                    stream.screened_after(&mut replies);
                    for reply in &replies {
                        settings.metrics.reply(reply);
                    }
                    weak_outbox.send(replies);
                }
                Item::Header { .. } => {
                    return Err(LinkError::Lost("a second stream header".into()))
                }
                Item::End => return Err(LinkError::Lost("the server closed the stream".into())),
            }
        }
    };
    let writing = write_loop(
        &writer,
        outbox,
        pending,
        &weak_outbox.queue,
        settings.write_timeout,
        &settings.metrics,
    );
    tokio::select! {
        read = reading => read,
        write = writing => write,
    }
}

/// The read half of the socket and the reader over it.
struct Stream {
    read: OwnedReadHalf,
    reader: Reader,
    items: VecDeque<Item>,
    buffer: Vec<u8>,
    scratch: Vec<Item>,
}

impl Stream {
    /// The next item from the server. Cancel-safe: what was read stays in `self`.
    async fn next(&mut self) -> Result<Item, LinkError> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Ok(item);
            }
            let n = self.read.read(&mut self.buffer).await?;
            if n == 0 {
                return Err(LinkError::Lost("the server closed the connection".into()));
            }
            self.reader
                .feed(&self.buffer[..n], &mut self.scratch)
                .map_err(|e| LinkError::Lost(e.to_string()))?;
            self.items.extend(self.scratch.drain(..));
        }
    }

    /// Moves the screened replies at the front of what was read into `replies`.
    fn screened_after(&mut self, replies: &mut Vec<String>) {
        while let Some(Item::Screened { .. }) = self.items.front() {
            if let Some(Item::Screened { reply }) = self.items.pop_front() {
                replies.push(reply);
            }
        }
    }

    /// [`Stream::next`] within the time the server has to answer.
    async fn answer(&mut self, what: &str) -> Result<Item, LinkError> {
        tokio::time::timeout(RESPONSE_TIMEOUT, self.next())
            .await
            .map_err(|_| {
                LinkError::Lost(format!(
                    "the server sent no {what} within {} s",
                    RESPONSE_TIMEOUT.as_secs()
                ))
            })?
    }
}

async fn connect(settings: &LinkSettings) -> Result<(Stream, OwnedWriteHalf), LinkError> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        TcpStream::connect(&settings.server),
    )
    .await
    .map_err(|_| LinkError::Lost(format!("connecting to {} timed out", settings.server)))?
    .map_err(|e| LinkError::Lost(format!("connecting to {}: {e}", settings.server)))?;
    // Without it, bursts of small stanzas stall ~40 ms on delayed ACKs (platform-notes).
    tcp.set_nodelay(true)?;
    let (read, mut writer) = tcp.into_split();
    let mut stream = Stream {
        read,
        reader: match &settings.screen {
            Some(screen) => Reader::with_screen(settings.limits, screen.clone()),
            None => Reader::new(settings.limits),
        },
        items: VecDeque::new(),
        buffer: vec![0; READ_BUFFER],
        scratch: Vec::new(),
    };
    let mut header = String::from("<?xml version='1.0'?><stream:stream xmlns='");
    header.push_str(ns::COMPONENT);
    header.push_str("' xmlns:stream='");
    header.push_str(STREAM_NS);
    header.push_str("' to='");
    escape_into(&mut header, &settings.domain);
    header.push_str("'>");
    writer.write_all(header.as_bytes()).await?;
    let stream_id = match stream.answer("stream header").await? {
        Item::Header { id: Some(id) } => id,
        Item::Header { id: None } => {
            return Err(LinkError::Lost(
                "the server's stream header has no id".into(),
            ))
        }
        _ => return Err(LinkError::Lost("the server sent no stream header".into())),
    };
    let digest = Handshake::from_stream_id_and_password(stream_id, &settings.secret)
        .data
        .unwrap_or_default();
    let mut handshake = String::from("<handshake>");
    for byte in digest {
        handshake.push_str(&format!("{byte:02x}"));
    }
    handshake.push_str("</handshake>");
    writer.write_all(handshake.as_bytes()).await?;
    match stream.answer("handshake reply").await? {
        Item::Stanza { element, .. } if element.is("handshake", ns::COMPONENT) => {}
        Item::Stanza { element, .. } if element.is("error", STREAM_NS) => {
            return Err(refusal(settings, &stream_error_condition(&element)));
        }
        Item::Stanza { element, .. } => {
            return Err(LinkError::Lost(format!(
                "unexpected <{}/> instead of the handshake reply",
                element.name()
            )))
        }
        Item::End => {
            return Err(LinkError::Lost(
                "the server closed the stream during the handshake".into(),
            ))
        }
        Item::Header { .. } | Item::Refused(_) | Item::Screened { .. } => {
            return Err(LinkError::Lost(
                "unexpected data instead of the handshake reply".into(),
            ))
        }
    }
    Ok((stream, writer))
}

/// The one error stanza that answers a stanza refused for a limit: same element, same id,
/// addresses swapped. `None` when there is nobody to answer or the stanza was itself an error
/// (or an iq result), which is never answered.
fn refusal_reply(refused: &Refused, domain: &str) -> Option<String> {
    let element = match refused.name.as_str() {
        "message" => "message",
        "presence" => "presence",
        "iq" => "iq",
        _ => return None,
    };
    let kind = refused.kind.as_deref();
    if kind == Some("error") || (element == "iq" && kind == Some("result")) {
        return None;
    }
    let to = refused.from.as_deref()?;
    let from = refused.to.as_deref().unwrap_or(domain);
    let (condition, text) = match &refused.breach {
        Breach::Bytes(limit) => (
            "policy-violation",
            format!("the stanza is larger than {limit} bytes, this service's limit"),
        ),
        Breach::Depth(limit) => (
            "policy-violation",
            format!(
                "the stanza nests elements more than {limit} levels deep, this service's limit"
            ),
        ),
        Breach::Malformed(why) => (
            "bad-request",
            format!("the stanza is not acceptable XML: {why}"),
        ),
    };
    let mut x = Xml::new();
    x.open(element, ns::COMPONENT)
        .attr("type", "error")
        .attr("from", from)
        .attr("to", to)
        .attr_opt("id", refused.id.as_deref())
        .open("error", "")
        .attr("type", "modify")
        .open(condition, ns::STANZAS)
        .close()
        .open("text", ns::STANZAS)
        .attr("xml:lang", "en")
        .text(&text)
        .close()
        .close();
    Some(x.finish())
}

/// A human explanation of a stream error received during the handshake.
fn refusal(settings: &LinkSettings, condition: &str) -> LinkError {
    let explanation = match condition {
        "not-authorized" => format!(
            "the server refused the shared secret for {} (not-authorized): check `secret` against the server's component configuration",
            settings.domain
        ),
        "host-unknown" | "improper-addressing" => format!(
            "the server at {} does not know the component {} ({condition}): declare it as a component there",
            settings.server, settings.domain
        ),
        "conflict" if settings.wait_out_conflict => {
            return LinkError::Occupied(format!(
                "another connection of {} is still open (conflict): the previous active mixd's, or a mixd on another database",
                settings.domain
            ))
        }
        "conflict" => format!(
            "another component is already connected as {} (conflict): is a second mixd running?",
            settings.domain
        ),
        other => return LinkError::Lost(format!("stream error during the handshake: {other}")),
    };
    LinkError::Refused(explanation)
}

fn stream_error_condition(error: &Element) -> String {
    error
        .children()
        .find(|c| c.ns() == ns::STREAMS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| "undefined-condition".into())
}

fn keepalive_ping(domain: &str) -> String {
    let mut x = Xml::new();
    x.open("iq", ns::COMPONENT)
        .attr("type", "get")
        .attr("id", "mixd-keepalive")
        .attr("from", domain)
        .attr("to", domain)
        .open("ping", ns::PING)
        .close();
    x.finish()
}

/// Writes queued stanzas in batches; returns `Ok` after writing the
/// stream footer once every outbox sender is gone and nothing is left to send. A write that
/// makes no progress for `stall` (the server reads nothing) ends the link; the batch stays in
/// `pending` for the next connection. A batch is up to [`WRITE_BATCH`] slices (more only when
/// one handled stanza's are more), written where they lie by vectored write calls (as few as
/// the socket takes, each with its stall timer): no copy, and no call per stanza.
async fn write_loop(
    writer: &OwnedWriteHalf,
    outbox: &mut mpsc::UnboundedReceiver<Vec<Stanzas>>,
    pending: &mut VecDeque<Stanzas>,
    queue: &Queued,
    stall: Duration,
    metrics: &Metrics,
) -> Result<(), LinkError> {
    let stalled = || {
        LinkError::Lost(format!(
            "the server read nothing from mixd for {} s; dropping the link",
            stall.as_secs_f32()
        ))
    };
    loop {
        while let Ok(more) = outbox.try_recv() {
            pending.extend(more);
        }
        if pending.is_empty() {
            match outbox.recv().await {
                Some(more) => pending.extend(more),
                None => {
                    let mut footer = &b"</stream:stream>"[..];
                    while !footer.is_empty() {
                        let n = write_vectored(writer, &[IoSlice::new(footer)]).await?;
                        footer = &footer[n..];
                    }
                    return Ok(());
                }
            }
        }
        let runs = batch(pending);
        let mut slices = Vec::with_capacity(WRITE_BATCH);
        for stanzas in pending.iter().take(runs) {
            stanzas.slices_into(&mut slices);
        }
        let bytes = slices.iter().map(|slice| slice.len()).sum();
        let mut rest = &mut slices[..];
        let mut left = bytes;
        while left > 0 {
            let n = tokio::time::timeout(stall, write_vectored(writer, rest))
                .await
                .map_err(|_| stalled())??;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            IoSlice::advance_slices(&mut rest, n);
            left -= n;
        }
        drop(slices);
        metrics.written(pending.iter().take(runs).flat_map(Stanzas::heads));
        pending.drain(..runs);
        queue.written(bytes);
    }
}

/// One vectored write call once the socket can take some: the bytes it took. The socket is
/// shared with [`Outbox::write_now`] (hence no buffer of the link's own, and `&`), which
/// writes only while the write loop has nothing to write.
async fn write_vectored(writer: &OwnedWriteHalf, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        writer.writable().await?;
        match writer.try_write_vectored(slices) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// How many of `pending`'s (the first at least) make the next batch: up to [`WRITE_BATCH`]
/// slices.
fn batch(pending: &VecDeque<Stanzas>) -> usize {
    let mut slices = 0;
    let taken = pending.iter().take_while(|stanzas| {
        slices += stanzas.slice_count();
        slices <= WRITE_BATCH
    });
    taken.count().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    fn settings(server: String) -> LinkSettings {
        LinkSettings {
            server,
            domain: "mix.test".into(),
            secret: "s".into(),
            keepalive: Duration::from_secs(60),
            limits: Limits {
                max_bytes: 16 * 1024,
                max_depth: 16,
            },
            max_outbox_bytes: 1 << 20,
            write_timeout: Duration::from_secs(1),
            wait_out_conflict: false,
            metrics: Arc::new(Metrics::new()),
            screen: None,
        }
    }

    /// Plays the server's side of the handshake; returns what was read past it.
    async fn accept(listener: &TcpListener) -> TcpStream {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("'>") {
            let n = socket.read(&mut buffer).await.unwrap();
            seen.extend_from_slice(&buffer[..n]);
        }
        socket
            .write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='mix.test'>")
            .await
            .unwrap();
        while !String::from_utf8_lossy(&seen).contains("</handshake>") {
            let n = socket.read(&mut buffer).await.unwrap();
            seen.extend_from_slice(&buffer[..n]);
        }
        socket.write_all(b"<handshake/>").await.unwrap();
        socket
    }

    /// Reads until `needle` has been seen; returns everything read.
    async fn read_until(socket: &mut TcpStream, needle: &str) -> String {
        let mut seen = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed before {needle:?}");
            // Only the new bytes (and a needle's length before them) can hold it.
            let from = seen.len().saturating_sub(needle.len());
            seen.extend_from_slice(&buffer[..n]);
            if memchr::memmem::find(&seen[from..], needle.as_bytes()).is_some() {
                return String::from_utf8(seen).unwrap();
            }
        }
    }

    /// Answers the handshake of the next connection with a `conflict` stream error.
    async fn refuse_with_conflict(listener: &TcpListener) {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_until(&mut socket, "'>").await;
        socket
            .write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='mix.test'>")
            .await
            .unwrap();
        read_until(&mut socket, "</handshake>").await;
        socket
            .write_all(b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
            .await
            .unwrap();
    }

    /// A standby that took over finds the previous active's connection still open (Prosody
    /// refuses a second one): it tries again until it gets in. A lone mixd stops instead,
    /// saying that a second one runs.
    #[tokio::test]
    async fn a_conflict_at_first_is_waited_out_only_after_a_takeover() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = spawn(LinkSettings {
            wait_out_conflict: true,
            ..settings(listener.local_addr().unwrap().to_string())
        });
        for _ in 0..3 {
            refuse_with_conflict(&listener).await;
        }
        let _server = accept(&listener).await;
        link.first_connection.await.unwrap().unwrap();

        let lone = spawn(settings(listener.local_addr().unwrap().to_string()));
        refuse_with_conflict(&listener).await;
        match lone.first_connection.await.unwrap() {
            Err(LinkError::Refused(why)) => {
                assert!(why.contains("is a second mixd running"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stanza_over_a_limit_is_answered_once_and_the_link_reads_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut link = spawn(settings(listener.local_addr().unwrap().to_string()));
        let mut server = accept(&listener).await;
        link.first_connection.await.unwrap().unwrap();
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        let big = "x".repeat(100_000);
        server
            .write_all(
                format!(
                    "<message from='eve@test/r' to='c@mix.test' id='deep'>{deep}</message>\
                     <iq type='get' from='eve@test/r' to='c@mix.test' id='big'><q xmlns='urn:q'>{big}</q></iq>\
                     <presence from='bob@test/r' to='c@mix.test' id='fine'/>"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let fine = link.inbound.recv().await.unwrap();
        assert_eq!(fine.attr("id"), Some("fine"));
        let replies = read_until(&mut server, "id='big'").await;
        assert!(replies.starts_with("<message xmlns='jabber:component:accept' type='error' from='c@mix.test' to='eve@test/r' id='deep'><error type='modify'><policy-violation"), "{replies}");
        assert!(replies.contains("more than 16 levels deep"), "{replies}");
        assert!(replies.contains("<iq xmlns='jabber:component:accept' type='error' from='c@mix.test' to='eve@test/r' id='big'><error type='modify'><policy-violation"), "{replies}");
        assert_eq!(replies.matches("type='error'").count(), 2);
    }

    /// A page from a thread outside the runtime is written by that thread while nothing is
    /// queued (this runtime has one thread, and the link's task has not run when it is
    /// out), and queued behind what is queued otherwise.
    #[tokio::test]
    async fn a_reader_writes_its_page_itself_while_nothing_is_queued_and_keeps_the_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = spawn(settings(listener.local_addr().unwrap().to_string()));
        let mut server = accept(&listener).await;
        link.first_connection.await.unwrap().unwrap();
        let page = |id: &str| Stanzas::from(format!("<iq type='result' id='{id}'/>"));
        link.outbox.write_now(page("direct"));
        assert_eq!(link.outbox.queued_bytes(), 0);
        link.outbox.send(page("queued"));
        link.outbox.write_now(page("behind"));
        assert_eq!(link.outbox.queued_bytes(), 2 * page("queued").bytes());
        let seen = read_until(&mut server, "id='behind'").await;
        assert_eq!(
            seen,
            "<iq type='result' id='direct'/><iq type='result' id='queued'/><iq type='result' id='behind'/>"
        );
    }

    /// The outbox over its cap says so; a server that reads nothing loses the link after
    /// `write_timeout`, and everything queued arrives over the next connection.
    #[tokio::test]
    async fn a_server_that_stops_reading_gets_a_new_link_and_everything_queued() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = spawn(settings(listener.local_addr().unwrap().to_string()));
        let stuck = accept(&listener).await;
        link.first_connection.await.unwrap().unwrap();
        let count = 4000;
        let filler = "f".repeat(10_000);
        for i in 0..count {
            link.outbox.send(Stanzas::from(format!(
                "<message to='u@test' id='n{i}'><body>{filler}</body></message>"
            )));
        }
        // 40 MB queued: far over the 1 MiB cap, whatever the socket buffers took.
        assert!(!link.outbox.has_room());
        let started = std::time::Instant::now();
        let mut fresh = tokio::time::timeout(Duration::from_secs(10), accept(&listener))
            .await
            .expect("a new connection after the write timeout");
        assert!(started.elapsed() >= Duration::from_millis(900));
        // What the first connection's buffers held, and the rest on the new one, read at once.
        let old = tokio::spawn(async move {
            let mut stuck = stuck;
            let mut old = Vec::new();
            let _ = stuck.read_to_end(&mut old).await;
            old
        });
        let new = read_until(&mut fresh, &format!("id='n{}'", count - 1)).await;
        let old = old.await.unwrap();
        let all = String::from_utf8_lossy(&old).into_owned() + &new;
        let mut ids = std::collections::HashSet::new();
        for part in all.split("id='n").skip(1) {
            ids.insert(part.split('\'').next().unwrap().to_owned());
        }
        for i in 0..count {
            assert!(ids.contains(&i.to_string()), "n{i} lost");
        }
        tokio::time::timeout(Duration::from_secs(5), link.outbox.room())
            .await
            .expect("room once written");
        assert!(link.outbox.queued_bytes() < 1 << 20);
    }
}
