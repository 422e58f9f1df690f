//! `GET /metrics`: Prometheus text format 0.0.4, parsed like a scraper would.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::*;

struct Scrape {
    types: HashMap<String, String>,
    /// "name{labels}" (labels as written) → value
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn value(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key}"))
    }
}

fn scrape(addr: SocketAddr) -> Scrape {
    let response = http(addr, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut types = HashMap::new();
    let mut samples = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            types.insert(name.to_owned(), kind.to_owned());
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let (key, value) = line.rsplit_once(' ').expect("sample value");
            let value = if value == "NaN" {
                f64::NAN
            } else {
                value.parse().expect("a number")
            };
            samples.insert(key.to_owned(), value);
        }
    }
    Scrape { types, samples }
}

#[test]
fn every_contract_family_is_typed_from_start_up() {
    let broker = start();
    let s = scrape(broker.ws_addr());
    let expected = [
        ("tickwire_connections", "gauge"),
        ("tickwire_subscriptions", "gauge"),
        ("tickwire_topics", "gauge"),
        ("tickwire_quotes_in_total", "counter"),
        ("tickwire_deliveries_total", "counter"),
        ("tickwire_ingest_rejected_total", "counter"),
        ("tickwire_closes_total", "counter"),
        ("tickwire_conflated_total", "counter"),
        ("tickwire_slow_consumer_closes_total", "counter"),
        ("tickwire_delivery_latency_seconds", "summary"),
        ("tickwire_frames_out_total", "counter"),
        ("tickwire_socket_writes_total", "counter"),
        ("tickwire_bytes_out_total", "counter"),
        ("tickwire_request_errors_total", "counter"),
        ("tickwire_queue_depth", "gauge"),
        ("tickwire_ingest_router_latency_seconds", "summary"),
        ("tickwire_ingest_backlog_rounds_total", "counter"),
        ("tickwire_router_worker_latency_seconds", "summary"),
    ];
    for (name, kind) in expected {
        assert_eq!(s.types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        assert!(s
            .value(&format!(
                "tickwire_delivery_latency_seconds{{quantile=\"{q}\"}}"
            ))
            .is_nan());
    }
    assert_eq!(s.value("tickwire_delivery_latency_seconds_count"), 0.0);
    assert_eq!(s.value("tickwire_connections{kind=\"subscriber\"}"), 0.0);
    assert_eq!(
        s.value("tickwire_ingest_rejected_total{reason=\"decode\"}"),
        0.0
    );
    assert_eq!(s.value("tickwire_closes_total{code=\"1001\"}"), 0.0);
}

#[test]
fn counters_and_latency_move_when_quotes_flow() {
    let broker = start();
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["AAPL", "MSFT*"], false);
    let mut p = publisher(&broker);
    for i in 0..20 {
        p.publish(quote(if i % 2 == 0 { "AAPL" } else { "MSFTX" }, 1.0))
            .unwrap();
    }
    p.flush().unwrap();
    for _ in 0..20 {
        next_quote(&mut ws);
    }
    ws.send(tungstenite::Message::Text("nonsense".into()))
        .unwrap();
    assert_eq!(recv_json(&mut ws)["code"], "bad_request");

    // Latency samples are merged about once a second: wait for them.
    let mut s = scrape(broker.ws_addr());
    assert!(wait_until(|| {
        s = scrape(broker.ws_addr());
        s.value("tickwire_delivery_latency_seconds_count") >= 20.0
    }));
    assert_eq!(s.value("tickwire_quotes_in_total"), 20.0);
    assert_eq!(s.value("tickwire_deliveries_total"), 20.0);
    assert!(s.value("tickwire_frames_out_total") >= 20.0);
    let writes = s.value("tickwire_socket_writes_total");
    assert!(
        writes >= 1.0 && writes <= s.value("tickwire_frames_out_total"),
        "writes {writes}"
    );
    // A JSON subscriber that offered no compression: its bytes count as
    // `json`, not `json+deflate`.
    assert!(s.value("tickwire_bytes_out_total{encoding=\"json\"}") > 20.0 * 100.0);
    assert_eq!(
        s.value("tickwire_bytes_out_total{encoding=\"json+deflate\"}"),
        0.0
    );
    assert_eq!(s.value("tickwire_connections{kind=\"subscriber\"}"), 1.0);
    assert_eq!(s.value("tickwire_connections{kind=\"producer\"}"), 1.0);
    assert_eq!(s.value("tickwire_subscriptions"), 2.0);
    assert_eq!(s.value("tickwire_topics"), 2.0);
    assert_eq!(
        s.value("tickwire_request_errors_total{code=\"bad_request\"}"),
        1.0
    );
    let p50 = s.value("tickwire_delivery_latency_seconds{quantile=\"0.5\"}");
    let max = s.value("tickwire_delivery_latency_seconds{quantile=\"1\"}");
    assert!(p50 > 0.0 && p50 <= max && max < 60.0, "p50 {p50} max {max}");
    assert!(s.value("tickwire_delivery_latency_seconds_sum") > 0.0);
    assert!(wait_until(|| scrape(broker.ws_addr())
        .value("tickwire_ingest_router_latency_seconds_count")
        >= 20.0));
    assert!(wait_until(|| scrape(broker.ws_addr())
        .value("tickwire_router_worker_latency_seconds_count")
        >= 20.0));

    // A snapshot is a delivery, but its age is not delivery latency: a
    // second client gets AAPL's last value, then one live quote.
    let mut late = connect(&broker);
    subscribe(&mut late, &["AAPL", "ZZZ"], true);
    assert_eq!(next_quote(&mut late)["topic"], "AAPL");
    p.publish(quote("ZZZ", 1.0)).unwrap();
    p.flush().unwrap();
    assert_eq!(next_quote(&mut late)["topic"], "ZZZ");
    assert!(wait_until(|| {
        s = scrape(broker.ws_addr());
        s.value("tickwire_delivery_latency_seconds_count") >= 21.0
    }));
    assert_eq!(s.value("tickwire_deliveries_total"), 22.0);
    assert_eq!(s.value("tickwire_delivery_latency_seconds_count"), 21.0);
}
