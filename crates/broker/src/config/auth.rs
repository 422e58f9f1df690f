//! `[auth]`: subscriber entitlements with JWT. Absent = v1 behaviour (every
//! client may subscribe to every topic).

use serde::Deserialize;

/// Shortest HS256 secret accepted: the hash's own size (RFC 7518 3.2).
pub const MIN_HS256_SECRET: usize = 32;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 shared secret, inline (prefer the `_file` form: configs get
    /// copied around).
    #[serde(default)]
    pub jwt_hs256_secret: Option<String>,
    /// HS256 shared secret in a file (its bytes, a trailing newline ignored).
    #[serde(default)]
    pub jwt_hs256_secret_file: Option<String>,
    /// Public key in PEM: Ed25519 (EdDSA), RSA (RS256) or EC P-256 (ES256),
    /// told apart by the key itself.
    #[serde(default)]
    pub jwt_public_key_file: Option<String>,
    /// Expected `iss`; "" = not checked.
    #[serde(default)]
    pub issuer: String,
    /// Expected `aud` (a string, or one element of an array); "" = not checked.
    #[serde(default)]
    pub audience: String,
    /// Grants every connection has, before and after `auth`.
    #[serde(default)]
    pub anonymous_topics: Vec<String>,
}

impl AuthConfig {
    /// The semantic checks; `Err((key, problem))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let sources = [
            self.jwt_hs256_secret.is_some(),
            self.jwt_hs256_secret_file.is_some(),
            self.jwt_public_key_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err((
                "auth",
                "set exactly one of jwt_hs256_secret, jwt_hs256_secret_file, jwt_public_key_file"
                    .into(),
            ));
        }
        if let Some(secret) = &self.jwt_hs256_secret {
            if secret.len() < MIN_HS256_SECRET {
                return Err((
                    "auth.jwt_hs256_secret",
                    format!("must be at least {MIN_HS256_SECRET} bytes"),
                ));
            }
        }
        if let Some(bad) = self
            .anonymous_topics
            .iter()
            .find(|t| tickwire_protocol::Selector::parse(t).is_none())
        {
            return Err((
                "auth.anonymous_topics",
                format!("invalid topic or pattern {bad:?}"),
            ));
        }
        Ok(())
    }
}
