//! The load generator's side of the component link: it plays the XMPP server. It accepts
//! mixd's XEP-0114 connection, answers the handshake, then writes stanzas and counts what
//! comes back by scanning the byte stream for a few markers (parsing every delivery into a
//! tree would make the generator, not mixd, the bottleneck).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;

/// What the reader has seen so far.
#[derive(Default)]
pub struct Counters {
    /// `type='result'` iq replies.
    pub results: AtomicU64,
    /// When the read that brought the last iq result returned: where a round trip ends.
    /// The task waiting for the result is woken only after the scan, and on a loaded machine
    /// later still; timed from its wake-up, a page's round trip carried the bench's own hop
    /// (10–16 µs a history page at the median, tens to hundreds in the tail: docs/benchmarks.md,
    /// branch `histrt`).
    pub result_at: std::sync::Mutex<Option<Instant>>,
    /// Error stanzas of any kind.
    pub errors: AtomicU64,
    /// Reflected messages (bodies `m<seq>`).
    pub deliveries: AtomicU64,
    /// MAM `<fin/>` replies.
    pub fins: AtomicU64,
    /// Rows of FlyChat history replies (each has one `<row_id>`).
    pub rows: AtomicU64,
    /// Woken after every read, so that waiters see new counts at once.
    pub changed: tokio::sync::Notify,
}

/// Per-message delivery tracking: how many copies of message `seq` arrived, and when the
/// last expected one did (nanoseconds since `origin`).
pub struct Tracker {
    pub origin: Instant,
    pub expected: u32,
    pub copies: Vec<AtomicU64>,
    pub done_at: Vec<AtomicU64>,
    pub completed: AtomicU64,
}

impl Tracker {
    pub fn new(messages: usize, expected: u32) -> Self {
        Tracker {
            origin: Instant::now(),
            expected,
            copies: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            done_at: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            completed: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn delivered(&self, seq: usize) {
        let Some(copies) = self.copies.get(seq) else {
            return;
        };
        if copies.fetch_add(1, Ordering::Relaxed) + 1 == self.expected as u64 {
            self.done_at[seq].store(self.now(), Ordering::Relaxed);
            self.completed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct Peer {
    pub writer: BufWriter<OwnedWriteHalf>,
    pub counters: Arc<Counters>,
    pub tracker: Arc<std::sync::Mutex<Option<Arc<Tracker>>>>,
    pub first_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Peer {
    /// Waits for mixd to connect to `listener` and completes the handshake.
    pub async fn accept(listener: &TcpListener) -> anyhow::Result<Peer> {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let (mut reader, writer) = socket.into_split();
        let mut writer = BufWriter::with_capacity(256 * 1024, writer);
        let mut buf = Vec::new();
        read_until(&mut reader, &mut buf, b"<stream:stream").await?;
        read_until(&mut reader, &mut buf, b">").await?;
        writer
            .write_all(
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
                  xmlns:stream='http://etherx.jabber.org/streams' from='mix.bench' id='bench' version='1.0'>",
            )
            .await?;
        writer.flush().await?;
        read_until(&mut reader, &mut buf, b"</handshake>").await?;
        writer.write_all(b"<handshake/>").await?;
        writer.flush().await?;
        let counters = Arc::new(Counters::default());
        let tracker = Arc::new(std::sync::Mutex::new(None));
        let first_error = Arc::new(std::sync::Mutex::new(None));
        tokio::spawn(scan(
            reader,
            counters.clone(),
            tracker.clone(),
            first_error.clone(),
            None,
        ));
        Ok(Peer {
            writer,
            counters,
            tracker,
            first_error,
        })
    }

    pub async fn send(&mut self, stanza: &str) -> anyhow::Result<()> {
        self.writer.write_all(stanza.as_bytes()).await?;
        Ok(())
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.writer.flush().await?;
        Ok(())
    }

    pub fn track(&self, tracker: Option<Arc<Tracker>>) {
        *self.tracker.lock().unwrap() = tracker;
    }

    /// Waits until `counter` reaches `target`, failing on errors from mixd or a stall.
    pub async fn wait_for(
        &self,
        counter: impl Fn(&Counters) -> u64,
        target: u64,
    ) -> anyhow::Result<()> {
        wait_for(&self.counters, &self.first_error, counter, target).await
    }
}

/// Waits until `counter` reaches `target`, failing on an error stanza or a minute's stall.
pub async fn wait_for(
    counters: &Counters,
    first_error: &std::sync::Mutex<Option<String>>,
    counter: impl Fn(&Counters) -> u64,
    target: u64,
) -> anyhow::Result<()> {
    let mut last = (0, Instant::now());
    loop {
        let changed = counters.changed.notified();
        let now = counter(counters);
        if now >= target {
            return Ok(());
        }
        if let Some(error) = first_error.lock().unwrap().clone() {
            bail!("an error came back: {error}");
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed().as_secs() > 60 {
            bail!("stalled at {now} of {target}");
        }
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), changed).await;
    }
}

pub async fn read_until(
    reader: &mut OwnedReadHalf,
    buf: &mut Vec<u8>,
    marker: &[u8],
) -> anyhow::Result<()> {
    loop {
        if let Some(at) = memmem::find(buf, marker) {
            buf.drain(..at + marker.len());
            return Ok(());
        }
        let mut chunk = [0u8; 4096];
        let n = reader
            .read(&mut chunk)
            .await
            .context("reading the handshake")?;
        if n == 0 {
            bail!("mixd closed the connection during the handshake");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

const BODY: &[u8] = b"<body>m";

/// Counts markers in everything mixd sends. A marker cut by a chunk boundary is found
/// because the last bytes of each chunk are scanned again with the next. `received`, if
/// given, counts this connection's deliveries alone (the end-to-end mode checks that every
/// member got every message).
pub async fn scan(
    mut reader: OwnedReadHalf,
    counters: Arc<Counters>,
    tracker: Arc<std::sync::Mutex<Option<Arc<Tracker>>>>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
    received: Option<Arc<AtomicU64>>,
) {
    let result_finder = memmem::Finder::new(b"type='result'");
    let error_finder = memmem::Finder::new(b"type='error'");
    let body_finder = memmem::Finder::new(BODY);
    let fin_finder = memmem::Finder::new(b"<fin ");
    let row_finder = memmem::Finder::new(b"<row_id>");
    let mut buf = vec![0u8; 1 << 20];
    let mut kept = 0usize;
    loop {
        let n = match reader.read(&mut buf[kept..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let arrived = Instant::now();
        let data = &buf[..kept + n];
        // Only markers that end within this read count; a marker ending in the kept tail
        // was counted last time.
        let fresh = |at: usize, len: usize| at + len > kept;
        let count = |finder: &memmem::Finder, counter: &AtomicU64| {
            let len = finder.needle().len();
            let found = finder.find_iter(data).filter(|&at| fresh(at, len)).count();
            counter.fetch_add(found as u64, Ordering::Relaxed);
            found
        };
        if count(&result_finder, &counters.results) > 0 {
            *counters.result_at.lock().unwrap() = Some(arrived);
        }
        count(&fin_finder, &counters.fins);
        count(&row_finder, &counters.rows);
        if count(&error_finder, &counters.errors) > 0 {
            let mut first = first_error.lock().unwrap();
            if first.is_none() {
                let at = error_finder.find(data).unwrap_or(0);
                let start = data[..at].iter().rposition(|&b| b == b'<').unwrap_or(0);
                *first = Some(
                    String::from_utf8_lossy(&data[start..(start + 600).min(data.len())])
                        .into_owned(),
                );
            }
        }
        let current = tracker.lock().unwrap().clone();
        for at in body_finder.find_iter(data) {
            let digits = &data[at + BODY.len()..];
            let end = digits
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(digits.len());
            // Counted once: in the read where the byte after the number arrives.
            if end == digits.len() || !fresh(at, BODY.len() + end + 1) {
                continue;
            }
            counters.deliveries.fetch_add(1, Ordering::Relaxed);
            if let Some(received) = &received {
                received.fetch_add(1, Ordering::Relaxed);
            }
            if let (Some(tracker), Ok(seq)) = (
                &current,
                std::str::from_utf8(&digits[..end]).unwrap_or("x").parse(),
            ) {
                tracker.delivered(seq);
            }
        }
        counters.changed.notify_waiters();
        // Keep a tail long enough to hold any marker plus a sequence number.
        let len = data.len();
        let tail = 64.min(len);
        buf.copy_within(len - tail..len, 0);
        kept = tail;
    }
}
