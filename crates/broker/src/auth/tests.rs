//! JWT verification: every rule of the contract, with keys made here.

use std::path::PathBuf;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::config::AuthConfig;

pub const SECRET: &str = "an HS256 secret of at least 32 bytes!";
/// Real Unix time: the JWT library checks `exp` against the real clock too.
pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn hs256_config() -> AuthConfig {
    AuthConfig {
        jwt_hs256_secret: Some(SECRET.into()),
        jwt_hs256_secret_file: None,
        jwt_public_key_file: None,
        issuer: String::new(),
        audience: String::new(),
        anonymous_topics: vec!["DEMO.*".into()],
    }
}

pub fn hs256(claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tickwire-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn topics(g: &GrantSet) -> Vec<String> {
    let mut t: Vec<String> = g.iter().map(|(k, _)| k.to_string()).collect();
    t.sort();
    t
}

#[test]
fn a_good_hs256_token_gives_its_grants_sub_and_exp() {
    let e = Entitlements::load(&hs256_config()).unwrap();
    let token = hs256(json!({"exp": now() + 60, "sub": "alice", "topics": ["AAPL", "NASDAQ.*"]}));
    let g = e.verify(&token, now()).unwrap();
    assert_eq!((g.sub.as_deref(), g.exp), (Some("alice"), now() + 60));
    assert_eq!(topics(&g.grants), ["AAPL", "NASDAQ.*"]);
    // sub is optional.
    let token = hs256(json!({"exp": now() + 60, "topics": ["X"]}));
    assert_eq!(e.verify(&token, now()).unwrap().sub, None);
}

#[test]
fn exp_is_required_and_checked_without_leeway() {
    let e = Entitlements::load(&hs256_config()).unwrap();
    // Real time for the library's own check; now() for ours.
    let real = jsonwebtoken::get_current_timestamp();
    for exp in [real, real - 1, real - 30] {
        let token = hs256(json!({"exp": exp, "topics": ["X"]}));
        assert_eq!(
            e.verify(&token, real).unwrap_err(),
            "token expired",
            "exp {exp}"
        );
    }
    let token = hs256(json!({"exp": real + 5, "topics": ["X"]}));
    assert!(e.verify(&token, real).is_ok());
    // Expired by our clock at exactly exp.
    let token = hs256(json!({"exp": now() + 10, "topics": ["X"]}));
    assert_eq!(e.verify(&token, now() + 10).unwrap_err(), "token expired");
    let token = hs256(json!({"topics": ["X"]}));
    assert!(e.verify(&token, now()).unwrap_err().contains("exp"));
}

#[test]
fn topics_claim_is_required_non_empty_and_valid() {
    let e = Entitlements::load(&hs256_config()).unwrap();
    for claims in [
        json!({"exp": now() + 60}),
        json!({"exp": now() + 60, "topics": []}),
        json!({"exp": now() + 60, "topics": "AAPL"}),
        json!({"exp": now() + 60, "topics": ["BAD TOPIC"]}),
        json!({"exp": now() + 60, "topics": [7]}),
    ] {
        assert!(e.verify(&hs256(claims.clone()), now()).is_err(), "{claims}");
    }
}

#[test]
fn bad_signatures_alg_none_and_garbage_are_refused() {
    let e = Entitlements::load(&hs256_config()).unwrap();
    let other = encode(
        &Header::default(),
        &json!({"exp": now() + 60, "topics": ["X"]}),
        &EncodingKey::from_secret(b"another secret, also 32 bytes long!!"),
    )
    .unwrap();
    assert_eq!(
        e.verify(&other, now()).unwrap_err(),
        "token signature does not verify"
    );
    // alg: none, no signature.
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&format!(r#"{{"exp":{},"topics":["X"]}}"#, now() + 60))
    );
    assert!(e.verify(&none, now()).is_err());
    for garbage in ["", "a.b", "a.b.c", "....", "x.y.z.w"] {
        assert!(e.verify(garbage, now()).is_err(), "{garbage:?}");
    }
}

#[test]
fn issuer_and_audience_when_configured() {
    let mut config = hs256_config();
    config.issuer = "https://auth.desk".into();
    config.audience = "tickwire".into();
    let e = Entitlements::load(&config).unwrap();
    let ok = |claims| e.verify(&hs256(claims), now());
    assert!(ok(
        json!({"exp": now() + 60, "topics": ["X"], "iss": "https://auth.desk", "aud": "tickwire"})
    )
    .is_ok());
    // An aud array containing the audience is accepted.
    assert!(ok(json!({"exp": now() + 60, "topics": ["X"], "iss": "https://auth.desk", "aud": ["other", "tickwire"]})).is_ok());
    for claims in [
        json!({"exp": now() + 60, "topics": ["X"], "iss": "https://evil", "aud": "tickwire"}),
        json!({"exp": now() + 60, "topics": ["X"], "iss": "https://auth.desk", "aud": "other"}),
        json!({"exp": now() + 60, "topics": ["X"], "aud": "tickwire"}),
        json!({"exp": now() + 60, "topics": ["X"], "iss": "https://auth.desk"}),
    ] {
        assert!(ok(claims.clone()).is_err(), "{claims}");
    }
    // Not configured: not checked, present or not.
    let e = Entitlements::load(&hs256_config()).unwrap();
    let token =
        hs256(json!({"exp": now() + 60, "topics": ["X"], "iss": "anyone", "aud": "anything"}));
    assert!(e.verify(&token, now()).is_ok());
}

#[test]
fn eddsa_and_es256_public_keys_and_no_algorithm_confusion() {
    for (alg, rcgen_alg) in [
        (Algorithm::EdDSA, &rcgen::PKCS_ED25519),
        (Algorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256),
    ] {
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let public = temp_file(&format!("{alg:?}.pub.pem"), &pair.public_key_pem());
        let mut config = hs256_config();
        config.jwt_hs256_secret = None;
        config.jwt_public_key_file = Some(public.display().to_string());
        let e = Entitlements::load(&config).unwrap();
        let private = pair.serialize_pem();
        let signing = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
        };
        let claims = json!({"exp": now() + 60, "topics": ["X"]});
        let token = encode(&Header::new(alg), &claims, &signing).unwrap();
        assert!(e.verify(&token, now()).is_ok(), "{alg:?}");
        // Algorithm confusion: HS256 "signed" with the public key's bytes.
        let forged = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(pair.public_key_pem().as_bytes()),
        )
        .unwrap();
        assert_eq!(
            e.verify(&forged, now()).unwrap_err(),
            "token algorithm not accepted",
            "{alg:?}"
        );
        // And an HS256 key refuses the asymmetric token.
        let hs = Entitlements::load(&hs256_config()).unwrap();
        assert!(hs.verify(&token, now()).is_err());
    }
}

#[test]
fn a_key_file_reloads_and_a_bad_one_keeps_the_old_key() {
    let file = temp_file("secret", &format!("{SECRET}\n"));
    let mut config = hs256_config();
    config.jwt_hs256_secret = None;
    config.jwt_hs256_secret_file = Some(file.display().to_string());
    let e = Entitlements::load(&config).unwrap();
    let token = hs256(json!({"exp": now() + 60, "topics": ["X"]}));
    assert!(e.verify(&token, now()).is_ok(), "trailing newline ignored");
    std::fs::write(&file, "too short").unwrap();
    let err = e.reload().unwrap_err();
    assert!(
        err.what.contains("secret") && !err.problem.contains("too short"),
        "{err}"
    );
    assert!(e.verify(&token, now()).is_ok(), "old key kept");
    let new_secret = "a brand new secret, 32 bytes or more";
    std::fs::write(&file, new_secret).unwrap();
    e.reload().unwrap();
    assert!(
        e.verify(&token, now()).is_err(),
        "old tokens no longer verify"
    );
    let token = encode(
        &Header::default(),
        &json!({"exp": now() + 60, "topics": ["X"]}),
        &EncodingKey::from_secret(new_secret.as_bytes()),
    )
    .unwrap();
    assert!(e.verify(&token, now()).is_ok());
}

#[test]
fn the_coverage_rule() {
    let grants = grant_set(&[
        "AAPL".to_string(),
        "NASDAQ.*".to_string(),
        "FX.EUR*".to_string(),
    ]);
    let sel = |s: &str| Selector::parse(s).unwrap();
    for yes in [
        "AAPL",
        "NASDAQ.MSFT",
        "NASDAQ.*",
        "NASDAQ.M*",
        "FX.EURUSD",
        "FX.EUR*",
        "FX.EURO*",
    ] {
        assert!(covers(&grants, &sel(yes)), "{yes}");
    }
    for no in [
        "AAPL2",
        "AAP*",
        "AAPL*",
        "NASDAQ",
        "NASDA*",
        "*",
        "FX.*",
        "FX.EU*",
        "FX.GBPUSD",
    ] {
        assert!(!covers(&grants, &sel(no)), "{no}");
    }
    let all = grant_set(&["*".to_string()]);
    assert!(covers(&all, &sel("*")) && covers(&all, &sel("ANY")) && covers(&all, &sel("A*")));
}

#[test]
fn the_example_issuer_script_makes_tokens_the_broker_accepts() {
    let file = temp_file("script-secret", &format!("{SECRET}\n"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/issue-token.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(["--secret-file", &file.display().to_string()])
        .args([
            "--topics", "AAPL", "NASDAQ.*", "--sub", "alice", "--ttl", "600",
        ])
        .output()
        .expect("python3 runs the example issuer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let e = Entitlements::load(&hs256_config()).unwrap();
    let g = e
        .verify(token.trim(), now())
        .expect("the script's token verifies");
    assert_eq!(g.sub.as_deref(), Some("alice"));
    assert_eq!(topics(&g.grants), ["AAPL", "NASDAQ.*"]);
}
