//! Ingest socket: framing, tokens, and that a bad producer harms nobody else.

use crate::common;

use std::sync::atomic::Ordering;

use common::*;
use tickwire_broker::metrics::RejectReason;
use tickwire_broker::Broker;
use tickwire_client::Publisher;
use tickwire_protocol::ingest::{encode_frame, IngestFrame};

fn frame(f: &IngestFrame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(f, &mut out);
    out
}

/// True once the broker has closed `p`'s connection.
fn is_closed(p: &Publisher) -> bool {
    let mut s = p.stream().try_clone().unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    sees_eof(&mut s)
}

/// Writes `bytes` raw and half-closes: the broker reads them, then FIN.
fn write_then_fin(p: &Publisher, bytes: &[u8]) {
    let mut stream = p.stream().try_clone().unwrap();
    std::io::Write::write_all(&mut stream, bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
}

fn rejected(broker: &Broker, reason: RejectReason) -> u64 {
    broker.metrics().rejected(reason)
}

#[test]
fn bad_frame_closes_only_that_producer_and_keeps_its_earlier_quotes() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["*"], false);
    let mut good = publisher(&broker);
    let mut bad = publisher(&broker);

    // A valid quote, then garbage in the same write.
    let mut bytes = frame(&IngestFrame::Quote(quote("BEFORE", 1.0)));
    bytes.extend_from_slice(&[5, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x00]);
    bad.send_raw(&bytes).unwrap();
    assert!(is_closed(&bad));
    assert_eq!(next_quote(&mut ws)["topic"], "BEFORE");
    assert!(wait_until(|| rejected(&broker, RejectReason::Decode) == 1));

    // The other producer and the subscriber are unaffected.
    publish(&mut good, quote("AFTER", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "AFTER");
}

#[test]
fn each_kind_of_bad_frame_is_rejected_and_counted() {
    let broker = start();
    let topic_bad = frame(&IngestFrame::Quote(quote("has space", 1.0)));
    let mut trailing = frame(&IngestFrame::Quote(quote("T", 1.0)));
    trailing.push(0); // payload one byte longer than the value
    let len = (trailing.len() - 4) as u32;
    trailing[..4].copy_from_slice(&len.to_le_bytes());
    let pattern_topic = frame(&IngestFrame::Quote(quote("T*", 1.0)));
    let too_long = (1_048_577u32).to_le_bytes().to_vec(); // prefix alone suffices
    let mut second_hello = frame(&IngestFrame::Hello { token: "a".into() });
    second_hello.extend(frame(&IngestFrame::Hello { token: "a".into() }));
    let mut hello_after_quote = frame(&IngestFrame::Quote(quote("Q", 1.0)));
    hello_after_quote.extend(frame(&IngestFrame::Hello { token: "a".into() }));

    let cases = [
        (topic_bad, RejectReason::BadTopic),
        (pattern_topic, RejectReason::BadTopic),
        (trailing, RejectReason::Decode),
        (too_long, RejectReason::TooLong),
        (second_hello, RejectReason::UnexpectedHello),
        (hello_after_quote, RejectReason::UnexpectedHello),
    ];
    for (bytes, reason) in cases {
        let before = rejected(&broker, reason);
        let mut p = publisher(&broker);
        p.send_raw(&bytes).unwrap();
        assert!(is_closed(&p), "{reason:?}");
        assert!(
            wait_until(|| rejected(&broker, reason) == before + 1),
            "{reason:?}"
        );
    }
}

#[test]
fn frame_exactly_at_the_size_limit_is_accepted() {
    let mut config = test_config();
    config.ingest.max_frame_bytes = 4096;
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["BIG*"], false);
    // A batch of n quotes encodes to `one + (n-1) * per_quote` bytes; the
    // remainder up to exactly 4096 is spread over the quotes' topics.
    let q = quote("BIG", 1.0);
    let one = frame(&IngestFrame::Batch(vec![q.clone()])).len() - 4;
    let per_quote = frame(&IngestFrame::Batch(vec![q.clone(), q.clone()])).len() - 4 - one;
    let n = (4096 - one) / per_quote + 1;
    let mut quotes = vec![q.clone(); n];
    let mut extra = 4096 - (one + (n - 1) * per_quote);
    for q in quotes.iter_mut() {
        let add = extra.min(61); // "BIG" + 61 = the 64-byte topic limit
        q.topic.push_str(&"X".repeat(add));
        extra -= add;
    }
    assert_eq!(extra, 0);
    let at_limit = frame(&IngestFrame::Batch(quotes));
    assert_eq!(at_limit.len() - 4, 4096);
    let mut p = publisher(&broker);
    p.send_raw(&at_limit).unwrap();
    for _ in 0..n {
        assert!(next_quote(&mut ws)["topic"]
            .as_str()
            .unwrap()
            .starts_with("BIG"));
    }
    // One byte over is refused.
    let mut over = at_limit.clone();
    over.push(0);
    over[..4].copy_from_slice(&4097u32.to_le_bytes());
    p.send_raw(&over).unwrap();
    assert!(is_closed(&p));
    assert!(wait_until(|| rejected(&broker, RejectReason::TooLong) == 1));
}

#[test]
fn batch_is_all_or_nothing_and_empty_batch_is_fine() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["*"], false);
    let mut p = publisher(&broker);
    p.publish_batch(vec![]).unwrap();
    p.publish_batch(vec![quote("OK1", 1.0), quote("OK2", 1.0)])
        .unwrap();
    p.flush().unwrap();
    assert_eq!(next_quote(&mut ws)["topic"], "OK1");
    assert_eq!(next_quote(&mut ws)["topic"], "OK2");

    let mut bad = publisher(&broker);
    bad.publish_batch(vec![quote("GOOD", 1.0), quote("", 1.0)])
        .unwrap();
    bad.flush().unwrap();
    assert!(is_closed(&bad));
    publish(&mut p, quote("LATER", 1.0));
    // GOOD from the rejected batch never arrives: LATER is next.
    assert_eq!(next_quote(&mut ws)["topic"], "LATER");
}

#[test]
fn non_finite_numbers_are_valid_quotes() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["NAN"], false);
    let mut p = publisher(&broker);
    let mut q = quote("NAN", 1.0);
    q.bid = f64::NAN;
    q.ask = f64::NEG_INFINITY;
    publish(&mut p, q);
    let m = next_quote(&mut ws);
    assert!(m["bid"].is_null() && m["ask"].is_null());
}

#[test]
fn tokens_when_configured() {
    let mut config = test_config();
    config.ingest.tokens = vec!["s3cret".into()];
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["*"], false);

    // No Hello: closed.
    let mut p = publisher(&broker);
    publish(&mut p, quote("NOHELLO", 1.0));
    assert!(is_closed(&p));
    // Wrong token: closed.
    let mut p = publisher(&broker);
    p.hello("wrong").unwrap();
    publish(&mut p, quote("WRONG", 1.0));
    assert!(is_closed(&p));
    assert!(wait_until(
        || rejected(&broker, RejectReason::Unauthorized) == 2
    ));
    // Right token: quotes flow.
    let mut p = publisher(&broker);
    p.hello("s3cret").unwrap();
    publish(&mut p, quote("RIGHT", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "RIGHT");
}

#[test]
fn hello_without_tokens_is_accepted_and_ignored() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["H"], false);
    let mut p = publisher(&broker);
    p.hello("anything").unwrap();
    publish(&mut p, quote("H", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "H");
    assert!(wait_until(|| broker
        .metrics()
        .producer_connections
        .load(Ordering::Relaxed)
        == 1));
    assert_eq!(broker.metrics().quotes_in.load(Ordering::Relaxed), 1);
}

#[test]
fn an_empty_batch_before_hello_is_not_a_quote() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["E"], false);
    let mut p = publisher(&broker);
    p.publish_batch(vec![]).unwrap();
    p.hello("ignored").unwrap();
    publish(&mut p, quote("E", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "E");
    assert_eq!(rejected(&broker, RejectReason::UnexpectedHello), 0);
}

#[test]
fn a_producer_that_never_says_hello_is_closed_at_the_handshake_timeout() {
    let mut config = test_config();
    config.ingest.tokens = vec!["s3cret".into()];
    config.server.handshake_timeout_ms = 300;
    let broker = start_with(config);
    // Connects and sends nothing: it must not hold a producer slot forever.
    let silent = publisher(&broker);
    assert!(is_closed(&silent));
    assert!(wait_until(
        || rejected(&broker, RejectReason::Unauthorized) == 1
    ));
    // A producer that says Hello in time keeps its connection.
    let mut p = publisher(&broker);
    p.hello("s3cret").unwrap();
    p.flush().unwrap();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["LATE"], false);
    // Well past the deadline (a scenario, not a synchronisation).
    std::thread::sleep(std::time::Duration::from_millis(600));
    publish(&mut p, quote("LATE", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "LATE");
}

#[test]
fn producer_grants_limit_what_a_token_may_publish_batch_all_or_nothing() {
    let mut config = test_config();
    config.ingest.producers = vec![tickwire_broker::config::ProducerConfig {
        token: "nasdaq-feed".into(),
        topics: vec!["NASDAQ.*".into(), "SPY".into()],
    }];
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["*"], false);

    let mut p = publisher(&broker);
    p.hello("nasdaq-feed").unwrap();
    publish(&mut p, quote("NASDAQ.AAPL", 1.0));
    publish(&mut p, quote("SPY", 2.0));
    assert_eq!(next_quote(&mut ws)["topic"], "NASDAQ.AAPL");
    assert_eq!(next_quote(&mut ws)["topic"], "SPY");
    // A batch with one topic outside the grants: nothing of it, producer closed.
    p.publish_batch(vec![quote("NASDAQ.MSFT", 3.0), quote("NYSE.IBM", 4.0)])
        .unwrap();
    p.flush().unwrap();
    assert!(is_closed(&p));
    assert!(wait_until(|| rejected(
        &broker,
        RejectReason::NotAuthorized
    ) == 1));
    // The next quote anyone sees is a later one: the batch left no trace.
    let mut q = publisher(&broker);
    q.hello("nasdaq-feed").unwrap();
    publish(&mut q, quote("NASDAQ.LAST", 5.0));
    assert_eq!(next_quote(&mut ws)["topic"], "NASDAQ.LAST");
    assert_eq!(
        broker
            .metrics()
            .quotes_in
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

/// Quotes and the producer's FIN in one readiness event: the quotes are
/// delivered and the producer is counted gone (a short read ends the read
/// loop only when the event carried no FIN).
#[test]
fn quotes_followed_at_once_by_fin_arrive_and_the_producer_is_gone() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["FIN.*"], false);
    let producers = || {
        broker
            .metrics()
            .producer_connections
            .load(Ordering::Relaxed)
    };
    for round in 0..20 {
        let p = publisher(&broker);
        let mut bytes = frame(&IngestFrame::Quote(quote("FIN.A", round as f64)));
        bytes.extend(frame(&IngestFrame::Quote(quote("FIN.B", round as f64))));
        write_then_fin(&p, &bytes);
        assert_eq!(next_quote(&mut ws)["topic"], "FIN.A", "round {round}");
        assert_eq!(next_quote(&mut ws)["topic"], "FIN.B", "round {round}");
        assert!(wait_until(|| producers() == 0), "round {round}");
    }
}

/// More than a turn's reads (16 × 64 KiB) and then FIN, written at once:
/// every quote is counted in and the producer is counted gone. (When the
/// router's thread falls behind, the rest is read next turn without a
/// readiness event and must still find the FIN; how often this test hits
/// that case depends on timing: the rule is `carried` in `ingest/mod.rs`.)
#[test]
fn a_producer_closing_after_more_than_a_turns_reads_is_gone_with_every_quote_in() {
    let broker = start();
    let producers = || {
        broker
            .metrics()
            .producer_connections
            .load(Ordering::Relaxed)
    };
    let quotes_in = || broker.metrics().quotes_in.load(Ordering::Relaxed);
    let one = frame(&IngestFrame::Quote(quote("BULK", 1.0)));
    let count = 3 * 1024 * 1024 / one.len() + 1;
    let bytes: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * count)
        .collect();
    let p = publisher(&broker);
    write_then_fin(&p, &bytes);
    assert!(
        wait_until(|| quotes_in() == count as u64),
        "{}",
        quotes_in()
    );
    assert!(wait_until(|| producers() == 0));
}
