//! `PUT /media/part/<grant>`: one part's bytes, at a URL `/media/upload` signed for it (the
//! SDK sends no token here, as to an object store). A part is at most 5 MiB, and no part may
//! reach past the size limit.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::store::PART_BYTES;
use crate::bootstrap::{Refusal, State as Shared};

pub async fn part(
    State(state): State<Shared>,
    Path(grant): Path<String>,
    body: Body,
) -> Result<Response, Refusal> {
    let media = state.media()?;
    let refused = || {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "this upload URL is not valid (forged or expired)",
        )
    };
    let granted = media.uploads.verify(&grant).ok_or_else(refused)?;
    let (token, part) = granted.split_once('/').ok_or_else(refused)?;
    let part: u64 = part.parse().map_err(|_| refused())?;
    let upload = media.store.describe(token).ok_or_else(refused)?;
    if part == 0 || part > upload.parts {
        return Err(refused());
    }
    let offset = (part - 1) * PART_BYTES;
    let room = PART_BYTES.min(media.store.max_bytes.saturating_sub(offset));
    let bytes = axum::body::to_bytes(body, room as usize)
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a part may hold at most {room} bytes here (or the body was cut off)"),
            )
        })?;
    let state = state.clone();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let media = state.media.as_ref().expect("checked above");
        media.store.write_part(&token, part, &bytes)
    })
    .await
    .map_err(|_| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "the write failed"))?
    .map_err(|error| {
        tracing::error!(%error, "bootstrap: cannot write a media part");
        Refusal::new(StatusCode::INSUFFICIENT_STORAGE, "cannot store the part")
    })?;
    Ok(StatusCode::OK.into_response())
}
