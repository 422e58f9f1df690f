//! The shell's read budget, over real loopback sockets: a turn hands the
//! router at most its budget of batches and carries the other producers to
//! the next turn, which needs no readiness event to read them, and a
//! producer with more than a turn's reads waiting cannot starve the others.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tickwire_protocol::ingest::{encode_frame, IngestFrame};

use super::*;

fn quote_frame(topic: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &IngestFrame::Quote(session::tests::quote(topic, 1.0)),
        &mut out,
    );
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

/// An ingest shell on a loopback listener whose accepted sockets take 1 MiB
/// unread (so a test's writes are all buffered before the first read).
fn ingest_on_loopback() -> (Poll, Ingest, ProducerGate, std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let poll = Poll::new().expect("poll");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(1 << 20).expect("rcvbuf");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    socket.bind(&any.into()).expect("bind");
    socket.listen(16).expect("listen");
    socket.set_nonblocking(true).expect("nonblocking");
    let listener: std::net::TcpListener = socket.into();
    let addr = listener.local_addr().expect("addr");
    let (ingest, gate) = Ingest::new(
        poll.registry().try_clone().expect("registry"),
        listener,
        IngestConfig::default(),
        None,
        Duration::from_secs(30),
        Arc::new(Metrics::default()),
    )
    .expect("ingest");
    (poll, ingest, gate, addr)
}

#[test]
fn a_turn_hands_at_most_its_budget_and_the_rest_comes_next_turn() {
    const PRODUCERS: usize = 5;
    const BUDGET: usize = 2;
    let (mut poll, mut ingest, gate, addr) = ingest_on_loopback();
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
        turns += 1;
        let backlog_rounds = ingest.metrics.ingest_backlog_rounds.load(Ordering::Relaxed);
        if topics.len() < PRODUCERS {
            // Producers left unread keep the next poll from sleeping, and
            // the round is counted as one that left a backlog.
            assert_eq!(ingest.wait_limit(Instant::now()), Some(Duration::ZERO));
            assert_eq!(backlog_rounds, turns as u64);
        } else {
            assert_eq!(backlog_rounds, turns as u64 - 1, "the last round read all");
        }
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

#[test]
fn producers_with_more_than_a_turns_reads_do_not_starve_a_later_one() {
    const BUDGET: usize = 2;
    let (mut poll, mut ingest, gate, addr) = ingest_on_loopback();
    // Two busy producers, each with five turns' reads (64 KiB a read) in
    // the socket, accepted first (lower slots); then one with one quote.
    let bulk: Vec<u8> = quote_frame("BULK")
        .iter()
        .copied()
        .cycle()
        .take(5 * BUDGET * READ_CHUNK)
        .collect();
    let mut producers = Vec::new();
    for _ in 0..2 {
        let mut p = TcpStream::connect(addr).expect("connect");
        socket2::SockRef::from(&p)
            .set_send_buffer_size(1 << 20)
            .expect("sndbuf");
        p.write_all(&bulk).expect("write");
        producers.push(p);
    }
    let mut late = TcpStream::connect(addr).expect("connect");
    late.write_all(&quote_frame("LATE")).expect("write");
    producers.push(late);
    gate.open().expect("gate");
    assert!(pump(&mut poll, &mut ingest, |i| i.unread.len() == 3));

    // Each busy producer takes a turn's budget and goes to the back: the
    // late one is read by the third turn (in slot order, it would wait
    // until both had nothing left, ten turns).
    let mut late_in = None;
    for turn in 1..=3 {
        ingest.read_turn(BUDGET, &mut |batch| {
            if batch.quotes.iter().any(|q| q.topic.as_str() == "LATE") {
                late_in = Some(turn);
            }
        });
    }
    assert_eq!(late_in, Some(3));
    drop(producers);
}
