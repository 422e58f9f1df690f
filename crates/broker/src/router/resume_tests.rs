//! Resume (`since`) and rewind at the router: what a connection gets
//! before and after its activation, with injected ingest and no sockets.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use tickwire_protocol::Selector;

use super::tests::{quote, router_with_history};
use super::{HistoryLimits, Router};
use crate::messages::{CatchUp, ConnId, IngestBatch, Resume, RouterCmd, WorkerMsg};

pub(super) fn limits(size: usize) -> HistoryLimits {
    HistoryLimits {
        size,
        max_bytes: usize::MAX,
    }
}

pub(super) fn publish(router: &mut Router, topics: &[&str]) {
    router.ingest(IngestBatch {
        quotes: topics.iter().map(|t| quote(t)).collect(),
        decoded_at: Instant::now(),
    });
    router.flush();
}

fn publish_n(router: &mut Router, topic: &str, n: usize) {
    for _ in 0..n {
        publish(router, &[topic]);
    }
}

pub(super) fn resume(topic: &str, after: u64) -> Resume {
    Resume {
        topic: Arc::from(topic),
        after,
        newest_only: false,
    }
}

pub(super) fn subscribe(router: &mut Router, conn: ConnId, selectors: &[&str], catch_up: CatchUp) {
    let selectors: Vec<Selector> = selectors
        .iter()
        .filter_map(|s| Selector::parse(s))
        .collect();
    router.handle_cmd(RouterCmd::Subscribe {
        worker: 0,
        conn,
        request: conn.serial,
        interest_add: selectors.clone(),
        selectors,
        catch_up,
        seed: None,
    });
}

pub(super) fn since(resume: Vec<Resume>) -> CatchUp {
    CatchUp {
        snapshot: true,
        rewind: 0,
        resume,
        resume_from: None,
        epoch_matches: true,
        window: 0,
    }
}

/// What worker 0 got, handled as the worker would (slices acknowledged):
/// per topic, the seqs in order; the activation's unrecovered topics; and
/// whether the last catch-up message said more follow.
#[derive(Default, Debug)]
pub(super) struct Seen {
    seqs: BTreeMap<String, Vec<u64>>,
    pub unrecovered: Option<Vec<String>>,
    more: bool,
}

fn drain(router: &Router, rx: &crossbeam_channel::Receiver<WorkerMsg>, seen: &mut Seen) {
    // The worker counts down each slice it handles: the router must have
    // counted up every one it sent (eager ones included), or the count
    // wraps and the worker never looks caught up again.
    let mut slices = 0;
    for msg in rx.try_iter() {
        let quotes = match msg {
            WorkerMsg::Quotes { quotes, .. } => quotes,
            WorkerMsg::Activate {
                snapshots,
                more,
                unrecovered,
                ..
            } => {
                slices += usize::from(more);
                seen.more = more;
                seen.unrecovered = unrecovered.map(|u| u.iter().map(|t| t.to_string()).collect());
                snapshots
            }
            WorkerMsg::Snapshots { quotes, more, .. } => {
                slices += 1;
                seen.more = more;
                quotes
            }
        };
        for q in quotes {
            seen.seqs
                .entry(q.topic.to_string())
                .or_default()
                .push(q.seq);
        }
    }
    let counted = router.fanout.link(0).slices_queued.swap(0, Relaxed);
    assert_eq!(counted, slices, "slices counted as sent");
}

fn seen_after(router: &Router, rx: &crossbeam_channel::Receiver<WorkerMsg>) -> Seen {
    let mut seen = Seen::default();
    drain(router, rx, &mut seen);
    seen
}

const CONN: ConnId = ConnId { slot: 0, serial: 1 };

#[test]
fn a_resume_replays_exactly_the_quotes_after_the_seq_then_live() {
    let (mut router, rxs, _p) = router_with_history(1, 100, limits(64));
    publish_n(&mut router, "A", 10);
    subscribe(&mut router, CONN, &["A"], since(vec![resume("A", 7)]));
    publish(&mut router, &["A"]);
    let seen = seen_after(&router, &rxs[0]);
    assert_eq!(seen.seqs["A"], [8, 9, 10, 11]);
    assert_eq!(seen.unrecovered, Some(vec![]));
    let m = router.metrics();
    assert_eq!(m.resume_recovered.load(Relaxed), 1);
    assert_eq!(m.resume_unrecovered.load(Relaxed), 0);
}

#[test]
fn a_topic_is_unrecovered_when_the_range_is_not_held_and_gets_the_snapshot() {
    let cases: [(&str, HistoryLimits, u64, bool); 4] = [
        ("after the newest seq", limits(64), 11, true),
        ("another epoch", limits(64), 9, false),
        ("history no longer reaches back", limits(3), 6, true),
        ("history off, even at the newest", limits(0), 10, true),
    ];
    for (why, history, after, epoch_matches) in cases {
        let (mut router, rxs, _p) = router_with_history(1, 100, history);
        publish_n(&mut router, "A", 10);
        let mut catch_up = since(vec![resume("A", after)]);
        catch_up.epoch_matches = epoch_matches;
        subscribe(&mut router, CONN, &["A"], catch_up);
        let seen = seen_after(&router, &rxs[0]);
        assert_eq!(seen.unrecovered, Some(vec!["A".to_owned()]), "{why}");
        assert_eq!(seen.seqs["A"], [10], "{why}: the snapshot");
        assert_eq!(router.metrics().resume_unrecovered.load(Relaxed), 1);
    }
}

#[test]
fn nothing_is_replayed_at_the_newest_seq_or_for_a_topic_never_quoted() {
    let (mut router, rxs, _p) = router_with_history(1, 100, limits(64));
    publish_n(&mut router, "A", 3);
    subscribe(
        &mut router,
        CONN,
        &["A", "B"],
        since(vec![resume("A", 3), resume("B", 0)]),
    );
    let seen = seen_after(&router, &rxs[0]);
    assert_eq!(seen.unrecovered, Some(vec![]));
    assert!(seen.seqs.is_empty(), "no replay, no snapshot: {seen:?}");
}

/// A `max_hz` entry asked for conflation: only the newest quote, if newer.
#[test]
fn a_newest_only_resume_sends_the_newest_quote_if_it_is_newer() {
    let (mut router, rxs, _p) = router_with_history(1, 100, limits(2));
    publish_n(&mut router, "A", 10);
    publish_n(&mut router, "B", 4);
    let newest = |t: &str, after| Resume {
        newest_only: true,
        ..resume(t, after)
    };
    let catch_up = since(vec![newest("A", 1), newest("B", 4)]);
    subscribe(&mut router, CONN, &["A", "B"], catch_up);
    let seen = seen_after(&router, &rxs[0]);
    assert_eq!(
        seen.unrecovered,
        Some(vec![]),
        "1 is long gone, yet recovered"
    );
    assert_eq!(seen.seqs["A"], [10]);
    assert!(!seen.seqs.contains_key("B"));
}

#[test]
fn a_rewind_sends_the_newest_quotes_oldest_first_and_the_snapshot_without_history() {
    for (size, a, b) in [(64, vec![3, 4, 5], vec![1]), (0, vec![5], vec![1])] {
        let (mut router, rxs, _p) = router_with_history(1, 100, limits(size));
        publish_n(&mut router, "A.1", 5);
        publish(&mut router, &["A.2"]);
        let catch_up = CatchUp {
            rewind: 3,
            ..CatchUp::snapshot(true)
        };
        subscribe(&mut router, CONN, &["A*"], catch_up);
        let seen = seen_after(&router, &rxs[0]);
        assert_eq!(seen.seqs["A.1"], a, "size {size}");
        assert_eq!(seen.seqs["A.2"], b, "size {size}");
        assert_eq!(seen.unrecovered, None, "no since");
    }
}

/// A resume larger than a slice comes in slices; a topic quoted before
/// its slice gets its replay first, then the live quote: per topic the
/// stream has no gap and no duplicate.
#[test]
fn a_large_resume_is_sliced_and_a_topic_quoted_meanwhile_keeps_its_order() {
    let (mut router, rxs, _p) = router_with_history(1, 10_000, limits(64));
    let names: Vec<String> = (0..600).map(|i| format!("T.{i:04}")).collect();
    for _ in 0..5 {
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        publish(&mut router, &all);
    }
    let _ = rxs[0].try_iter().count();
    let resumes = names.iter().map(|n| resume(n, 2)).collect();
    subscribe(&mut router, CONN, &["T.*"], since(resumes));
    let mut seen = seen_after(&router, &rxs[0]);
    assert!(seen.more, "sliced");
    assert!(seen.seqs.len() < names.len());
    // Quoted before their slices: T.0599 twice, T.0000 (replayed already).
    publish(&mut router, &["T.0599", "T.0000", "T.0599"]);
    for _ in 0..100 {
        router.advance_snapshots();
        drain(&router, &rxs[0], &mut seen);
        if !seen.more {
            break;
        }
    }
    assert!(!seen.more);
    for name in &names {
        let expected: Vec<u64> = match name.as_str() {
            "T.0599" => (3..=7).collect(),
            "T.0000" => (3..=6).collect(),
            _ => (3..=5).collect(),
        };
        assert_eq!(seen.seqs[name], expected, "{name}");
    }
}

/// A rewind over a pattern larger than a slice: a topic quoted before its
/// slice gets its rewind first, then the live quote.
#[test]
fn a_sliced_rewind_keeps_each_topics_order() {
    let (mut router, rxs, _p) = router_with_history(1, 10_000, limits(64));
    let names: Vec<String> = (0..600).map(|i| format!("T.{i:04}")).collect();
    for _ in 0..3 {
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        publish(&mut router, &all);
    }
    let _ = rxs[0].try_iter().count();
    let catch_up = CatchUp {
        rewind: 2,
        ..CatchUp::snapshot(true)
    };
    subscribe(&mut router, CONN, &["T.*"], catch_up);
    let mut seen = seen_after(&router, &rxs[0]);
    assert!(seen.more);
    publish(&mut router, &["T.0500"]);
    for _ in 0..100 {
        router.advance_snapshots();
        drain(&router, &rxs[0], &mut seen);
        if !seen.more {
            break;
        }
    }
    assert_eq!(seen.seqs["T.0500"], [2, 3, 4]);
    assert_eq!(seen.seqs["T.0499"], [2, 3]);
    assert_eq!(seen.seqs.len(), names.len());
}

#[test]
fn history_stays_under_its_byte_bound_and_evicts_the_least_recently_quoted() {
    let one = {
        let (mut router, _rxs, _p) = router_with_history(1, 10, limits(64));
        publish(&mut router, &["X"]);
        router.topics.history_held().1
    };
    // Room for 1,000 entries; 100,000 topics quoted at random.
    let bound = 1_000 * one;
    let history = HistoryLimits {
        size: 64,
        max_bytes: bound,
    };
    let (mut router, _rxs, _p) = router_with_history(1, 200_000, history);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut peak = 0;
    for _ in 0..300 {
        let batch: Vec<String> = (0..1_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                format!("T.{}", rng % 100_000)
            })
            .collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        router.ingest(IngestBatch {
            quotes: refs.iter().map(|t| quote(t)).collect(),
            decoded_at: Instant::now(),
        });
        peak = peak.max(router.topics.history_held().1);
    }
    assert!(peak <= bound, "{peak} > {bound}");
    // Full, not emptied: eviction takes only what the bound needs.
    let (quotes, bytes) = router.topics.history_held();
    assert!(quotes > 0 && bytes > bound * 9 / 10, "{quotes} {bytes}");
    // The newest quotes are the ones kept: the last batch's topics can be
    // resumed from just before their newest quote.
    let last = format!("T.{}", rng % 100_000);
    let seq = router.topics.resume_quotes(&last, 0, false);
    assert!(!seq.is_empty(), "{last} was quoted last");
}

/// A replay is paced: each slice holds at most `window` frame bytes, and
/// the next waits for the connection's credit (its queue drained), so a
/// reader gets every replayed quote instead of a conflated queue.
#[test]
fn a_paced_replay_waits_for_credit_between_slices() {
    let (mut router, rxs, _p) = router_with_history(1, 100, limits(64));
    publish_n(&mut router, "A", 40);
    let one = {
        let _ = rxs[0].try_iter().count();
        router.topics.resume_quotes("A", 39, false)[0]
            .json_frame
            .len()
    };
    let mut catch_up = since(vec![resume("A", 0)]);
    catch_up.window = 10 * one;
    subscribe(&mut router, CONN, &["A"], catch_up);
    let mut seen = seen_after(&router, &rxs[0]);
    assert_eq!(seen.seqs["A"].len(), 10, "one window");
    assert!(seen.more);
    router.advance_snapshots();
    drain(&router, &rxs[0], &mut seen);
    assert_eq!(seen.seqs["A"].len(), 10, "no credit, no slice");
    let mut slices = 1;
    while seen.more && slices < 10 {
        router.handle_cmd(RouterCmd::CatchUpCredit {
            worker: 0,
            conn: CONN,
        });
        router.advance_snapshots();
        drain(&router, &rxs[0], &mut seen);
        slices += 1;
    }
    assert_eq!(seen.seqs["A"], (1..=40).collect::<Vec<u64>>());
    assert!(!seen.more && slices <= 5, "{slices} slices");
}
