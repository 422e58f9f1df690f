//! Subscriber protocol, end to end: a real broker, tungstenite clients, the
//! client crate's Publisher.

use crate::common;

use common::*;
use std::io::Write;

use serde_json::json;
use tungstenite::Message;

#[test]
fn subscribe_ack_then_quote_with_all_fields() {
    let broker = start();
    let mut ws = connect(&broker);
    send_json(
        &mut ws,
        json!({"op": "subscribe", "topics": ["AAPL", "MSFT"], "id": 7}),
    );
    let ack = recv_json(&mut ws);
    assert_eq!(ack["type"], "subscribed");
    assert_eq!(ack["id"], 7);
    assert_eq!(ack["topics"], json!(["AAPL", "MSFT"]));
    assert_eq!(ack["epoch"].as_str().unwrap(), broker.epoch());
    assert_eq!(broker.epoch().len(), 16);

    let mut p = publisher(&broker);
    let mut q = quote("AAPL", 189.13);
    q.bid = f64::NAN;
    q.ts = 1_732_345_678_901_234_567;
    publish(&mut p, q);
    let msg = next_quote(&mut ws);
    assert_eq!(msg["topic"], "AAPL");
    assert_eq!(msg["seq"], 1);
    assert_eq!(msg["bid"], serde_json::Value::Null, "non-finite → null");
    assert_eq!(msg["ask"], 189.14);
    assert_eq!(msg["bid_size"], 100.0);
    assert_eq!(msg["ask_size"], 200.0);
    assert_eq!(msg["last"], 189.13);
    assert_eq!(msg["volume"], 1000.0);
    assert_eq!(
        msg["ts"].as_u64(),
        Some(1_732_345_678_901_234_567),
        "ts passes through exactly"
    );
}

#[test]
fn seq_counts_per_topic_from_one() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["A", "B"], true);
    let mut p = publisher(&broker);
    for topic in ["A", "A", "B", "A", "B"] {
        p.publish(quote(topic, 1.0)).unwrap();
    }
    p.flush().unwrap();
    let got: Vec<(String, u64)> = (0..5)
        .map(|_| {
            let m = next_quote(&mut ws);
            (
                m["topic"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = [("A", 1), ("A", 2), ("B", 1), ("A", 3), ("B", 2)];
    assert_eq!(got, expect.map(|(t, s)| (t.to_owned(), s)));
}

/// Makes sure the router has accepted `q` (so it is in the last-value cache)
/// by waiting for it on a watcher subscribed to the topic.
fn publish_confirmed(broker: &tickwire_broker::Broker, q: tickwire_client::Quote) {
    let mut watcher = connect(broker);
    subscribe(&mut watcher, &[q.topic.as_str()], false);
    let mut p = publisher(broker);
    let topic = q.topic.clone();
    publish(&mut p, q);
    assert_eq!(next_quote(&mut watcher)["topic"], topic.as_str());
}

#[test]
fn snapshot_on_by_default_and_off_on_request() {
    let broker = start();
    publish_confirmed(&broker, quote("AAPL", 100.0));
    publish_confirmed(&broker, quote("MSFT", 200.0));

    let mut with = connect(&broker);
    // No `snapshot` field at all: the default is on.
    send_json(
        &mut with,
        serde_json::json!({"op": "subscribe", "topics": ["AAPL", "MSFT", "NOPE"]}),
    );
    assert_eq!(recv_json(&mut with)["type"], "subscribed");
    let mut snap: Vec<String> = (0..2)
        .map(|_| next_quote(&mut with)["topic"].as_str().unwrap().to_owned())
        .collect();
    snap.sort();
    assert_eq!(snap, ["AAPL", "MSFT"]);

    let mut without = connect(&broker);
    subscribe(&mut without, &["AAPL", "MSFT"], false);
    // The next quote either client sees must be the live one, not a snapshot.
    let mut p = publisher(&broker);
    publish(&mut p, quote("MSFT", 201.0));
    let live = next_quote(&mut without);
    assert_eq!(
        (live["topic"].as_str(), live["seq"].as_u64()),
        (Some("MSFT"), Some(2))
    );
    let live = next_quote(&mut with);
    assert_eq!(live["seq"], 2);
}

#[test]
fn pattern_snapshot_and_topics_first_seen_later() {
    let broker = start();
    publish_confirmed(&broker, quote("BTC-USD", 67000.0));
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["BTC*"], true);
    assert_eq!(next_quote(&mut ws)["topic"], "BTC-USD");

    let mut p = publisher(&broker);
    publish(&mut p, quote("ETH-USD", 3500.0)); // not matching
    publish(&mut p, quote("BTC-EUR", 62000.0)); // a topic never seen before
    let m = next_quote(&mut ws);
    assert_eq!(
        (m["topic"].as_str(), m["seq"].as_u64()),
        (Some("BTC-EUR"), Some(1))
    );

    let mut all = connect(&broker);
    subscribe(&mut all, &["*"], false);
    publish(&mut p, quote("X", 1.0));
    assert_eq!(next_quote(&mut all)["topic"], "X");
}

#[test]
fn overlapping_subscriptions_deliver_each_quote_once() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["AAPL", "AA*", "*"], true);
    let mut p = publisher(&broker);
    publish(&mut p, quote("AAPL", 1.0));
    publish(&mut p, quote("ZZZ", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "AAPL");
    // Had AAPL come twice, the second copy would be here instead of ZZZ.
    assert_eq!(next_quote(&mut ws)["topic"], "ZZZ");
}

#[test]
fn unsubscribe_stops_delivery_and_leaves_patterns_alone() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["AAPL", "MSFT", "N*"], false);
    send_json(
        &mut ws,
        json!({"op": "unsubscribe", "topics": ["AAPL", "NOT-SUBSCRIBED"], "id": 3}),
    );
    let ack = recv_json(&mut ws);
    assert_eq!(
        ack,
        json!({"type": "unsubscribed", "id": 3, "topics": ["AAPL", "NOT-SUBSCRIBED"]})
    );

    let mut p = publisher(&broker);
    publish(&mut p, quote("AAPL", 1.0));
    publish(&mut p, quote("MSFT", 1.0));
    // Quotes reach one client in publish order: AAPL would have come first.
    assert_eq!(next_quote(&mut ws)["topic"], "MSFT");

    // Unsubscribing an exact topic leaves it flowing under a pattern.
    subscribe(&mut ws, &["NVDA"], false);
    send_json(&mut ws, json!({"op": "unsubscribe", "topics": ["NVDA"]}));
    assert_eq!(recv_json(&mut ws)["type"], "unsubscribed");
    publish(&mut p, quote("NVDA", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "NVDA");
}

#[test]
fn error_replies_keep_the_connection_open() {
    let broker = start();
    let mut ws = connect(&broker);
    let cases = [
        ("not json", json!(null), "bad_request"),
        (r#"{"op":"dance","id":1}"#, json!(1), "bad_request"),
        (
            r#"{"op":"subscribe","topics":[],"id":2}"#,
            json!(2),
            "bad_request",
        ),
        (
            r#"{"op":"subscribe","topics":["OK","bad topic"],"id":3}"#,
            json!(3),
            "bad_topic",
        ),
        (
            r#"{"op":"subscribe","topics":["A"],"max_hz":0,"id":4}"#,
            json!(4),
            "bad_request",
        ),
        (
            r#"{"op":"subscribe","topics":["A"],"id":-1}"#,
            json!(null),
            "bad_request",
        ),
    ];
    for (request, id, code) in cases {
        ws.send(Message::Text(request.into())).unwrap();
        let reply = recv_json(&mut ws);
        assert_eq!(reply["type"], "error", "{request}");
        assert_eq!(reply["code"], code, "{request}");
        assert_eq!(
            reply.get("id").cloned().unwrap_or(json!(null)),
            id,
            "{request}"
        );
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The bad_topic request was atomic: "OK" was not subscribed.
    subscribe(&mut ws, &["B"], false);
    let mut p = publisher(&broker);
    publish(&mut p, quote("OK", 1.0));
    publish(&mut p, quote("B", 1.0));
    assert_eq!(next_quote(&mut ws)["topic"], "B");
}

#[test]
fn subscription_limit_at_and_past() {
    let mut config = test_config();
    config.subscriber.max_subscriptions = 3;
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["A", "B"], false);
    // Re-subscribing existing entries and repeats count once: 3 entries.
    subscribe(&mut ws, &["A", "C", "C"], false);
    send_json(
        &mut ws,
        json!({"op": "subscribe", "topics": ["D"], "id": 9}),
    );
    let err = recv_json(&mut ws);
    assert_eq!(
        (err["code"].as_str(), err["id"].as_u64()),
        (Some("too_many_subscriptions"), Some(9))
    );
    // After removing one, there is room again.
    send_json(&mut ws, json!({"op": "unsubscribe", "topics": ["A"]}));
    assert_eq!(recv_json(&mut ws)["type"], "unsubscribed");
    subscribe(&mut ws, &["D"], false);
}

#[test]
fn ack_lists_topics_as_sent_and_id_is_absent_when_not_given() {
    let broker = start();
    let mut ws = connect(&broker);
    send_json(
        &mut ws,
        json!({"op": "subscribe", "topics": ["B", "A", "B"], "extra": true}),
    );
    let ack = recv_json(&mut ws);
    assert_eq!(ack["topics"], json!(["B", "A", "B"]));
    assert!(ack.get("id").is_none(), "{ack}");
}

#[test]
fn binary_mode_frames_follow_the_documented_layout() {
    let broker = start();
    let mut ws = connect_path(broker.ws_addr(), "/ws?format=binary&other=ignored");
    subscribe(&mut ws, &["EURUSD"], false);
    let mut p = publisher(&broker);
    let mut q = quote("EURUSD", 1.0851);
    q.ask = f64::INFINITY;
    q.ts = 1_732_345_678_901_234_567;
    publish(&mut p, q.clone());
    let Message::Binary(b) = recv(&mut ws) else {
        panic!("quotes are binary frames in binary mode")
    };
    // docs/protocol.md, "Binary quote frame": little-endian, 66 + L bytes.
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let f64_at = |o: usize| f64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(b[0], 1, "message type 1 = quote");
    let topic_len = b[1] as usize;
    assert_eq!(b.len(), 66 + topic_len);
    assert_eq!(u64_at(2), 1, "seq");
    assert_eq!(u64_at(10), q.ts, "ts exact");
    assert_eq!(f64_at(18), q.bid);
    assert_eq!(f64_at(26), f64::INFINITY);
    assert_eq!(f64_at(34), q.bid_size);
    assert_eq!(f64_at(42), q.ask_size);
    assert_eq!(f64_at(50), q.last);
    assert_eq!(f64_at(58), q.volume);
    assert_eq!(&b[66..], b"EURUSD");
}

#[test]
fn a_thousand_subscribers_all_receive_a_quote() {
    let broker = start();
    let mut clients: Vec<Ws> = (0..1000).map(|_| connect(&broker)).collect();
    for ws in clients.iter_mut() {
        send_json(
            ws,
            json!({"op": "subscribe", "topics": ["HOT"], "snapshot": false}),
        );
    }
    for ws in clients.iter_mut() {
        assert_eq!(recv_json(ws)["type"], "subscribed");
    }
    let mut p = publisher(&broker);
    publish(&mut p, quote("HOT", 42.0));
    for ws in clients.iter_mut() {
        let m = next_quote(ws);
        assert_eq!(
            (m["topic"].as_str(), m["seq"].as_u64()),
            (Some("HOT"), Some(1))
        );
    }
    assert!(wait_until(|| broker
        .metrics()
        .deliveries
        .load(std::sync::atomic::Ordering::Relaxed)
        >= 1000));
}

#[test]
fn subscribing_again_resends_the_snapshot_when_asked() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["AAPL"], false);
    let mut p = publisher(&broker);
    publish(&mut p, quote("AAPL", 5.0));
    assert_eq!(next_quote(&mut ws)["seq"], 1);
    subscribe(&mut ws, &["AAPL"], true);
    let again = next_quote(&mut ws);
    assert_eq!(
        (again["topic"].as_str(), again["seq"].as_u64()),
        (Some("AAPL"), Some(1))
    );
    // Still one entry: unsubscribing once stops it.
    send_json(&mut ws, json!({"op": "unsubscribe", "topics": ["AAPL"]}));
    assert_eq!(recv_json(&mut ws)["type"], "unsubscribed");
    subscribe(&mut ws, &["OTHER"], false);
    publish(&mut p, quote("AAPL", 6.0));
    publish(&mut p, quote("OTHER", 6.0));
    assert_eq!(next_quote(&mut ws)["topic"], "OTHER");
}

#[test]
fn a_new_entry_overlapping_a_pattern_gets_no_second_copy_as_snapshot() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["*"], false);
    let mut p = publisher(&broker);
    publish(&mut p, quote("AAPL", 1.0));
    assert_eq!(next_quote(&mut ws)["seq"], 1);
    // AAPL seq 1 already arrived under "*": subscribing AAPL must not repeat it.
    subscribe(&mut ws, &["AAPL"], true);
    publish(&mut p, quote("AAPL", 2.0));
    assert_eq!(next_quote(&mut ws)["seq"], 2);
}

#[test]
fn snapshot_false_after_a_quick_resubscribe_is_respected() {
    let broker = start();
    publish_confirmed(&broker, quote("MSFT", 1.0));
    let mut ws = connect(&broker);
    // Three requests in one TCP write, so the broker handles all of them
    // before the router's answer to the first can arrive.
    let requests = [
        json!({"op": "subscribe", "topics": ["MSFT"], "snapshot": true}),
        json!({"op": "unsubscribe", "topics": ["MSFT"]}),
        json!({"op": "subscribe", "topics": ["MSFT", "BARRIER"], "snapshot": false}),
    ];
    for r in requests {
        ws.write(Message::Text(r.to_string().into())).unwrap();
    }
    ws.flush().unwrap();
    for expected in ["subscribed", "unsubscribed", "subscribed"] {
        assert_eq!(recv_json(&mut ws)["type"], expected);
    }
    let mut p = publisher(&broker);
    publish(&mut p, quote("BARRIER", 1.0));
    // Had the first request's snapshot of MSFT gone out, it would come first.
    assert_eq!(next_quote(&mut ws)["topic"], "BARRIER");
}

#[test]
fn a_re_subscribe_of_a_still_pending_entry_keeps_the_first_snapshot() {
    // Snapshot requests are otherwise taken one at a time (the second would
    // wait for the first's answer); without the snapshot rate the second
    // arrives while the first entry is still pending.
    let mut config = test_config();
    config.subscriber.snapshots_per_second = 0;
    let broker = start_with(config);
    publish_confirmed(&broker, quote("AAPL", 100.0));
    let mut ws = connect(&broker);
    // Both requests in one TCP segment: the second arrives while the first
    // entry is still pending (its activation not yet back from the router).
    let first = serde_json::json!({"op": "subscribe", "topics": ["AAPL"], "id": 1});
    let second =
        serde_json::json!({"op": "subscribe", "topics": ["AAPL"], "snapshot": false, "id": 2});
    let mut bytes = client_frame(true, 0x1, first.to_string().as_bytes(), true);
    bytes.extend(client_frame(true, 0x1, second.to_string().as_bytes(), true));
    ws.get_mut().write_all(&bytes).unwrap();
    assert_eq!(recv_json(&mut ws)["id"], 1);
    assert_eq!(recv_json(&mut ws)["id"], 2);
    // The first request asked for the snapshot; the second did not cancel it.
    let snapshot = next_quote(&mut ws);
    assert_eq!(
        (snapshot["topic"].as_str(), snapshot["seq"].as_u64()),
        (Some("AAPL"), Some(1))
    );
    let mut p = publisher(&broker);
    publish(&mut p, quote("AAPL", 101.0));
    assert_eq!(next_quote(&mut ws)["seq"], 2);
}

#[test]
fn snapshot_subscribes_sent_back_to_back_are_taken_one_at_a_time() {
    let broker = start();
    publish_confirmed(&broker, quote("AAPL", 100.0));
    publish_confirmed(&broker, quote("MSFT", 200.0));
    let mut ws = connect(&broker);
    let a = serde_json::json!({"op": "subscribe", "topics": ["AAPL"], "id": 1});
    let b = serde_json::json!({"op": "subscribe", "topics": ["MSFT"], "id": 2});
    let mut bytes = client_frame(true, 0x1, a.to_string().as_bytes(), true);
    bytes.extend(client_frame(true, 0x1, b.to_string().as_bytes(), true));
    ws.get_mut().write_all(&bytes).unwrap();
    // Each gets its ack and snapshot; none is refused.
    let got: Vec<(String, String)> = (0..4)
        .map(|_| {
            let m = recv_json(&mut ws);
            let what = m["id"]
                .as_u64()
                .map_or_else(|| m["topic"].to_string(), |i| i.to_string());
            (m["type"].as_str().unwrap().to_owned(), what)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("subscribed".into(), "1".into()),
            ("quote".into(), "\"AAPL\"".into()),
            ("subscribed".into(), "2".into()),
            ("quote".into(), "\"MSFT\"".into()),
        ]
    );
}
