//! Subscription rules: atomic requests, the reply gate, snapshots,
//! re-subscribes, unsubscribe, `max_hz`.

use std::time::{Duration, Instant};

use super::*;
use crate::messages::CatchUp;

#[test]
fn a_request_with_one_bad_topic_changes_nothing() {
    let mut c = Client::upgraded(config());
    let actions = c.request(r#"{"op":"subscribe","topics":["AAPL","BAD TOPIC","MSFT"],"id":5}"#);
    assert_eq!(actions, [Action::RequestError(ErrorCode::BadTopic)]);
    assert_eq!(c.conn.subscription_count(), 0);
    let frames = c.frames();
    assert!(frames[0].contains(r#""code":"bad_topic""#) && frames[0].contains("BAD TOPIC"));
    // Past the limit (4 entries) is refused whole as well.
    c.request(r#"{"op":"subscribe","topics":["A","B","C"]}"#);
    let actions = c.request(r#"{"op":"subscribe","topics":["B","D","E"]}"#);
    assert_eq!(
        actions,
        [Action::RequestError(ErrorCode::TooManySubscriptions)]
    );
    assert_eq!(c.conn.subscription_count(), 3);
}

#[test]
fn ack_then_snapshot_then_live_and_the_ack_waits_for_the_activation() {
    let mut c = Client::upgraded(config());
    c.send(r#"{"op":"subscribe","topics":["AAPL","MSFT","AAPL"],"id":1}"#);
    let actions = c.take_actions();
    assert_eq!(
        actions,
        [
            Action::SubscriptionsChanged(2),
            Action::Subscribe {
                request: 0,
                selectors: vec![sel("AAPL"), sel("MSFT")],
                added: vec![sel("AAPL"), sel("MSFT")],
                catch_up: CatchUp::snapshot(true),
            }
        ]
    );
    // The router has not taken the command: the ack is held; taken, it
    // still waits for the activation, to go with the snapshot.
    assert!(c.frames().is_empty());
    c.conn.on_command_taken(&mut c.fx);
    assert!(c.frames().is_empty());

    c.activate(0, &["AAPL", "MSFT"], vec![quote("AAPL", 7)]);
    assert_eq!(
        c.take_actions(),
        [
            Action::Route {
                selector: sel("AAPL"),
                max_hz: None
            },
            Action::Route {
                selector: sel("MSFT"),
                max_hz: None
            },
        ]
    );
    c.live(&quote("AAPL", 8), None);
    let frames = c.frames();
    assert_eq!(kinds(&frames), ["subscribed", "Q AAPL 7", "Q AAPL 8"]);
    assert!(frames[0].contains(r#""topics":["AAPL","MSFT","AAPL"]"#));
}

#[test]
fn a_new_entry_gets_no_snapshot_of_a_topic_already_flowing_under_another() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["*"]}"#);
    c.activate(0, &["*"], vec![]);
    c.request(r#"{"op":"subscribe","topics":["AAPL","NEW"]}"#);
    c.activate(1, &["AAPL", "NEW"], vec![quote("AAPL", 3), quote("NEW", 1)]);
    let frames = c.frames();
    // AAPL was already delivered live under "*": no second copy. NEW too
    // matches "*", so neither is sent.
    assert_eq!(kinds(&frames), ["subscribed", "subscribed"]);
}

#[test]
fn a_re_subscribe_sends_the_snapshot_again_and_replaces_options() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["AAPL"],"max_hz":1}"#);
    c.activate(0, &["AAPL"], vec![quote("AAPL", 1)]);
    assert_eq!(
        c.take_actions(),
        [Action::Route {
            selector: sel("AAPL"),
            max_hz: Some(1.0)
        }]
    );
    let actions = c.request(r#"{"op":"subscribe","topics":["AAPL"]}"#);
    assert_eq!(
        actions,
        [
            Action::Route {
                selector: sel("AAPL"),
                max_hz: None
            },
            Action::Subscribe {
                request: 1,
                selectors: vec![sel("AAPL")],
                added: vec![],
                catch_up: CatchUp::snapshot(true),
            }
        ]
    );
    // Inside the old 1 s spacing, but max_hz is gone: sent at once.
    c.activate(1, &["AAPL"], vec![quote("AAPL", 2)]);
    let frames = c.frames();
    assert_eq!(
        kinds(&frames),
        ["subscribed", "Q AAPL 1", "subscribed", "Q AAPL 2"]
    );
}

#[test]
fn a_re_subscribe_of_a_pending_entry_keeps_the_first_requests_snapshot() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["AAPL"]}"#);
    c.request(r#"{"op":"subscribe","topics":["AAPL"],"snapshot":false}"#);
    // The router answers both, in order; only the first asked for a snapshot.
    c.activate(0, &["AAPL"], vec![quote("AAPL", 4)]);
    c.activate(1, &["AAPL"], vec![]);
    c.live(&quote("AAPL", 5), None);
    assert_eq!(
        kinds(&c.frames()),
        ["subscribed", "subscribed", "Q AAPL 4", "Q AAPL 5"]
    );
}

#[test]
fn an_entry_unsubscribed_before_its_activation_gets_no_snapshot() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["AAPL"]}"#);
    let actions = c.request(r#"{"op":"unsubscribe","topics":["AAPL","NEVER"]}"#);
    // Pending entries are not routed yet: nothing to unroute.
    assert_eq!(
        actions,
        [
            Action::SubscriptionsChanged(-1),
            Action::Release(vec![sel("AAPL")])
        ]
    );
    c.activate(0, &["AAPL"], vec![quote("AAPL", 4)]);
    assert!(c.take_actions().is_empty());
    assert_eq!(kinds(&c.frames()), ["subscribed", "unsubscribed"]);
}

#[test]
fn unsubscribe_drops_what_is_queued_for_topics_no_longer_matched() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["A*","AAPL"],"snapshot":false}"#);
    c.activate(0, &["A*", "AAPL"], vec![]);
    c.frames();
    c.live(&quote("AAPL", 1), None);
    c.live(&quote("AMD", 1), None);
    c.request(r#"{"op":"unsubscribe","topics":["A*"]}"#);
    // AAPL still flows under its exact entry; AMD's queued quote is gone.
    assert_eq!(kinds(&c.frames()), ["Q AAPL 1", "unsubscribed"]);
}

#[test]
fn max_hz_spacing_holds_the_newest_and_releases_it_when_due() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["X"],"max_hz":4,"snapshot":false}"#);
    c.activate(0, &["X"], vec![]);
    c.frames();
    c.take_actions();
    let t0 = c.now;
    c.live(&quote("X", 1), Some(4.0)); // after a quiet period: at once
    c.at(Duration::from_millis(10));
    c.live(&quote("X", 2), Some(4.0)); // inside the spacing: held
    assert_eq!(
        c.take_actions(),
        [Action::ArmTimer {
            at: t0 + Duration::from_millis(250),
            topic: "X".into()
        }]
    );
    c.at(Duration::from_millis(10));
    c.live(&quote("X", 3), Some(4.0)); // replaces the held one
    assert!(c.take_actions().is_empty(), "one timer per hold");
    assert_eq!(c.fx.conflated, 1);
    assert_eq!(c.frames(), ["Q X 1"]);
    // A timer that fires early (clock jitter) re-arms; it never sends early.
    c.conn
        .on_timer(&"X".into(), t0 + Duration::from_millis(200), &mut c.fx);
    assert_eq!(
        c.take_actions(),
        [Action::ArmTimer {
            at: t0 + Duration::from_millis(250),
            topic: "X".into()
        }]
    );
    c.now = t0 + Duration::from_millis(250);
    c.conn.on_timer(&"X".into(), c.now, &mut c.fx);
    assert_eq!(c.frames(), ["Q X 3"]);
    // The release counts as a delivery: the next spacing starts now.
    c.at(Duration::from_millis(100));
    c.live(&quote("X", 4), Some(4.0));
    assert!(c.frames().is_empty());
}

/// A snapshot spaces the next live quote only for a topic whose entry has a
/// `max_hz`: snapshots of other topics keep no throttle state, even on a
/// connection that throttles some (a `*` snapshot would otherwise keep state
/// for every topic).
#[test]
fn snapshots_of_unthrottled_topics_keep_no_throttle_state() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["A*"],"max_hz":4}"#);
    c.request(r#"{"op":"subscribe","topics":["B*"]}"#);
    c.activate(0, &["A*"], vec![quote("A1", 1)]);
    c.activate(1, &["B*"], vec![quote("B1", 1), quote("B2", 1)]);
    assert_eq!(c.conn.throttled_topics(), 1, "A1 only");
    assert_eq!(c.frames()[2..], ["Q A1 1", "Q B1 1", "Q B2 1"]);
    // A1's snapshot counts as a delivery: its next live quote is held.
    c.live(&quote("A1", 2), Some(4.0));
    c.live(&quote("B1", 2), None);
    assert_eq!(c.frames(), ["Q B1 2"]);
}

#[test]
fn the_most_specific_entry_sets_the_snapshot_spacing() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["AA*"],"max_hz":4}"#);
    c.request(r#"{"op":"subscribe","topics":["*"],"max_hz":1}"#);
    c.activate(0, &["AA*"], vec![quote("AAPL", 1)]);
    // AAPL already flows under AA*: no second snapshot for "*".
    c.activate(1, &["*"], vec![quote("AAPL", 1)]);
    c.take_actions();
    let t0 = c.now;
    // The snapshot counted as a delivery under AA*'s 250 ms spacing.
    c.at(Duration::from_millis(100));
    c.live(&quote("AAPL", 2), Some(4.0));
    assert_eq!(
        c.take_actions(),
        [Action::ArmTimer {
            at: t0 + Duration::from_millis(250),
            topic: "AAPL".into()
        }]
    );
    // A newer snapshot supersedes the held quote (never sent twice).
    c.request(r#"{"op":"subscribe","topics":["AA*"],"max_hz":4}"#);
    c.activate(2, &["AA*"], vec![quote("AAPL", 2)]);
    assert_eq!(c.fx.conflated, 1);
    c.now = t0 + Duration::from_millis(250);
    c.conn.on_timer(&"AAPL".into(), c.now, &mut c.fx);
    let frames = c.frames();
    assert_eq!(
        frames
            .iter()
            .filter(|f| f.starts_with("Q "))
            .collect::<Vec<_>>(),
        ["Q AAPL 1", "Q AAPL 2"]
    );
}

#[test]
fn snapshot_requests_over_the_snapshot_rate_are_refused_until_it_recovers() {
    let mut cfg = config();
    cfg.snapshots_per_second = 3;
    cfg.max_subscriptions = 100;
    let mut c = Client::upgraded(cfg);
    c.request(r#"{"op":"subscribe","topics":["A*"],"id":1}"#);
    // Five snapshots: two past the one-second allowance.
    let snaps = (0..5).map(|i| quote(&format!("A{i}"), 1)).collect();
    c.activate(0, &["A*"], snaps);
    c.frames();
    c.request(r#"{"op":"subscribe","topics":["B*"],"id":2}"#);
    let r: serde_json::Value = serde_json::from_str(&c.frames()[0]).unwrap();
    assert_eq!(
        (r["code"].as_str(), r["id"].as_u64()),
        (Some("rate_limited"), Some(2))
    );
    // Without a snapshot it goes through at once.
    c.request_answered(r#"{"op":"subscribe","topics":["B*"],"snapshot":false,"id":3}"#);
    assert_eq!(kinds(&c.frames()), ["subscribed"]);
    // After the debt is paid back (2 of 3/s: just under a second).
    c.at(Duration::from_millis(700));
    c.request_answered(r#"{"op":"subscribe","topics":["C*"],"id":4}"#);
    assert_eq!(kinds(&c.frames()), ["subscribed"]);
}

/// With the snapshot rate off, a second subscribe is taken while the first
/// one's snapshot still arrives in slices. Its new entry gives up its own
/// snapshot of a topic the first request's pattern covers; the pattern's
/// slice must then still bring it.
#[test]
fn a_later_entry_does_not_cancel_a_sliced_snapshot_it_deferred_to() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["*"]}"#);
    c.request(r#"{"op":"subscribe","topics":["ZZZ"]}"#);
    c.activate_sliced(0, &["*"], vec![quote("AAA", 3)]);
    // `*` is live: ZZZ's own snapshot would repeat what `*` brings.
    c.activate(1, &["ZZZ"], vec![quote("ZZZ", 7)]);
    c.slice(0, vec![quote("ZZZ", 7)], false);
    c.live(&quote("ZZZ", 8), None);
    assert_eq!(
        kinds(&c.frames()),
        ["subscribed", "subscribed", "Q AAA 3", "Q ZZZ 7", "Q ZZZ 8"]
    );
}

/// A feed of 1,000 quotes/s for 3 s under `max_hz: 4`, on the injected
/// clock (the end-to-end version asserted this against wall-clock pacing):
/// the first at once, then one per 250 ms, the held newest at the end —
/// 3 s × 4 + 1 quotes, in seq order, the last one the newest published.
#[test]
fn max_hz_4_over_3_seconds_of_1000_quotes_per_second() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["FAST"],"max_hz":4,"snapshot":false}"#);
    c.activate(0, &["FAST"], vec![]);
    c.frames();
    c.take_actions();
    let start = c.now;
    let mut timers: Vec<Instant> = Vec::new();
    let mut seqs = Vec::new();
    let fire_due = |c: &mut Client, timers: &mut Vec<Instant>| {
        let now = c.now;
        while let Some(i) = timers.iter().position(|&at| at <= now) {
            timers.swap_remove(i);
            c.conn.on_timer(&"FAST".into(), now, &mut c.fx);
        }
    };
    let collect = |c: &mut Client, timers: &mut Vec<Instant>, seqs: &mut Vec<u64>| {
        for a in c.take_actions() {
            if let Action::ArmTimer { at, .. } = a {
                timers.push(at);
            }
        }
        for f in c.frames() {
            seqs.push(f.trim().rsplit(' ').next().unwrap().parse().unwrap());
        }
    };
    for i in 0..3000u64 {
        c.now = start + Duration::from_millis(i);
        fire_due(&mut c, &mut timers);
        collect(&mut c, &mut timers, &mut seqs);
        c.live(&quote("FAST", i + 1), Some(4.0));
        collect(&mut c, &mut timers, &mut seqs);
    }
    // The feed stops; the worker's timer heap fires what is still held.
    c.now = start + Duration::from_secs(4);
    fire_due(&mut c, &mut timers);
    collect(&mut c, &mut timers, &mut seqs);
    assert_eq!(seqs.len(), 3 * 4 + 1, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.first(), Some(&1), "the first at once");
    assert_eq!(
        seqs.last(),
        Some(&3000),
        "the last one is the newest published"
    );
    assert!(timers.is_empty());
}

/// A `max_hz` too small for an `f32` (1e-50 rounds to 0) is the smallest
/// rate, never 0, which the route index reads as "not throttled".
#[test]
fn a_max_hz_too_small_for_an_f32_still_throttles() {
    let mut c = Client::upgraded(config());
    let actions = c.request_answered(r#"{"op":"subscribe","topics":["A"],"max_hz":1e-50}"#);
    let rates: Vec<Option<f32>> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Route { max_hz, .. } => Some(*max_hz),
            _ => None,
        })
        .collect();
    assert_eq!(rates.len(), 1, "{actions:?}");
    assert!(rates[0].is_some_and(|hz| hz > 0.0), "{rates:?}");
}
