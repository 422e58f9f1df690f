//! Fan-out on 1, 2 and 4 worker threads: does a delivery on one worker slow
//! down the others? One router (on the bench thread) feeds N worker threads;
//! each worker owns a route index and 1,000 outbound queues subscribed to the
//! same topic, queues every quote of a batch on each of them and flushes
//! them into `io::sink()`, then reports back. All workers share the quotes
//! (the router encodes each once), so whatever they share per delivery shows
//! up here as deliveries/s per thread falling with the thread count. The
//! figures only mean something with at least N + 1 idle cores.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_channel::{Receiver, Sender};
use mio::{Poll, Token, Waker};
use tickwire_benches::typical_quote;
use tickwire_broker::internals::{
    CatchUp, ConnId, Format, HistoryLimits, IngestBatch, LocalQuote, OutFrame, Outbound,
    RouteIndex, Router, RouterCmd, Wire, WorkerLink, WorkerMsg,
};
use tickwire_broker::metrics::Metrics;
use tickwire_protocol::Selector;

const SUBSCRIBERS: usize = 1_000;
const QUOTES_PER_BATCH: usize = 10;
const TOPIC: &str = "AAPL";

/// One worker's side: its subscribers' route entries and queues.
struct WorkerSide {
    rx: Receiver<WorkerMsg>,
    index: RouteIndex,
    outbound: Vec<Outbound>,
}

impl WorkerSide {
    /// Serves batches until the router side hangs up; sends the number of
    /// frames written after each batch.
    fn serve(mut self, done: Sender<usize>) {
        let mut sink = std::io::sink();
        while let Ok(msg) = self.rx.recv() {
            let WorkerMsg::Quotes { quotes, .. } = msg else {
                continue;
            };
            let now = Instant::now();
            for quote in quotes {
                // As the worker does: one local handle per quote.
                let quote = LocalQuote::from(quote);
                for target in self.index.targets(&quote.topic).iter() {
                    self.outbound[target.slot()].push_quote(
                        quote.clone(),
                        Wire::plain(Format::Json),
                        now,
                    );
                }
            }
            let mut sent = 0;
            let mut on_sent = |_: &OutFrame| sent += 1;
            // As the worker flushes: one laid-out buffer per write call.
            let mut buf = Vec::new();
            for out in &mut self.outbound {
                loop {
                    let n = out.transmit(&mut buf, 64 * 1024);
                    if n == 0 {
                        break;
                    }
                    let Ok(k) = std::io::Write::write(&mut sink, &buf[..n]) else {
                        break;
                    };
                    out.advance(k, &mut on_sent);
                }
            }
            if done.send(sent).is_err() {
                return;
            }
        }
    }
}

/// A router with `threads` workers, each on its own thread.
struct Pool {
    _poll: Poll,
    router: Router,
    done: Receiver<usize>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize) -> Pool {
        let poll = Poll::new().expect("mio poll");
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).expect("mio waker"));
        let channels: Vec<_> = (0..threads)
            .map(|_| crossbeam_channel::unbounded::<WorkerMsg>())
            .collect();
        let links = channels
            .iter()
            .map(|(tx, _)| WorkerLink {
                tx: tx.clone(),
                waker: waker.clone(),
                slices_queued: Default::default(),
            })
            .collect();
        let mut router = Router::new(
            links,
            1_000,
            HistoryLimits::default(),
            Arc::new(Metrics::default()),
        );
        let selector = Selector::parse(TOPIC).expect("valid topic");
        let (done_tx, done) = crossbeam_channel::unbounded();
        let mut handles = Vec::new();
        for (worker, (_, rx)) in channels.into_iter().enumerate() {
            router.handle_cmd(RouterCmd::Subscribe {
                worker,
                conn: ConnId { slot: 0, serial: 1 },
                request: 1,
                selectors: vec![selector.clone()],
                catch_up: CatchUp::snapshot(false),
                interest_add: vec![selector.clone()],
                seed: None,
            });
            match rx.try_recv() {
                Ok(WorkerMsg::Activate { .. }) => {}
                _ => panic!("router did not answer worker {worker}'s subscribe"),
            }
            let mut index = RouteIndex::default();
            for slot in 0..SUBSCRIBERS {
                index.route(&selector, slot, None);
            }
            let done_tx = done_tx.clone();
            // Built on its thread: queues hold worker-local handles.
            handles.push(std::thread::spawn(move || {
                let side = WorkerSide {
                    rx,
                    index,
                    outbound: (0..SUBSCRIBERS).map(|_| Outbound::default()).collect(),
                };
                side.serve(done_tx)
            }));
        }
        Pool {
            _poll: poll,
            router,
            done,
            threads: handles,
        }
    }

    /// One batch through every worker; returns the frames they wrote.
    fn run_batch(&mut self) -> usize {
        self.router.ingest(IngestBatch {
            quotes: (0..QUOTES_PER_BATCH)
                .map(|_| typical_quote(TOPIC))
                .collect(),
            decoded_at: Instant::now(),
        });
        self.router.flush();
        (0..self.threads.len())
            .map(|_| self.done.recv().expect("a worker answers"))
            .sum()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Hanging up the router's senders ends every worker's loop.
        self.router = Router::new(
            Vec::new(),
            1,
            HistoryLimits::default(),
            Arc::new(Metrics::default()),
        );
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

fn bench_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_threads");
    for threads in [1usize, 2, 4] {
        let mut pool = Pool::new(threads);
        let sent = pool.run_batch();
        assert_eq!(sent, threads * SUBSCRIBERS * QUOTES_PER_BATCH);
        // Per thread: criterion's rate divided by the thread count is the
        // figure to compare across thread counts.
        group.throughput(Throughput::Elements(
            (threads * SUBSCRIBERS * QUOTES_PER_BATCH) as u64,
        ));
        group.bench_function(format!("{threads}_workers_10q_to_1000_subs_each"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    pool.run_batch();
                }
                start.elapsed().max(Duration::from_nanos(1))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_threads);
criterion_main!(benches);
