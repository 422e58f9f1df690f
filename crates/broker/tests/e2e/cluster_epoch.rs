//! The cluster's epoch: shared by every broker, kept across restarts, and
//! the only one a joining broker's acks ever carry.

use crate::common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use common::nats::{free_port, GatedProxy, NatsServer};
use common::*;

use super::cluster::{cluster_config, start_member};

#[test]
fn the_epoch_is_the_clusters_and_survives_a_restart() {
    let nats = NatsServer::start();
    let a = start_member(&nats);
    let b = start_member(&nats);
    let epoch = a.epoch();
    assert_eq!(b.epoch(), epoch);
    let mut ws = connect(&b);
    let ack = subscribe(&mut ws, &["E"], false);
    assert_eq!(ack["epoch"], epoch.as_str());
    drop(ws);
    drop(b);
    let b = start_member(&nats);
    assert_eq!(b.epoch(), epoch, "a restarted broker keeps the epoch");
}

/// A broker joining a running cluster answers no subscribe before its link
/// is set up: an ack with its own start-up epoch, replaced moments later,
/// would make clients reset for nothing. Its link is held back (a proxy in
/// front of NATS, closed) while a subscriber connects and subscribes; the
/// ack, whenever it comes, carries the cluster's epoch.
#[test]
fn a_joining_broker_acks_subscribes_only_with_the_clusters_epoch() {
    let nats = NatsServer::start();
    let a = start_member(&nats);
    let epoch = a.epoch();
    let proxy = GatedProxy::start(&nats);
    // Known in advance: `Broker::start` returns only once the link is up.
    let ws_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut config = cluster_config(&nats);
    config.server.ws_addr = ws_addr.to_string();
    if let Some(c) = config.cluster.as_mut() {
        c.nats_url = proxy.url();
    }
    let joining = std::thread::spawn(move || start_with(config));

    // The upgrade and a subscribe, sent as soon as the broker listens and
    // before its link may set up; then the link may.
    let mut subscriber = None;
    for _ in 0..10 {
        let mut stream = None;
        assert!(
            wait_until(|| {
                stream = TcpStream::connect(ws_addr).ok();
                stream.is_some()
            }),
            "the joining broker listens on {ws_addr}"
        );
        let mut stream = stream.expect("connected");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let sent = stream.write_all(&upgrade_and_subscribe("J")).is_ok();
        proxy.open();
        // (Empty: the connection landed on the start-up's probe of the port,
        // which closed it; connect again.)
        if sent && !read_head(&mut stream).is_empty() {
            subscriber = Some(stream);
            break;
        }
    }
    let mut subscriber = subscriber.expect("the joining broker answers the upgrade");
    let (opcode, payload) = read_server_frame(&mut subscriber).expect("the ack");
    assert_eq!(opcode, 1, "a text frame");
    let ack: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(
        ack["epoch"],
        epoch.as_str(),
        "the ack carries the cluster's epoch, not the joining broker's own"
    );
    drop(subscriber); // (else the broker's shutdown waits for its close)
    let c = joining.join().expect("the joining broker starts");
    assert!(wait_until(|| c.cluster_up()), "its link is up");
    assert_eq!(c.epoch(), epoch);
}

/// An HTTP upgrade to `/ws` and, pipelined behind it, a masked subscribe
/// to `topic` without a snapshot.
fn upgrade_and_subscribe(topic: &str) -> Vec<u8> {
    let mut bytes = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    let subscribe = serde_json::json!({"op": "subscribe", "topics": [topic], "snapshot": false});
    bytes.extend(client_frame(
        true,
        1,
        subscribe.to_string().as_bytes(),
        true,
    ));
    bytes
}
