//! Resume across the cluster: a client cut from one broker resumes on
//! another that never followed its topics, from the cluster's history in
//! JetStream (docs/cluster.md, "History in JetStream").

use crate::common;

use serde_json::json;

use crate::cluster::{publish_until_seen, seqs_between, start_member};
use common::nats::NatsServer;
use common::*;

#[test]
fn a_client_resumes_on_another_broker_from_the_clusters_history() {
    let nats = NatsServer::start();
    let a = start_member(&nats);
    let feed = start_member(&nats);
    let mut on_a = connect(&a);
    subscribe(&mut on_a, &["H.*"], false);
    let mut witness = connect(&a);
    subscribe(&mut witness, &["H.*"], false);
    let mut producer = publisher(&feed);
    // A fresh cluster numbers H.X from 1: `sent` quotes are seqs 1..=sent.
    let (sent, seen) = publish_until_seen(&mut producer, "H.X", &mut [&mut on_a, &mut witness]);
    for (ws, seen) in [(&mut on_a, seen[0]), (&mut witness, seen[1])] {
        if seen < sent {
            let _ = seqs_between(ws, "H.X", seen, sent);
        }
    }
    let last = sent;
    drop(on_a); // cut after `last`

    for i in 0..30 {
        publish(&mut producer, quote("H.X", 300.0 + i as f64));
    }
    // Every quote went through NATS (the witness has them): the stream
    // captured them on the way.
    let missed: Vec<u64> = (last + 1..=last + 30).collect();
    assert_eq!(seqs_between(&mut witness, "H.X", last, last + 30), missed);

    // B starts now and never followed H.*: its ring is empty.
    let b = start_member(&nats);
    let mut on_b = connect(&b);
    send_json(
        &mut on_b,
        json!({"op":"subscribe","topics":["H.*"],"id":4,
               "since":{"epoch": a.epoch(), "seqs": {"H.X": last}}}),
    );
    let ack = recv_json(&mut on_b);
    assert_eq!(ack["recovered"], true, "{ack}");
    assert_eq!(ack["epoch"], b.epoch(), "one epoch in the cluster");
    assert_eq!(seqs_between(&mut on_b, "H.X", last, last + 30), missed);
    // Then live, from the feed's broker, with no gap.
    publish(&mut producer, quote("H.X", 1.0));
    assert_eq!(next_quote(&mut on_b)["seq"], last + 31);
    assert_eq!(
        metric(&b, "tickwire_resume_topics_total{result=\"recovered\"}"),
        1.0
    );
}
