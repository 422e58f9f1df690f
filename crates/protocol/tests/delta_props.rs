//! Property tests of field deltas: both encodings round-trip through the
//! client decoders, and applying a delta to the previous quote gives the
//! next one bit for bit (NaN payloads and -0.0 included, in binary).

mod common;

use common::{quote, six_f64};
use proptest::prelude::*;
use tickwire_protocol::server::{
    binary_delta, changed_mask, decode_binary, decode_json, fields, json_delta, FieldChanges,
    ServerMessage, BINARY_DELTA_HEADER_LEN,
};
use tickwire_protocol::Quote;

/// The next quote of the same topic: each field kept or replaced.
fn successor(prev: Quote) -> impl Strategy<Value = (Quote, Quote)> {
    (six_f64(), any::<u8>(), any::<u64>()).prop_map(move |(n, keep, ts)| {
        let old = fields(&prev);
        let pick = |i: usize| if keep & (1 << i) != 0 { old[i] } else { n[i] };
        let next = Quote {
            topic: prev.topic.clone(),
            bid: pick(0),
            ask: pick(1),
            bid_size: pick(2),
            ask_size: pick(3),
            last: pick(4),
            volume: pick(5),
            ts,
        };
        (prev.clone(), next)
    })
}

fn bits(q: &Quote) -> [u64; 6] {
    fields(q).map(f64::to_bits)
}

/// What a JSON client holds for a number: non-finite values travel as null.
fn json_view(x: f64) -> Option<u64> {
    x.is_finite().then_some(x.to_bits())
}

proptest! {
    #[test]
    fn binary_delta_rebuilds_the_next_quote(
        (prev, next) in quote().prop_flat_map(successor),
        seq in any::<u64>(),
    ) {
        let mask = changed_mask(&fields(&prev), &fields(&next));
        let mut out = Vec::new();
        binary_delta(&next.topic, seq, next.ts, &fields(&next), mask, &mut out);
        prop_assert_eq!(out.len(), BINARY_DELTA_HEADER_LEN + 8 * mask.count_ones() as usize + next.topic.len());
        let ServerMessage::Delta { topic, seq: got_seq, ts, changes } = decode_binary(&out).unwrap() else {
            panic!("not a delta");
        };
        prop_assert_eq!((topic.as_str(), got_seq, ts), (next.topic.as_str(), seq, next.ts));
        prop_assert_eq!(changes.mask, mask);
        let mut held = prev.clone();
        changes.apply(&mut held);
        held.ts = ts;
        prop_assert_eq!(bits(&held), bits(&next));
        prop_assert_eq!(held.ts, next.ts);
    }

    #[test]
    fn json_delta_rebuilds_what_a_json_client_holds(
        (prev, next) in quote().prop_flat_map(successor),
        seq in 0u64..(1 << 53),
    ) {
        let mask = changed_mask(&fields(&prev), &fields(&next));
        let mut out = Vec::new();
        json_delta(&next.topic, seq, next.ts, &fields(&next), mask, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        // The contract's key order: type, topic, seq, ts, then the changed
        // fields in field order.
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        prop_assert_eq!(v.as_object().unwrap().len(), 4 + mask.count_ones() as usize);
        let ServerMessage::Delta { changes, seq: got_seq, .. } = decode_json(text).unwrap() else {
            panic!("not a delta");
        };
        prop_assert_eq!(got_seq, seq);
        let mut held = prev.clone();
        changes.apply(&mut held);
        prop_assert_eq!(fields(&held).map(json_view), fields(&next).map(json_view));
    }

    #[test]
    fn hostile_binary_deltas_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let mut framed = vec![2u8];
        framed.extend_from_slice(&bytes);
        let _ = decode_binary(&framed);
    }
}

#[test]
fn unchanged_nan_is_no_change_and_signed_zero_is() {
    let a = [f64::NAN, 0.0, 1.0, 1.0, 1.0, 1.0];
    let b = [f64::NAN, -0.0, 1.0, 1.0, 1.0, 1.0];
    assert_eq!(changed_mask(&a, &b), 0b10);
    let other_nan = f64::from_bits(f64::NAN.to_bits() ^ 1);
    assert_eq!(changed_mask(&a, &[other_nan, 0.0, 1.0, 1.0, 1.0, 1.0]), 0b1);
}

#[test]
fn the_contract_example_delta() {
    let values = [189.13, 0.0, 0.0, 0.0, 0.0, 0.0];
    let mut out = Vec::new();
    json_delta("AAPL", 43, 1732345678901234999, &values, 0b1, &mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"type":"delta","topic":"AAPL","seq":43,"ts":1732345678901234999,"bid":189.13}"#
    );
    let mut bin = Vec::new();
    binary_delta("AAPL", 43, 7, &values, 0b1, &mut bin);
    assert_eq!(bin.len(), 19 + 8 + 4);
    assert_eq!(&bin[..2], &[2, 4]);
    assert_eq!(bin[18], 1);
}

#[test]
fn malformed_binary_deltas_are_refused() {
    let mut ok = Vec::new();
    binary_delta("AB", 1, 2, &[1.0; 6], 0b101, &mut ok);
    assert!(decode_binary(&ok).is_ok());
    // One byte short, one byte long, a mask bit past the six fields, an
    // empty topic.
    assert!(decode_binary(&ok[..ok.len() - 1]).is_err());
    let mut long = ok.clone();
    long.push(b'C');
    assert!(decode_binary(&long).is_err());
    let mut bad_mask = ok.clone();
    bad_mask[18] |= 0x40;
    assert!(decode_binary(&bad_mask).is_err());
    let mut empty = Vec::new();
    binary_delta("", 1, 2, &[1.0; 6], 0, &mut empty);
    assert!(decode_binary(&empty).is_err());
    assert!(decode_binary(&[2, 0, 0]).is_err());
}

#[test]
fn changes_compare_only_named_fields() {
    let a = FieldChanges {
        mask: 1,
        values: [1.0, 2.0, 0.0, 0.0, 0.0, 0.0],
    };
    let b = FieldChanges {
        mask: 1,
        values: [1.0, 9.0, 0.0, 0.0, 0.0, 0.0],
    };
    assert_eq!(a, b);
}
