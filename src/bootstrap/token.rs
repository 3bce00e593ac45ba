//! The token `/login` hands out and every other route asks for: the user, an expiry and an
//! HMAC-SHA256 over both, so mixd keeps no session table. `<user>.<expiry>.<mac>`, the user
//! and the mac in unpadded base64url, the expiry in Unix seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub struct Tokens {
    /// Derived from the secret for this one use, so a token says nothing about the secret
    /// that the component link uses.
    key: Vec<u8>,
    lifetime: Duration,
}

impl Tokens {
    /// Tokens for one `purpose` (a login, an upload grant, a download link): each purpose
    /// derives its own key, so a token of one kind is never accepted as another.
    pub fn new(secret: &str, purpose: &str, lifetime: Duration) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
        derive.update(purpose.as_bytes());
        Tokens {
            key: derive.finalize().into_bytes().to_vec(),
            lifetime,
        }
    }

    /// A token for `user` (the local part the SDK logs in with, or what a grant names),
    /// valid for the lifetime.
    pub fn issue(&self, user: &str) -> String {
        self.issue_at(user, now() + self.lifetime.as_secs())
    }

    fn issue_at(&self, user: &str, expiry: u64) -> String {
        let user = URL_SAFE_NO_PAD.encode(user);
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&user, expiry).finalize().into_bytes());
        format!("{user}.{expiry}.{mac}")
    }

    /// The user a token names, if mixd signed it and it has not expired.
    pub fn verify(&self, token: &str) -> Option<String> {
        let mut parts = token.trim().split('.');
        let (user, expiry, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expiry: u64 = expiry.parse().ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.mac(user, expiry).verify_slice(&mac).ok()?;
        if expiry <= now() {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()
    }

    /// The user of the request's `authorization` header (the SDK sends the bare token; a
    /// `Bearer ` prefix is taken too).
    pub fn user_of(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        self.verify(value.strip_prefix("Bearer ").unwrap_or(value))
    }

    fn mac(&self, user: &str, expiry: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(user.as_bytes());
        mac.update(b".");
        mac.update(expiry.to_string().as_bytes());
        mac
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_until_it_expires() {
        let tokens = Tokens::new("secret", LOGIN, Duration::from_secs(60));
        assert_eq!(
            tokens.verify(&tokens.issue("alice")).as_deref(),
            Some("alice")
        );
        assert_eq!(tokens.verify(&tokens.issue_at("alice", now() - 1)), None);
    }

    const LOGIN: &str = "mixd bootstrap token v1";

    #[test]
    fn a_token_of_one_purpose_is_not_one_of_another() {
        let login = Tokens::new("secret", LOGIN, Duration::from_secs(60));
        let grant = Tokens::new("secret", "mixd media upload v1", Duration::from_secs(60));
        assert_eq!(grant.verify(&login.issue("alice")), None);
        assert_eq!(login.verify(&grant.issue("alice")), None);
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let tokens = Tokens::new("secret", LOGIN, Duration::from_secs(60));
        let token = tokens.issue("alice");
        let other = Tokens::new("another secret", LOGIN, Duration::from_secs(60));
        assert_eq!(other.verify(&token), None);
        let (_, rest) = token.split_once('.').unwrap();
        let as_bob = format!("{}.{rest}", URL_SAFE_NO_PAD.encode("bob"));
        assert_eq!(tokens.verify(&as_bob), None);
        for junk in [
            "",
            "a.b",
            "a.1.c.d",
            "YWxpY2U.x.y",
            "YWxpY2U.99999999999.!!",
        ] {
            assert_eq!(tokens.verify(junk), None, "{junk}");
        }
    }
}
