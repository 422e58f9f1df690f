//! Several brokers joined through a real `nats-server -js` (docs/cluster.md):
//! cross-broker delivery with one `seq`, a shared epoch, stored snapshots,
//! `seq` continuing across restarts, NATS failures, conflicts, and a
//! joining broker that answers subscribers only once its link is set up.

use crate::common;

use std::time::Duration;

use common::nats::NatsServer;
use common::*;
use tickwire_broker::config::ClusterConfig;
use tickwire_broker::{Broker, Config};
use tickwire_client::Publisher;

pub(super) fn cluster_config(nats: &NatsServer) -> Config {
    let mut config = test_config();
    let mut cluster = ClusterConfig::new(nats.url());
    cluster.reconnect_max_ms = 300;
    cluster.startup_wait_ms = 20_000;
    config.cluster = Some(cluster);
    config
}

pub(super) fn start_member(nats: &NatsServer) -> Broker {
    let broker = start_with(cluster_config(nats));
    assert!(wait_until(|| broker.cluster_up()), "cluster link comes up");
    broker
}

fn health(broker: &Broker) -> String {
    http(
        broker.ws_addr(),
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
}

/// Publishes `topic` through `producer` until each of `readers` has seen a
/// quote of it (the remote subscription is in place); returns how many it
/// published and the seq each reader saw last (a reader may still have
/// later ones coming). Bounded: 100 tries of 200 ms.
pub(super) fn publish_until_seen(
    producer: &mut Publisher,
    topic: &str,
    readers: &mut [&mut Ws],
) -> (u64, Vec<u64>) {
    let mut seen: Vec<Option<u64>> = vec![None; readers.len()];
    for attempt in 0..100u64 {
        publish(producer, quote(topic, 100.0 + attempt as f64));
        for (ws, seen) in readers.iter_mut().zip(seen.iter_mut()) {
            while let Some(tungstenite::Message::Text(text)) =
                recv_within(ws, Duration::from_millis(200))
            {
                let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                if v["type"] == "quote" && v["topic"] == topic {
                    *seen = v["seq"].as_u64();
                }
            }
        }
        if seen.iter().all(Option::is_some) {
            return (attempt + 1, seen.into_iter().flatten().collect());
        }
    }
    panic!("{topic} never reached every broker: {seen:?}");
}

/// The seqs of `topic` a reader gets above `after`, up to and including `last`.
pub(super) fn seqs_between(ws: &mut Ws, topic: &str, after: u64, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let q = next_quote(ws);
        let seq = q["seq"].as_u64().expect("seq");
        if q["topic"] == topic && seq > after {
            seqs.push(seq);
            if seq >= last {
                return seqs;
            }
        }
    }
}

#[test]
fn a_quote_reaches_every_broker_with_one_seq_and_patterns_work() {
    let nats = NatsServer::start();
    let a = start_member(&nats);
    let b = start_member(&nats);
    let mut on_a = connect(&a);
    subscribe(&mut on_a, &["X.AAPL"], false);
    let mut on_b = connect(&b);
    subscribe(&mut on_b, &["X.*"], false);
    let mut producer = publisher(&a);

    // A fresh cluster: A numbers X.AAPL 1, 2, 3, …
    let (sent, _) = publish_until_seen(&mut producer, "X.AAPL", &mut [&mut on_a, &mut on_b]);
    for i in 0..5 {
        publish(&mut producer, quote("X.AAPL", 200.0 + i as f64));
    }
    let want: Vec<u64> = (sent + 1..=sent + 5).collect();
    assert_eq!(seqs_between(&mut on_a, "X.AAPL", sent, sent + 5), want);
    assert_eq!(
        seqs_between(&mut on_b, "X.AAPL", sent, sent + 5),
        want,
        "same seq on B, none twice"
    );
    assert!(metric(&b, "tickwire_cluster_received_total") >= 5.0);
    assert!(metric(&a, "tickwire_cluster_published_total") >= 5.0);
}

#[test]
fn a_late_broker_serves_stored_snapshots_and_seq_continues_after_a_restart() {
    let nats = NatsServer::start();
    let a = start_member(&nats);
    let mut producer = publisher(&a);
    for i in 0..3 {
        publish(&mut producer, quote("S.ONE", 10.0 + i as f64));
    }
    assert!(wait_until(|| metric(
        &a,
        "tickwire_cluster_published_total"
    ) >= 3.0));

    // C starts later and never saw S.ONE: its snapshot is the stored one.
    let c = start_member(&nats);
    let snapshot = loop_until_snapshot(&c, "S.ONE", 3);
    assert_eq!(snapshot["last"], 12.0);

    // The ingesting broker restarts: seq continues at 4, seen on C.
    drop(producer);
    drop(a);
    let a = start_member(&nats);
    let mut on_c = connect(&c);
    subscribe(&mut on_c, &["S.ONE"], false);
    let mut producer = publisher(&a);
    let (_, seen) = publish_until_seen(&mut producer, "S.ONE", &mut [&mut on_c]);
    assert!(seen[0] >= 4, "seq continued after the restart: {seen:?}");
}

/// Subscribes with a snapshot until it is the stored quote with `seq`
/// (the stream stores asynchronously); each try on a new connection.
fn loop_until_snapshot(broker: &Broker, topic: &str, seq: u64) -> serde_json::Value {
    for _ in 0..50 {
        let mut ws = connect(broker);
        subscribe(&mut ws, &[topic], true);
        if let Some(tungstenite::Message::Text(text)) = recv_within(&mut ws, Duration::from_secs(1))
        {
            let q: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            if q["seq"].as_u64() == Some(seq) {
                return q;
            }
        }
    }
    panic!("no stored snapshot of {topic} with seq {seq}");
}

#[test]
fn nats_down_keeps_local_delivery_and_the_link_comes_back_by_itself() {
    let mut nats = NatsServer::start();
    let a = start_member(&nats);
    let b = start_member(&nats);
    let mut on_a = connect(&a);
    subscribe(&mut on_a, &["F.X"], false);
    let mut on_b = connect(&b);
    subscribe(&mut on_b, &["F.X"], false);
    let mut producer = publisher(&a);
    publish_until_seen(&mut producer, "F.X", &mut [&mut on_a, &mut on_b]);
    assert!(health(&a).ends_with("\r\n\r\nok"));

    nats.kill();
    assert!(wait_until(|| !a.cluster_up() && !b.cluster_up()));
    let reply = health(&a);
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
    assert!(reply.ends_with("degraded: cluster link down"), "{reply}");
    // Local producers still reach local subscribers.
    publish(&mut producer, quote("F.X", 1.0));
    // (after any warm-up quote still on its way)
    while next_quote(&mut on_a)["last"] != 1.0 {}
    // A broker started while NATS is down serves alone.
    let mut alone = cluster_config(&nats);
    if let Some(c) = alone.cluster.as_mut() {
        c.startup_wait_ms = 100;
    }
    let d = start_with(alone);
    assert!(health(&d).starts_with("HTTP/1.1 503 "));
    let mut on_d = connect(&d);
    subscribe(&mut on_d, &["F.D"], false);
    publish(&mut publisher(&d), quote("F.D", 7.0));
    assert_eq!(next_quote(&mut on_d)["last"], 7.0);

    nats.restart();
    assert!(wait_until(|| a.cluster_up()
        && b.cluster_up()
        && d.cluster_up()));
    assert!(health(&a).ends_with("ok") && health(&d).ends_with("ok"));
    assert_eq!(a.epoch(), d.epoch(), "D adopted the cluster epoch");
    publish_until_seen(&mut producer, "F.X", &mut [&mut on_b]);
    assert!(metric(&a, "tickwire_cluster_disconnects_total") >= 1.0);
}

#[test]
fn two_brokers_ingesting_one_topic_count_a_conflict_and_seq_never_goes_back() {
    let nats = NatsServer::start();
    let a = start_member(&nats);
    let b = start_member(&nats);
    let mut on_a = connect(&a);
    subscribe(&mut on_a, &["C.X"], false);
    let mut on_b = connect(&b);
    subscribe(&mut on_b, &["C.X"], false);
    let (mut pa, mut pb) = (publisher(&a), publisher(&b));
    publish_until_seen(&mut pa, "C.X", &mut [&mut on_a, &mut on_b]);
    publish_until_seen(&mut pb, "C.X", &mut [&mut on_a, &mut on_b]);
    for i in 0..40 {
        publish(&mut pa, quote("C.X", i as f64));
        publish(&mut pb, quote("C.X", 1000.0 + i as f64));
    }
    for ws in [&mut on_a, &mut on_b] {
        let mut last = 0;
        // At least the 40 local quotes arrive; remote ones only when newer.
        let mut local = 0;
        while local < 40 {
            let q = next_quote(ws);
            let seq = q["seq"].as_u64().expect("seq");
            assert!(seq > last, "seq went from {last} to {seq}");
            last = seq;
            local += 1;
        }
    }
    assert!(wait_until(|| {
        metric(&a, "tickwire_cluster_conflicts_total")
            + metric(&b, "tickwire_cluster_conflicts_total")
            >= 1.0
    }));
}

#[test]
fn the_link_speaks_mutual_tls_and_authenticates() {
    let pki = common::tls::Pki::new();
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_owned();
    let (cert, key, ca) = (
        path(&pki.cert_file),
        path(&pki.key_file),
        path(&pki.ca_file),
    );
    let nats = NatsServer::start_with(&[
        "--tlsverify",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--tlscacert",
        &ca,
        "--user",
        "tickwire",
        "--pass",
        "link-secret",
    ]);
    let config_with = |password: &str| {
        let mut config = cluster_config(&nats);
        if let Some(c) = config.cluster.as_mut() {
            c.ca_file = Some(ca.clone());
            c.cert_file = Some(path(&pki.client_cert_file));
            c.key_file = Some(path(&pki.client_key_file));
            c.user = Some("tickwire".into());
            c.password = Some(password.into());
            c.startup_wait_ms = 1_000;
        }
        config
    };
    let a = start_with(config_with("link-secret"));
    assert!(
        wait_until(|| a.cluster_up()),
        "TLS + credentials: the link comes up"
    );
    // A wrong password never gets in: still serving, degraded.
    let wrong = start_with(config_with("not-the-secret"));
    assert!(!wrong.cluster_up());
    assert!(health(&wrong).starts_with("HTTP/1.1 503 "));
}

#[test]
fn a_feed_moving_to_another_broker_continues_its_seq() {
    let nats = NatsServer::start();
    let (a, b) = (start_member(&nats), start_member(&nats));
    let mut on_b = connect(&b);
    subscribe(&mut on_b, &["M.X"], false);
    let mut on_b_producer = publisher(&b);
    for i in 0..5 {
        publish(&mut on_b_producer, quote("M.X", i as f64));
    }
    assert_eq!(seqs_between(&mut on_b, "M.X", 0, 5), [1, 2, 3, 4, 5]);
    // The stream has seq 5 once a late broker's snapshot says so.
    let c = start_member(&nats);
    loop_until_snapshot(&c, "M.X", 5);

    // The feed moves to A, which never followed M.X: its first quote is
    // numbered from nothing (1) and makes A probe the stored seq (5) while
    // holding that quote back from NATS; the next continues B's numbering.
    drop(on_b_producer);
    let mut on_a_producer = publisher(&a);
    publish(&mut on_a_producer, quote("M.X", 100.0));
    assert!(wait_until(|| metric(
        &a,
        "tickwire_cluster_seq_adopted_total"
    ) >= 1.0));
    publish(&mut on_a_producer, quote("M.X", 101.0));
    let q = next_quote(&mut on_b);
    assert_eq!(
        (q["seq"].as_u64(), q["last"].as_f64()),
        (Some(6), Some(101.0))
    );
    // A's first quote, numbered before the probe answered, never left A.
    assert_eq!(metric(&a, "tickwire_cluster_publish_dropped_total"), 1.0);
}

/// A feed of many topics moving at once (a feed handler failing over):
/// the probes of a large batch read the stream once instead of per topic.
#[test]
fn a_large_feed_moving_continues_every_topics_seq() {
    const TOPICS: usize = 2_000;
    let nats = NatsServer::start();
    let (a, b) = (start_member(&nats), start_member(&nats));
    let batch = |price: f64| {
        (0..TOPICS)
            .map(|i| quote(&format!("L.{i}"), price))
            .collect::<Vec<_>>()
    };
    let mut on_b = publisher(&b);
    on_b.publish_batch(batch(1.0)).expect("publish");
    on_b.publish_batch(batch(1.5)).expect("publish");
    on_b.flush().expect("flush");
    let c = start_member(&nats);
    loop_until_snapshot(&c, &format!("L.{}", TOPICS - 1), 2);
    drop(on_b);

    let mut on_a = publisher(&a);
    on_a.publish_batch(batch(2.0)).expect("publish");
    on_a.flush().expect("flush");
    assert!(
        wait_until(|| metric(&a, "tickwire_cluster_seq_adopted_total") >= TOPICS as f64),
        "A continued every topic's numbering"
    );
    // None of A's first quotes (numbered 1, below B's 2) left A. The link
    // drops them as it takes each probe's answer, while the stored quotes
    // reach the router on their own path: wait for the count, don't race it.
    let dropped = || metric(&a, "tickwire_cluster_publish_dropped_total");
    assert!(
        wait_until(|| dropped() == TOPICS as f64),
        "every held first quote dropped: {}",
        dropped()
    );
    let mut watcher = connect(&b);
    subscribe(&mut watcher, &["L.7"], false);
    let (_, seen) = publish_until_seen(&mut on_a, "L.7", &mut [&mut watcher]);
    assert!(
        seen[0] >= 3,
        "seq continued past B's 1 and A's held 1: {seen:?}"
    );
}

/// On a broker that follows a topic fed by another, a second subscriber
/// on the same worker is answered by that worker, with the newest quote it
/// had through the cluster, and live quotes follow with no gap.
#[test]
fn a_worker_answers_a_subscribe_of_a_topic_fed_through_the_cluster() {
    let nats = NatsServer::start();
    let feed = start_member(&nats);
    let b = start_with(one_worker(cluster_config(&nats)));
    assert!(wait_until(|| b.cluster_up()), "cluster link comes up");
    let mut first = connect(&b);
    subscribe(&mut first, &["W.A"], true);
    let mut producer = publisher(&feed);
    let (sent, seen) = publish_until_seen(&mut producer, "W.A", &mut [&mut first]);
    if seen[0] < sent {
        let _ = seqs_between(&mut first, "W.A", seen[0], sent);
    }

    let mut second = connect(&b);
    subscribe(&mut second, &["W.A"], true);
    assert_eq!(
        next_quote(&mut second)["seq"],
        sent,
        "the newest as snapshot"
    );
    assert_eq!(
        metric(&b, "tickwire_subscribes_total{answered=\"worker\"}"),
        1.0
    );
    publish(&mut producer, quote("W.A", 1.0));
    for ws in [&mut first, &mut second] {
        assert_eq!(next_quote(ws)["seq"], sent + 1);
    }
}
