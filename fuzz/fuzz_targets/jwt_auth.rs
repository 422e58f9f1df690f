//! The `auth` path: arbitrary tokens against a configured HS256 key. Never
//! a panic, and nothing forged verifies (the fuzzer does not know the key).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tickwire_broker::auth::Entitlements;
use tickwire_broker::config::AuthConfig;

fn entitlements() -> &'static Entitlements {
    static E: OnceLock<Entitlements> = OnceLock::new();
    E.get_or_init(|| {
        Entitlements::load(&AuthConfig {
            jwt_hs256_secret: Some("fuzzing secret, thirty-two bytes!".into()),
            jwt_hs256_secret_file: None,
            jwt_public_key_file: None,
            issuer: "iss".into(),
            audience: "aud".into(),
            anonymous_topics: vec![],
        })
        .expect("key loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    assert!(entitlements().verify(token, 0).is_err(), "a forged token verified");
});
