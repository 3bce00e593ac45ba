//! `GET /media/file/<grant>`: a file's bytes at the URL `link.rs` signed, whole or (as the SDK
//! reads it, 5 MiB at a time) the `Range: bytes=first-last` asked for.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::bootstrap::{Refusal, State as Shared};

pub async fn file(
    State(state): State<Shared>,
    Path(grant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let media = state.media()?;
    let Some(token) = media.downloads.verify(&grant) else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "this download URL is not valid (forged or expired)",
        ));
    };
    let Some(upload) = media.store.describe(&token) else {
        return Err(Refusal::new(StatusCode::NOT_FOUND, "no such file"));
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(parse_range);
    let state = state.clone();
    let read = tokio::task::spawn_blocking(move || {
        let store = &state.media.as_ref().expect("checked above").store;
        let len = store.len(&token)?;
        let (first, last) = match range {
            None => (0, len.saturating_sub(1)),
            Some(Some((first, last))) if first < len => {
                (first, last.unwrap_or(len - 1).min(len - 1))
            }
            Some(_) => return Ok((len, None)),
        };
        let bytes = if len == 0 {
            Vec::new()
        } else {
            store.read(&token, first, last)?
        };
        Ok::<_, std::io::Error>((len, Some((first, last, bytes))))
    })
    .await;
    Ok(match read {
        Ok(Ok((len, None))) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response(),
        Ok(Ok((len, Some((first, last, bytes))))) => {
            let content_type = [(header::CONTENT_TYPE, upload.content_type)];
            if range.is_some() {
                let span = format!("bytes {first}-{last}/{len}");
                (
                    StatusCode::PARTIAL_CONTENT,
                    content_type,
                    [(header::CONTENT_RANGE, span)],
                    bytes,
                )
                    .into_response()
            } else {
                (StatusCode::OK, content_type, bytes).into_response()
            }
        }
        _ => {
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the file",
            ))
        }
    })
}

/// `bytes=first-[last]`; `None` for any other shape (answered 416).
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        last => Some(last.parse().ok()?),
    };
    (last.is_none_or(|last| last >= first)).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_the_sdk_asks_them() {
        assert_eq!(parse_range("bytes=0-5242879"), Some((0, Some(5242879))));
        assert_eq!(parse_range("bytes=10-"), Some((10, None)));
        for bad in [
            "bytes=5-1",
            "items=0-1",
            "bytes=-5",
            "bytes=0-1,4-5",
            "bytes=x-",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }
}
