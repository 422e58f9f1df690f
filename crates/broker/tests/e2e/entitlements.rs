//! Subscriber entitlements end to end: a real broker with `[auth]`, tokens
//! made here (HS256), tungstenite as the client — what a browser's
//! WebSocket does too (no custom headers: the token travels in a frame).

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use tickwire_broker::config::AuthConfig;

const SECRET: &str = "end-to-end secret, at least 32 bytes";

pub(crate) fn start_auth() -> tickwire_broker::Broker {
    let mut config = test_config();
    config.auth = Some(AuthConfig {
        jwt_hs256_secret: Some(SECRET.into()),
        jwt_hs256_secret_file: None,
        jwt_public_key_file: None,
        issuer: String::new(),
        audience: String::new(),
        anonymous_topics: vec!["DEMO.*".into()],
    });
    start_with(config)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn token(exp: u64, topics: &[&str]) -> String {
    encode(
        &Header::default(),
        &json!({"exp": exp, "sub": "trader-7", "topics": topics}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn auth(ws: &mut Ws, token: &str, id: u64) -> Value {
    send_json(ws, json!({"op": "auth", "token": token, "id": id}));
    recv_json(ws)
}

#[test]
fn auth_then_subscribe_then_quotes_and_refused_before() {
    let broker = start_auth();
    let mut ws = connect(&broker);
    send_json(
        &mut ws,
        json!({"op": "subscribe", "topics": ["AAPL"], "id": 1}),
    );
    let refused = recv_json(&mut ws);
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_u64()),
        (Some("not_authorized"), Some(1))
    );

    let exp = unix_now() + 600;
    let authed = auth(&mut ws, &token(exp, &["AAPL", "NASDAQ.*"]), 2);
    assert_eq!(
        authed,
        json!({"type": "authed", "id": 2, "sub": "trader-7", "exp": exp})
    );
    subscribe(&mut ws, &["AAPL", "NASDAQ.*", "DEMO.X"], false);
    let mut p = publisher(&broker);
    publish(&mut p, quote("NASDAQ.MSFT", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "NASDAQ.MSFT");
}

#[test]
fn a_narrowing_refresh_stops_the_quotes_of_removed_entries() {
    let broker = start_auth();
    let mut ws = connect(&broker);
    let exp = unix_now() + 600;
    auth(&mut ws, &token(exp, &["AAPL", "MSFT"]), 1);
    subscribe(&mut ws, &["AAPL", "MSFT"], false);
    let narrowed = auth(&mut ws, &token(exp, &["AAPL"]), 2);
    assert_eq!(narrowed["type"], "authed");
    let notice = recv_json(&mut ws);
    assert_eq!(
        notice,
        json!({"type": "unsubscribed", "topics": ["MSFT"], "reason": "not_authorized"})
    );
    let mut p = publisher(&broker);
    publish(&mut p, quote("MSFT", 1.0));
    publish(&mut p, quote("AAPL", 2.0));
    // MSFT no longer flows: the next quote is AAPL's.
    assert_eq!(next_quote(&mut ws)["topic"], "AAPL");
}

#[test]
fn a_token_that_runs_out_closes_the_connection_with_1008() {
    let broker = start_auth();
    let mut ws = connect(&broker);
    let authed = auth(&mut ws, &token(unix_now() + 2, &["AAPL"]), 1);
    assert_eq!(authed["type"], "authed");
    match recv(&mut ws) {
        tungstenite::Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert_eq!(frame.reason, "token expired");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
    assert!(wait_until(|| broker.metrics().closes_sent(1008) == 1));
}
