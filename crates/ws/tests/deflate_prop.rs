//! Property tests of permessage-deflate (`tickwire_ws::deflate`): any
//! payload round-trips through the compressor and the bounded inflater;
//! no header bytes make negotiation panic, and what it accepts is one of
//! the answers it may give; inflating arbitrary bytes never panics and
//! never produces more than the limit.

use proptest::prelude::*;
use tickwire_ws::deflate::{
    deflate_message, encode_deflated_message, negotiate, Deflater, InflateError, Inflater,
    RESPONSE, RSV1, SYNC_TAIL,
};
use tickwire_ws::frame::header_len;
use tickwire_ws::OpCode;

/// Payloads that compress (JSON-ish text, runs) as well as noise.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::collection::vec(
            prop::sample::select(b"{}\":,.0123456789abcdefqt".to_vec()),
            0..4096
        ),
        (any::<u8>(), 0usize..100_000).prop_map(|(b, n)| vec![b; n]),
    ]
}

/// Header-ish bytes: the extension vocabulary, separators and noise.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"permessage-deflate".to_vec()),
        Just(b"server_no_context_takeover".to_vec()),
        Just(b"client_no_context_takeover".to_vec()),
        Just(b"server_max_window_bits".to_vec()),
        Just(b"client_max_window_bits".to_vec()),
        Just(b"=".to_vec()),
        Just(b";".to_vec()),
        Just(b",".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        (7u8..17).prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_payload_round_trips(payload in payload()) {
        let mut c = Vec::new();
        deflate_message(&payload, &mut c);
        prop_assert!(!c.ends_with(&SYNC_TAIL) || payload.is_empty() && c == [0]);
        let mut out = vec![7u8];
        Inflater::new().inflate(&c, payload.len(), &mut out).unwrap();
        prop_assert_eq!(out[0], 7);
        prop_assert_eq!(&out[1..], &payload[..]);
        if !payload.is_empty() {
            let mut short = Vec::new();
            prop_assert_eq!(
                Inflater::new().inflate(&c, payload.len() - 1, &mut short),
                Err(InflateError::TooBig)
            );
            prop_assert!(short.len() <= payload.len());
        }
        // The same bytes from a fresh or a used compressor: shareable.
        let mut d = Deflater::new();
        let mut again = Vec::new();
        d.compress(b"warm the window up with something", &mut again);
        again.clear();
        d.compress(&payload, &mut again);
        prop_assert_eq!(&again, &c);
        let mut frame = Vec::new();
        let n = encode_deflated_message(&mut frame, OpCode::Text, &payload);
        prop_assert_eq!(n, c.len());
        prop_assert_eq!(frame.len(), header_len(n, false) + n);
        prop_assert_eq!(frame[0], 0x80 | RSV1 | 1);
        prop_assert_eq!(&frame[frame.len() - n..], &c[..]);
    }

    #[test]
    fn any_header_never_panics(values in proptest::collection::vec(header_value(), 0..4)) {
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        if let Some(answer) = negotiate(&refs) {
            let full = format!("{RESPONSE}; server_max_window_bits=15");
            prop_assert!(answer == RESPONSE || answer == full, "{answer}");
        }
    }

    #[test]
    fn arbitrary_bytes_inflate_within_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        max in 0usize..70_000,
    ) {
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        match inf.inflate(&bytes, max, &mut out) {
            Ok(()) => prop_assert!(out.len() <= max),
            Err(InflateError::TooBig) => prop_assert!(out.len() <= max + 1),
            Err(InflateError::Invalid) => prop_assert!(out.len() <= max + 1),
        }
        // Reusable afterwards.
        let mut c = Vec::new();
        deflate_message(b"{\"op\":\"ping\"}", &mut c);
        out.clear();
        inf.inflate(&c, 100, &mut out).unwrap();
        prop_assert_eq!(&out[..], b"{\"op\":\"ping\"}");
    }

    #[test]
    fn corrupted_messages_never_exceed_the_limit(
        payload in payload(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        max in 0usize..5000,
    ) {
        let mut c = Vec::new();
        deflate_message(&payload, &mut c);
        for (at, x) in flips {
            let i = at.index(c.len());
            c[i] ^= x;
        }
        let mut out = Vec::new();
        if Inflater::new().inflate(&c, max, &mut out).is_ok() {
            prop_assert!(out.len() <= max);
        } else {
            prop_assert!(out.len() <= max + 1);
        }
    }
}
