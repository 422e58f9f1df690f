//! `--delta` and `--deflate` against a real broker in-process: every
//! connection negotiates permessage-deflate (or is declined by a broker
//! configured not to), deltas arrive and count as deliveries, and the
//! wire bytes per delivery drop. Compares sizes only, never speed.

use serde_json::Value;
use tickwire_broker::{Broker, Config};
use tickwire_loadtest::Report;

const SUBSCRIBERS: usize = 3;

fn start(permessage_deflate: bool) -> Broker {
    let mut config = Config::default();
    config.server.ws_addr = "127.0.0.1:0".into();
    config.ingest.addr = "127.0.0.1:0".into();
    config.server.workers = 2;
    config.websocket.permessage_deflate = permessage_deflate;
    Broker::start(&config).expect("broker starts")
}

/// A light fanout (3 subscribers, 2 topics, 400 quotes/s for 1 s) with
/// `extra` flags. The loadtest feed changes bid, ask, last and volume with
/// every quote of a topic and never the sizes.
fn fanout(b: &Broker, extra: &[&str]) -> Report {
    let subscribers = SUBSCRIBERS.to_string();
    let mut args: Vec<String> = [
        "tickwire-loadtest",
        "fanout",
        "-s",
        &subscribers,
        "-t",
        "2",
        "-k",
        "1",
        "-p",
        "1",
        "--rate",
        "400",
        "--duration",
        "1",
        "--ws",
        &b.ws_addr().to_string(),
        "--ingest",
        &b.ingest_addr().to_string(),
        "--quiet",
        "--connect-timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    tickwire_loadtest::run_args(args).expect("run succeeds")
}

/// What every run must show, whatever the flags; returns the bytes per delivery.
fn healthy(r: &Report, what: &str) -> f64 {
    assert_eq!(r.errors.total, 0, "{what}: {:?}", r.errors);
    assert_eq!(r.subscribers.subscribed, SUBSCRIBERS, "{what}");
    assert!(r.deliveries > 0, "{what}: {r:?}");
    assert_eq!(r.latency_us.count, r.deliveries, "{what}");
    assert_eq!(r.seq_gaps, 0, "{what}: {:?}", r.seq);
    assert_eq!(r.seq.duplicates + r.seq.out_of_order, 0, "{what}");
    assert!(r.wire_bytes > 0, "{what}");
    let per = r.wire_bytes_per_delivery.expect("deliveries, so a figure");
    assert!(per > 0.0, "{what}: {per}");
    per
}

#[test]
fn deltas_and_deflate_cut_the_bytes_per_delivery() {
    let broker = start(true);
    for format in ["json", "binary"] {
        let plain = fanout(&broker, &["--format", format]);
        let lean = fanout(&broker, &["--format", format, "--delta", "--deflate"]);
        let plain_per = healthy(&plain, &format!("{format} plain"));
        let lean_per = healthy(&lean, &format!("{format} --delta --deflate"));
        assert_eq!(plain.deflate_negotiated, None, "{format}: not offered");
        assert_eq!(lean.deflate_negotiated, Some(SUBSCRIBERS), "{format}");
        assert_eq!(lean.params["delta"], true);
        assert_eq!(lean.params["deflate"], true);
        assert_eq!(plain.params["delta"], false);
        // Sizes, not timings: a delta drops the two unchanged sizes (and
        // JSON compresses), so every quote but the first of each topic is
        // smaller; the few acks are a small constant.
        assert!(
            lean_per < plain_per,
            "{format}: {lean_per} bytes per delivery with --delta --deflate, {plain_per} without"
        );
        let json = serde_json::to_value(&lean).unwrap();
        assert!(json["wire_bytes"].as_u64().is_some_and(|b| b > 0), "{json}");
        assert!(json["wire_bytes_per_delivery"].is_number(), "{json}");
        assert_eq!(json["deflate_negotiated"], SUBSCRIBERS);
        let json = serde_json::to_value(&plain).unwrap();
        assert_eq!(json["deflate_negotiated"], Value::Null, "{json}");
        assert!(lean
            .table()
            .contains("per delivery; permessage-deflate on 3 of 3"));
    }
}

#[test]
fn json_deltas_save_bytes_and_deflate_saves_more() {
    let broker = start(true);
    let plain = healthy(&fanout(&broker, &[]), "json plain");
    let delta = fanout(&broker, &["--delta"]);
    let delta_per = healthy(&delta, "json --delta");
    assert_eq!(delta.deflate_negotiated, None);
    let both = healthy(&fanout(&broker, &["--delta", "--deflate"]), "json both");
    // Compressed frames were read (through the inflating decoder) and
    // counted as they came: fewer bytes than the same deltas uncompressed.
    assert!(
        both < delta_per && delta_per < plain,
        "bytes per delivery: plain {plain}, --delta {delta_per}, --delta --deflate {both}"
    );
}

#[test]
fn a_broker_that_declines_deflate_still_serves_deltas() {
    let broker = start(false);
    let report = fanout(&broker, &["--format", "json", "--delta", "--deflate"]);
    healthy(&report, "declined");
    assert_eq!(report.deflate_negotiated, Some(0));
}
