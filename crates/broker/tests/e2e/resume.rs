//! v1.2 resume and rewind end to end: a real broker, tungstenite clients
//! over ws:// and wss://, the client crate's Publisher.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;
use common::*;

const TOPICS: [&str; 2] = ["R.A", "R.B"];

fn history_config(size: usize) -> tickwire_broker::Config {
    let mut config = test_config();
    config.history.size = size;
    config
}

/// Publishes `n` quotes over `TOPICS` in turn at about `rate` a second
/// (paced by the clock: a feed, not a synchronisation).
fn feed(p: &mut tickwire_client::Publisher, n: usize, rate: u32) {
    let start = Instant::now();
    for i in 0..n {
        p.publish(quote(TOPICS[i % TOPICS.len()], 100.0 + i as f64))
            .expect("publish");
        if i % 100 == 99 {
            p.flush().expect("flush");
            let due = start + Duration::from_secs_f64((i + 1) as f64 / f64::from(rate));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    p.flush().expect("flush");
}

/// Reads `n` quotes; the seqs per topic, in arrival order.
fn read_quotes<S: Duplex>(
    ws: &mut tungstenite::WebSocket<S>,
    n: usize,
) -> BTreeMap<String, Vec<u64>> {
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..n {
        let q = next_quote(ws);
        let topic = q["topic"].as_str().unwrap().to_owned();
        seqs.entry(topic)
            .or_default()
            .push(q["seq"].as_u64().unwrap());
    }
    seqs
}

/// A client reads k quotes and is cut; the feed publishes m more at
/// 20,000 quotes/s; the client resumes from its positions and gets
/// exactly quotes k+1..k+m of each topic, in order, then live ones —
/// over ws:// and wss://.
#[test]
fn a_cut_client_resumes_with_exactly_the_quotes_it_missed() {
    for over in BOTH {
        let target = Target::start_with(over, history_config(1024));
        let mut first = target.connect();
        let ack = subscribe(&mut first, &TOPICS, false);
        let epoch = ack["epoch"].as_str().unwrap().to_owned();
        let mut p = publisher(&target.broker);
        feed(&mut p, 40, 20_000);
        let read = read_quotes(&mut first, 40);
        let last: BTreeMap<&str, u64> = TOPICS
            .iter()
            .map(|t| (*t, *read[*t].last().unwrap()))
            .collect();
        assert_eq!(last["R.A"], 20, "{over:?}");
        drop(first); // cut

        feed(&mut p, 1_600, 20_000);
        let mut second = target.connect();
        send_json(
            &mut second,
            json!({"op":"subscribe","topics":["R.*"],"id":9,
                   "since":{"epoch": epoch, "seqs": last}}),
        );
        let ack = recv_json(&mut second);
        assert_eq!(
            ack,
            json!({"type":"subscribed","id":9,"topics":["R.*"],"epoch":epoch,"recovered":true}),
            "{over:?}"
        );
        let replay = read_quotes(&mut second, 1_600);
        for t in TOPICS {
            assert_eq!(replay[t], (21..=820).collect::<Vec<u64>>(), "{over:?} {t}");
        }
        // Then live, with no gap.
        publish(&mut p, quote("R.B", 1.0));
        let live = next_quote(&mut second);
        assert_eq!(
            (live["topic"].as_str(), live["seq"].as_u64()),
            (Some("R.B"), Some(821))
        );
        assert!(
            wait_until(|| metric(
                &target.broker,
                "tickwire_resume_topics_total{result=\"recovered\"}"
            ) == 2.0),
            "{over:?}"
        );
    }
}

/// Another epoch, or a position history no longer reaches: the topic is
/// named in `unrecovered` and gets the snapshot; `rewind` sends the newest
/// quotes oldest first; the gauges show what history holds.
#[test]
fn unrecovered_topics_get_the_snapshot_and_rewind_sends_recent_quotes() {
    let broker = start_with(history_config(8));
    let mut p = publisher(&broker);
    feed(&mut p, 40, 20_000); // 20 each: seqs 13..=20 held
                              // The router counts a batch as it takes it, before any later command.
    assert!(wait_until(
        || metric(&broker, "tickwire_quotes_in_total") == 40.0
    ));
    let epoch = broker.epoch();

    let mut ws = connect(&broker);
    send_json(
        &mut ws,
        json!({"op":"subscribe","topics":["R.A","R.B"],"id":1,
               "since":{"epoch": epoch, "seqs": {"R.A": 12, "R.B": 11}}}),
    );
    let ack = recv_json(&mut ws);
    assert_eq!(ack["recovered"], false);
    assert_eq!(ack["unrecovered"], json!(["R.B"]));
    let got = read_quotes(&mut ws, 9);
    assert_eq!(got["R.A"], (13..=20).collect::<Vec<u64>>());
    assert_eq!(got["R.B"], [20], "the snapshot");

    let mut other = connect(&broker);
    send_json(
        &mut other,
        json!({"op":"subscribe","topics":["R.A"],"id":2,
               "since":{"epoch": "not-this-one", "seqs": {"R.A": 19}}}),
    );
    assert_eq!(recv_json(&mut other)["unrecovered"], json!(["R.A"]));
    assert_eq!(next_quote(&mut other)["seq"], 20);

    let mut chart = connect(&broker);
    send_json(
        &mut chart,
        json!({"op":"subscribe","topics":["R.*"],"rewind":3}),
    );
    let ack = recv_json(&mut chart);
    assert!(ack.get("recovered").is_none(), "no since, a v1 ack: {ack}");
    let got = read_quotes(&mut chart, 6);
    assert_eq!(got["R.A"], [18, 19, 20]);
    assert_eq!(got["R.B"], [18, 19, 20]);

    assert!(wait_until(
        || metric(&broker, "tickwire_history_quotes") == 16.0
    ));
    assert!(metric(&broker, "tickwire_history_bytes") > 16.0 * 150.0);
    assert_eq!(
        metric(
            &broker,
            "tickwire_resume_topics_total{result=\"unrecovered\"}"
        ),
        2.0
    );
}

/// Malformed positions are `bad_request` and apply nothing: the
/// connection has no entry afterwards (a quote published then is not sent).
#[test]
fn a_malformed_since_is_refused_whole() {
    let broker = start();
    let mut ws = connect(&broker);
    let keys: serde_json::Map<String, Value> =
        (0..1025).map(|i| (format!("K.{i}"), json!(1))).collect();
    for (bad, why) in [
        (json!({"epoch": "e", "seqs": {"R.*": 1}}), "a pattern key"),
        (
            json!({"epoch": "e", "seqs": {"OTHER": 1}}),
            "a key no entry matches",
        ),
        (json!({"epoch": "e", "seqs": {"R.A": -1}}), "a negative seq"),
        (
            json!({"epoch": "e", "seqs": {"R.A": 9007199254740992_u64}}),
            "past 2^53-1",
        ),
        (
            json!({"epoch": 1, "seqs": {}}),
            "an epoch that is no string",
        ),
        (json!({"epoch": "e", "seqs": keys}), "1,025 keys"),
    ] {
        send_json(
            &mut ws,
            json!({"op":"subscribe","topics":["R.*","K.*"],"id":3,"since":bad}),
        );
        let reply = recv_json(&mut ws);
        assert_eq!(reply["code"], "bad_request", "{why}: {reply}");
    }
    let mut p = publisher(&broker);
    publish(&mut p, quote("R.A", 1.0));
    assert!(recv_within(&mut ws, Duration::from_millis(300)).is_none());
}

/// A replay far larger than the connection's outbound budget reaches a
/// client that reads, whole: it is paced slice by slice behind the
/// client's reading, never conflated.
#[test]
fn a_replay_larger_than_the_outbound_budget_arrives_whole() {
    for (budget, topics, quotes) in [(16 * 1024, 50, 40), (256 * 1024, 100, 64)] {
        replay_whole(budget, topics, quotes);
    }
}

fn replay_whole(budget: usize, topics: usize, quotes: usize) {
    let mut config = history_config(1024);
    config.subscriber.outbound_budget_bytes = budget;
    let broker = start_with(config);
    let mut p = publisher(&broker);
    let names: Vec<String> = (0..topics).map(|i| format!("R.{i:03}")).collect();
    for i in 0..quotes {
        for name in &names {
            p.publish(quote(name, 100.0 + i as f64)).expect("publish");
        }
    }
    p.flush().expect("flush");
    let total = topics * quotes;
    assert!(wait_until(
        || metric(&broker, "tickwire_quotes_in_total") == total as f64
    ));
    let mut ws = connect(&broker);
    let seqs: serde_json::Map<String, Value> =
        names.iter().map(|n| (n.clone(), json!(0))).collect();
    send_json(
        &mut ws,
        json!({"op":"subscribe","topics":["R.*"],"since":{"epoch": broker.epoch(), "seqs": seqs}}),
    );
    assert_eq!(recv_json(&mut ws)["recovered"], true);
    let got = read_quotes(&mut ws, total);
    for name in &names {
        assert_eq!(
            got[name],
            (1..=quotes as u64).collect::<Vec<u64>>(),
            "{name}"
        );
    }
    assert_eq!(metric(&broker, "tickwire_conflated_total"), 0.0);
}
