//! In-process fan-out of quotes to 1,000 local subscribers: the router's part
//! (number, encode once per format, hand the shared `Arc` to the worker
//! channel, wake the worker) plus the worker's part (resolve the topic's
//! subscribers, queue an `Arc` clone on each outbound queue, flush each queue
//! with vectored writes). Sockets are replaced by `std::io::sink()`, so this
//! measures the broker's own per-delivery cost, not the kernel's.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crossbeam_channel::Receiver;
use mio::{Poll, Token, Waker};
use tickwire_benches::typical_quote;
use tickwire_broker::internals::{
    CatchUp, ConnId, Following, Format, HistoryLimits, IngestBatch, LocalQuote, OutFrame, Outbound,
    RouteIndex, Router, RouterCmd, Wire, WorkerLink, WorkerMsg,
};
use tickwire_broker::metrics::Metrics;
use tickwire_protocol::Selector;

const SUBSCRIBERS: usize = 1_000;
const TOPIC: &str = "AAPL";

/// One router with a single worker link and the worker-side state of that
/// worker: its subscription index and one outbound queue per connection.
struct Fanout {
    /// Kept alive for the waker's registration; never polled.
    _poll: Poll,
    router: Router,
    rx: Receiver<WorkerMsg>,
    index: RouteIndex,
    outbound: Vec<Outbound>,
}

impl Fanout {
    fn new(subscribers: usize) -> Fanout {
        let poll = Poll::new().expect("mio poll");
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).expect("mio waker"));
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut router = Router::new(
            vec![WorkerLink {
                tx,
                waker,
                slices_queued: Default::default(),
            }],
            1_000,
            HistoryLimits::default(),
            Arc::new(Metrics::default()),
        );

        // What a worker does for its first subscriber to the topic: count
        // the entry, tell the router (interest transition), and activate
        // when the router answers.
        let selector = Selector::parse(TOPIC).expect("valid topic");
        let mut index = RouteIndex::default();
        let mut following = Following::default();
        let stamp = following.stamp();
        assert!(following.add_ref(&selector, stamp));
        router.handle_cmd(RouterCmd::Subscribe {
            worker: 0,
            conn: ConnId { slot: 0, serial: 1 },
            request: 1,
            selectors: vec![selector.clone()],
            catch_up: CatchUp::snapshot(false),
            interest_add: vec![selector.clone()],
            seed: None,
        });
        match rx.try_recv() {
            Ok(WorkerMsg::Activate { snapshots, .. }) => assert!(snapshots.is_empty()),
            _ => panic!("router did not answer the subscribe with Activate"),
        }
        index.route(&selector, 0, None);
        for slot in 1..subscribers {
            assert!(!following.add_ref(&selector, stamp));
            index.route(&selector, slot, None);
        }

        let outbound = (0..subscribers).map(|_| Outbound::default()).collect();
        let mut fanout = Fanout {
            _poll: poll,
            router,
            rx,
            index,
            outbound,
        };
        // Warm the topic (router entry, cached route) and check the wiring.
        let (deliveries, sent, _) = fanout.run(batch(1));
        assert_eq!((deliveries, sent), (subscribers, subscribers));
        fanout
    }

    /// Routes one ingest batch and delivers it to every subscriber's queue,
    /// then flushes the queues. Returns (deliveries queued, frames written,
    /// bytes written).
    fn run(&mut self, batch: IngestBatch) -> (usize, usize, usize) {
        self.router.ingest(batch);
        self.router.flush();
        let mut deliveries = 0;
        let now = std::time::Instant::now();
        for msg in self.rx.try_iter() {
            let WorkerMsg::Quotes { quotes, .. } = msg else {
                continue;
            };
            for quote in quotes {
                // As the worker does: one local handle per quote.
                let quote = LocalQuote::from(quote);
                let targets = self.index.targets(&quote.topic);
                for target in targets.iter() {
                    self.outbound[target.slot()].push_quote(
                        quote.clone(),
                        Wire::plain(Format::Json),
                        now,
                    );
                }
                deliveries += targets.len();
            }
        }
        let mut sink = std::io::sink();
        let mut written = 0;
        let mut sent = 0;
        // The worker also records delivery latency here; that histogram is
        // not part of the exposed internals, so only frames are counted.
        let mut on_sent = |_: &OutFrame| sent += 1;
        // As the worker flushes: each transmit laid out into one buffer,
        // handed to the "socket" in one call.
        let mut buf = Vec::new();
        for out in &mut self.outbound {
            loop {
                let n = out.transmit(&mut buf, 64 * 1024);
                if n == 0 {
                    break;
                }
                let k = std::io::Write::write(&mut sink, &buf[..n]).expect("sink write");
                written += k;
                out.advance(k, &mut on_sent);
            }
        }
        (deliveries, sent, written)
    }
}

/// An ingest batch of `n` quotes of the benchmarked topic.
fn batch(n: usize) -> IngestBatch {
    IngestBatch {
        quotes: (0..n).map(|_| typical_quote(TOPIC)).collect(),
        decoded_at: Instant::now(),
    }
}

fn bench_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");

    for quotes_per_iter in [1usize, 10] {
        let mut fanout = Fanout::new(SUBSCRIBERS);
        let (deliveries, sent, written) = fanout.run(batch(quotes_per_iter));
        assert_eq!(deliveries, SUBSCRIBERS * quotes_per_iter);
        assert_eq!(sent, deliveries);
        assert!(written > 0);

        group.throughput(Throughput::Elements((SUBSCRIBERS * quotes_per_iter) as u64));
        group.bench_function(
            format!("{quotes_per_iter}q_to_{SUBSCRIBERS}_subs_json"),
            |b| {
                b.iter_batched(
                    || batch(quotes_per_iter),
                    |batch| black_box(fanout.run(batch)),
                    BatchSize::SmallInput,
                )
            },
        );
    }

    group.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
