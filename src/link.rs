//! The wire: mixd's XEP-0114 component connection to the XMPP server.
//!
//! Reading uses tokio-xmpp's XML stream (`xmlstream`), which yields each top-level element as
//! a `minidom::Element`, reports soft read timeouts (we answer with a ping so an idle link is
//! not dropped) and keeps going after a stanza it cannot parse. `tokio_xmpp::Component` is not
//! used: it ends the link on any of those and never reconnects (see platform-notes).
//!
//! Writing does not go through the XML stream: once the handshake is done the socket's write
//! half is taken out of it and stanzas, already serialized by delivery, are written in
//! batches with one flush per batch. Stanzas queued while the link is down stay queued and
//! go out after the reconnect; a batch whose flush failed is written again (at least once).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;
use tokio::io::{
    AsyncBufRead, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadBuf,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::parsers::component::Handshake;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};

use crate::xml::{ns, Xml};

/// Where to connect and as whom.
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
}

/// The queue of serialized stanzas to send. Cloned by whoever produces stanzas; the link
/// closes its stream cleanly once every clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct Outbox(mpsc::UnboundedSender<Vec<String>>);

impl Outbox {
    pub fn send(&self, stanzas: Vec<String>) {
        // Fails only once the link task has ended, at shutdown: nothing can be sent then.
        let _ = self.0.send(stanzas);
    }
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
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Lost(e.to_string())
    }
}

/// The running link: the stanzas it receives, and the result of its first connection.
pub struct Link {
    pub inbound: mpsc::Receiver<Element>,
    pub outbox: Outbox,
    /// Resolves after the first handshake: `Ok` once connected, `Err` if the server refused.
    pub first_connection: oneshot::Receiver<Result<(), LinkError>>,
    pub task: tokio::task::JoinHandle<()>,
}

const INBOUND_QUEUE: usize = 4096;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Stanzas written before one flush.
const WRITE_BATCH: usize = 1024;

/// Starts the link task: it connects, reconnects with backoff, and ends when every
/// [`Outbox`] clone is dropped and what they queued is sent.
pub fn spawn(settings: LinkSettings) -> Link {
    let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    let (outbox_tx, mut outbox_rx) = mpsc::unbounded_channel();
    let (first_tx, first_connection) = oneshot::channel();
    let weak_outbox = outbox_tx.downgrade();
    let task = tokio::spawn(async move {
        let mut first = Some(first_tx);
        let mut pending = VecDeque::new();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut connected = false;
            let result = session(
                &settings,
                &mut connected,
                &inbound_tx,
                &weak_outbox,
                &mut outbox_rx,
                &mut pending,
                &mut first,
            )
            .await;
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
                    if first.is_some() {
                        tracing::warn!(%error, server = %settings.server, "cannot reach the XMPP server; retrying");
                    } else {
                        tracing::warn!(%error, queued = pending.len(), "component link lost; reconnecting");
                    }
                    if outbox_rx.is_closed() && outbox_rx.is_empty() && pending.is_empty() {
                        return;
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
        outbox: Outbox(outbox_tx),
        first_connection,
        task,
    }
}

/// One connection: handshake, then read and write until it fails or the outbox closes.
async fn session(
    settings: &LinkSettings,
    connected: &mut bool,
    inbound: &mpsc::Sender<Element>,
    weak_outbox: &mpsc::WeakUnboundedSender<Vec<String>>,
    outbox: &mut mpsc::UnboundedReceiver<Vec<String>>,
    pending: &mut VecDeque<String>,
    first: &mut Option<oneshot::Sender<Result<(), LinkError>>>,
) -> Result<(), LinkError> {
    let (mut stream, writer) = connect(settings).await?;
    *connected = true;
    tracing::info!(domain = %settings.domain, server = %settings.server, "component connected");
    if let Some(first) = first.take() {
        let _ = first.send(Ok(()));
    }
    let keepalive = keepalive_ping(&settings.domain);
    let reading = async {
        loop {
            match stream.next().await {
                Some(Ok(element)) => {
                    if element.is("error", "http://etherx.jabber.org/streams") {
                        return Err(LinkError::Lost(format!(
                            "stream error from the server: {}",
                            stream_error_condition(&element)
                        )));
                    }
                    if inbound.send(element).await.is_err() {
                        return Ok(());
                    }
                }
                Some(Err(ReadError::SoftTimeout)) => {
                    // Make the server send something before the hard timeout.
                    tracing::debug!("keepalive ping");
                    if let Some(outbox) = weak_outbox.upgrade() {
                        let _ = outbox.send(vec![keepalive.clone()]);
                    }
                }
                Some(Err(ReadError::ParseError(error))) => {
                    tracing::warn!(%error, "skipped an element that could not be parsed");
                }
                Some(Err(ReadError::HardError(error))) => return Err(error.into()),
                Some(Err(ReadError::StreamFooterReceived)) | None => {
                    return Err(LinkError::Lost("the server closed the stream".into()))
                }
            }
        }
    };
    let writing = write_loop(writer, outbox, pending);
    tokio::select! {
        read = reading => read,
        write = writing => write,
    }
}

type ComponentStream = XmlStream<LinkIo, Element>;

async fn connect(
    settings: &LinkSettings,
) -> Result<(ComponentStream, BufWriter<OwnedWriteHalf>), LinkError> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        TcpStream::connect(&settings.server),
    )
    .await
    .map_err(|_| LinkError::Lost(format!("connecting to {} timed out", settings.server)))?
    .map_err(|e| LinkError::Lost(format!("connecting to {}: {e}", settings.server)))?;
    // Without it, bursts of small stanzas stall ~40 ms on delayed ACKs (platform-notes).
    tcp.set_nodelay(true)?;
    let (read, write) = tcp.into_split();
    let write = Arc::new(Mutex::new(Some(write)));
    let io = LinkIo {
        read: BufReader::with_capacity(64 * 1024, read),
        write: write.clone(),
    };
    let timeouts = Timeouts {
        read_timeout: settings.keepalive,
        response_timeout: Duration::from_secs(20),
    };
    let header = StreamHeader {
        to: Some(settings.domain.clone().into()),
        from: None,
        id: None,
    };
    let mut pending = initiate_stream(io, ns::COMPONENT, header, timeouts).await?;
    let stream_id = pending
        .take_header()
        .id
        .map(|id| id.into_owned())
        .ok_or_else(|| LinkError::Lost("the server's stream header has no id".into()))?;
    let mut stream: ComponentStream = pending.skip_features();
    let handshake = Handshake::from_stream_id_and_password(stream_id, &settings.secret);
    stream.send(&handshake).await?;
    loop {
        match stream.next().await {
            Some(Ok(reply)) if reply.is("handshake", ns::COMPONENT) => break,
            Some(Ok(reply)) if reply.is("error", "http://etherx.jabber.org/streams") => {
                return Err(refusal(settings, &stream_error_condition(&reply)));
            }
            Some(Ok(other)) => {
                return Err(LinkError::Lost(format!(
                    "unexpected <{}/> instead of the handshake reply",
                    other.name()
                )))
            }
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::HardError(e))) => return Err(e.into()),
            Some(Err(ReadError::ParseError(e))) => return Err(LinkError::Lost(e.to_string())),
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(LinkError::Lost(
                    "the server closed the stream during the handshake".into(),
                ))
            }
        }
    }
    let writer = write
        .lock()
        .map_err(|_| LinkError::Lost("socket lock poisoned".into()))?
        .take()
        .ok_or_else(|| LinkError::Lost("socket writer already taken".into()))?;
    Ok((stream, BufWriter::with_capacity(64 * 1024, writer)))
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

/// Writes queued stanzas in batches, flushing once per batch; returns `Ok` after writing the
/// stream footer once every outbox sender is gone and nothing is left to send.
async fn write_loop(
    mut writer: BufWriter<OwnedWriteHalf>,
    outbox: &mut mpsc::UnboundedReceiver<Vec<String>>,
    pending: &mut VecDeque<String>,
) -> Result<(), LinkError> {
    loop {
        while let Ok(more) = outbox.try_recv() {
            pending.extend(more);
        }
        if pending.is_empty() {
            match outbox.recv().await {
                Some(more) => pending.extend(more),
                None => {
                    writer.write_all(b"</stream:stream>").await?;
                    writer.flush().await?;
                    return Ok(());
                }
            }
        }
        let batch = pending.len().min(WRITE_BATCH);
        for stanza in pending.iter().take(batch) {
            writer.write_all(stanza.as_bytes()).await?;
        }
        writer.flush().await?;
        pending.drain(..batch);
    }
}

/// The socket as tokio-xmpp's XML stream sees it: reads from the read half; writes go to the
/// write half only until [`connect`] takes it out after the handshake.
struct LinkIo {
    read: BufReader<OwnedReadHalf>,
    write: Arc<Mutex<Option<OwnedWriteHalf>>>,
}

impl LinkIo {
    fn with_writer<T>(
        &self,
        f: impl FnOnce(Pin<&mut OwnedWriteHalf>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.write.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(w) => f(Pin::new(w)),
                None => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the XML stream no longer writes; the link writer does",
                ))),
            },
            Err(_) => Poll::Ready(Err(io::Error::other("socket lock poisoned"))),
        }
    }
}

impl AsyncRead for LinkIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncBufRead for LinkIo {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().read).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.read).consume(amt)
    }
}

impl AsyncWrite for LinkIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with_writer(|w| w.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with_writer(|w| w.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with_writer(|w| w.poll_shutdown(cx))
    }
}
