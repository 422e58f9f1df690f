//! Every encoding of a quote decodes to the quote (or its delta), and is
//! made once.

use std::sync::Arc;
use std::time::Instant;

use tickwire_protocol::server::{decode_binary, decode_json, ServerMessage};
use tickwire_protocol::Quote;
use tickwire_ws::deflate::Inflater;

use super::*;
use crate::router::encode::{changed, encode};

fn q(bid: f64, ask: f64) -> Quote {
    Quote {
        topic: "AAPL".into(),
        bid,
        ask,
        bid_size: 100.0,
        ask_size: 200.0,
        last: 189.1,
        volume: 1e6,
        ts: 1_732_345_678_901_234_999,
    }
}

/// Quote seq 1 and seq 2 (which changes `bid` only), as the router makes them.
fn pair() -> (SharedQuote, SharedQuote) {
    let mut scratch = Vec::new();
    let first = encode(
        &q(189.12, 189.14),
        "AAPL".into(),
        (1, 1),
        Instant::now(),
        None,
        &mut scratch,
    );
    let next = q(189.13, 189.14);
    let mask = changed(Some(&first), &next, 2);
    let second = encode(
        &next,
        "AAPL".into(),
        (2, 2),
        Instant::now(),
        mask,
        &mut scratch,
    );
    (first, second)
}

fn wire(format: Format, delta: bool, deflate: bool) -> Wire {
    Wire {
        format,
        delta,
        deflate,
    }
}

/// The message of a server frame, inflated when RSV1 is set.
fn message(frame: &[u8]) -> ServerMessage {
    let payload = match frame[1] & 0x7f {
        126 => &frame[4..],
        127 => &frame[10..],
        _ => &frame[2..],
    };
    let mut data = payload.to_vec();
    if frame[0] & 0x40 != 0 {
        data.clear();
        Inflater::new()
            .inflate(payload, 1 << 20, &mut data)
            .unwrap();
    }
    match frame[0] & 0x0f {
        1 => decode_json(std::str::from_utf8(&data).unwrap()).unwrap(),
        _ => decode_binary(&data).unwrap(),
    }
}

#[test]
fn the_router_knows_what_changed_only_after_seq_minus_one() {
    let (first, second) = pair();
    assert_eq!(first.changed, None);
    assert_eq!(second.changed, Some(0b1));
    assert_eq!(changed(Some(&first), &q(1.0, 1.0), 3), None, "not seq + 1");
    assert_eq!(second.numbers().1[0], 189.13);
}

#[test]
fn every_encoding_decodes_to_the_quote_or_its_delta() {
    let (_, quote) = pair();
    for format in [Format::Json, Format::Binary] {
        for deflate in [false, true] {
            match message(quote.frame(wire(format, false, deflate))) {
                ServerMessage::Quote { quote: got, seq } => {
                    assert_eq!((got, seq), (q(189.13, 189.14), 2), "{format:?} {deflate}")
                }
                other => panic!("{other:?}"),
            }
            match message(quote.frame(wire(format, true, deflate))) {
                ServerMessage::Delta {
                    topic,
                    seq,
                    ts,
                    changes,
                } => {
                    assert_eq!((topic.as_str(), seq, ts), ("AAPL", 2, q(0.0, 0.0).ts));
                    assert_eq!(changes.mask, 1);
                    assert_eq!(changes.values[0], 189.13);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn json_on_deflate_is_compressed_and_binary_is_not() {
    let (_, quote) = pair();
    assert_ne!(quote.frame(wire(Format::Json, false, true))[0] & 0x40, 0);
    assert_eq!(quote.frame(wire(Format::Binary, false, true))[0] & 0x40, 0);
    assert_eq!(quote.frame(wire(Format::Json, false, false))[0] & 0x40, 0);
}

#[test]
fn a_delta_of_a_quote_with_no_known_predecessor_is_the_full_quote() {
    let (first, _) = pair();
    assert_eq!(
        first.frame(wire(Format::Binary, true, false)),
        &first.binary_frame[..]
    );
    assert_eq!(
        first.frame(wire(Format::Json, true, false)),
        &first.json_frame[..]
    );
}

#[test]
fn each_encoding_is_made_once_and_shared() {
    let (_, quote) = pair();
    let quote = Arc::new(quote);
    let w = wire(Format::Json, true, true);
    let a = quote.frame(w).as_ptr();
    let other = Arc::clone(&quote);
    let b = std::thread::spawn(move || other.frame(w).as_ptr() as usize)
        .join()
        .unwrap();
    assert_eq!(a as usize, b);
}

#[test]
fn sse_events_are_made_full_and_delta() {
    let (_, quote) = pair();
    let ids = |accepted: u64, out: &mut Vec<u8>| {
        out.extend_from_slice(format!("id{accepted}").as_bytes())
    };
    let w = wire(Format::Sse, true, false);
    assert!(quote.frame(w).is_empty(), "not made yet");
    quote.prepare_sse(w, &ids);
    let delta = std::str::from_utf8(quote.frame(w)).unwrap();
    assert!(
        delta.starts_with("id: id2\ndata: {\"type\":\"delta\""),
        "{delta}"
    );
    assert!(delta.ends_with("\"bid\":189.13}\n\n"), "{delta}");
    let full = std::str::from_utf8(quote.frame(wire(Format::Sse, false, false))).unwrap();
    assert!(
        full.starts_with("id: id2\ndata: {\"type\":\"quote\""),
        "{full}"
    );
    let bare = wire(Format::SseBare, false, false);
    quote.prepare_sse(bare, &ids);
    assert!(std::str::from_utf8(quote.frame(bare))
        .unwrap()
        .starts_with("data: "));
}

#[test]
fn a_packed_wire_unpacks_to_itself() {
    for format in [Format::Json, Format::Binary, Format::Sse, Format::SseBare] {
        for delta in [false, true] {
            for deflate in [false, true] {
                let w = wire(format, delta, deflate);
                assert_eq!(Wire::from(PackedWire::from(w)), w);
            }
        }
    }
}
