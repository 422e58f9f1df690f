//! Bytes and CPU per delivery of each wire (issue 23): JSON, JSON with
//! permessage-deflate, binary, binary with deltas, JSON with deltas and
//! deflate, on two feeds — the demo's simulated market (one book event per
//! update: a size, a price level, or a trade) and a recorded-style feed
//! where exactly one field changes per update.
//!
//! Each quote is numbered and encoded by the router, then delivered to
//! 1,000 subscribers' outbound queues on one wire and flushed into a sink,
//! as `fanout` does: the lazy encodings (delta, compressed) are made once
//! per quote whatever the number of subscribers. The bytes per delivery
//! (frame headers included) are printed before the timings; they do not
//! depend on the machine.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickwire_broker::demo;
use tickwire_broker::internals::{
    changed, encode, Format, LocalQuote, OutFrame, Outbound, SharedQuote, Wire,
};
use tickwire_protocol::Quote;

const SUBSCRIBERS: usize = 1_000;

/// The wires compared, with their labels.
fn wires() -> [(&'static str, Wire); 6] {
    let w = |format, delta, deflate| Wire {
        format,
        delta,
        deflate,
    };
    [
        ("json", w(Format::Json, false, false)),
        ("json+deflate", w(Format::Json, false, true)),
        ("binary", w(Format::Binary, false, false)),
        ("binary+delta", w(Format::Binary, true, false)),
        ("json+delta", w(Format::Json, true, false)),
        ("json+delta+deflate", w(Format::Json, true, true)),
    ]
}

/// `n` quotes of the demo's simulated market (≈50 tickers).
fn demo_feed(n: usize) -> Vec<Quote> {
    let mut feed = demo::Feed::new(7);
    (0..n)
        .map(|i| feed.step(1_795_414_051_686_200_042 + i as u64 * 1_000))
        .collect()
}

/// `n` quotes over 50 topics where each update changes one field (in turn).
fn one_field_feed(n: usize) -> Vec<Quote> {
    let mut books: Vec<Quote> = (0..50)
        .map(|i| tickwire_benches::typical_quote(&format!("T{i:02}")))
        .collect();
    (0..n)
        .map(|i| {
            let book = &mut books[i % 50];
            let step = (i / 50) as f64;
            match (i / 50) % 6 {
                0 => book.bid += 0.01,
                1 => book.ask += 0.01,
                2 => book.bid_size = 100.0 * (1.0 + step % 9.0),
                3 => book.ask_size = 100.0 * (1.0 + step % 7.0),
                4 => book.last = book.bid,
                _ => book.volume += 100.0,
            }
            book.ts += 1_000;
            book.clone()
        })
        .collect()
}

/// The feed as the router makes it: numbered per topic, encoded once, with
/// what changed since the topic's previous quote.
fn shared(quotes: &[Quote]) -> Vec<Arc<SharedQuote>> {
    let mut last: HashMap<String, Arc<SharedQuote>> = HashMap::new();
    // The router's interned names: one `Arc<str>` per topic.
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let mut scratch = Vec::new();
    quotes
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let prev = last.get(&q.topic);
            let seq = prev.map_or(1, |p| p.seq + 1);
            let mask = changed(prev.map(|p| &**p), q, seq);
            let name = names
                .entry(q.topic.clone())
                .or_insert_with(|| q.topic.as_str().into())
                .clone();
            let order = (seq, i as u64);
            let s = Arc::new(encode(q, name, order, Instant::now(), mask, &mut scratch));
            last.insert(q.topic.clone(), s.clone());
            s
        })
        .collect()
}

/// Subscribers on one wire, every topic.
struct Subscribers {
    wire: Wire,
    outbound: Vec<Outbound>,
    buf: Vec<u8>,
}

impl Subscribers {
    fn new(wire: Wire, n: usize) -> Subscribers {
        let outbound = (0..n)
            .map(|_| {
                let mut out = Outbound::default();
                if wire.delta {
                    out.track_deltas();
                }
                out
            })
            .collect();
        Subscribers {
            wire,
            outbound,
            buf: Vec::new(),
        }
    }

    /// Delivers `quotes` (fresh handles, as a worker gets them) to every
    /// subscriber and flushes; returns (deliveries, bytes written).
    fn deliver(&mut self, quotes: &[Arc<SharedQuote>]) -> (usize, usize) {
        let now = Instant::now();
        let mut deliveries = 0;
        for q in quotes {
            let local = LocalQuote::from(q.clone());
            for out in &mut self.outbound {
                out.push_quote(local.clone(), self.wire, now);
            }
            deliveries += self.outbound.len();
        }
        let mut written = 0;
        for out in &mut self.outbound {
            loop {
                let n = out.transmit(&mut self.buf, 64 * 1024);
                if n == 0 {
                    break;
                }
                written += n;
                out.advance(n, &mut |_: &OutFrame| {});
            }
        }
        (deliveries, written)
    }
}

fn bench_wire_bytes(c: &mut Criterion) {
    let feeds = [
        ("demo", demo_feed(20_000)),
        ("one-field", one_field_feed(20_000)),
    ];
    println!("bytes per delivery (20,000 quotes, frame headers included):");
    for (feed, quotes) in &feeds {
        for (label, wire) in wires() {
            // Fresh encodings per wire: each made once, as in the broker.
            let quotes = shared(quotes);
            let mut subs = Subscribers::new(wire, 1);
            let (deliveries, bytes) = subs.deliver(&quotes);
            println!(
                "  {feed:<10} {label:<20} {:>7.1}",
                bytes as f64 / deliveries as f64
            );
        }
    }
    let mut group = c.benchmark_group("wire_bytes");
    for (feed, quotes) in &feeds {
        for (label, wire) in wires() {
            let mut subs = Subscribers::new(wire, SUBSCRIBERS);
            // Warm: every topic's first (full) quote queued and sent.
            subs.deliver(&shared(&quotes[..200]));
            let mut at = 0;
            let all = shared(quotes);
            group.throughput(Throughput::Elements((10 * SUBSCRIBERS) as u64));
            group.bench_function(format!("{feed}/{label}/10q_to_{SUBSCRIBERS}_subs"), |b| {
                b.iter(|| {
                    // The next 10 quotes of the feed, encodings not made yet
                    // (each quote is delivered once, as live).
                    if at + 10 > all.len() {
                        at = 200;
                    }
                    let batch: Vec<Arc<SharedQuote>> = all[at..at + 10]
                        .iter()
                        .map(|q| Arc::new(rebuilt(q)))
                        .collect();
                    at += 10;
                    black_box(subs.deliver(&batch))
                })
            });
        }
    }
    group.finish();
}

/// A copy of a shared quote with no lazy encoding made yet (so every timed
/// delivery pays for making them once, as live quotes do).
fn rebuilt(q: &SharedQuote) -> SharedQuote {
    SharedQuote {
        topic: q.topic.clone(),
        seq: q.seq,
        accepted: q.accepted,
        json_frame: q.json_frame.clone(),
        binary_frame: q.binary_frame.clone(),
        changed: q.changed,
        lazy: Default::default(),
        decoded_at: q.decoded_at,
    }
}

criterion_group!(benches, bench_wire_bytes);
criterion_main!(benches);
