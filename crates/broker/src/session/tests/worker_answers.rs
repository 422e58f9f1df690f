//! What lets the worker answer a subscribe itself
//! (`Connection::awaits_only_the_last`), and the bound on subscribes
//! awaiting their answer that keeps that count exact.

use super::*;
use crate::session::subscriptions::MAX_AWAITING;

/// Whether `actions` hand a subscribe to the shell (for the router).
fn subscribes(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Subscribe { .. }))
}

#[test]
fn only_a_subscribe_awaited_alone_may_be_answered_by_the_worker() {
    let mut c = Client::upgraded(config());
    assert!(!c.conn.awaits_only_the_last(), "nothing asked yet");
    c.request(r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#);
    assert!(c.conn.awaits_only_the_last());
    // A second before the first is answered: its answer would overtake
    // the one the router owes.
    c.request(r#"{"op":"subscribe","topics":["B"],"snapshot":false}"#);
    assert!(!c.conn.awaits_only_the_last());
    c.activate(0, &["A"], vec![]);
    assert!(c.conn.awaits_only_the_last(), "only B's answer is owed");
    c.activate(1, &["B"], vec![]);
    assert!(!c.conn.awaits_only_the_last(), "nothing owed");
}

#[test]
fn a_snapshot_still_arriving_in_slices_keeps_the_answer_with_the_router() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["A*"]}"#);
    c.activate_sliced(0, &["A*"], vec![quote("AA", 1)]);
    c.request(r#"{"op":"subscribe","topics":["B"]}"#);
    assert!(!c.conn.awaits_only_the_last(), "A*'s slices still come");
    c.slice(0, vec![quote("AB", 1)], false);
    assert!(c.conn.awaits_only_the_last());
}

/// At 255 subscribes awaiting their answer the connection's input waits
/// (one byte counts them); the next answer lets it go on.
#[test]
fn input_waits_while_255_subscribes_await_their_answer() {
    // Room for 255 unread acks.
    let mut c = Client::upgraded(SessionConfig {
        outbound_budget_bytes: 1 << 20,
        ..config()
    });
    let subscribe = r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#;
    for _ in 0..MAX_AWAITING {
        let actions = c.request(subscribe);
        assert!(subscribes(&actions), "{actions:?}");
    }
    let actions = c.request(subscribe);
    assert!(!subscribes(&actions), "the 256th waits: {actions:?}");
    c.activate(0, &["A"], vec![]);
    let actions = c.take_actions();
    let last = u32::from(MAX_AWAITING);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Subscribe { request, .. } if *request == last)),
        "it goes once an answer comes: {actions:?}"
    );
}
