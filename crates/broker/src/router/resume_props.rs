//! The resume model test: random interleavings of publishes, cuts and
//! resumes against the router, every stream checked against the topic's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use proptest::prelude::*;
use tickwire_protocol::Selector;

use super::resume_tests::{limits, publish, resume, since, subscribe, Seen};
use super::tests::router_with_history;
use super::Router;
use crate::messages::{ConnId, RouterCmd, WorkerMsg};

#[derive(Debug, Clone)]
enum Op {
    Publish(usize),
    /// The client is cut and resumes with its positions.
    Reconnect,
    Advance,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize).prop_map(Op::Publish),
        1 => Just(Op::Reconnect),
        2 => Just(Op::Advance),
    ]
}

proptest! {
    /// For random interleavings of publishes, cuts and resumes, the client's
    /// stream of every topic is the topic's stream: a recovered topic goes
    /// on from the client's seq with no gap and no duplicate; an
    /// unrecovered one restarts from its snapshot, never going back.
    #[test]
    fn a_resumed_stream_is_the_topics_stream(ops in prop::collection::vec(op(), 1..120), size in 1..6usize) {
        let (mut router, rxs, _p) = router_with_history(1, 100, limits(size));
        let topics = ["T.0", "T.1", "T.2", "T.3"];
        // What the client holds: the last seq per topic, and the conn.
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        let mut serial = 1;
        subscribe(&mut router, ConnId { slot: 0, serial }, &["T.*"], since(vec![]));
        let mut pending = Seen::default();
        for op in ops {
            match op {
                Op::Publish(i) => publish(&mut router, &[topics[i]]),
                Op::Advance => router.advance_snapshots(),
                Op::Reconnect => {
                    let old = ConnId { slot: 0, serial };
                    absorb(&router, &rxs[0], &mut pending, &mut last)?;
                    router.handle_cmd(RouterCmd::CancelSnapshots { worker: 0, conn: old });
                    router.handle_cmd(RouterCmd::DropInterest {
                        worker: 0,
                        selectors: vec![Selector::parse("T.*").unwrap()],
                    });
                    serial += 1;
                    let resumes = last.iter().map(|(t, s)| resume(t, *s)).collect();
                    subscribe(&mut router, ConnId { slot: 0, serial }, &["T.*"], since(resumes));
                }
            }
            absorb(&router, &rxs[0], &mut pending, &mut last)?;
        }
    }
}

/// Applies what the worker got to the client's positions, checking the
/// rules: after an activation, a recovered topic continues at last + 1,
/// an unrecovered one may jump ahead (its snapshot) but never back; every
/// later quote is exactly last + 1 (nothing conflates at the router).
fn absorb(
    router: &Router,
    rx: &crossbeam_channel::Receiver<WorkerMsg>,
    seen: &mut Seen,
    last: &mut BTreeMap<String, u64>,
) -> Result<(), TestCaseError> {
    router.fanout.link(0).slices_queued.store(0, Relaxed);
    for msg in rx.try_iter() {
        let quotes = match msg {
            WorkerMsg::Quotes { quotes, .. } => quotes,
            WorkerMsg::Activate {
                snapshots,
                unrecovered,
                ..
            } => {
                seen.unrecovered = unrecovered.map(|u| u.iter().map(|t| t.to_string()).collect());
                snapshots
            }
            WorkerMsg::Snapshots { quotes, .. } => quotes,
        };
        for q in quotes {
            let topic = q.topic.to_string();
            let unrecovered = seen
                .unrecovered
                .as_ref()
                .is_some_and(|u| u.contains(&topic));
            let held = last.get(&topic).copied();
            match held {
                Some(held) if unrecovered => {
                    prop_assert!(q.seq > held, "{topic}: {} after {held}", q.seq);
                    // Its snapshot taken: from now on it is in order.
                    if let Some(u) = seen.unrecovered.as_mut() {
                        u.retain(|t| *t != topic);
                    }
                }
                Some(held) => prop_assert_eq!(q.seq, held + 1, "{}", topic),
                None => {}
            }
            last.insert(topic, q.seq);
        }
    }
    Ok(())
}
