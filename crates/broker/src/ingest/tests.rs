//! The shell's read budget, over real loopback sockets: a turn hands the
//! router at most its budget of batches and carries the other producers to
//! the next turn, which needs no readiness event to read them.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tickwire_protocol::ingest::{encode_frame, IngestFrame};
use tickwire_protocol::Quote;

use super::*;

fn quote_frame(topic: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let quote = Quote {
        topic: topic.into(),
        bid: 1.0,
        ask: 2.0,
        bid_size: 3.0,
        ask_size: 4.0,
        last: 1.5,
        volume: 5.0,
        ts: 6,
    };
    encode_frame(&IngestFrame::Quote(quote), &mut out);
    out
}

/// Polls and hands every event to `ingest` until `done` or a generous
/// deadline.
fn pump(poll: &mut Poll, ingest: &mut Ingest, done: impl Fn(&Ingest) -> bool) -> bool {
    let mut events = Events::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done(ingest) {
            return true;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        for event in events.iter() {
            ingest.on_event(event);
        }
    }
    done(ingest)
}

#[test]
fn a_turn_hands_at_most_its_budget_and_the_rest_comes_next_turn() {
    const PRODUCERS: usize = 5;
    const BUDGET: usize = 2;
    let mut poll = Poll::new().expect("poll");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let (mut ingest, gate) = Ingest::new(
        poll.registry().try_clone().expect("registry"),
        listener,
        IngestConfig::default(),
        None,
        Duration::from_secs(30),
        Arc::new(Metrics::default()),
    )
    .expect("ingest");
    // Every producer has connected and written before the gate opens: all
    // of them are readable at once.
    let producers: Vec<TcpStream> = (0..PRODUCERS)
        .map(|i| {
            let mut p = TcpStream::connect(addr).expect("connect");
            p.write_all(&quote_frame(&format!("P{i}"))).expect("write");
            p
        })
        .collect();
    gate.open().expect("gate");
    assert!(pump(&mut poll, &mut ingest, |i| i.unread.len() == PRODUCERS));

    let mut topics = Vec::new();
    let mut turns = 0;
    while topics.len() < PRODUCERS && turns < 10 {
        let mut handed = 0;
        ingest.read_turn(BUDGET, &mut |batch| {
            handed += 1;
            topics.extend(batch.quotes.into_iter().map(|q| q.topic.to_string()));
        });
        assert!(handed <= BUDGET, "turn {turns} handed {handed}");
        if topics.len() < PRODUCERS {
            // Producers left unread keep the next poll from sleeping.
            assert_eq!(ingest.wait_limit(Instant::now()), Some(Duration::ZERO));
        }
        turns += 1;
    }
    topics.sort();
    let all: Vec<String> = (0..PRODUCERS).map(|i| format!("P{i}")).collect();
    assert_eq!(topics, all);
    assert_eq!(turns, PRODUCERS.div_ceil(BUDGET), "two per turn, then one");
    assert_eq!(
        ingest.wait_limit(Instant::now()),
        None,
        "nothing left to read"
    );
    drop(producers);
}
