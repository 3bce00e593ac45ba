//! `POST /media/upload` `{contentType, extension, parts, messageId, toUser, type}`: a member
//! of the group `toUser` starts an upload and gets the file token and one signed URL per
//! part, and the URL that confirms a file of several parts. A retry names its earlier
//! `fileToken` and gets fresh URLs for the same file.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::public_base;
use super::store::{MediaStore, Upload, PART_BYTES};
use crate::bootstrap::{success, Refusal, State as Shared};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    parts: u64,
    #[serde(default)]
    to_user: String,
    #[serde(default, rename = "type")]
    chat_type: String,
    #[serde(default)]
    file_token: Option<String>,
}

pub async fn upload(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<Start>>,
) -> Result<Response, Refusal> {
    let media = state.media()?;
    let user = state.caller(&headers)?;
    let Some(Json(start)) = body else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "the body must be JSON with parts, toUser and type",
        ));
    };
    if start.chat_type != "groupchat" {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "mixd stores media for group chats only (type groupchat)",
        ));
    }
    if start.parts == 0 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "parts must be at least 1",
        ));
    }
    if start.parts > media.store.max_parts() {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the file is larger than this server's limit of {} bytes",
                media.store.max_bytes
            ),
        ));
    }
    state.require_member(&user, &start.to_user).await?;
    let upload = Upload {
        group: start.to_user,
        uploader: user.node().map(|n| n.to_string()).unwrap_or_default(),
        content_type: start.content_type,
        parts: start.parts,
    };
    let earlier = start
        .file_token
        .filter(|token| media.store.describe(token).as_ref() == Some(&upload));
    let token = match earlier {
        Some(token) => token,
        None => {
            let token = MediaStore::new_token().map_err(|error| {
                tracing::error!(%error, "bootstrap: no file token");
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot name a new file")
            })?;
            media.store.create(&token, &upload).map_err(|error| {
                tracing::error!(%error, "bootstrap: cannot create a media file");
                Refusal::new(StatusCode::INSUFFICIENT_STORAGE, "cannot store the file")
            })?;
            token
        }
    };
    let base = public_base(&state, &headers);
    let urls: Vec<String> = (1..=upload.parts)
        .map(|part| {
            let grant = media.uploads.issue(&format!("{token}/{part}"));
            format!("{base}/media/part/{grant}")
        })
        .collect();
    // A file of several parts is confirmed at `commitUrl` (commit.rs says why "oracle").
    let commit = media.uploads.issue(&format!("{token}/commit"));
    Ok(success(json!({
        "fileToken": token,
        "uploadUrls": urls,
        "storage": "oracle",
        "commitUrl": format!("{base}/media/commit/{commit}"),
        "partSize": PART_BYTES,
    })))
}
