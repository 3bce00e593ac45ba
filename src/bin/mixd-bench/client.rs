//! The end-to-end mode's users: plain c2s connections to a real server (loopback, no TLS,
//! SASL PLAIN, resource binding), each counting what it receives with the same scanner the
//! component side uses.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::peer::{read_until, scan, Counters, Tracker};

pub struct User {
    pub name: String,
    pub writer: BufWriter<OwnedWriteHalf>,
    /// Deliveries (bodies `m<seq>`) this connection has received.
    pub received: Arc<AtomicU64>,
}

/// What every user's reader reports into.
#[derive(Clone, Default)]
pub struct Shared {
    pub counters: Arc<Counters>,
    pub tracker: Arc<Mutex<Option<Arc<Tracker>>>>,
    pub first_error: Arc<Mutex<Option<String>>>,
}

fn header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
}

/// Logs `name` (password = name) in and announces it online.
pub async fn login(
    server: &str,
    domain: &str,
    name: &str,
    shared: &Shared,
) -> anyhow::Result<User> {
    let socket = TcpStream::connect(server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    socket.set_nodelay(true)?;
    let (mut reader, writer) = socket.into_split();
    let mut writer = BufWriter::new(writer);
    let mut buf = Vec::new();
    writer.write_all(header(domain).as_bytes()).await?;
    writer.flush().await?;
    read_until(&mut reader, &mut buf, b"</stream:features>").await?;
    let credentials = base64(format!("\0{name}\0{name}").as_bytes());
    writer
        .write_all(format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{credentials}</auth>").as_bytes())
        .await?;
    writer.flush().await?;
    read_until(&mut reader, &mut buf, b"<success")
        .await
        .with_context(|| format!("logging {name} in"))?;
    buf.clear();
    writer.write_all(header(domain).as_bytes()).await?;
    writer.flush().await?;
    read_until(&mut reader, &mut buf, b"</stream:features>").await?;
    writer
        .write_all(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>")
        .await?;
    writer.flush().await?;
    read_until(&mut reader, &mut buf, b"</iq>").await?;
    writer.write_all(b"<presence/>").await?;
    writer.flush().await?;
    let received = Arc::new(AtomicU64::new(0));
    tokio::spawn(scan(
        reader,
        shared.counters.clone(),
        shared.tracker.clone(),
        shared.first_error.clone(),
        Some(received.clone()),
    ));
    Ok(User {
        name: name.to_owned(),
        writer,
        received,
    })
}

impl User {
    pub async fn send(&mut self, stanza: &str) -> anyhow::Result<()> {
        self.writer.write_all(stanza.as_bytes()).await?;
        self.writer.flush().await?;
        Ok(())
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
