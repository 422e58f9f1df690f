//! The connection's rules without sockets or sleeping: bytes and events in
//! with an injected clock, frames and actions out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::Selector;
use tickwire_ws::frame::{
    encode_frame, encode_masked_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role,
};

use super::*;
use crate::config::SlowConsumerPolicy;

pub(super) fn config() -> SessionConfig {
    SessionConfig {
        max_head_bytes: 8192,
        handshake_timeout: Duration::from_secs(10),
        max_message_bytes: 65_536,
        idle_ping: Duration::from_secs(30),
        dead_peer: Duration::from_secs(30),
        close_timeout: Duration::from_secs(2),
        max_subscriptions: 4,
        outbound_budget_bytes: 4096,
        slow_consumer_policy: SlowConsumerPolicy::Conflate,
        disconnect_after: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(60),
        epoch: "e".into(),
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// A quote whose JSON frame reads `Q <topic> <seq>` (padded to `size`).
pub(super) fn quote(topic: &str, seq: u64) -> Arc<SharedQuote> {
    sized_quote(topic, seq, 0)
}

fn sized_quote(topic: &str, seq: u64, size: usize) -> Arc<SharedQuote> {
    let mut text = format!("Q {topic} {seq}");
    while text.len() < size {
        text.push(' ');
    }
    let mut frame = Vec::new();
    encode_frame(&mut frame, OpCode::Text, text.as_bytes());
    Arc::new(SharedQuote {
        topic: topic.into(),
        json_frame: frame.clone().into(),
        binary_frame: frame.into(),
        decoded_at: Instant::now(),
    })
}

/// One connection driven by a test: a client's view of what it writes.
struct Client {
    conn: Connection,
    fx: Effects,
    now: Instant,
    decoder: FrameDecoder,
    /// Bytes the "socket" accepted but not yet decoded.
    wire: Vec<u8>,
}

impl Client {
    fn upgraded(config: SessionConfig) -> Client {
        let now = Instant::now();
        let mut c = Client {
            conn: Connection::new(Arc::new(config), now),
            fx: Effects::default(),
            now,
            decoder: FrameDecoder::new(
                Role::Client,
                DecoderLimits {
                    max_message: 1 << 20,
                    accept_binary: true,
                },
            ),
            wire: Vec::new(),
        };
        let request =
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        c.conn.on_bytes(request.as_bytes(), now, &mut c.fx);
        assert_eq!(c.take_actions(), [Action::Opened]);
        c.write_all();
        let end = c.wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(c.wire.starts_with(b"HTTP/1.1 101 "));
        c.wire.drain(..end);
        c
    }

    fn at(&mut self, after: Duration) -> Instant {
        self.now += after;
        self.now
    }

    fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.fx.actions)
    }

    fn send(&mut self, text: &str) {
        let mut frame = Vec::new();
        encode_masked_frame(
            &mut frame,
            OpCode::Text,
            true,
            text.as_bytes(),
            [1, 2, 3, 4],
        );
        self.conn.on_bytes(&frame, self.now, &mut self.fx);
    }

    /// Sends a request and, like the shell with a router that has room,
    /// confirms its subscribe command at once.
    fn request(&mut self, text: &str) -> Vec<Action> {
        self.send(text);
        let actions = self.take_actions();
        for a in &actions {
            if matches!(a, Action::Subscribe { .. }) {
                self.conn.on_command_taken();
            }
        }
        actions
    }

    /// Writes everything queued to the "socket".
    fn write_all(&mut self) -> bool {
        let mut n = 0;
        let drained = self
            .conn
            .outbound()
            .write_to(&mut self.wire, &mut n, &mut |_: &OutFrame| {})
            .unwrap();
        self.conn.on_written(n, drained, self.now)
    }

    /// Everything written so far, as text (`Q …` quotes and JSON replies)
    /// or `close <code> <reason>` / `ping`.
    fn frames(&mut self) -> Vec<String> {
        self.write_all();
        let mut out = Vec::new();
        let mut offset = 0;
        while let Ok((n, event)) = self.decoder.decode(&self.wire[offset..]) {
            if n == 0 {
                break;
            }
            offset += n;
            match event {
                Some(Event::Text(t)) => out.push(t),
                Some(Event::Close(Some((code, reason)))) => {
                    out.push(format!("close {code} {reason}"))
                }
                Some(Event::Ping(_)) => out.push("ping".into()),
                Some(other) => out.push(format!("{other:?}")),
                None => {}
            }
        }
        self.wire.drain(..offset);
        out
    }

    fn activate(&mut self, request: u32, selectors: &[&str], snapshots: Vec<Arc<SharedQuote>>) {
        let selectors: Vec<Selector> = selectors.iter().map(|s| sel(s)).collect();
        self.conn
            .on_activate(request, &selectors, snapshots, self.now, &mut self.fx);
    }

    fn live(&mut self, q: &Arc<SharedQuote>, max_hz: Option<f32>) {
        let interval = max_hz.map(throttle::spacing);
        self.conn.on_quote(q, interval, self.now, &mut self.fx);
    }
}

fn kinds(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match serde_json::from_str::<serde_json::Value>(f) {
            Ok(v) => v["type"].as_str().unwrap_or("?").to_owned(),
            Err(_) => f.clone(),
        })
        .collect()
}

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
fn ack_then_snapshot_then_live_and_the_ack_waits_for_the_router() {
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
                snapshot: true,
            }
        ]
    );
    // The router has not taken the command: the ack is held.
    assert!(c.frames().is_empty());
    c.conn.on_command_taken();
    let frames = c.frames();
    assert_eq!(kinds(&frames), ["subscribed"]);
    assert!(frames[0].contains(r#""topics":["AAPL","MSFT","AAPL"]"#));

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
    assert_eq!(c.frames(), ["Q AAPL 7", "Q AAPL 8"]);
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
                snapshot: true,
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
fn over_budget_conflates_then_disconnect_policy_closes_with_1008_after_the_reader_reads() {
    let mut cfg = config();
    cfg.slow_consumer_policy = SlowConsumerPolicy::Disconnect;
    let mut c = Client::upgraded(cfg);
    c.request(r#"{"op":"subscribe","topics":["A","B"],"snapshot":false}"#);
    c.activate(0, &["A", "B"], vec![]);
    c.frames();
    c.take_actions();
    // 1 KiB quotes against a 4 KiB budget, and a reader that reads nothing.
    for seq in 1..=10 {
        c.live(&sized_quote("A", seq, 1000), None);
        c.live(&sized_quote("B", seq, 1000), None);
    }
    assert!(c.conn.outbound().is_conflating());
    // A1 B1 A2 B2 fit the budget; A3..A10 and B3..B10 share two slots.
    assert_eq!(c.fx.conflated, 14);

    c.conn
        .on_tick(c.now + Duration::from_millis(1999), &mut c.fx);
    assert!(c.take_actions().is_empty(), "not yet 2 s over budget");
    let closed_at = c.at(Duration::from_secs(2));
    c.conn.on_tick(closed_at, &mut c.fx);
    let actions = c.take_actions();
    assert!(actions.contains(&Action::CloseSent {
        code: 1008,
        slow_consumer: true
    }));
    assert!(actions.contains(&Action::Left));
    assert!(actions.contains(&Action::SubscriptionsChanged(-2)));
    assert!(!c.conn.is_subscriber());

    // The reader stays away well past close_timeout (2 s): the connection
    // is kept for the close frame, until the stall timeout.
    c.conn
        .on_tick(closed_at + Duration::from_secs(59), &mut c.fx);
    assert!(c.take_actions().is_empty());
    // It reads again: the queued quotes were dropped, the close frame comes.
    c.now = closed_at + Duration::from_secs(59);
    assert_eq!(c.frames(), ["close 1008 slow consumer"]);
    // Written: the write side is shut (checked by `write_all` returning
    // true once), and the peer has close_timeout to answer.
    c.conn.on_tick(c.now + Duration::from_secs(2), &mut c.fx);
    assert_eq!(c.take_actions(), [Action::Drop]);
}

#[test]
fn a_closing_reader_that_never_reads_is_dropped_at_the_stall_timeout() {
    let mut c = Client::upgraded(config());
    c.send(r#"not json"#);
    c.send("x");
    c.conn.close_with(1008, "slow consumer", c.now, &mut c.fx);
    c.take_actions();
    c.conn.on_tick(c.now + Duration::from_secs(59), &mut c.fx);
    assert!(c.take_actions().is_empty());
    c.conn.on_tick(c.now + Duration::from_secs(60), &mut c.fx);
    assert_eq!(c.take_actions(), [Action::Drop]);
}

#[test]
fn a_reader_that_reads_nothing_while_quotes_wait_is_closed_at_the_stall_timeout() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#);
    c.activate(0, &["A"], vec![]);
    c.frames();
    c.take_actions();
    let queued_at = c.at(Duration::from_secs(100));
    c.live(&quote("A", 1), None);
    c.conn
        .on_tick(queued_at + Duration::from_secs(59), &mut c.fx);
    assert!(c.take_actions().is_empty());
    c.conn
        .on_tick(queued_at + Duration::from_secs(60), &mut c.fx);
    assert!(c.take_actions().contains(&Action::CloseSent {
        code: 1008,
        slow_consumer: true
    }));
}

#[test]
fn idle_ping_then_dead_peer_and_the_handshake_deadline() {
    let mut c = Client::upgraded(config());
    let t0 = c.now;
    c.conn.on_tick(t0 + Duration::from_secs(30), &mut c.fx);
    assert_eq!(c.frames(), ["ping"]);
    c.conn.on_tick(t0 + Duration::from_secs(59), &mut c.fx);
    assert!(c.take_actions().is_empty());
    c.conn.on_tick(t0 + Duration::from_secs(60), &mut c.fx);
    assert_eq!(c.take_actions(), [Action::Drop]);

    let mut fx = Effects::default();
    let mut http = Connection::new(Arc::new(config()), t0);
    http.on_bytes(b"GET /ws HTTP/1.1\r\n", t0, &mut fx);
    http.on_tick(t0 + Duration::from_millis(9_999), &mut fx);
    assert!(fx.actions.is_empty());
    http.on_tick(t0 + Duration::from_secs(10), &mut fx);
    assert_eq!(fx.actions, [Action::Drop]);
}

#[test]
fn protocol_errors_close_with_their_code_and_release_everything() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#);
    c.activate(0, &["A"], vec![]);
    c.frames();
    c.take_actions();
    // An unmasked frame from a client.
    let mut frame = Vec::new();
    encode_frame(&mut frame, OpCode::Text, b"{}");
    c.conn.on_bytes(&frame, c.now, &mut c.fx);
    assert_eq!(
        c.take_actions(),
        [
            Action::Unroute(sel("A")),
            Action::SubscriptionsChanged(-1),
            Action::Release(vec![sel("A")]),
            Action::Left,
            Action::CloseSent {
                code: 1002,
                slow_consumer: false
            },
        ]
    );
    let frames = c.frames();
    assert_eq!(frames.len(), 1);
    assert!(frames[0].starts_with("close 1002 "), "{frames:?}");
    // Input after the close is discarded.
    c.send(r#"{"op":"subscribe","topics":["B"]}"#);
    assert!(c.take_actions().is_empty());
}

#[test]
fn shutdown_sends_1001_and_drops_connections_still_in_http() {
    let mut c = Client::upgraded(config());
    c.conn.begin_shutdown(c.now, &mut c.fx);
    assert!(c.take_actions().contains(&Action::CloseSent {
        code: 1001,
        slow_consumer: false
    }));
    assert_eq!(c.frames(), ["close 1001 going away"]);
    let mut fx = Effects::default();
    let mut http = Connection::new(Arc::new(config()), c.now);
    http.begin_shutdown(c.now, &mut fx);
    assert_eq!(fx.actions, [Action::Drop]);
}

#[test]
fn metrics_are_rendered_by_the_shell_and_answered_once() {
    let now = Instant::now();
    let mut fx = Effects::default();
    let mut conn = Connection::new(Arc::new(config()), now);
    conn.on_bytes(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", now, &mut fx);
    assert_eq!(fx.actions, [Action::ServeMetrics]);
    conn.on_metrics(b"tickwire_up 1\n", now);
    let mut wire = Vec::new();
    let mut n = 0;
    let drained = conn
        .outbound()
        .write_to(&mut wire, &mut n, &mut |_: &OutFrame| {})
        .unwrap();
    assert!(
        conn.on_written(n, drained, now),
        "write side shut after the response"
    );
    let text = String::from_utf8(wire).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("tickwire_up 1\n"));
}
