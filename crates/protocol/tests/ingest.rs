//! Ingest framing: layout, limits, partial input, validation.

use tickwire_protocol::ingest::{
    decode_frame, encode_frame, IngestError, IngestFrame, DEFAULT_MAX_FRAME,
};
use tickwire_protocol::Quote;

fn quote(topic: &str) -> Quote {
    Quote {
        topic: topic.into(),
        bid: 189.12,
        ask: 189.14,
        bid_size: 300.0,
        ask_size: 200.0,
        last: 189.13,
        volume: 1_234_567.0,
        ts: 1_732_345_678_901_234_567,
    }
}

fn encoded(frame: &IngestFrame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(frame, &mut out);
    out
}

/// Builds a frame from a raw payload.
fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn quote_frame_layout_byte_for_byte() {
    let q = quote("AB");
    let mut payload = Vec::new();
    payload.extend_from_slice(&1u32.to_le_bytes()); // enum tag Quote
    payload.extend_from_slice(&2u64.to_le_bytes()); // topic length
    payload.extend_from_slice(b"AB");
    for x in [q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume] {
        payload.extend_from_slice(&x.to_le_bytes());
    }
    payload.extend_from_slice(&q.ts.to_le_bytes());
    assert_eq!(payload.len(), 4 + 8 + 2 + 48 + 8);
    let expect = raw_frame(&payload);

    let frame = IngestFrame::Quote(q);
    assert_eq!(encoded(&frame), expect);
    assert_eq!(
        decode_frame(&expect, DEFAULT_MAX_FRAME),
        Ok(Some((frame, expect.len())))
    );
}

#[test]
fn hello_and_batch_tags() {
    let hello = encoded(&IngestFrame::Hello { token: "t".into() });
    assert_eq!(&hello[4..], &[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b't']);
    let batch = encoded(&IngestFrame::Batch(vec![]));
    assert_eq!(&batch[4..], &[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn encode_appends_after_existing_bytes() {
    let mut out = vec![9, 9];
    encode_frame(&IngestFrame::Batch(vec![]), &mut out);
    assert_eq!(&out[..2], &[9, 9]);
    assert_eq!(&out[2..6], &12u32.to_le_bytes());
    assert_eq!(out.len(), 2 + 4 + 12);
}

#[test]
fn empty_batch_ok() {
    let bytes = encoded(&IngestFrame::Batch(vec![]));
    assert_eq!(
        decode_frame(&bytes, DEFAULT_MAX_FRAME),
        Ok(Some((IngestFrame::Batch(vec![]), 16)))
    );
}

#[test]
fn frame_exactly_at_max_is_accepted_and_one_over_refused_from_prefix() {
    // A Hello whose payload is exactly `max` bytes: tag 4 + len 8 + token.
    let max = 100;
    let frame = IngestFrame::Hello {
        token: "x".repeat(max - 12),
    };
    let bytes = encoded(&frame);
    assert_eq!(bytes.len(), 4 + max);
    assert_eq!(decode_frame(&bytes, max), Ok(Some((frame, 4 + max))));
    assert_eq!(
        decode_frame(&bytes, max - 1),
        Err(IngestError::TooLong {
            len: max,
            max: max - 1
        })
    );
    // Only the 4 prefix bytes are needed to refuse.
    assert_eq!(
        decode_frame(&bytes[..4], max - 1),
        Err(IngestError::TooLong {
            len: max,
            max: max - 1
        })
    );
    assert_eq!(decode_frame(&bytes[..4], max), Ok(None));
}

#[test]
fn default_max_boundary_from_prefix_alone() {
    let at = (DEFAULT_MAX_FRAME as u32).to_le_bytes();
    let over = (DEFAULT_MAX_FRAME as u32 + 1).to_le_bytes();
    assert_eq!(decode_frame(&at, DEFAULT_MAX_FRAME), Ok(None));
    let err = decode_frame(&over, DEFAULT_MAX_FRAME).unwrap_err();
    assert_eq!(
        err,
        IngestError::TooLong {
            len: DEFAULT_MAX_FRAME + 1,
            max: DEFAULT_MAX_FRAME
        }
    );
    assert_eq!(err.reason(), "too_long");
    assert_eq!(
        err.to_string(),
        "frame of 1048577 bytes over the 1048576-byte limit"
    );
}

#[test]
fn trailing_byte_is_decode_error() {
    let bytes = encoded(&IngestFrame::Quote(quote("AAPL")));
    let mut payload = bytes[4..].to_vec();
    payload.push(0);
    let err = decode_frame(&raw_frame(&payload), DEFAULT_MAX_FRAME).unwrap_err();
    assert!(matches!(err, IngestError::Decode(_)), "{err:?}");
    assert_eq!(err.reason(), "decode");
}

#[test]
fn short_payload_and_bad_tag_are_decode_errors() {
    let bytes = encoded(&IngestFrame::Quote(quote("AAPL")));
    let short = raw_frame(&bytes[4..bytes.len() - 1]);
    assert!(matches!(
        decode_frame(&short, DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
    let mut bad_tag = bytes[4..].to_vec();
    bad_tag[0] = 3;
    assert!(matches!(
        decode_frame(&raw_frame(&bad_tag), DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
    assert!(matches!(
        decode_frame(&raw_frame(&[]), DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
}

#[test]
fn invalid_utf8_topic_is_decode_error() {
    let mut payload = 1u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.push(0xff);
    payload.extend_from_slice(&[0; 56]);
    assert!(matches!(
        decode_frame(&raw_frame(&payload), DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
}

#[test]
fn truncated_input_needs_more_then_completes() {
    let frame = IngestFrame::Batch(vec![quote("AAPL"), quote("MSFT")]);
    let mut bytes = encoded(&frame);
    let next = encoded(&IngestFrame::Hello { token: "x".into() });
    let first_len = bytes.len();
    for cut in 0..first_len {
        assert_eq!(
            decode_frame(&bytes[..cut], DEFAULT_MAX_FRAME),
            Ok(None),
            "{cut}"
        );
    }
    // Followed by another frame: consumes only the first.
    bytes.extend_from_slice(&next);
    assert_eq!(
        decode_frame(&bytes, DEFAULT_MAX_FRAME),
        Ok(Some((frame, first_len)))
    );
    assert!(matches!(
        decode_frame(&bytes[first_len..], DEFAULT_MAX_FRAME),
        Ok(Some((IngestFrame::Hello { .. }, _)))
    ));
}

#[test]
fn bad_topic_in_quote_or_batch_rejects_the_frame() {
    for bad in ["", "A B", "AAPL*", "*", &"a".repeat(65)] {
        let err =
            decode_frame(&encoded(&IngestFrame::Quote(quote(bad))), DEFAULT_MAX_FRAME).unwrap_err();
        assert_eq!(err, IngestError::BadTopic(bad.into()));
        assert_eq!(err.reason(), "bad_topic");
        let batch = IngestFrame::Batch(vec![quote("AAPL"), quote(bad), quote("MSFT")]);
        assert_eq!(
            decode_frame(&encoded(&batch), DEFAULT_MAX_FRAME),
            Err(IngestError::BadTopic(bad.into()))
        );
    }
    assert_eq!(
        IngestError::BadTopic("A B".into()).to_string(),
        "invalid topic \"A B\""
    );
}

#[test]
fn hello_token_is_not_a_topic() {
    let frame = IngestFrame::Hello {
        token: "any thing *".into(),
    };
    let bytes = encoded(&frame);
    assert_eq!(
        decode_frame(&bytes, DEFAULT_MAX_FRAME),
        Ok(Some((frame, bytes.len())))
    );
}

#[test]
fn non_finite_numbers_are_valid() {
    let mut q = quote("X");
    q.bid = f64::NAN;
    q.ask = f64::INFINITY;
    q.last = f64::NEG_INFINITY;
    let bytes = encoded(&IngestFrame::Quote(q));
    let Ok(Some((IngestFrame::Quote(back), _))) = decode_frame(&bytes, DEFAULT_MAX_FRAME) else {
        panic!("did not decode");
    };
    assert!(back.bid.is_nan());
    assert_eq!(back.ask, f64::INFINITY);
    assert_eq!(back.last, f64::NEG_INFINITY);
}

#[test]
fn hostile_length_prefixes_inside_payload_fail_cleanly() {
    // Topic length u64::MAX, and batch length u64::MAX, in tiny frames.
    let mut p = 1u32.to_le_bytes().to_vec();
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    p.extend_from_slice(b"AAPL");
    assert!(matches!(
        decode_frame(&raw_frame(&p), DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
    let mut p = 2u32.to_le_bytes().to_vec();
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        decode_frame(&raw_frame(&p), DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
    let mut p = 0u32.to_le_bytes().to_vec();
    p.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        decode_frame(&raw_frame(&p), DEFAULT_MAX_FRAME),
        Err(IngestError::Decode(_))
    ));
}

#[test]
fn max_u32_prefix_is_too_long_not_buffered() {
    assert_eq!(
        decode_frame(&[0xff; 4], DEFAULT_MAX_FRAME),
        Err(IngestError::TooLong {
            len: u32::MAX as usize,
            max: DEFAULT_MAX_FRAME
        })
    );
    // With an unlimited max the decoder just asks for more bytes.
    assert_eq!(decode_frame(&[0xff; 10], usize::MAX), Ok(None));
}
