use std::sync::Arc;

use tickwire_protocol::Selector;

use super::Following;
use crate::messages::{LocalQuote, SharedQuote};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn quote(topic: &str, seq: u64) -> Arc<SharedQuote> {
    Arc::new(SharedQuote::for_test(topic, seq))
}

/// (topic, seq) of the snapshot answered here, or None (the router answers).
fn snapshot_of(following: &Following, selectors: &[&str]) -> Option<Vec<(String, u64)>> {
    let selectors: Vec<Selector> = selectors.iter().map(|s| sel(s)).collect();
    let quotes = following.snapshots(&selectors)?;
    Some(
        quotes
            .iter()
            .map(|q| (q.topic.to_string(), q.seq))
            .collect(),
    )
}

#[test]
fn refs_report_first_and_last() {
    let mut following = Following::default();
    let stamp = following.stamp();
    assert!(following.add_ref(&sel("X"), stamp));
    assert!(!following.add_ref(&sel("X"), stamp));
    assert!(!following.remove_ref(&sel("X")));
    assert!(following.remove_ref(&sel("X")));
    assert!(!following.remove_ref(&sel("X")));
}

#[test]
fn a_plain_activation_makes_the_newest_known_and_quotes_keep_it_current() {
    let mut following = Following::default();
    let first = following.stamp();
    following.add_ref(&sel("A"), first);
    following.add_ref(&sel("B"), first);
    assert_eq!(
        snapshot_of(&following, &["A"]),
        None,
        "unknown before an activation"
    );
    // A quote before the activation is older than its snapshot: no seed.
    following.on_quote(&LocalQuote::from(quote("A", 1)));
    assert_eq!(snapshot_of(&following, &["A"]), None);
    following.seed(first, &[sel("A"), sel("B")], &[quote("A", 2)]);
    assert_eq!(
        snapshot_of(&following, &["A", "B"]),
        Some(vec![("A".into(), 2)]),
        "B known to have no quote"
    );
    following.on_quote(&LocalQuote::from(quote("B", 1)));
    following.on_quote(&LocalQuote::from(quote("A", 3)));
    assert_eq!(
        snapshot_of(&following, &["B", "A"]),
        Some(vec![("B".into(), 1), ("A".into(), 3)])
    );
}

#[test]
fn only_exact_topics_all_known_are_answered_here() {
    let mut following = Following::default();
    let stamp = following.stamp();
    following.add_ref(&sel("A"), stamp);
    following.add_ref(&sel("A*"), stamp);
    following.seed(
        stamp,
        &[sel("A"), sel("A*")],
        &[quote("A", 1), quote("AB", 1)],
    );
    assert!(snapshot_of(&following, &["A"]).is_some());
    assert_eq!(
        snapshot_of(&following, &["A*"]),
        None,
        "a pattern goes to the router"
    );
    assert_eq!(
        snapshot_of(&following, &["A", "AB"]),
        None,
        "AB is not followed exactly"
    );
    assert_eq!(snapshot_of(&following, &["A", "C"]), None);
}

/// Given up and followed again, a topic's newest is unknown until an
/// activation of a subscribe made since: the router sent the worker nothing
/// of it in between, so an older subscribe's activation is stale.
#[test]
fn a_topic_followed_again_waits_for_a_newer_activation() {
    let mut following = Following::default();
    let old = following.stamp();
    following.add_ref(&sel("A"), old);
    following.seed(old, &[sel("A")], &[quote("A", 1)]);
    assert!(following.remove_ref(&sel("A")));
    let again = following.stamp();
    assert!(following.add_ref(&sel("A"), again));
    // A second subscribe of the old interest answered late: ignored.
    following.seed(old, &[sel("A")], &[quote("A", 1)]);
    assert_eq!(snapshot_of(&following, &["A"]), None);
    following.on_quote(&LocalQuote::from(quote("A", 5)));
    assert_eq!(
        snapshot_of(&following, &["A"]),
        None,
        "a quote alone does not seed"
    );
    let later = following.stamp();
    following.seed(later, &[sel("A")], &[quote("A", 5)]);
    assert_eq!(snapshot_of(&following, &["A"]), Some(vec![("A".into(), 5)]));
}
