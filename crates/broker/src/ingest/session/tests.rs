//! The producer protocol without sockets: time is injected, bytes are
//! handed in as the shell would after a read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::ingest::{encode_frame, IngestFrame, DEFAULT_MAX_FRAME};
use tickwire_protocol::Quote;

use super::*;
use crate::config::{IngestConfig, ProducerConfig};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Rules with `tokens` (every topic) and `producers` (token, grants).
pub(super) fn rules(
    tokens: &[&str],
    producers: &[(&str, &[&str])],
    max_frame: usize,
) -> Arc<Rules> {
    let config = IngestConfig {
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        producers: producers
            .iter()
            .map(|(token, topics)| ProducerConfig {
                token: token.to_string(),
                topics: topics.iter().map(|t| t.to_string()).collect(),
            })
            .collect(),
        max_frame_bytes: max_frame,
        ..IngestConfig::default()
    };
    Arc::new(Rules::from_config(&config, TIMEOUT))
}

pub(super) fn open() -> (ProducerSession, Instant) {
    let t0 = Instant::now();
    (
        ProducerSession::new(rules(&[], &[], DEFAULT_MAX_FRAME), t0, false),
        t0,
    )
}

pub(in crate::ingest) fn quote(topic: &str, price: f64) -> Quote {
    Quote {
        topic: topic.into(),
        bid: price - 0.01,
        ask: price + 0.01,
        bid_size: 100.0,
        ask_size: 200.0,
        last: price,
        volume: 1000.0,
        ts: 1,
    }
}

pub(super) fn bytes(frames: &[IngestFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        encode_frame(f, &mut out);
    }
    out
}

fn hello(token: &str) -> IngestFrame {
    IngestFrame::Hello {
        token: token.into(),
    }
}

fn q(topic: &str) -> IngestFrame {
    IngestFrame::Quote(quote(topic, 1.0))
}

fn topics(quotes: &[Quote]) -> Vec<&str> {
    quotes.iter().map(|q| q.topic.as_str()).collect()
}

fn reason(outcome: &Outcome) -> Option<RejectReason> {
    outcome.close.as_ref().map(|r| r.reason)
}

#[test]
fn session_names_no_io() {
    // The whole file: these literals are here, not in session.rs.
    let source = include_str!("../session.rs");
    for name in ["mio", "rustls", "crossbeam", "std::net"] {
        assert!(!source.contains(name), "session.rs names {name}");
    }
}

#[test]
fn a_producer_that_never_says_hello_is_closed_at_its_deadline() {
    let t0 = Instant::now();
    let mut s = ProducerSession::new(rules(&["s3cret"], &[], DEFAULT_MAX_FRAME), t0, false);
    assert!(!s.admitted());
    assert_eq!(s.poll_timeout(), Some(t0 + TIMEOUT));
    assert_eq!(
        s.handle_timeout(t0 + TIMEOUT - Duration::from_nanos(1)),
        None
    );
    assert!(!s.is_closed());
    let reject = s
        .handle_timeout(t0 + TIMEOUT)
        .expect("closed at the deadline");
    assert_eq!(reject.reason, RejectReason::Unauthorized);
    assert!(s.is_closed() && s.poll_timeout().is_none());
    // Closed: nothing more is taken, nothing counted twice.
    let late = s.on_bytes(&bytes(&[hello("s3cret"), q("X")]), t0 + TIMEOUT);
    assert!(late.quotes.is_empty() && late.close.is_none());
    assert_eq!(s.handle_timeout(t0 + TIMEOUT * 2), None);
}

#[test]
fn hello_with_the_right_token_admits_and_lifts_the_deadline() {
    let t0 = Instant::now();
    let mut s = ProducerSession::new(rules(&["s3cret"], &[], DEFAULT_MAX_FRAME), t0, false);
    let out = s.on_bytes(&bytes(&[hello("s3cret")]), t0 + Duration::from_secs(1));
    assert!(out.admitted && out.close.is_none() && out.quotes.is_empty());
    assert!(s.admitted() && s.poll_timeout().is_none());
    assert_eq!(s.handle_timeout(t0 + TIMEOUT * 100), None);
    let out = s.on_bytes(&bytes(&[q("RIGHT")]), t0 + TIMEOUT * 2);
    assert!(!out.admitted && out.close.is_none());
    assert_eq!(topics(&out.quotes), ["RIGHT"]);
}

#[test]
fn a_hello_after_the_deadline_comes_too_late() {
    let t0 = Instant::now();
    let mut s = ProducerSession::new(rules(&["s3cret"], &[], DEFAULT_MAX_FRAME), t0, false);
    let out = s.on_bytes(&bytes(&[hello("s3cret"), q("LATE")]), t0 + TIMEOUT);
    assert_eq!(reason(&out), Some(RejectReason::Unauthorized));
    assert!(out.quotes.is_empty() && !out.admitted);
}

#[test]
fn wrong_token_or_no_hello_is_unauthorized_and_the_token_is_not_told() {
    let t0 = Instant::now();
    let auth = rules(&["s3cret"], &[], DEFAULT_MAX_FRAME);
    let mut s = ProducerSession::new(auth.clone(), t0, false);
    let out = s.on_bytes(&bytes(&[hello("wrong-guess"), q("WRONG")]), t0);
    let reject = out.close.expect("closed");
    assert_eq!(reject.reason, RejectReason::Unauthorized);
    assert!(!reject.why.contains("wrong-guess") && !reject.why.contains("s3cret"));
    assert!(out.quotes.is_empty() && s.is_closed());

    let mut s = ProducerSession::new(auth, t0, false);
    let out = s.on_bytes(&bytes(&[q("NOHELLO")]), t0);
    assert_eq!(reason(&out), Some(RejectReason::Unauthorized));
    assert!(out.quotes.is_empty());
}

#[test]
fn without_tokens_a_producer_is_admitted_at_once_and_hello_is_ignored() {
    let (mut s, t0) = open();
    assert!(s.admitted() && s.poll_timeout().is_none());
    let out = s.on_bytes(&bytes(&[hello("anything"), q("H")]), t0);
    assert!(!out.admitted && out.close.is_none());
    assert_eq!(topics(&out.quotes), ["H"]);
}

#[test]
fn hello_only_first_and_only_once_and_an_empty_batch_is_not_a_quote() {
    for (frames, expected) in [
        (vec![hello("a"), hello("a")], vec![]),
        (vec![q("Q"), hello("a")], vec!["Q"]),
    ] {
        let (mut s, t0) = open();
        let out = s.on_bytes(&bytes(&frames), t0);
        assert_eq!(reason(&out), Some(RejectReason::UnexpectedHello));
        assert_eq!(topics(&out.quotes), expected);
    }
    let (mut s, t0) = open();
    let out = s.on_bytes(
        &bytes(&[IngestFrame::Batch(vec![]), hello("a"), q("E")]),
        t0,
    );
    assert!(out.close.is_none());
    assert_eq!(topics(&out.quotes), ["E"]);
}

#[test]
fn the_transport_handshake_is_part_of_admission() {
    let t0 = Instant::now();
    // No tokens: admitted once the handshake is done.
    let mut s = ProducerSession::new(rules(&[], &[], DEFAULT_MAX_FRAME), t0, true);
    assert!(!s.admitted() && s.transport_pending());
    assert_eq!(s.poll_timeout(), Some(t0 + TIMEOUT));
    assert!(s.on_transport_ready());
    assert!(s.admitted() && s.poll_timeout().is_none());
    // Still handshaking at the deadline: `tls`.
    let mut s = ProducerSession::new(rules(&[], &[], DEFAULT_MAX_FRAME), t0, true);
    let reject = s.handle_timeout(t0 + TIMEOUT).expect("closed");
    assert_eq!(reject.reason, RejectReason::Tls);
    // Handshake done but no Hello with tokens required: `unauthorized`.
    let auth = rules(&["s3cret"], &[], DEFAULT_MAX_FRAME);
    let mut s = ProducerSession::new(auth.clone(), t0, true);
    assert!(!s.on_transport_ready());
    assert_eq!(s.poll_timeout(), Some(t0 + TIMEOUT));
    let reject = s.handle_timeout(t0 + TIMEOUT).expect("closed");
    assert_eq!(reject.reason, RejectReason::Unauthorized);
    // Both steps: admitted by the second.
    let mut s = ProducerSession::new(auth, t0, true);
    assert!(!s.on_transport_ready());
    let out = s.on_bytes(&bytes(&[hello("s3cret")]), t0);
    assert!(out.admitted && s.poll_timeout().is_none());
}

#[test]
fn a_topic_outside_the_grants_closes_and_a_batch_is_all_or_nothing() {
    let t0 = Instant::now();
    let grants = rules(
        &[],
        &[("nasdaq-feed", &["NASDAQ.*", "SPY"])],
        DEFAULT_MAX_FRAME,
    );
    let mut s = ProducerSession::new(grants.clone(), t0, false);
    let out = s.on_bytes(
        &bytes(&[hello("nasdaq-feed"), q("NASDAQ.AAPL"), q("SPY")]),
        t0,
    );
    assert!(out.admitted && out.close.is_none());
    assert_eq!(topics(&out.quotes), ["NASDAQ.AAPL", "SPY"]);
    // A granted quote, then a batch with one topic outside: only the first.
    let batch = IngestFrame::Batch(vec![quote("NASDAQ.MSFT", 3.0), quote("NYSE.IBM", 4.0)]);
    let out = s.on_bytes(&bytes(&[q("NASDAQ.X"), batch]), t0);
    let reject = out.close.expect("closed");
    assert_eq!(reject.reason, RejectReason::NotAuthorized);
    assert!(reject.why.contains("NYSE.IBM"));
    assert_eq!(topics(&out.quotes), ["NASDAQ.X"]);

    let mut s = ProducerSession::new(grants, t0, false);
    let out = s.on_bytes(&bytes(&[hello("nasdaq-feed"), q("SPY2")]), t0);
    assert_eq!(reason(&out), Some(RejectReason::NotAuthorized));
    assert!(out.quotes.is_empty());
}

#[test]
fn a_bad_frame_after_good_ones_forwards_the_good_ones_then_closes() {
    let garbage = [5, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x00];
    // All in one read, decoded in place.
    let (mut s, t0) = open();
    let mut data = bytes(&[q("A"), q("B")]);
    data.extend_from_slice(&garbage);
    data.extend(bytes(&[q("NEVER")]));
    let out = s.on_bytes(&data, t0);
    assert_eq!(reason(&out), Some(RejectReason::Decode));
    assert_eq!(topics(&out.quotes), ["A", "B"]);
    assert!(s.is_closed() && s.buffered() == 0);
    // The good frame completed from the buffer, the bad one in place.
    let (mut s, t0) = open();
    let mut data = bytes(&[q("A"), q("B"), q("has space")]);
    let split = bytes(&[q("A")]).len() + 3;
    let out = s.on_bytes(&data[..split], t0);
    assert_eq!(topics(&out.quotes), ["A"]);
    let out = s.on_bytes(&data.split_off(split), t0);
    assert_eq!(reason(&out), Some(RejectReason::BadTopic));
    assert_eq!(topics(&out.quotes), ["B"]);
}

#[test]
fn whole_frames_are_decoded_in_place_and_only_a_tail_is_kept() {
    let (mut s, t0) = open();
    let data = bytes(&[
        q("A"),
        IngestFrame::Batch(vec![quote("B", 1.0); 50]),
        q("C"),
    ]);
    let out = s.on_bytes(&data, t0);
    assert_eq!(out.quotes.len(), 52);
    // Nothing was copied: the buffer never allocated.
    assert_eq!((s.buffered(), s.buf.capacity()), (0, 0));
    // A read ending mid-frame keeps only that frame's start.
    let tail = bytes(&[q("D")]);
    let mut data = bytes(&[q("C")]);
    data.extend_from_slice(&tail[..7]);
    let out = s.on_bytes(&data, t0);
    assert_eq!(topics(&out.quotes), ["C"]);
    assert_eq!((s.buffered(), s.buf.capacity()), (7, 7));
    let out = s.on_bytes(&tail[7..], t0);
    assert_eq!(topics(&out.quotes), ["D"]);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn the_buffer_is_bounded_by_the_max_frame_size() {
    const MAX: usize = 64;
    let t0 = Instant::now();
    // A frame announcing exactly MAX bytes, fed one byte at a time: never
    // more than the prefix and MAX bytes held, nor allocated.
    let mut s = ProducerSession::new(rules(&[], &[], MAX), t0, false);
    let mut data = (MAX as u32).to_le_bytes().to_vec();
    data.resize(PREFIX_LEN + MAX - 1, 0);
    for byte in data.chunks(1) {
        let out = s.on_bytes(byte, t0);
        assert!(out.close.is_none() && out.quotes.is_empty());
        assert!(s.buffered() <= PREFIX_LEN + MAX && s.buf.capacity() <= PREFIX_LEN + MAX);
    }
    assert_eq!(s.buffered(), PREFIX_LEN + MAX - 1);
    // One byte over is refused on its prefix alone, even split, in place or
    // completed from the buffer; the buffer is given back.
    let over = ((MAX + 1) as u32).to_le_bytes();
    for cut in 0..=PREFIX_LEN {
        let mut s = ProducerSession::new(rules(&[], &[], MAX), t0, false);
        let first = s.on_bytes(&over[..cut], t0);
        let out = if cut == PREFIX_LEN {
            first
        } else {
            assert!(first.close.is_none() && s.buffered() == cut);
            s.on_bytes(&over[cut..], t0)
        };
        assert_eq!(reason(&out), Some(RejectReason::TooLong), "cut {cut}");
        assert_eq!((s.buffered(), s.buf.capacity()), (0, 0));
    }
}

#[test]
fn a_large_partial_frame_is_not_kept_once_complete() {
    let (mut s, t0) = open();
    let data = bytes(&[IngestFrame::Batch(vec![quote("BIG", 1.0); 400])]);
    assert!(data.len() > KEEP_CAPACITY);
    let out = s.on_bytes(&data[..data.len() / 2], t0);
    assert!(out.quotes.is_empty());
    let out = s.on_bytes(&data[data.len() / 2..], t0);
    assert_eq!(out.quotes.len(), 400);
    assert_eq!((s.buffered(), s.buf.capacity()), (0, 0));
}

#[test]
fn a_stream_split_at_every_byte_boundary_decodes_the_same() {
    let frames = [
        hello("x"),
        q("A"),
        IngestFrame::Batch(vec![]),
        IngestFrame::Batch(vec![quote("B", 2.0), quote("C", 3.0)]),
        q("D"),
    ];
    let data = bytes(&frames);
    let expected = ["A", "B", "C", "D"];
    let t0 = Instant::now();
    for cut in 0..=data.len() {
        let (mut s, _) = open();
        let mut quotes = s.on_bytes(&data[..cut], t0).quotes;
        quotes.extend(s.on_bytes(&data[cut..], t0).quotes);
        assert_eq!(topics(&quotes), expected, "cut at {cut}");
        assert!(!s.is_closed() && s.buffered() == 0);
    }
    // One byte per read.
    let (mut s, _) = open();
    let mut quotes = Vec::new();
    for byte in data.chunks(1) {
        let out = s.on_bytes(byte, t0);
        assert!(out.close.is_none());
        quotes.extend(out.quotes);
    }
    assert_eq!(topics(&quotes), expected);
}
