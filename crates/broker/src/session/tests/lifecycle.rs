//! Slow consumers, deadlines, protocol errors, shutdown, `/metrics`.

use std::time::Duration;

use super::*;

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
    c.conn
        .end_with(framing::Ending::SlowConsumer, c.now, &mut c.fx);
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

/// `poll_timeout` is the earliest deadline of the connection's phase: the
/// worker's sweep ticks a connection only once it has come.
#[test]
fn poll_timeout_is_the_next_deadline_of_each_phase() {
    let secs = Duration::from_secs;
    let t0 = Instant::now();
    let http = Connection::new(Arc::new(config()), t0);
    assert_eq!(http.poll_timeout(), Some(t0 + secs(10)), "handshake");

    let mut c = Client::upgraded(config());
    let t0 = c.now;
    assert_eq!(c.conn.poll_timeout(), Some(t0 + secs(30)), "idle ping");
    c.conn.on_tick(t0 + secs(30), &mut c.fx);
    assert_eq!(c.frames(), ["ping"]);
    assert_eq!(c.conn.poll_timeout(), Some(t0 + secs(60)), "dead peer");

    // A request: the peer is alive; the next idle ping 30 s on.
    c.now = t0 + secs(40);
    c.request(r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#);
    c.activate(0, &["A"], vec![]);
    c.frames();
    assert_eq!(
        c.conn.poll_timeout(),
        Some(t0 + secs(70)),
        "the next idle ping"
    );
    // A quote the reader does not take: the stall clock runs from it.
    let mut cfg = (*c.conn.config).clone();
    cfg.stall_timeout = secs(5);
    c.conn.config = Arc::new(cfg);
    c.now = t0 + secs(41);
    c.live(&quote("A", 1), None);
    assert_eq!(c.conn.poll_timeout(), Some(t0 + secs(46)), "the stall");

    // Closing: the close frame written, the peer has close_timeout.
    c.conn
        .end_with(framing::Ending::GoingAway, c.now, &mut c.fx);
    c.write_all();
    assert_eq!(
        c.conn.poll_timeout(),
        Some(c.now + secs(2)),
        "close timeout"
    );
}

#[test]
fn a_drained_queue_that_holds_memory_is_due_at_once() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#);
    c.activate(0, &["A"], vec![]);
    for seq in 1..=3 {
        c.live(&quote("A", seq), None); // a queue buffer past the head slot
    }
    c.frames();
    let due = c.conn.poll_timeout().unwrap();
    assert!(due <= c.now, "memory to give back: due now");
    c.conn.on_tick(c.now, &mut c.fx);
    assert_eq!(c.conn.poll_timeout(), Some(c.now + Duration::from_secs(30)));
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
fn metrics_are_rendered_from_the_broker_status_and_answered_once() {
    let now = Instant::now();
    let mut fx = Effects::default();
    let mut conn = Connection::new(Arc::new(config()), now);
    conn.on_bytes(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", now, &mut fx);
    assert_eq!(fx.actions, [], "answered by the connection itself");
    let mut wire = Vec::new();
    assert!(
        conn.flush_to(&mut wire, usize::MAX, now),
        "write side shut after the response"
    );
    let text = String::from_utf8(wire).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("tickwire_up 1\n"));
}

#[test]
fn a_client_that_floods_requests_and_never_reads_is_closed_at_the_budget() {
    let mut c = Client::upgraded(config());
    let mut sent = 0;
    while c.conn.is_subscriber() {
        c.send("not json");
        sent += 1;
        assert!(sent < 10_000, "never closed");
    }
    // The error replies passed the 4 KiB budget of this config: about 50.
    assert!(sent > 40 && sent < 80, "{sent}");
    let actions = c.take_actions();
    assert!(actions.contains(&Action::CloseSent {
        code: 1008,
        slow_consumer: true
    }));
    // Its replies were dropped with the close; memory is released.
    assert_eq!(c.conn.outbound().reply_bytes(), 0);
}

#[test]
fn requests_over_the_rate_are_not_executed_and_get_rate_limited() {
    let mut cfg = config();
    cfg.requests_per_second = 2;
    cfg.request_burst = 3;
    cfg.max_subscriptions = 100;
    let mut c = Client::upgraded(cfg);
    for i in 0..5 {
        c.request_answered(&format!(
            r#"{{"op":"subscribe","topics":["T{i}"],"id":{i}}}"#
        ));
    }
    let frames = c.frames();
    assert_eq!(
        kinds(&frames),
        ["subscribed", "subscribed", "subscribed", "error", "error"]
    );
    let limited: serde_json::Value = serde_json::from_str(&frames[3]).unwrap();
    assert_eq!(
        (limited["code"].as_str(), limited["id"].as_u64()),
        (Some("rate_limited"), Some(3))
    );
    assert_eq!(c.conn.subscription_count(), 3, "not executed");
    // Half a second later: one more (2/s).
    c.at(Duration::from_millis(500));
    c.request_answered(r#"{"op":"subscribe","topics":["T9"],"id":9}"#);
    c.request_answered(r#"{"op":"subscribe","topics":["T10"],"id":10}"#);
    assert_eq!(kinds(&c.frames()), ["subscribed", "error"]);
}

#[test]
fn too_many_subscribes_waiting_for_the_router_stop_reading() {
    let mut c = Client::upgraded(config());
    let mut issued = 0;
    while c.conn.wants_read() {
        c.send(r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#);
        issued += 1;
        assert!(issued < 1_000, "reading never stopped");
    }
    assert_eq!(issued, 64);
    // Nothing was taken: every ack is held.
    assert!(c.frames().is_empty());
    c.conn.on_command_taken(&mut c.fx);
    assert!(c.conn.wants_read());
    // Its ack goes with its activation.
    assert!(c.frames().is_empty());
    c.activate(0, &["A"], vec![]);
    assert_eq!(kinds(&c.frames()), ["subscribed"]);
}

#[test]
fn health_is_ok_or_degraded_as_the_broker_status_says() {
    for (down, status, body) in [
        (false, "HTTP/1.1 200 ", "ok"),
        (true, "HTTP/1.1 503 ", "degraded: cluster link down"),
    ] {
        let now = Instant::now();
        let mut fx = Effects::default();
        let mut cfg = config();
        cfg.status = Arc::new(FixedStatus {
            metrics: "",
            degraded: down,
        });
        let mut conn = Connection::new(Arc::new(cfg), now);
        conn.on_bytes(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", now, &mut fx);
        assert_eq!(fx.actions, []);
        let mut wire = Vec::new();
        conn.flush_to(&mut wire, usize::MAX, now);
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with(status), "{text}");
        assert!(text.ends_with(body), "{text}");
    }
}

/// What every idle subscriber costs in the worker's memory (peerbench's
/// scenario C): the connection, its subscriber state inline (see `Phase`).
/// Rare state (held replies, tokens, sliced snapshots, prefix counts, the
/// control lane) lives behind pointers; this guards against it creeping
/// back inline. The figures are for 64-bit targets.
#[cfg(target_pointer_width = "64")]
#[test]
fn an_idle_connection_stays_small() {
    use std::mem::size_of;
    assert!(
        size_of::<Connection>() <= 320,
        "{}",
        size_of::<Connection>()
    );
    assert!(
        size_of::<super::super::Open>() <= 184,
        "{}",
        size_of::<super::super::Open>()
    );
}
