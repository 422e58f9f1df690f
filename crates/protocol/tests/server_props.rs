//! Property tests: server encodings round-trip through the client decoders.

mod common;

use common::quote;
use proptest::prelude::*;
use tickwire_protocol::server::{
    binary_quote, decode_binary, decode_json, json_quote, ServerMessage,
};
use tickwire_protocol::Quote;

fn nums(q: &Quote) -> [f64; 6] {
    [q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume]
}

proptest! {
    #[test]
    fn json_quote_round_trips(q in quote(), seq in any::<u64>()) {
        let mut out = Vec::new();
        json_quote(&q, seq, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        // Valid JSON with the contract's field order.
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        prop_assert_eq!(v["ts"].as_u64(), Some(q.ts));
        let keys = ["type", "topic", "seq", "bid", "ask", "bid_size", "ask_size", "last", "volume", "ts"];
        let mut at = 0;
        for k in keys {
            let pos = text[at..].find(&format!("\"{k}\":"));
            prop_assert!(pos.is_some(), "{} missing/out of order in {}", k, text);
            at += pos.unwrap() + k.len() + 3;
        }
        let Ok(ServerMessage::Quote { quote: back, seq: bseq }) = decode_json(text) else {
            return Err(TestCaseError::fail(format!("did not decode: {text}")));
        };
        prop_assert_eq!(bseq, seq);
        prop_assert_eq!(&back.topic, &q.topic);
        prop_assert_eq!(back.ts, q.ts);
        for (a, b) in nums(&q).into_iter().zip(nums(&back)) {
            if a.is_finite() {
                prop_assert_eq!(a.to_bits(), b.to_bits(), "{} in {}", a, text);
            } else {
                prop_assert!(b.is_nan());
            }
        }
    }

    #[test]
    fn binary_round_trips_bit_exact(q in quote(), seq in any::<u64>()) {
        let mut out = Vec::new();
        binary_quote(&q, seq, &mut out);
        prop_assert_eq!(out.len(), 66 + q.topic.len());
        let Ok(ServerMessage::Quote { quote: back, seq: bseq }) = decode_binary(&out) else {
            return Err(TestCaseError::fail("did not decode"));
        };
        prop_assert_eq!(bseq, seq);
        prop_assert_eq!(&back.topic, &q.topic);
        prop_assert_eq!(back.ts, q.ts);
        prop_assert_eq!(nums(&q).map(f64::to_bits), nums(&back).map(f64::to_bits));
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), text in any::<String>()) {
        let _ = decode_binary(&bytes);
        let _ = decode_json(&text);
        let _ = decode_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn subscribed_acks_never_panic(
        rec in r#"[\[\]{}":,a-z0-9.-]{0,24}"#,
        unrec in r#"[\[\]{}":,A-Z0-9.-]{0,24}"#,
    ) {
        let text = format!(
            r#"{{"type":"subscribed","topics":["A"],"epoch":"e","recovered":{rec},"unrecovered":{unrec}}}"#
        );
        let _ = decode_json(&text);
    }
}
