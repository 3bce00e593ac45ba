//! The control socket: how `mixd admin` changes a running service. A Unix socket (mode 0600,
//! beside the database unless configured) that takes one JSON request per line and answers
//! each with one JSON line. A request is parsed into a typed [`Request`] and handed to the
//! service loop as an [`Order`]; there [`decide`] runs it through the core as the operator of
//! the service (`core/operator.rs`), and the loop delivers and stores what it changed like
//! any other change. The answer comes once the change is stored.
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

use crate::core::{Fact, Groups, Micros};

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
/// socket some other mixd answers on is refused) and serves it; orders arrive on the receiver,
/// for the service loop to [`decide`].
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

/// Decides `order` on the rules task, as the operator of the service (`domain`, the
/// service's JID, is the actor). A refusal is answered at once; a change comes back as its
/// facts, to be delivered and stored like any other, with the waiter the writer tells once
/// they are stored — only then is the operator answered.
pub fn decide(
    groups: &mut Groups,
    domain: &str,
    order: Order,
    now: Micros,
) -> Option<(Vec<Fact>, oneshot::Sender<bool>)> {
    let Order { request, answer } = order;
    let decided = BareJid::new(domain)
        .map_err(|error| format!("the service's JID is not a JID: {error}"))
        .and_then(|actor| run(groups, domain, &actor, &request, now));
    let (facts, done) = match decided {
        Ok(decided) => decided,
        Err(why) => {
            let _ = answer.send(Answer::refused(why));
            return None;
        }
    };
    tracing::info!(?request, facts = facts.len(), "the operator's request");
    let (stored, committed) = oneshot::channel();
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
    Some((facts, stored))
}

/// The core's command for `request`: its facts and what to tell the operator once they are
/// stored, or why not.
fn run(
    groups: &mut Groups,
    domain: &str,
    actor: &BareJid,
    request: &Request,
    now: Micros,
) -> Result<(Vec<Fact>, String), String> {
    // A channel named by its JID or by its name alone.
    let local = |channel: &str| -> String {
        let suffix = format!("@{domain}");
        channel
            .strip_suffix(suffix.as_str())
            .unwrap_or(channel)
            .to_lowercase()
    };
    let refused = |refusal: crate::core::Refusal| refusal.text;
    match request {
        Request::RemoveParticipant { channel, jid } => {
            let channel = local(channel);
            let target =
                BareJid::new(jid).map_err(|error| format!("'{jid}' is not a JID: {error}"))?;
            let facts = groups
                .remove_by_operator(&channel, &target, actor, now)
                .map_err(refused)?;
            Ok((facts, format!("removed {target} from {channel}")))
        }
        Request::DestroyChannel { channel } => {
            let channel = local(channel);
            let facts = groups
                .destroy_by_operator(&channel, actor, now)
                .map_err(refused)?;
            Ok((facts, format!("deleted {channel}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(request: Request) -> (Order, oneshot::Receiver<Answer>) {
        let (answer, answered) = oneshot::channel();
        (Order { request, answer }, answered)
    }

    #[tokio::test]
    async fn a_refusal_is_answered_at_once_a_change_once_it_is_stored() {
        let mut g = crate::core::testing::coven();
        let (bad, mut answered) = order(Request::RemoveParticipant {
            channel: "coven".into(),
            jid: "carol@localhost".into(),
        });
        assert!(decide(&mut g, "mix.localhost", bad, 5).is_none());
        let answer = answered.try_recv().unwrap();
        assert!(
            !answer.ok && answer.text.contains("not a participant"),
            "{answer:?}"
        );

        let (good, mut answered) = order(Request::RemoveParticipant {
            channel: "coven@mix.localhost".into(),
            jid: "Bob@localhost".into(),
        });
        let (facts, stored) = decide(&mut g, "mix.localhost", good, 5).unwrap();
        assert!(matches!(&facts[0], Fact::Left { by, .. } if by.as_str() == "mix.localhost"));
        tokio::task::yield_now().await;
        assert!(
            answered.try_recv().is_err(),
            "not answered before it is stored"
        );
        stored.send(true).unwrap();
        let answer = answered.await.unwrap();
        assert_eq!(
            (answer.ok, answer.text.as_str()),
            (true, "removed bob@localhost from coven")
        );

        let (gone, answered) = order(Request::DestroyChannel {
            channel: "coven".into(),
        });
        let (_, stored) = decide(&mut g, "mix.localhost", gone, 6).unwrap();
        drop(stored);
        assert!(
            !answered.await.unwrap().ok,
            "a commit that failed is no success"
        );
    }

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
