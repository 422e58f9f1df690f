use super::*;
use crate::messages::ConnId;
use mio::{Poll, Token};

fn quote(topic: &str) -> Quote {
    Quote {
        topic: topic.into(),
        bid: 1.0,
        ask: 2.0,
        bid_size: 3.0,
        ask_size: 4.0,
        last: 1.5,
        volume: 5.0,
        ts: 6,
    }
}

fn subscribe(router: &mut Router, worker: usize, selector: &str, snapshot: bool) {
    let selector = Selector::parse(selector).unwrap();
    router.handle_cmd(RouterCmd::Subscribe {
        worker,
        conn: ConnId { slot: 0, serial: 1 },
        request: 0,
        selectors: vec![selector.clone()],
        snapshot,
        interest_add: vec![selector],
    });
}

/// The broker holds one encoded copy per format of a quote however many
/// workers (and, in each, subscribers) get it: everyone shares one Arc.
#[test]
fn one_encoded_copy_shared_by_every_worker_and_the_cache() {
    let polls: Vec<Poll> = (0..2).map(|_| Poll::new().unwrap()).collect();
    let mut rxs = Vec::new();
    let links = polls
        .iter()
        .map(|poll| {
            let (tx, rx) = crossbeam_channel::unbounded();
            rxs.push(rx);
            WorkerLink {
                tx,
                waker: Arc::new(Waker::new(poll.registry(), Token(1)).unwrap()),
            }
        })
        .collect();
    let mut router = Router::new(links, 10, Arc::new(Metrics::default()));
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
    // Two workers + the last-value cache, and no other copy.
    assert_eq!(Arc::strong_count(&delivered[0]), 3);

    // A snapshot is that same Arc too.
    subscribe(&mut router, 0, "AAPL", true);
    let snapshot = rxs[0]
        .try_iter()
        .find_map(|m| match m {
            WorkerMsg::Activate { snapshots, .. } => snapshots.into_iter().next(),
            WorkerMsg::Quotes { .. } => None,
        })
        .expect("a snapshot");
    assert!(Arc::ptr_eq(&snapshot, &delivered[0]));
    assert!(std::str::from_utf8(&snapshot.json_frame[2..])
        .unwrap()
        .contains("\"seq\":1"));
}

#[test]
fn interest_follows_patterns_new_topics_and_drops() {
    let poll = Poll::new().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let link = WorkerLink {
        tx,
        waker: Arc::new(Waker::new(poll.registry(), Token(1)).unwrap()),
    };
    let mut router = Router::new(vec![link], 2, Arc::new(Metrics::default()));
    subscribe(&mut router, 0, "B*", false);
    let count = |rx: &crossbeam_channel::Receiver<WorkerMsg>| {
        rx.try_iter()
            .map(|m| match m {
                WorkerMsg::Quotes { quotes, .. } => quotes.len(),
                WorkerMsg::Activate { .. } => 0,
            })
            .sum::<usize>()
    };
    router.ingest(IngestBatch {
        quotes: vec![quote("BTC"), quote("ETH"), quote("BCH")],
        decoded_at: Instant::now(),
    });
    router.flush();
    // BTC matches; ETH does not; BCH is past max_topics (2) and dropped.
    assert_eq!(count(&rx), 1);
    assert_eq!(
        router
            .metrics
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
    assert_eq!(count(&rx), 0);
}
