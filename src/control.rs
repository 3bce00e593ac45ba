//! The control socket: how `mixd admin` changes a running service. A Unix socket (mode 0600,
//! beside the database unless configured) that takes one JSON request per line and answers
//! each with one JSON line. A request is parsed into an [`Order`] and handed to the service
//! loop, which runs it through the core as the operator of the service (`core/operator.rs`),
//! so that what it changes is stored, delivered and noticed like any other change; the answer
//! comes once the change is stored.
//!
//! The socket also tells whether a mixd is running on a database: `mixd admin restore` refuses
//! when something answers on it, and a second mixd refuses to start on a socket that answers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jid::BareJid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::core::{Groups, Micros};
use crate::delivery;
use crate::dialect::Service;
use crate::store::writer::{Job, Writer};

/// The longest request line accepted; requests are a few names.
const MAX_REQUEST_BYTES: u64 = 4096;

/// What the operator asks of the running service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Take `jid` out of `channel`, as a removal by the service.
    RemoveParticipant { channel: String, jid: String },
    /// Delete `channel` with its participants (and its archive, unless archives are kept).
    DestroyChannel { channel: String },
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    pub text: String,
}

impl Answer {
    fn refused(text: impl Into<String>) -> Self {
        Answer {
            ok: false,
            text: text.into(),
        }
    }
}

/// A request on its way to the service loop, with where its answer goes.
pub struct Order {
    pub request: Request,
    pub answer: oneshot::Sender<Answer>,
}

/// The listening socket; its file goes when this is dropped.
pub struct Listening {
    path: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a mixd answers on the control socket at `path`.
pub fn answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Binds the control socket at `path` (a stale file from a mixd that died is replaced; a
/// socket some other mixd answers on is refused) and serves it; orders arrive on the receiver.
pub fn listen(path: &Path) -> anyhow::Result<(mpsc::Receiver<Order>, Listening)> {
    if path.exists() {
        if answers(path) {
            bail!(
                "another mixd answers on the control socket {}: is one already running on this database?",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale control socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    let listening = Listening {
        path: path.to_owned(),
    };
    // Only the service's own user may administer it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting the control socket {}", path.display()))?;
    let (orders, received) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, orders.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting on the control socket failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((received, listening))
}

/// One operator's connection: a request per line, an answer per line, in order.
async fn serve(stream: UnixStream, orders: mpsc::Sender<Order>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    loop {
        let mut line = String::new();
        let read = (&mut lines)
            .take(MAX_REQUEST_BYTES)
            .read_line(&mut line)
            .await;
        let answer = match read {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => Answer::refused(format!(
                "a request is one line of at most {MAX_REQUEST_BYTES} bytes"
            )),
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(request) => ask(&orders, request).await,
                Err(error) => Answer::refused(format!("not a request: {error}")),
            },
        };
        let mut text = serde_json::to_string(&answer).unwrap_or_default();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() || !line.ends_with('\n') {
            return;
        }
    }
}

async fn ask(orders: &mpsc::Sender<Order>, request: Request) -> Answer {
    let (answer, answered) = oneshot::channel();
    if orders.send(Order { request, answer }).await.is_err() {
        return Answer::refused("the service is shutting down");
    }
    answered
        .await
        .unwrap_or_else(|_| Answer::refused("the service is shutting down"))
}

/// Runs `order` on the rules task: the core decides as the operator of the service, delivery
/// tells the participants, and the writer stores it before anyone is told, the operator
/// included.
pub fn execute(groups: &mut Groups, service: &Service, writer: &Writer, order: Order, now: Micros) {
    let Order { request, answer } = order;
    let actor = match BareJid::new(&service.domain) {
        Ok(actor) => actor,
        Err(error) => {
            let _ = answer.send(Answer::refused(format!(
                "the service's JID is not a JID: {error}"
            )));
            return;
        }
    };
    let local = |channel: &str| -> String {
        let suffix = format!("@{}", service.domain);
        channel
            .strip_suffix(suffix.as_str())
            .unwrap_or(channel)
            .to_lowercase()
    };
    let (outcome, done) = match &request {
        Request::RemoveParticipant { channel, jid } => {
            let channel = local(channel);
            match BareJid::new(jid) {
                Ok(target) => (
                    groups.remove_by_operator(&channel, &target, &actor, now),
                    format!("removed {target} from {channel}"),
                ),
                Err(error) => {
                    let _ = answer.send(Answer::refused(format!("'{jid}' is not a JID: {error}")));
                    return;
                }
            }
        }
        Request::DestroyChannel { channel } => {
            let channel = local(channel);
            (
                groups.destroy_by_operator(&channel, &actor, now),
                format!("deleted {channel}"),
            )
        }
    };
    let facts = match outcome {
        Ok(facts) => facts,
        Err(refusal) => {
            let _ = answer.send(Answer::refused(refusal.text));
            return;
        }
    };
    tracing::info!(?request, facts = facts.len(), "operator's request");
    let mut outbound = Vec::new();
    delivery::deliver(groups, service, &facts, &mut outbound);
    let (stored, committed) = oneshot::channel();
    writer.submit(Job {
        facts,
        outbound,
        stored: Some(stored),
        ..Job::default()
    });
    tokio::spawn(async move {
        let answered = match committed.await {
            Ok(true) => Answer {
                ok: true,
                text: done,
            },
            _ => Answer::refused("the change could not be stored; nothing changed"),
        };
        let _ = answer.send(answered);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_named_by_op() {
        let request: Request = serde_json::from_str(
            r#"{"op":"remove_participant","channel":"coven","jid":"bob@localhost"}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            Request::RemoveParticipant {
                channel: "coven".into(),
                jid: "bob@localhost".into()
            }
        );
        for bad in [
            r#"{"op":"drop_tables"}"#,
            r#"{"op":"destroy_channel"}"#,
            r#"{"op":"destroy_channel","channel":"c","extra":1}"#,
            "destroy coven",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
