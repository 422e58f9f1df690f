//! A snapshot larger than one router slice, taken while its topics keep
//! getting live quotes: every topic arrives, and per topic `seq` only goes
//! up (no stale snapshot after a live quote, no quote twice).

use crate::common;

use std::collections::HashMap;
use std::time::Instant;

use common::*;

const TOPICS: usize = 3000;

#[test]
fn a_pattern_snapshot_over_thousands_of_topics_interleaves_with_live_quotes() {
    let broker = start();
    let names: Vec<String> = (0..TOPICS).map(|i| format!("T.{i:04}")).collect();
    let mut p = publisher(&broker);
    for chunk in names.chunks(500) {
        p.publish_batch(chunk.iter().map(|t| quote(t, 1.0)).collect())
            .expect("publish");
    }
    p.flush().expect("flush");
    // Quotes are taken in order: once the last is live, all are cached.
    let mut watcher = connect(&broker);
    subscribe(&mut watcher, &["T.2999"], true);
    assert_eq!(next_quote(&mut watcher)["topic"], "T.2999");

    // Live quotes on every 7th topic while the snapshot is collected.
    let ingest = broker.ingest_addr();
    let live_names: Vec<String> = names.iter().step_by(7).cloned().collect();
    let feeder = std::thread::spawn(move || {
        let mut p = tickwire_client::Publisher::connect(ingest).expect("publisher");
        for round in 0..3 {
            for t in &live_names {
                p.publish(quote(t, 2.0 + f64::from(round)))
                    .expect("publish");
            }
            p.flush().expect("flush");
        }
    });

    let mut ws = connect(&broker);
    subscribe(&mut ws, &["T.*"], true);
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let deadline = Instant::now() + PATIENCE;
    while last_seq.len() < TOPICS && Instant::now() < deadline {
        let q = next_quote(&mut ws);
        let topic = q["topic"].as_str().expect("topic").to_owned();
        let seq = q["seq"].as_u64().expect("seq");
        if let Some(&before) = last_seq.get(&topic) {
            assert!(seq > before, "{topic}: seq {seq} after {before}");
        }
        last_seq.insert(topic, seq);
    }
    feeder.join().expect("feeder");
    assert_eq!(last_seq.len(), TOPICS, "every topic arrived");

    // Afterwards the subscription is plainly live (T.0001 had no live
    // quote yet; the feeder's last ones may still be on their way).
    publish(&mut p, quote("T.0001", 9.0));
    loop {
        let q = next_quote(&mut ws);
        let topic = q["topic"].as_str().expect("topic").to_owned();
        let seq = q["seq"].as_u64().expect("seq");
        assert!(seq > last_seq[&topic], "{topic}: seq {seq} again or back");
        last_seq.insert(topic.clone(), seq);
        if topic == "T.0001" {
            assert_eq!(seq, 2);
            break;
        }
    }
}
