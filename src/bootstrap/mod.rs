//! The REST bootstrap the FlyChat SDK needs before it speaks XMPP (docs/protocol.md, "The
//! REST bootstrap"): `POST /login`, `GET /users/config`, `GET /group/groupList`, each under
//! a configurable base path, with the CORS answers a browser (or jsdom) asks for first, and
//! the media of attachments (`media/`). Off unless `[bootstrap] listen` is set. One file per
//! route; `token.rs` signs the logins and the media URLs.

mod config;
mod cors;
mod group_list;
mod login;
mod media;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use jid::BareJid;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::core::Groups;

pub use token::Tokens;

/// What the bootstrap serves, resolved from `[bootstrap]` (src/config.rs).
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Where the routes sit, e.g. `/api/v1`; empty for the root.
    pub base_path: String,
    /// The XMPP domain users log in at; the SDK also takes it for the WebSocket's host.
    pub xmpp_host: String,
    /// The port the SDK opens `wss://<xmpp_host>:<port>/websocket` on.
    pub xmpp_port_web: u16,
    /// The XMPP server's client port, where `/login` checks passwords with a SASL login.
    pub c2s: String,
    pub token_lifetime: Duration,
    /// Where uploaded media is kept; no media routes without it.
    pub media_dir: Option<PathBuf>,
    /// The largest file the media routes accept.
    pub media_max_bytes: u64,
}

/// A question for the rules task, which alone holds the groups: the bootstrap's routes send
/// one and wait for its answer (`service.rs` runs it between two stanzas).
pub type Ask = Box<dyn FnOnce(&Groups) + Send>;

/// What every route can reach.
struct Shared {
    settings: Settings,
    tokens: Tokens,
    asks: mpsc::UnboundedSender<Ask>,
    /// The component's domain, for the group JIDs.
    mix_domain: String,
    media: Option<media::Media>,
}

type State = Arc<Shared>;

/// Binds the listener (so that a taken port fails at start-up) and serves it on a task of
/// its own. `signing_secret` keys the tokens (the component secret: tokens stay valid across
/// restarts, and no one without the secret can make one).
pub async fn spawn(
    settings: Settings,
    mix_domain: String,
    signing_secret: &str,
    asks: mpsc::UnboundedSender<Ask>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: cannot listen on {}: {e}", settings.listen))?;
    tracing::info!(listen = %settings.listen, base_path = %settings.base_path, "bootstrap listening");
    let media = match &settings.media_dir {
        Some(dir) => Some(media::Media::new(
            media::store::MediaStore::open(dir.clone(), settings.media_max_bytes)?,
            signing_secret,
        )),
        None => None,
    };
    let state = Arc::new(Shared {
        tokens: Tokens::new(
            signing_secret,
            "mixd bootstrap token v1",
            settings.token_lifetime,
        ),
        settings,
        media,
        asks,
        mix_domain,
    });
    let app = router(state);
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "bootstrap listener failed");
        }
    }))
}

fn router(state: State) -> Router {
    let routes = Router::new()
        .route("/login", post(login::login))
        .route("/users/config", get(config::config))
        .route("/group/groupList", get(group_list::group_list))
        .route("/media/upload", post(media::upload::upload))
        .route("/media/commit/{grant}", post(media::commit::commit))
        .route("/media/part/{grant}", put(media::part::part))
        .route(
            "/media/generatePreAuthenticationUrlDownload",
            get(media::link::link),
        )
        .route("/media/file/{grant}", get(media::file::file))
        .route("/media/{file_token}", get(media::download::download))
        .fallback(not_found)
        .with_state(state.clone());
    let base = state.settings.base_path.trim_end_matches('/');
    let app = if base.is_empty() {
        routes
    } else {
        Router::new().nest(base, routes).fallback(not_found)
    };
    app.layer(axum::middleware::from_fn(cors::cors))
}

async fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "no such resource")
}

/// A refusal as a value, small enough for a `Result`; it answers as `failure` does.
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        failure(self.status, &self.message)
    }
}

/// The SDK reads `status` from the body, and `data` from a success.
fn success(data: Value) -> Response {
    Json(json!({"status": 200, "message": "ok", "data": data})).into_response()
}

/// A refusal the SDK shows: the body's `message`, with the status in the body as well.
fn failure(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "message": message})),
    )
        .into_response()
}

impl Shared {
    /// The user whose login token the request carries.
    fn caller(&self, headers: &HeaderMap) -> Result<BareJid, Refusal> {
        let user = self.tokens.user_of(headers).ok_or_else(|| {
            Refusal::new(StatusCode::UNAUTHORIZED, "log in first: no valid token")
        })?;
        format!("{user}@{}", self.settings.xmpp_host)
            .parse()
            .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "the token names no valid user"))
    }

    /// Refuses unless `user` is a current participant of the group named `group` (the
    /// directory decides, on the rules task).
    async fn require_member(&self, user: &BareJid, group: &str) -> Result<(), Refusal> {
        let (asker, name) = (user.clone(), group.to_owned());
        let member = self
            .ask(move |groups| {
                groups
                    .channel(&name)
                    .is_some_and(|channel| channel.participant(&asker).is_some())
            })
            .await
            .ok_or_else(|| {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "mixd is shutting down")
            })?;
        if member {
            Ok(())
        } else {
            Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "only current members of the group may do this",
            ))
        }
    }

    /// Runs `question` on the rules task and waits for its answer.
    async fn ask<T: Send + 'static>(
        &self,
        question: impl FnOnce(&Groups) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let ask: Ask = Box::new(move |groups| {
            let _ = tx.send(question(groups));
        });
        self.asks.send(ask).ok()?;
        rx.await.ok()
    }
}
