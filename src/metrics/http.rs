//! `/metrics` and `/health` over HTTP (axum), when the operator asks for them (`--metrics`).
//!
//! `/metrics` first asks the service loop to measure what it holds (channels, participants,
//! queues) and waits for that briefly, so a scrape sees the state as it is; a loop too busy
//! to answer within [`MEASURE_WAIT`] leaves the last measurement, and the scrape still answers.
//!
//! `/health` is 200 when mixd does its job: the component link is up and the writer keeps up,
//! which means that the oldest job not yet committed has waited less than [`WRITER_STALL`]
//! (a commit normally takes milliseconds; a disk that stalls or a writer that died shows
//! here). Otherwise 503, with why. The body is a short JSON object either way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::Metrics;
use crate::store::writer::Backlog;

/// How long a job may wait for its commit before the writer counts as not keeping up.
pub const WRITER_STALL: Duration = Duration::from_secs(5);
/// How long a scrape waits for the service loop to measure its state.
const MEASURE_WAIT: Duration = Duration::from_secs(1);

/// A request to the service loop to measure its state into the metrics, answered when done.
pub type Measure = oneshot::Sender<()>;

#[derive(Clone)]
struct Monitored {
    metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    measure: mpsc::Sender<Measure>,
}

/// Binds `address` (failing at once if it cannot) and serves on the runtime until mixd stops.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    measure: mpsc::Sender<Measure>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("serving metrics on {address}"))?;
    tracing::info!(%address, "serving /metrics and /health");
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/health", get(health))
        .with_state(Monitored {
            metrics,
            backlog,
            measure,
        });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    });
    Ok(())
}

async fn scrape(State(monitored): State<Monitored>) -> impl IntoResponse {
    let (done, measured) = oneshot::channel();
    if monitored.measure.try_send(done).is_ok() {
        let _ = tokio::time::timeout(MEASURE_WAIT, measured).await;
    }
    monitored.metrics.observe_writer(&monitored.backlog);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        monitored.metrics.encode(),
    )
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    link: &'static str,
    writer_queue_jobs: usize,
    writer_oldest_pending_ms: u128,
    /// Why mixd is unhealthy; empty when it is not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

async fn health(State(monitored): State<Monitored>) -> impl IntoResponse {
    let link_up = monitored.metrics.link_is_up();
    let oldest = monitored.backlog.oldest_pending();
    let mut problems = Vec::new();
    if !link_up {
        problems.push("the component link to the XMPP server is down".to_owned());
    }
    if oldest >= WRITER_STALL {
        problems.push(format!(
            "the writer is not keeping up: a job has waited {} ms for its commit (limit {} ms)",
            oldest.as_millis(),
            WRITER_STALL.as_millis()
        ));
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if problems.is_empty() {
            "ok"
        } else {
            "unavailable"
        },
        link: if link_up { "up" } else { "down" },
        writer_queue_jobs: monitored.backlog.jobs(),
        writer_oldest_pending_ms: oldest.as_millis(),
        problems,
    };
    (status, Json(body))
}
