//! Subscriber entitlements: JWT verification and the grants a token carries.
//!
//! The key is loaded at start and re-read on SIGHUP (files only), never per
//! connection. Only the configured algorithm is accepted (`alg: none` does
//! not even parse; a token signed with another algorithm — e.g. HS256 with
//! the RSA public key as secret — fails), `exp` is required and checked
//! with no leeway, `iss`/`aud` when configured (a missing claim counts as
//! wrong). Secrets and tokens are never logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde::Deserialize;
use tickwire_protocol::{PrefixIndex, Selector};

use crate::config::{AuthConfig, MIN_HS256_SECRET};

/// Topic grants: exact topics and `PREFIX*` patterns.
pub type GrantSet = PrefixIndex<()>;

/// A grant set from topic strings (already validated).
pub fn grant_set<'a>(topics: impl IntoIterator<Item = &'a String>) -> GrantSet {
    let mut grants = PrefixIndex::new();
    for selector in topics.into_iter().filter_map(|t| Selector::parse(t)) {
        grants.insert(&selector, ());
    }
    grants
}

/// The coverage rule: topic `T` is covered by grant `T` or by `P*` with `T`
/// starting with `P`; pattern `Q*` by a grant `P*` with `Q` starting with `P`.
pub fn covers(grants: &GrantSet, selector: &Selector) -> bool {
    match selector {
        Selector::Exact(topic) => grants.matches(topic),
        Selector::Prefix(q) => grants.matching(q).any(|(key, _)| key.ends_with('*')),
    }
}

/// A key file or secret that cannot be used; names the file or key.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct KeyError {
    pub what: String,
    pub problem: String,
}

/// A verified token.
#[derive(Debug)]
pub struct Granted {
    pub sub: Option<String>,
    /// The `exp` claim, seconds since the Unix epoch.
    pub exp: u64,
    pub grants: GrantSet,
}

enum KeySource {
    Inline(Vec<u8>),
    SecretFile(PathBuf),
    PublicKeyFile(PathBuf),
}

struct Key {
    key: DecodingKey,
    alg: Algorithm,
}

/// Everything entitlement checks need, shared by every worker.
pub struct Entitlements {
    source: KeySource,
    key: RwLock<Arc<Key>>,
    issuer: Option<String>,
    audience: Option<String>,
    /// Grants every connection has, before and after `auth`.
    pub anonymous: Arc<GrantSet>,
}

impl std::fmt::Debug for Entitlements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("Entitlements")
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    topics: Option<serde_json::Value>,
}

impl Entitlements {
    pub fn load(config: &AuthConfig) -> Result<Entitlements, KeyError> {
        let source = match (
            &config.jwt_hs256_secret,
            &config.jwt_hs256_secret_file,
            &config.jwt_public_key_file,
        ) {
            (Some(secret), _, _) => KeySource::Inline(secret.as_bytes().to_vec()),
            (_, Some(file), _) => KeySource::SecretFile(file.into()),
            (_, _, Some(file)) => KeySource::PublicKeyFile(file.into()),
            _ => {
                return Err(KeyError {
                    what: "auth".into(),
                    problem: "no verification key configured".into(),
                })
            }
        };
        let key = load_key(&source)?;
        let nonempty = |s: &String| (!s.is_empty()).then(|| s.clone());
        Ok(Entitlements {
            source,
            key: RwLock::new(Arc::new(key)),
            issuer: nonempty(&config.issuer),
            audience: nonempty(&config.audience),
            anonymous: Arc::new(grant_set(&config.anonymous_topics)),
        })
    }

    /// SIGHUP: re-reads the key file; on error the old key stays.
    pub fn reload(&self) -> Result<(), KeyError> {
        if let KeySource::Inline(_) = self.source {
            return Ok(());
        }
        let key = load_key(&self.source)?;
        *self.key.write() = Arc::new(key);
        Ok(())
    }

    /// The file the key comes from, for logs.
    pub fn key_file(&self) -> Option<&Path> {
        match &self.source {
            KeySource::Inline(_) => None,
            KeySource::SecretFile(p) | KeySource::PublicKeyFile(p) => Some(p),
        }
    }

    /// Verifies `token` at `unix_now` (seconds). The error is the message
    /// for the client's `not_authorized` reply.
    pub fn verify(&self, token: &str, unix_now: u64) -> Result<Granted, String> {
        let key = self.key.read().clone();
        let mut validation = Validation::new(key.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| describe(e.kind()))?;
        let claims = data.claims;
        let Some(exp) = claims.exp else {
            return Err("token lacks the \"exp\" claim".into());
        };
        // No leeway: a token whose `exp` is at or before now has expired.
        if exp <= unix_now {
            return Err("token expired".into());
        }
        let topics = match &claims.topics {
            Some(serde_json::Value::Array(items)) if !items.is_empty() => items,
            _ => return Err("token lacks a non-empty \"topics\" claim".into()),
        };
        let mut grants = PrefixIndex::new();
        for item in topics {
            let selector = item.as_str().and_then(Selector::parse).ok_or_else(|| {
                "token's \"topics\" claim has an invalid topic or pattern".to_owned()
            })?;
            grants.insert(&selector, ());
        }
        Ok(Granted {
            sub: claims.sub,
            exp,
            grants,
        })
    }
}

fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "token expired".into(),
        K::InvalidSignature => "token signature does not verify".into(),
        K::InvalidAlgorithm => "token algorithm not accepted".into(),
        K::InvalidIssuer => "token issuer not accepted".into(),
        K::InvalidAudience => "token audience not accepted".into(),
        K::ImmatureSignature => "token not valid yet (nbf)".into(),
        K::MissingRequiredClaim(claim) => format!("token lacks the {claim:?} claim"),
        _ => "token malformed".into(),
    }
}

fn load_key(source: &KeySource) -> Result<Key, KeyError> {
    let err = |what: &Path, problem: String| KeyError {
        what: what.display().to_string(),
        problem,
    };
    match source {
        KeySource::Inline(secret) => Ok(Key {
            key: DecodingKey::from_secret(secret),
            alg: Algorithm::HS256,
        }),
        KeySource::SecretFile(path) => {
            let mut bytes = std::fs::read(path).map_err(|e| err(path, e.to_string()))?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            if bytes.len() < MIN_HS256_SECRET {
                return Err(err(
                    path,
                    format!("the secret must be at least {MIN_HS256_SECRET} bytes"),
                ));
            }
            Ok(Key {
                key: DecodingKey::from_secret(&bytes),
                alg: Algorithm::HS256,
            })
        }
        KeySource::PublicKeyFile(path) => {
            let pem = std::fs::read(path).map_err(|e| err(path, e.to_string()))?;
            // The key type decides the algorithm; each parser refuses the
            // other types.
            if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                return Ok(Key {
                    key,
                    alg: Algorithm::EdDSA,
                });
            }
            if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                return Ok(Key {
                    key,
                    alg: Algorithm::ES256,
                });
            }
            if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                return Ok(Key {
                    key,
                    alg: Algorithm::RS256,
                });
            }
            Err(err(
                path,
                "not a PEM Ed25519, EC P-256 or RSA public key".into(),
            ))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
