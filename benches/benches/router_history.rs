//! The router's cost per quote with history on and off (issue 21): number,
//! encode once per format, keep the last value — and, with `[history]`, push
//! the shared `Arc` into the topic's ring, evicting past its size. No
//! subscriber: the worker side is `fanout`'s. Also the cost of a resume of
//! 1,000 topics × 64 quotes at the router (decide and collect every slice).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_channel::Receiver;
use mio::{Poll, Token, Waker};
use tickwire_benches::typical_quote;
use tickwire_broker::internals::{
    CatchUp, ConnId, HistoryLimits, IngestBatch, Resume, Router, RouterCmd, WorkerLink, WorkerMsg,
};
use tickwire_broker::metrics::Metrics;
use tickwire_protocol::Selector;

const TOPICS: usize = 1_000;
const BATCH: usize = 100;

struct Bench {
    router: Router,
    rx: Receiver<WorkerMsg>,
    /// The worker's count of slices not yet handled: reset as a worker
    /// would, so the router goes on slicing.
    slices_queued: Arc<AtomicUsize>,
    _poll: Poll,
}

fn router(history: HistoryLimits) -> Bench {
    let poll = Poll::new().expect("mio poll");
    let waker = Arc::new(Waker::new(poll.registry(), Token(1)).expect("mio waker"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let slices_queued = Arc::new(AtomicUsize::new(0));
    let link = WorkerLink {
        tx,
        waker,
        slices_queued: slices_queued.clone(),
    };
    let router = Router::new(
        vec![link],
        2 * TOPICS,
        history,
        Arc::new(Metrics::default()),
    );
    Bench {
        router,
        rx,
        slices_queued,
        _poll: poll,
    }
}

fn names() -> Vec<String> {
    (0..TOPICS).map(|i| format!("T.{i:04}")).collect()
}

/// Batches cycling over the topics.
fn batches(names: &[String]) -> Vec<IngestBatch> {
    names
        .chunks(BATCH)
        .map(|chunk| IngestBatch {
            quotes: chunk.iter().map(|t| typical_quote(t)).collect(),
            decoded_at: Instant::now(),
        })
        .collect()
}

fn per_quote(c: &mut Criterion) {
    let names = names();
    let mut group = c.benchmark_group("router_per_quote");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (label, size) in [("history_off", 0), ("history_64", 64)] {
        let mut bench = router(HistoryLimits {
            size,
            max_bytes: 256 << 20,
        });
        let router = &mut bench.router;
        // Fill every ring first: the steady state pushes one and drops one.
        for _ in 0..64 {
            for b in batches(&names) {
                router.ingest(b);
            }
        }
        let mut chunks = names.chunks(BATCH).cycle();
        group.bench_function(label, |b| {
            b.iter_batched(
                || {
                    let chunk = chunks.next().expect("cycle");
                    IngestBatch {
                        quotes: chunk.iter().map(|t| typical_quote(t)).collect(),
                        decoded_at: Instant::now(),
                    }
                },
                |batch| router.ingest(black_box(batch)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A resume of every topic from 64 quotes back: the router's whole part,
/// every slice collected (the worker's queueing is not included).
fn resume_1000_topics(c: &mut Criterion) {
    let names = names();
    let Bench {
        mut router,
        rx,
        slices_queued,
        _poll,
    } = router(HistoryLimits::default());
    for _ in 0..64 {
        for b in batches(&names) {
            router.ingest(b);
        }
    }
    router.flush();
    let selector = Selector::parse("T.*").expect("pattern");
    let mut serial = 0;
    let mut group = c.benchmark_group("router_resume");
    group.throughput(Throughput::Elements((TOPICS * 64) as u64));
    group.bench_function("1000_topics_x_64_quotes", |b| {
        b.iter(|| {
            serial += 1;
            router.handle_cmd(RouterCmd::Subscribe {
                worker: 0,
                conn: ConnId { slot: 0, serial },
                request: 0,
                selectors: vec![selector.clone()],
                catch_up: CatchUp {
                    snapshot: true,
                    rewind: 0,
                    resume: names
                        .iter()
                        .map(|t| Resume {
                            topic: Arc::from(t.as_str()),
                            after: 0,
                            newest_only: false,
                        })
                        .collect(),
                    resume_from: None,
                    epoch_matches: true,
                    window: 0,
                },
                interest_add: vec![],
                seed: None,
            });
            let mut quotes = 0;
            loop {
                let mut more = false;
                for msg in rx.try_iter() {
                    match msg {
                        WorkerMsg::Activate {
                            snapshots, more: m, ..
                        } => {
                            quotes += snapshots.len();
                            more = m;
                        }
                        WorkerMsg::Snapshots {
                            quotes: q, more: m, ..
                        } => {
                            quotes += q.len();
                            more = m;
                        }
                        WorkerMsg::Quotes { .. } => {}
                    }
                }
                if !more {
                    break;
                }
                slices_queued.store(0, Ordering::Relaxed);
                router.advance_snapshots();
            }
            assert_eq!(quotes, TOPICS * 64);
        })
    });
    group.finish();
}

criterion_group!(benches, per_quote, resume_1000_topics);
criterion_main!(benches);
