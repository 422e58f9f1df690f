//! Who answers a subscribe: the router, or — for topics the worker already
//! follows — the worker, from the newest quotes it has (one worker here, so
//! every connection shares it). Either way the client sees the same
//! stream: the ack, each topic's newest quote, then live quotes.

use crate::common;

use common::*;
use serde_json::json;

const BY_WORKER: &str = "tickwire_subscribes_total{answered=\"worker\"}";
const BY_ROUTER: &str = "tickwire_subscribes_total{answered=\"router\"}";

fn one_worker_broker() -> tickwire_broker::Broker {
    start_with(one_worker(test_config()))
}

fn pair(topic: &str, seq: u64) -> (String, u64) {
    (topic.to_string(), seq)
}

#[test]
fn a_subscribe_of_followed_topics_is_answered_by_the_worker_with_their_newest_quotes() {
    let broker = one_worker_broker();
    let mut p = publisher(&broker);
    let mut first = connect(&broker);
    subscribe(&mut first, &["A", "B", "C"], true);
    for topic in ["A", "B", "A"] {
        publish(&mut p, quote(topic, 1.0));
    }
    // The worker has had them: `first` got them through it.
    assert_eq!(
        topic_seqs(&mut first, 3),
        [pair("A", 1), pair("B", 1), pair("A", 2)]
    );
    assert_eq!(metric(&broker, BY_ROUTER), 1.0);

    let mut second = connect(&broker);
    let ack = subscribe(&mut second, &["C", "B", "A"], true);
    assert_eq!(ack["topics"], json!(["C", "B", "A"]));
    let mut snapshots = topic_seqs(&mut second, 2);
    snapshots.sort();
    assert_eq!(snapshots, [pair("A", 2), pair("B", 1)], "C has none");
    assert_eq!(metric(&broker, BY_WORKER), 1.0);
    assert_eq!(metric(&broker, BY_ROUTER), 1.0);

    // Live quotes follow, to both, C's first included.
    publish(&mut p, quote("C", 1.0));
    publish(&mut p, quote("A", 1.0));
    for ws in [&mut first, &mut second] {
        assert_eq!(topic_seqs(ws, 2), [pair("C", 1), pair("A", 3)]);
    }
}

#[test]
fn patterns_rewinds_and_new_topics_go_to_the_router() {
    let broker = one_worker_broker();
    let mut p = publisher(&broker);
    let mut first = connect(&broker);
    subscribe(&mut first, &["A"], true);
    publish(&mut p, quote("A", 1.0));
    assert_eq!(topic_seqs(&mut first, 1), [pair("A", 1)]);

    let mut ws = connect(&broker);
    subscribe(&mut ws, &["A*"], true);
    assert_eq!(topic_seqs(&mut ws, 1), [pair("A", 1)]);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["A", "NEW"], true);
    assert_eq!(topic_seqs(&mut ws, 1), [pair("A", 1)]);
    let mut ws = connect(&broker);
    send_json(
        &mut ws,
        json!({"op": "subscribe", "topics": ["A"], "rewind": 5}),
    );
    let (_, before) = recv_type(&mut ws, "subscribed");
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(topic_seqs(&mut ws, 1), [pair("A", 1)]);
    assert_eq!(metric(&broker, BY_WORKER), 0.0);
    assert_eq!(metric(&broker, BY_ROUTER), 4.0);
}

/// A topic no connection of the worker follows any more gets quotes the
/// worker never sees; followed again, the router answers its first
/// subscribe (with the quotes in between), the worker the next ones.
#[test]
fn a_topic_followed_again_is_answered_by_the_router_first() {
    let broker = one_worker_broker();
    let mut p = publisher(&broker);
    let mut first = connect(&broker);
    subscribe(&mut first, &["A"], true);
    let mut barrier = connect(&broker);
    subscribe(&mut barrier, &["Z"], false);
    publish(&mut p, quote("A", 1.0));
    assert_eq!(topic_seqs(&mut first, 1), [pair("A", 1)]);
    send_json(&mut first, json!({"op": "unsubscribe", "topics": ["A"]}));
    assert_eq!(recv_json(&mut first)["type"], "unsubscribed");
    // Once `barrier` has Z, the router has numbered the A before it.
    for topic in ["A", "A", "Z"] {
        publish(&mut p, quote(topic, 1.0));
    }
    assert_eq!(topic_seqs(&mut barrier, 1), [pair("Z", 1)]);

    let by_router = metric(&broker, BY_ROUTER);
    let mut again = connect(&broker);
    subscribe(&mut again, &["A"], true);
    assert_eq!(topic_seqs(&mut again, 1), [pair("A", 3)]);
    assert_eq!(metric(&broker, BY_ROUTER), by_router + 1.0);
    let mut next = connect(&broker);
    subscribe(&mut next, &["A"], true);
    assert_eq!(topic_seqs(&mut next, 1), [pair("A", 3)]);
    assert_eq!(metric(&broker, BY_WORKER), 1.0);
}

/// A burst of pipelined subscribes of a followed topic, each answered by
/// the worker in turn (each snapshot request holds the input behind it
/// until answered): every one is acked, with its snapshot, in order.
#[test]
fn a_pipelined_burst_of_subscribes_is_answered_in_order() {
    let mut config = one_worker(test_config());
    config.subscriber.requests_per_second = 0;
    // Room for every answer while the client is still writing: nothing
    // conflated.
    config.subscriber.outbound_budget_bytes = 4 << 20;
    let broker = start_with(config);
    let mut p = publisher(&broker);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["A"], true);
    publish(&mut p, quote("A", 1.0));
    assert_eq!(topic_seqs(&mut ws, 1), [pair("A", 1)]);

    const BURST: u64 = 2_000;
    let burst: String = (0..BURST)
        .map(|id| format!(r#"{{"op":"subscribe","topics":["A"],"id":{id}}}"#))
        .collect::<Vec<_>>()
        .join("\n");
    for request in burst.lines() {
        ws.write(tungstenite::Message::Text(request.into()))
            .unwrap();
    }
    ws.flush().unwrap();
    for id in 0..BURST {
        let ack = recv_json(&mut ws);
        assert_eq!(ack["type"], "subscribed", "{ack}");
        assert_eq!(ack["id"], id);
        assert_eq!(
            topic_seqs(&mut ws, 1),
            [pair("A", 1)],
            "re-subscribe snapshot"
        );
    }
    assert_eq!(metric(&broker, BY_WORKER), BURST as f64);
}
