use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::messages::{CatchUp, ConnId, WorkerMsg};
use mio::{Poll, Token, Waker};
use tickwire_protocol::Selector;

pub(super) fn quote(topic: &str) -> Quote {
    crate::messages::sample_quote(topic)
}

fn subscribe(router: &mut Router, worker: usize, selector: &str, snapshot: bool) {
    let selector = Selector::parse(selector).unwrap();
    router.handle_cmd(RouterCmd::Subscribe {
        worker,
        conn: ConnId { slot: 0, serial: 1 },
        request: 0,
        selectors: vec![selector.clone()],
        catch_up: CatchUp::snapshot(snapshot),
        interest_add: vec![selector],
        seed: None,
    });
}

/// The broker holds one encoded copy per format of a quote however many
/// workers (and, in each, subscribers) get it: everyone shares one Arc.
#[test]
fn one_encoded_copy_shared_by_every_worker_and_the_cache() {
    let (mut router, rxs, _polls) = router_with(2, 10);
    subscribe(&mut router, 0, "AAPL", false);
    subscribe(&mut router, 1, "*", false);
    router.ingest(IngestBatch {
        quotes: vec![quote("AAPL")],
        decoded_at: Instant::now(),
    });
    router.flush();

    let mut delivered = Vec::new();
    for rx in &rxs {
        for msg in rx.try_iter() {
            if let WorkerMsg::Quotes { quotes, .. } = msg {
                delivered.extend(quotes);
            }
        }
    }
    assert_eq!(delivered.len(), 2);
    assert!(Arc::ptr_eq(&delivered[0], &delivered[1]));
    // Two workers + the last-value cache + the history ring, and no
    // other copy.
    assert_eq!(Arc::strong_count(&delivered[0]), 4);

    // A snapshot is that same Arc too.
    subscribe(&mut router, 0, "AAPL", true);
    let snapshot = rxs[0]
        .try_iter()
        .find_map(|m| match m {
            WorkerMsg::Activate { snapshots, .. } => snapshots.into_iter().next(),
            _ => None,
        })
        .expect("a snapshot");
    assert!(Arc::ptr_eq(&snapshot, &delivered[0]));
    assert!(std::str::from_utf8(&snapshot.json_frame[2..])
        .unwrap()
        .contains("\"seq\":1"));
}

#[test]
fn interest_follows_patterns_new_topics_and_drops() {
    let (mut router, rxs, _polls) = router_with(1, 2);
    let rx = &rxs[0];
    subscribe(&mut router, 0, "B*", false);
    let count = |rx: &crossbeam_channel::Receiver<WorkerMsg>| {
        rx.try_iter()
            .map(|m| match m {
                WorkerMsg::Quotes { quotes, .. } => quotes.len(),
                _ => 0,
            })
            .sum::<usize>()
    };
    router.ingest(IngestBatch {
        quotes: vec![quote("BTC"), quote("ETH"), quote("BCH")],
        decoded_at: Instant::now(),
    });
    router.flush();
    // BTC matches; ETH does not; BCH is past max_topics (2) and dropped.
    assert_eq!(count(rx), 1);
    assert_eq!(
        router
            .metrics()
            .topics_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    router.handle_cmd(RouterCmd::DropInterest {
        worker: 0,
        selectors: vec![Selector::parse("B*").unwrap()],
    });
    router.ingest(IngestBatch {
        quotes: vec![quote("BTC")],
        decoded_at: Instant::now(),
    });
    router.flush();
    assert_eq!(count(rx), 0);
}

pub(super) type TestRouter = (
    Router,
    Vec<crossbeam_channel::Receiver<WorkerMsg>>,
    Vec<Poll>,
);

pub(super) fn router_with(workers: usize, max_topics: usize) -> TestRouter {
    router_with_history(workers, max_topics, super::HistoryLimits::default())
}

pub(super) fn router_with_history(
    workers: usize,
    max_topics: usize,
    history: super::HistoryLimits,
) -> TestRouter {
    let polls: Vec<Poll> = (0..workers).map(|_| Poll::new().unwrap()).collect();
    let mut rxs = Vec::new();
    let links = polls
        .iter()
        .map(|poll| {
            let (tx, rx) = crossbeam_channel::unbounded();
            rxs.push(rx);
            WorkerLink {
                tx,
                waker: Arc::new(Waker::new(poll.registry(), Token(1)).unwrap()),
                slices_queued: Arc::new(AtomicUsize::new(0)),
            }
        })
        .collect();
    let router = Router::new(links, max_topics, history, Arc::new(Metrics::default()));
    (router, rxs, polls)
}

fn publish(router: &mut Router, topics: &[&str]) {
    router.ingest(IngestBatch {
        quotes: topics.iter().map(|t| quote(t)).collect(),
        decoded_at: Instant::now(),
    });
    router.flush();
}

pub(super) fn live_topics(rx: &crossbeam_channel::Receiver<WorkerMsg>) -> Vec<String> {
    rx.try_iter()
        .flat_map(|m| match m {
            WorkerMsg::Quotes { quotes, .. } => quotes,
            _ => Vec::new(),
        })
        .map(|q| q.topic.to_string())
        .collect()
}

fn drop_interest(router: &mut Router, worker: usize, selector: &str) {
    router.handle_cmd(RouterCmd::DropInterest {
        worker,
        selectors: vec![Selector::parse(selector).unwrap()],
    });
}

/// Interest added or dropped after topics exist reaches those topics'
/// next quotes (pattern changes recompute each topic's workers lazily).
#[test]
fn interest_changes_reach_topics_that_already_exist() {
    let (mut router, rxs, _polls) = router_with(2, 100);
    publish(&mut router, &["A.1", "A.2", "B.1"]);
    subscribe(&mut router, 0, "A*", false);
    subscribe(&mut router, 1, "B.1", false);
    publish(&mut router, &["A.1", "B.1", "A.2"]);
    assert_eq!(live_topics(&rxs[0]), ["A.1", "A.2"]);
    assert_eq!(live_topics(&rxs[1]), ["B.1"]);

    // Worker 0: `*` and `A.1` too; dropping `A.1` leaves it under `*`.
    subscribe(&mut router, 0, "*", false);
    subscribe(&mut router, 0, "A.1", false);
    drop_interest(&mut router, 0, "A.1");
    drop_interest(&mut router, 0, "A*");
    publish(&mut router, &["A.1", "B.1"]);
    assert_eq!(live_topics(&rxs[0]), ["A.1", "B.1"]);
    assert_eq!(live_topics(&rxs[1]), ["B.1"]);
    drop_interest(&mut router, 0, "*");
    drop_interest(&mut router, 1, "B.1");
    publish(&mut router, &["A.1", "B.1", "C.1"]);
    assert!(live_topics(&rxs[0]).is_empty());
    assert!(live_topics(&rxs[1]).is_empty());
}

/// What worker 0 got, in order: ("live"|"snap", topic) and whether the
/// last snapshot message said more follow; handled, as the worker would.
fn drain_in_order(
    router: &Router,
    rx: &crossbeam_channel::Receiver<WorkerMsg>,
) -> (Vec<(&'static str, String)>, Option<bool>) {
    router
        .fanout
        .link(0)
        .slices_queued
        .store(0, Ordering::Relaxed);
    let mut seen = Vec::new();
    let mut last_more = None;
    for msg in rx.try_iter() {
        let (kind, quotes, more) = match msg {
            WorkerMsg::Quotes { quotes, .. } => ("live", quotes, None),
            WorkerMsg::Activate {
                snapshots, more, ..
            } => ("snap", snapshots, Some(more)),
            WorkerMsg::Snapshots { quotes, more, .. } => ("snap", quotes, Some(more)),
        };
        seen.extend(quotes.iter().map(|q| (kind, q.topic.to_string())));
        last_more = more.or(last_more);
    }
    (seen, last_more)
}

#[test]
fn a_large_snapshot_comes_in_slices_and_leaves_out_topics_quoted_since() {
    let (mut router, rxs, _polls) = router_with(1, 10_000);
    let names: Vec<String> = (0..1300).map(|i| format!("T.{i:04}")).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    publish(&mut router, &all);
    let _ = rxs[0].try_iter().count();

    subscribe(&mut router, 0, "*", true);
    let (first, more) = drain_in_order(&router, &rxs[0]);
    assert_eq!(first.len(), super::snapshots::SNAPSHOT_SLICE);
    assert_eq!(more, Some(true));
    // T.1200 is quoted before its slice is walked: it reaches the worker
    // live, and the snapshot leaves it out. T.0001 was in the first slice.
    publish(&mut router, &["T.1200", "T.0001"]);
    let mut rest = Vec::new();
    for _ in 0..10 {
        router.advance_snapshots();
        router.flush();
        let (got, more) = drain_in_order(&router, &rxs[0]);
        rest.extend(got);
        if more == Some(false) {
            break;
        }
    }
    assert_eq!(
        rest[..2],
        [("live", "T.1200".into()), ("live", "T.0001".into())]
    );
    let mut snapped: Vec<&str> = first
        .iter()
        .chain(&rest[2..])
        .map(|(kind, t)| {
            assert_eq!(*kind, "snap");
            t.as_str()
        })
        .collect();
    let total = snapped.len();
    snapped.sort();
    snapped.dedup();
    assert_eq!(snapped.len(), total, "each topic at most once");
    let expected: Vec<&str> = all.iter().copied().filter(|t| *t != "T.1200").collect();
    assert_eq!(snapped, expected);
    assert!(router.jobs.is_empty());
}

#[test]
fn a_cancelled_snapshot_stops_and_patterns_are_not_walked_twice() {
    let (mut router, rxs, _polls) = router_with(1, 10_000);
    let names: Vec<String> = (0..2000).map(|i| format!("T.{i:04}")).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    publish(&mut router, &all);
    let _ = rxs[0].try_iter().count();
    let conn = ConnId { slot: 0, serial: 1 };
    router.handle_cmd(RouterCmd::Subscribe {
        worker: 0,
        conn,
        request: 0,
        selectors: ["T.*", "*", "T.0001"]
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect(),
        catch_up: CatchUp::snapshot(true),
        interest_add: vec![],
        seed: None,
    });
    // The worker has not handled the first slice yet: no second one.
    router.advance_snapshots();
    let (got, _) = drain_in_order(&router, &rxs[0]);
    assert_eq!(got.len(), super::snapshots::SNAPSHOT_SLICE);
    router.advance_snapshots();
    let (got, more) = drain_in_order(&router, &rxs[0]);
    assert_eq!(got.len(), super::snapshots::SNAPSHOT_SLICE);
    assert_eq!(more, Some(true));
    router.handle_cmd(RouterCmd::CancelSnapshots { worker: 0, conn });
    router.advance_snapshots();
    router.flush();
    assert_eq!(rxs[0].try_iter().count(), 0);
    assert!(router.jobs.is_empty());
}

#[test]
fn the_jobs_of_a_worker_that_stopped_are_dropped() {
    let (mut router, mut rxs, _polls) = router_with(1, 10_000);
    let names: Vec<String> = (0..1000).map(|i| format!("T.{i:04}")).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    publish(&mut router, &all);
    drop(rxs.pop()); // the worker's end of its channel is gone
    subscribe(&mut router, 0, "*", true);
    assert!(
        router.jobs.is_empty(),
        "no job waits for a worker that is gone"
    );
    assert_eq!(router.idle_wait(), PUBLISH_INTERVAL);
}
