//! `POST /login` with `{username, password, type}`: the password is checked by the XMPP
//! server itself, with a SASL login to its client port (no resource is bound, so no client
//! shows up online); mixd keeps no passwords. A success gets a signed, expiring token.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tokio_xmpp::connect::{DnsConfig, ServerConnector, TcpServerConnector};
use tokio_xmpp::xmlstream::Timeouts;

use super::{failure, success, State as Shared};

#[derive(Deserialize)]
pub struct Login {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login(State(state): State<Shared>, body: Option<Json<Login>>) -> Response {
    let Some(Json(login)) = body else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the body must be JSON with username and password",
        );
    };
    let Some(user) = user_jid(&login.username, &state.settings.xmpp_host) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the username is not a valid user name",
        );
    };
    if login.password.is_empty() {
        return failure(StatusCode::BAD_REQUEST, "the password is empty");
    }
    match check_password(&state.settings.c2s, user, &login.password).await {
        Ok(true) => success(json!({"token": state.tokens.issue(&login.username)})),
        Ok(false) => failure(StatusCode::UNAUTHORIZED, "Invalid Credentials"),
        Err(error) => {
            tracing::warn!(%error, "bootstrap: the XMPP server could not check a login");
            failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "the chat server cannot check logins right now",
            )
        }
    }
}

/// `<username>@<xmpp_host>`, if that is a JID with a local part.
fn user_jid(username: &str, host: &str) -> Option<jid::Jid> {
    let user: jid::BareJid = format!("{username}@{host}").parse().ok()?;
    (user.node().is_some() && user.node()?.as_str() == username).then(|| user.into())
}

/// Whether the server accepts the password: `Ok(false)` when it refuses the SASL login,
/// `Err` when it could not be asked.
async fn check_password(c2s: &str, user: jid::Jid, password: &str) -> anyhow::Result<bool> {
    let connector = TcpServerConnector::from(DnsConfig::Addr {
        addr: c2s.to_owned(),
    });
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(10),
    };
    let attempt = async {
        let (pending, _) = connector
            .connect(&user, xmpp_parsers::ns::JABBER_CLIENT, timeouts)
            .await?;
        let (features, stream) = pending.recv_features().await?;
        // ANONYMOUS would "succeed" whatever the password: only mechanisms that check it.
        let mechanisms: BTreeSet<String> = features
            .sasl_mechanisms
            .into_iter()
            .filter(|m| m != "ANONYMOUS")
            .collect();
        let credentials = sasl::common::Credentials::default()
            .with_username(user.node().map(|n| n.as_str()).unwrap_or_default())
            .with_password(password);
        match tokio_xmpp::client_login(stream, mechanisms, credentials).await {
            Ok(_) => Ok(true),
            Err(tokio_xmpp::Error::Auth(tokio_xmpp::error::AuthError::Fail(_))) => Ok(false),
            Err(error) => Err(anyhow::Error::from(error)),
        }
    };
    tokio::time::timeout(Duration::from_secs(20), attempt)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {c2s} within 20 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_local_parts_only() {
        assert_eq!(
            user_jid("alice", "example.org").map(|j| j.to_string()),
            Some("alice@example.org".to_owned())
        );
        for bad in ["", "a@b", "a/b", "bob@example.org", "a b\u{0}"] {
            assert!(user_jid(bad, "example.org").is_none(), "{bad:?}");
        }
    }
}
