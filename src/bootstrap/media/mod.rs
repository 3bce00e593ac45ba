//! Media for the SDK's attachments, off unless `[bootstrap] media_dir` is set. The SDK uploads
//! as to an object store: it asks `POST /media/upload` for one signed URL per 5 MiB part, PUTs
//! the parts there (without its token) and, for more than one part, confirms at a signed
//! commit URL. Its media message then names the file by the `fileToken`, and
//! another member downloads it through `GET /media/generatePreAuthenticationUrlDownload`,
//! which answers a signed URL that is read by byte ranges (or, for messages other clients
//! uploaded in one piece, straight from `GET /media/<fileToken>`). Every step that needs a
//! user asks the rules task whether they are a current member of the file's group.
//! One file per route; `store.rs` keeps the bytes.

pub mod commit;
pub mod download;
pub mod file;
pub mod link;
pub mod part;
pub mod store;
pub mod upload;

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

use super::{Refusal, Shared, Tokens};
use store::{MediaStore, Upload};

/// How long the signed part and download URLs stay valid.
const GRANT_LIFETIME: Duration = Duration::from_secs(3600);

pub struct Media {
    pub store: MediaStore,
    /// Signs the part and commit URLs: `<file token>/<part>`, `<file token>/commit`.
    uploads: Tokens,
    /// Signs the download URLs: `<file token>`.
    downloads: Tokens,
}

impl Media {
    pub fn new(store: MediaStore, signing_secret: &str) -> Self {
        Media {
            store,
            uploads: Tokens::new(signing_secret, "mixd media upload v1", GRANT_LIFETIME),
            downloads: Tokens::new(signing_secret, "mixd media download v1", GRANT_LIFETIME),
        }
    }
}

impl Shared {
    /// The media settings, or the refusal of a server that stores none.
    fn media(&self) -> Result<&Media, Refusal> {
        self.media.as_ref().ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "this server stores no media ([bootstrap] media_dir is not set)",
            )
        })
    }

    /// The record of the file `token` names, if the caller (by their token) is a current
    /// member of its group.
    async fn readable_file(
        &self,
        headers: &HeaderMap,
        token: &str,
    ) -> Result<(&Media, Upload), Refusal> {
        let media = self.media()?;
        let user = self.caller(headers)?;
        let Some(upload) = media.store.describe(token) else {
            return Err(Refusal::new(StatusCode::NOT_FOUND, "no such file"));
        };
        self.require_member(&user, &upload.group).await?;
        Ok((media, upload))
    }
}

/// `https://host/base`, as the client reached the bootstrap (through the proxy: its `Host`
/// and `X-Forwarded-Proto`), for the signed URLs the SDK is handed.
fn public_base(state: &Shared, headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("host").unwrap_or("localhost");
    format!("{scheme}://{host}{}", state.settings.base_path)
}
