//! Limits against hostile clients, each at and past its bound: request
//! rate, reply flood, connections per IP.

use crate::common;

use std::io::Write;

use common::*;
use serde_json::json;
use tickwire_protocol::control::ErrorCode;

#[test]
fn requests_past_the_burst_get_rate_limited_with_their_id() {
    let mut config = test_config();
    config.subscriber.requests_per_second = 1;
    config.subscriber.request_burst = 5;
    let broker = start_with(config);
    let mut ws = connect(&broker);
    for id in 0..8 {
        send_json(
            &mut ws,
            json!({"op": "subscribe", "topics": [format!("T{id}")], "id": id}),
        );
    }
    let replies: Vec<_> = (0..8).map(|_| recv_json(&mut ws)).collect();
    let limited: Vec<u64> = replies
        .iter()
        .filter(|r| r["code"] == "rate_limited")
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    // 5 in the burst; at 1/s at most one more could have been refilled.
    assert!(limited.len() >= 2, "{replies:?}");
    assert!(limited.iter().all(|id| *id >= 5), "{limited:?}");
    assert!(wait_until(|| broker
        .metrics()
        .request_errors(ErrorCode::RateLimited)
        == limited.len() as u64));
}

#[test]
fn a_client_flooding_bad_requests_without_reading_is_closed_and_memory_stays_bounded() {
    let broker = start();
    let mut s = raw_upgrade_small_rcvbuf(broker.ws_addr(), "/ws");
    let before = rss_bytes();
    let frame = client_frame(true, 0x1, b"x", true);
    let mut sent = 0;
    for _ in 0..20_000 {
        // The broker stops reading once it has closed us: stop on error.
        if s.write_all(&frame).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(wait_until(|| broker
        .metrics()
        .slow_consumer_closes
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "RSS grew {grown} bytes for {sent} requests"
    );
    // It reads at last: error replies, then close 1008.
    assert_eq!(read_close_code(&mut s), Some(1008));
}

#[test]
fn connections_per_ip_past_the_cap_get_503() {
    let mut config = test_config();
    config.server.max_connections_per_ip = 2;
    let broker = start_with(config);
    let a = connect(&broker);
    let _b = connect(&broker);
    let refused = http(broker.ws_addr(), "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.contains("Content-Length: ") && refused.contains("Connection: close"));
    assert!(wait_until(|| broker
        .metrics()
        .ip_limit_refused
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
    // One leaves: there is room again.
    drop(a);
    assert!(wait_until(|| {
        http(broker.ws_addr(), "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .starts_with("HTTP/1.1 200")
    }));
}

/// A peer that resets its connection (an abortive close: RST, no FIN) is
/// let go, its place and its subscriptions with it. (That the broker does
/// so without a read is counted by `scripts/storm-syscalls.sh`, whose
/// generator leaves by RST: `recvfrom` per connection.)
#[test]
fn a_connection_reset_by_its_peer_is_let_go() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut config = test_config();
    config.server.max_connections_per_ip = 1;
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["RST.A", "RST.B"], false);
    assert_eq!(broker.metrics().subscriptions.load(Relaxed), 2);
    socket2::SockRef::from(ws.get_ref())
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("SO_LINGER");
    drop(ws);
    // Its entries are gone and its place (one connection per IP) is free.
    assert!(wait_until(
        || broker.metrics().subscriptions.load(Relaxed) == 0
    ));
    assert!(wait_until(|| broker
        .metrics()
        .subscriber_connections
        .load(Relaxed)
        == 0));
    let mut again = connect(&broker);
    subscribe(&mut again, &["RST.A"], false);
}
