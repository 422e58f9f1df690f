//! Subscriber tokens for a broker with `[auth]` (HS256 JWTs, see
//! docs/protocol.md 2.9): minted here from the broker's secret, each with a
//! short expiry, sent as `{"op":"auth","token":...}` before a connection's
//! first subscribe and again every third of the lifetime (a refresh), as a
//! dashboard's web app does. The claims are those of
//! `scripts/issue-token.py`: `exp`, `sub`, `topics`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tickwire_protocol::control::encode_auth;

use crate::Error;

/// What `sub` says in every token.
const SUBJECT: &str = "tickwire-loadtest";

pub struct Tokens {
    key: EncodingKey,
    topics: Vec<String>,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({:?}, ttl {:?})", self.topics, self.ttl)
    }
}

impl Tokens {
    /// Shortest lifetime: `exp` is in whole seconds and a refresh is due
    /// after a third of it.
    pub const MIN_TTL: Duration = Duration::from_secs(3);

    /// Tokens signed with `secret`, granting `topics` (topics and `PREFIX*`
    /// patterns), valid for `ttl` (whole seconds).
    pub fn new(secret: &[u8], topics: Vec<String>, ttl: Duration) -> Result<Tokens, Error> {
        if secret.is_empty() {
            return Err(Error::msg("the HS256 secret is empty"));
        }
        if ttl < Self::MIN_TTL {
            return Err(Error::msg(format!(
                "--token-ttl must be at least {} s",
                Self::MIN_TTL.as_secs()
            )));
        }
        Ok(Tokens {
            key: EncodingKey::from_secret(secret),
            topics,
            ttl: Duration::from_secs(ttl.as_secs()),
        })
    }

    /// The secret in `path` (the broker's `[auth] jwt_hs256_secret_file`:
    /// its bytes, a trailing newline ignored).
    pub fn from_secret_file(
        path: &Path,
        topics: Vec<String>,
        ttl: Duration,
    ) -> Result<Tokens, Error> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
        let secret = bytes
            .strip_suffix(b"\n")
            .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
            .unwrap_or(&bytes);
        Tokens::new(secret, topics, ttl)
    }

    /// A fresh token, expiring `ttl` from now (rounded down to the second).
    pub fn mint(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims =
            json!({"exp": now + self.ttl.as_secs(), "sub": SUBJECT, "topics": self.topics});
        // HS256 over a JSON object cannot fail; an empty token would be
        // refused by the broker and counted as an error.
        encode(&Header::default(), &claims, &self.key).unwrap_or_default()
    }

    /// An `auth` request carrying a fresh token.
    pub fn auth_request(&self, id: Option<u64>) -> String {
        encode_auth(&self.mint(), id)
    }

    /// How often a connection sends a fresh token: a third of the lifetime,
    /// so a refresh late by a whole period still arrives before `exp`.
    pub fn refresh_every(&self) -> Duration {
        self.ttl / 3
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    use tickwire_protocol::control::{parse_request, Request};

    const SECRET: &[u8] = b"a loadtest secret of at least 32 bytes";

    #[test]
    fn tokens_verify_with_the_secret_and_carry_the_grants() {
        let tokens = Tokens::new(SECRET, vec!["lt.*".into()], Duration::from_secs(9)).unwrap();
        assert_eq!(tokens.refresh_every(), Duration::from_secs(3));
        let text = tokens.auth_request(Some(4));
        let Ok(Request::Auth { id, token }) = parse_request(&text) else {
            panic!("{text}");
        };
        assert_eq!(id, Some(4));
        let claims = decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(SECRET),
            &Validation::new(Algorithm::HS256),
        )
        .expect("verifies")
        .claims;
        assert_eq!(claims["topics"], json!(["lt.*"]));
        assert_eq!(claims["sub"], SUBJECT);
        let exp = claims["exp"].as_u64().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!((now + 8..=now + 9).contains(&exp), "{exp} vs {now}");
    }

    #[test]
    fn secret_file_loses_its_newline_and_short_ttls_are_refused() {
        let path = std::env::temp_dir().join(format!("lt-secret-{}", std::process::id()));
        let mut with_newline = SECRET.to_vec();
        with_newline.extend_from_slice(b"\r\n");
        std::fs::write(&path, &with_newline).unwrap();
        let from_file = Tokens::from_secret_file(&path, vec![], Duration::from_secs(3)).unwrap();
        let direct = Tokens::new(SECRET, vec![], Duration::from_secs(3)).unwrap();
        let _ = std::fs::remove_file(&path);
        // Same key: a token of one verifies with the other's secret.
        let token = from_file.mint();
        let check = decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(SECRET),
            &Validation::new(Algorithm::HS256),
        );
        assert!(check.is_ok(), "{check:?}");
        assert!(!direct.mint().is_empty());
        let err = Tokens::new(SECRET, vec![], Duration::from_secs(2)).unwrap_err();
        assert!(err.to_string().contains("--token-ttl"), "{err}");
        assert!(Tokens::new(b"", vec![], Duration::from_secs(5)).is_err());
    }
}
