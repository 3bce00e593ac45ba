//! `POST /media/upload/commit` `{fileToken, partETags, uploadId}`: the SDK's confirmation that
//! every part of a file of several parts is up. Answers success once the file is whole.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::store::PART_BYTES;
use crate::bootstrap::{success, Refusal, State as Shared};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    #[serde(default)]
    file_token: String,
}

pub async fn commit(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<Commit>>,
) -> Result<Response, Refusal> {
    let media = state.media()?;
    let user = state.caller(&headers)?;
    let token = body.map(|Json(c)| c.file_token).unwrap_or_default();
    let upload = media
        .store
        .describe(&token)
        .filter(|u| Some(u.uploader.as_str()) == user.node().map(|n| n.as_str()))
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "no upload of yours has this fileToken",
            )
        })?;
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
