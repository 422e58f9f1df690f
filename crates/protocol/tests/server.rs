//! Server message encodings and the client-side decoders.

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::server::{
    binary_quote, decode_binary, decode_json, json_authed, json_error, json_quote, json_revoked,
    json_subscribed, json_subscribed_resumed, json_unsubscribed, ServerMessage, BINARY_QUOTE,
    BINARY_QUOTE_HEADER_LEN,
};
use tickwire_protocol::Quote;

fn example() -> Quote {
    Quote {
        topic: "AAPL".into(),
        bid: 189.12,
        ask: 189.14,
        bid_size: 300.0,
        ask_size: 200.0,
        last: 189.13,
        volume: 1_234_567.0,
        ts: 1_732_345_678_901_234_567,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn quote_text(q: &Quote, seq: u64) -> String {
    let mut out = Vec::new();
    json_quote(q, seq, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn contract_examples_exactly() {
    assert_eq!(
        json_subscribed(Some(1), &s(&["AAPL", "MSFT"]), "9f3b2c71a0d4e815"),
        r#"{"type":"subscribed","id":1,"topics":["AAPL","MSFT"],"epoch":"9f3b2c71a0d4e815"}"#
    );
    assert_eq!(
        json_unsubscribed(Some(3), &s(&["AAPL"])),
        r#"{"type":"unsubscribed","id":3,"topics":["AAPL"]}"#
    );
    assert_eq!(
        quote_text(&example(), 42),
        r#"{"type":"quote","topic":"AAPL","seq":42,"bid":189.12,"ask":189.14,"bid_size":300.0,"ask_size":200.0,"last":189.13,"volume":1234567.0,"ts":1732345678901234567}"#
    );
    assert_eq!(
        json_error(Some(2), ErrorCode::BadRequest, "max_hz must be > 0"),
        r#"{"type":"error","id":2,"code":"bad_request","message":"max_hz must be > 0"}"#
    );
}

#[test]
fn id_omitted_when_absent() {
    assert_eq!(
        json_subscribed(None, &s(&["NASDAQ.*"]), "e"),
        r#"{"type":"subscribed","topics":["NASDAQ.*"],"epoch":"e"}"#
    );
    assert_eq!(
        json_unsubscribed(None, &s(&["*"])),
        r#"{"type":"unsubscribed","topics":["*"]}"#
    );
    assert_eq!(
        json_error(None, ErrorCode::NotAuthorized, "no"),
        r#"{"type":"error","code":"not_authorized","message":"no"}"#
    );
}

#[test]
fn acks_and_errors_decode() {
    assert_eq!(
        decode_json(&json_subscribed(
            Some(9_007_199_254_740_991),
            &s(&["A", "A"]),
            "ep"
        ))
        .unwrap(),
        ServerMessage::Subscribed {
            id: Some(9_007_199_254_740_991),
            topics: s(&["A", "A"]),
            epoch: "ep".into(),
            recovered: None,
            unrecovered: vec![],
        }
    );
    assert_eq!(
        decode_json(&json_unsubscribed(None, &s(&["B"]))).unwrap(),
        ServerMessage::Unsubscribed {
            id: None,
            topics: s(&["B"]),
            reason: None,
        }
    );
    assert_eq!(
        json_revoked(&s(&["NYSE.*"]), "not_authorized"),
        r#"{"type":"unsubscribed","topics":["NYSE.*"],"reason":"not_authorized"}"#
    );
    assert_eq!(
        decode_json(&json_revoked(&s(&["X"]), "not_authorized")).unwrap(),
        ServerMessage::Unsubscribed {
            id: None,
            topics: s(&["X"]),
            reason: Some("not_authorized".into()),
        }
    );
    assert_eq!(
        json_authed(Some(7), Some("alice"), 1_732_345_678),
        r#"{"type":"authed","id":7,"sub":"alice","exp":1732345678}"#
    );
    assert_eq!(json_authed(None, None, 5), r#"{"type":"authed","exp":5}"#);
    assert_eq!(
        decode_json(&json_authed(Some(7), Some("alice"), 9)).unwrap(),
        ServerMessage::Authed {
            id: Some(7),
            sub: Some("alice".into()),
            exp: 9
        }
    );
    let msg = "bad \"x\"\n\\ \u{1} é";
    assert_eq!(
        decode_json(&json_error(Some(0), ErrorCode::TooManySubscriptions, msg)).unwrap(),
        ServerMessage::Error {
            id: Some(0),
            code: "too_many_subscriptions".into(),
            message: msg.into()
        }
    );
}

#[test]
fn resumed_acks_exactly() {
    // The contract's example, key order included.
    assert_eq!(
        json_subscribed_resumed(
            Some(5),
            &s(&["AAPL", "FX.*"]),
            "9f3b2c71a0d4e815",
            &["FX.EURUSD"]
        ),
        r#"{"type":"subscribed","id":5,"topics":["AAPL","FX.*"],"epoch":"9f3b2c71a0d4e815","recovered":false,"unrecovered":["FX.EURUSD"]}"#
    );
    assert_eq!(
        json_subscribed_resumed(Some(5), &s(&["AAPL", "FX.*"]), "9f3b2c71a0d4e815", &[]),
        r#"{"type":"subscribed","id":5,"topics":["AAPL","FX.*"],"epoch":"9f3b2c71a0d4e815","recovered":true}"#
    );
    assert_eq!(
        json_subscribed_resumed(None, &s(&["*"]), "e", &["B", "A"]),
        r#"{"type":"subscribed","topics":["*"],"epoch":"e","recovered":false,"unrecovered":["B","A"]}"#
    );
    // Without since the ack is unchanged (v1).
    assert_eq!(
        json_subscribed(Some(5), &s(&["AAPL"]), "e"),
        r#"{"type":"subscribed","id":5,"topics":["AAPL"],"epoch":"e"}"#
    );
}

#[test]
fn resumed_acks_decode() {
    assert_eq!(
        decode_json(&json_subscribed_resumed(
            Some(5),
            &s(&["AAPL", "FX.*"]),
            "ep",
            &["FX.EURUSD", "FX.GBP\"X"]
        ))
        .unwrap(),
        ServerMessage::Subscribed {
            id: Some(5),
            topics: s(&["AAPL", "FX.*"]),
            epoch: "ep".into(),
            recovered: Some(false),
            unrecovered: s(&["FX.EURUSD", "FX.GBP\"X"]),
        }
    );
    assert_eq!(
        decode_json(&json_subscribed_resumed(None, &s(&["A"]), "ep", &[])).unwrap(),
        ServerMessage::Subscribed {
            id: None,
            topics: s(&["A"]),
            epoch: "ep".into(),
            recovered: Some(true),
            unrecovered: vec![],
        }
    );
    for text in [
        r#"{"type":"subscribed","topics":["A"],"epoch":"e","recovered":"yes"}"#,
        r#"{"type":"subscribed","topics":["A"],"epoch":"e","recovered":null}"#,
        r#"{"type":"subscribed","topics":["A"],"epoch":"e","recovered":false,"unrecovered":"A"}"#,
        r#"{"type":"subscribed","topics":["A"],"epoch":"e","recovered":false,"unrecovered":[1]}"#,
    ] {
        assert!(decode_json(text).is_err(), "{text}");
    }
}

#[test]
fn non_finite_is_null_and_decodes_as_nan() {
    let mut q = example();
    q.bid = f64::NAN;
    q.ask = f64::INFINITY;
    q.last = f64::NEG_INFINITY;
    q.volume = -0.0;
    let text = quote_text(&q, 1);
    assert!(text.contains(r#""bid":null,"ask":null"#), "{text}");
    assert!(text.contains(r#""last":null,"volume":-0.0,"#), "{text}");
    let ServerMessage::Quote { quote, seq } = decode_json(&text).unwrap() else {
        panic!("not a quote");
    };
    assert_eq!(seq, 1);
    assert!(quote.bid.is_nan() && quote.ask.is_nan() && quote.last.is_nan());
    assert_eq!(quote.volume.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn extreme_floats_are_valid_json() {
    let mut q = example();
    q.bid = f64::MAX;
    q.ask = f64::MIN_POSITIVE;
    q.bid_size = 5e-324;
    q.ask_size = 1e300;
    q.last = -1e-300;
    let text = quote_text(&q, u64::MAX);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["seq"].as_u64(), Some(u64::MAX));
    assert!(text.len() < 400, "compact number form: {text}");
    assert_eq!(
        decode_json(&text).unwrap(),
        ServerMessage::Quote {
            quote: q,
            seq: u64::MAX
        }
    );
}

#[test]
fn topic_is_escaped() {
    let mut q = example();
    q.topic = "a\"b\\c\u{0}".into();
    let text = quote_text(&q, 0);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["topic"].as_str(), Some("a\"b\\c\u{0}"));
}

#[test]
fn json_quote_appends() {
    let mut out = b"xy".to_vec();
    json_quote(&example(), 1, &mut out);
    assert!(out.starts_with(b"xy{\"type\":\"quote\""));
}

#[test]
fn decode_json_rejects_garbage() {
    for text in [
        "",
        "[]",
        r#"{"type":"nope"}"#,
        r#"{"topics":[]}"#,
        r#"{"type":"subscribed","topics":["A"]}"#,
        r#"{"type":"subscribed","id":-1,"topics":["A"],"epoch":"e"}"#,
        r#"{"type":"quote","topic":"A","seq":1,"bid":1,"ask":1,"bid_size":1,"ask_size":1,"last":1,"volume":1,"ts":1.5}"#,
        r#"{"type":"quote","topic":"A","seq":1,"bid":"1","ask":1,"bid_size":1,"ask_size":1,"last":1,"volume":1,"ts":1}"#,
        r#"{"type":"quote","topic":"A","seq":1,"ask":1,"bid_size":1,"ask_size":1,"last":1,"volume":1,"ts":1}"#,
    ] {
        assert!(decode_json(text).is_err(), "{text}");
    }
}

#[test]
fn binary_layout_exact_offsets() {
    let mut q = example();
    q.ask = f64::NAN;
    let mut out = vec![0xEE];
    binary_quote(&q, 42, &mut out);
    let b = &out[1..];
    assert_eq!(BINARY_QUOTE, 1);
    assert_eq!(BINARY_QUOTE_HEADER_LEN, 66);
    assert_eq!(b.len(), 66 + 4);
    assert_eq!(b[0], 1);
    assert_eq!(b[1], 4);
    assert_eq!(&b[2..10], &42u64.to_le_bytes());
    assert_eq!(&b[10..18], &q.ts.to_le_bytes());
    assert_eq!(&b[18..26], &189.12f64.to_le_bytes());
    assert_eq!(&b[26..34], &f64::NAN.to_le_bytes());
    assert_eq!(&b[34..42], &300.0f64.to_le_bytes());
    assert_eq!(&b[42..50], &200.0f64.to_le_bytes());
    assert_eq!(&b[50..58], &189.13f64.to_le_bytes());
    assert_eq!(&b[58..66], &1_234_567.0f64.to_le_bytes());
    assert_eq!(&b[66..], b"AAPL");

    let ServerMessage::Quote { quote, seq } = decode_binary(b).unwrap() else {
        panic!("not a quote");
    };
    assert_eq!(seq, 42);
    assert_eq!(quote.ask.to_bits(), f64::NAN.to_bits());
    q.ask = 0.0;
    let mut quote = quote;
    quote.ask = 0.0;
    assert_eq!(quote, q);
}

#[test]
fn decode_binary_rejects_malformed() {
    let mut good = Vec::new();
    binary_quote(&example(), 1, &mut good);
    assert!(decode_binary(&good).is_ok());
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        good[..65].to_vec(),
        good[..good.len() - 1].to_vec(),
        [&good[..], b"X"].concat(),
    ];
    let mut bad_type = good.clone();
    bad_type[0] = 2;
    cases.push(bad_type);
    let mut zero_len = good[..66].to_vec();
    zero_len[1] = 0;
    cases.push(zero_len);
    let mut bad_topic = good.clone();
    bad_topic[66] = b' ';
    cases.push(bad_topic);
    let mut long = Vec::new();
    let mut q = example();
    q.topic = "a".repeat(65);
    binary_quote(&q, 1, &mut long);
    long[1] = 65;
    long.push(b'a');
    cases.push(long);
    for c in cases {
        assert!(decode_binary(&c).is_err(), "{c:?}");
    }
}

#[test]
fn max_length_topic_binary() {
    let mut q = example();
    q.topic = "Z".repeat(64);
    let mut out = Vec::new();
    binary_quote(&q, 7, &mut out);
    assert_eq!(out.len(), 130);
    assert_eq!(out[1], 64);
    assert_eq!(
        decode_binary(&out).unwrap(),
        ServerMessage::Quote { quote: q, seq: 7 }
    );
}
