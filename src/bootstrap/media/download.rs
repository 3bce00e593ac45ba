//! `GET /media/<fileToken>` with the token in `authorization`: the whole file at once, as the
//! SDK fetches the media of messages not marked as uploaded in parts. Members only.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::bootstrap::{Refusal, State as Shared};

pub async fn download(
    State(state): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let (_, upload) = state.readable_file(&headers, &token).await?;
    let shared = state.clone();
    let read = tokio::task::spawn_blocking(move || {
        let store = &shared
            .media
            .as_ref()
            .expect("readable_file checked it")
            .store;
        let len = store.len(&token)?;
        store.read(&token, 0, len.saturating_sub(1))
    })
    .await;
    Ok(match read {
        Ok(Ok(bytes)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, upload.content_type)],
            bytes,
        )
            .into_response(),
        _ => {
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the file",
            ))
        }
    })
}
