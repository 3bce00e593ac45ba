//! `POST <commitUrl>`: the SDK's confirmation that every part of a file of several parts is
//! up, sent without its token to the URL `/media/upload` signed for it. Answers success once
//! the file is whole.
//!
//! Why a signed URL: the SDK confirms to "aws"/"minio" storage through
//! `/media/upload/commit`, but its HTTP helper throws on that path in a browser (it looks up
//! upload progress for any URL containing "upload" and finds none), then uploads the file
//! again, forever. For "oracle" storage it POSTs to the `commitUrl` it was given, which works.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::store::PART_BYTES;
use crate::bootstrap::{success, Refusal, State as Shared};

pub async fn commit(
    State(state): State<Shared>,
    Path(grant): Path<String>,
) -> Result<Response, Refusal> {
    let media = state.media()?;
    let refused = || {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "this commit URL is not valid (forged or expired)",
        )
    };
    let token = media
        .uploads
        .verify(&grant)
        .and_then(|granted| granted.strip_suffix("/commit").map(str::to_owned))
        .ok_or_else(refused)?;
    let upload = media.store.describe(&token).ok_or_else(refused)?;
    let whole = media
        .store
        .len(&token)
        .is_ok_and(|len| len > (upload.parts - 1) * PART_BYTES);
    if !whole {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "not every part of this file has arrived",
        ));
    }
    Ok(success(json!({"fileToken": token})))
}
