//! `GET /users/config`: where the SDK finds the XMPP server and which features it may use.
//! The SDK decrypts the answer (AES-256-CBC, base64): the key is the UTF-8 text of the first
//! 32 hex digits of sha256 of the user name written three times, the IV the fixed UTF-8 text
//! the SDK ships. Without this answer every group call says "Feature unavailable".

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{failure, success, Settings, State as Shared};

/// The IV the SDK decrypts its configuration with (its constant `ddc0f15cc2c90fca`).
const SDK_IV: &[u8; 16] = b"ddc0f15cc2c90fca";

pub async fn config(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(user) = state.tokens.user_of(&headers) else {
        return failure(StatusCode::UNAUTHORIZED, "log in first: no valid token");
    };
    let plain = settings_for_sdk(&state.settings).to_string();
    success(Value::String(encrypt(&user, &plain)))
}

fn settings_for_sdk(settings: &Settings) -> Value {
    let attachments = settings.media_dir.is_some();
    json!({
        "xmppHost": settings.xmpp_host,
        "xmppPortWeb": settings.xmpp_port_web.to_string(),
        // The SDK's own keys for what it encrypts at rest; it keeps them when non-empty.
        "iv": std::str::from_utf8(SDK_IV).unwrap_or_default(),
        "ivProfile": std::str::from_utf8(SDK_IV).unwrap_or_default(),
        "signalServerDomain": "",
        "callRoutingServer": "",
        // Group chat, and attachments where media is stored, are what mixd serves; calls and
        // the rest it does not.
        "groupChat": true,
        "attachment": attachments,
        "imageAttachment": attachments,
        "videoAttachment": attachments,
        "audioAttachment": attachments,
        "documentAttachment": attachments,
        "one2oneCall": false,
        "groupCall": false,
        "recentchatSearch": true,
        "starMessage": true,
        "clearChat": true,
        "deleteChat": true,
        "translation": false,
        "block": true,
        "report": false,
        "deleteMessage": true,
        "viewAllMedias": true,
    })
}

fn encrypt(user: &str, plain: &str) -> String {
    let digest = Sha256::digest(user.repeat(3).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let key: [u8; 32] = hex.as_bytes()[..32].try_into().expect("64 hex digits");
    let cipher = cbc::Encryptor::<aes::Aes256>::new(&key.into(), SDK_IV.into());
    STANDARD.encode(cipher.encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockDecryptMut;

    #[test]
    fn the_user_name_keys_the_encryption() {
        let sealed = encrypt("alice", r#"{"xmppHost":"example.org"}"#);
        let hex: String = Sha256::digest(b"alicealicealice")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key: [u8; 32] = hex.as_bytes()[..32].try_into().unwrap();
        let opened = cbc::Decryptor::<aes::Aes256>::new(&key.into(), SDK_IV.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&STANDARD.decode(sealed).unwrap())
            .unwrap();
        assert_eq!(opened, br#"{"xmppHost":"example.org"}"#);
    }
}
