//! `GET /media/generatePreAuthenticationUrlDownload?fileToken=…`: how the SDK downloads the
//! files it uploaded in parts. A current member of the file's group gets a signed URL, which
//! it then reads by byte ranges (`file.rs`).

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::public_base;
use crate::bootstrap::{success, Refusal, State as Shared};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asked {
    #[serde(default)]
    file_token: String,
}

pub async fn link(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(asked): Query<Asked>,
) -> Result<Response, Refusal> {
    let (media, _) = state.readable_file(&headers, &asked.file_token).await?;
    let grant = media.downloads.issue(&asked.file_token);
    let base = public_base(&state, &headers);
    Ok(success(Value::String(format!("{base}/media/file/{grant}"))))
}
