use std::sync::atomic::Ordering::Relaxed;

use super::*;

fn table(max_topics: usize) -> TopicTable {
    TopicTable::new(
        max_topics,
        HistoryLimits::default(),
        Arc::new(Metrics::default()),
    )
}

#[test]
fn numbers_each_topic_on_its_own_and_never_past_max_seq() {
    let mut table = table(10);
    let (_, mut a) = table.quote("A").unwrap();
    assert_eq!((a.next_seq(), a.next_seq()), (1, 2));
    let (_, mut b) = table.quote("B").unwrap();
    assert_eq!(b.next_seq(), 1);
    let (_, mut a) = table.quote("A").unwrap();
    assert!(!a.adopt(2), "not newer");
    assert!(a.adopt(MAX_SEQ - 1));
    assert_eq!(a.next_seq(), MAX_SEQ);
    assert_eq!(a.next_seq(), MAX_SEQ, "stays at the bound, never wraps");
    assert!(!a.adopt(MAX_SEQ));
}

#[test]
fn new_topics_past_the_limit_are_dropped_and_counted() {
    let mut table = table(2);
    let (first, _) = table.quote("A").unwrap();
    assert!(table.quote("B").is_some());
    assert!(table.quote("C").is_none());
    assert!(table.quote("C").is_none());
    let (again, _) = table.quote("A").unwrap();
    assert!(Arc::ptr_eq(&first, &again), "one shared name per topic");
    assert_eq!(table.len(), 2);
    assert_eq!(table.metrics.topics.load(Relaxed), 2);
    assert_eq!(table.metrics.topics_dropped.load(Relaxed), 2);
}

/// The accept counter decides what a snapshot taken at some count
/// still sends: a topic accepted later is left to its live quote, and
/// adopting a seq alone accepts nothing.
#[test]
fn a_snapshot_leaves_out_topics_accepted_after_it_went_live() {
    let mut table = table(10);
    quote_all(&mut table, &["A", "B"]);
    let live_since = table.accepted();
    assert_eq!(live_since, 2);
    assert!(table.snapshot("A", live_since).is_some());
    quote_all(&mut table, &["A"]);
    assert!(table.snapshot("A", live_since).is_none());
    assert!(table.snapshot("B", live_since).is_some());
    let (_, mut c) = table.quote("C").unwrap();
    assert!(c.adopt(7));
    assert_eq!(table.accepted(), 3);
    assert!(table.snapshot("C", 3).is_none(), "no value to send");
    assert!(table.snapshot("Z", 3).is_none());
}

#[test]
fn names_under_a_pattern_come_in_order_and_resume_after_a_name() {
    let mut table = table(10);
    quote_all(&mut table, &["B.2", "A.1", "B.1", "B.3"]);
    let pattern = Selector::parse("B.*").unwrap();
    let all: Vec<&str> = table.names(&pattern, None).map(|n| &**n).collect();
    assert_eq!(all, ["B.1", "B.2", "B.3"]);
    let after = Arc::from("B.1");
    let rest: Vec<&str> = table.names(&pattern, Some(&after)).map(|n| &**n).collect();
    assert_eq!(rest, ["B.2", "B.3"]);
    let exact = Selector::parse("A.1").unwrap();
    assert_eq!(table.names(&exact, None).count(), 1);
    assert!(table.mask_mut(&exact).is_some());
    assert!(table.mask_mut(&pattern).is_none());
}
