//! End-to-end: a real broker in-process on ephemeral loopback ports, the
//! load generator against it (library entry point and the binary). Never
//! asserts on speed.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tickwire_broker::{Broker, Config};
use tickwire_client::{Publisher, Quote};

fn start() -> Broker {
    let mut config = Config::default();
    config.server.ws_addr = "127.0.0.1:0".into();
    config.ingest.addr = "127.0.0.1:0".into();
    config.server.workers = 2;
    Broker::start(&config).expect("broker starts")
}

fn addrs(b: &Broker) -> Vec<String> {
    vec![
        "--ws".into(),
        b.ws_addr().to_string(),
        "--ingest".into(),
        b.ingest_addr().to_string(),
        "--quiet".into(),
        "--connect-timeout".into(),
        "20".into(),
    ]
}

fn args(b: &Broker, scenario: &[&str]) -> Vec<String> {
    let mut v = vec!["tickwire-loadtest".to_string()];
    v.extend(scenario.iter().map(|s| s.to_string()));
    v.extend(addrs(b));
    v
}

#[test]
fn json_report_schema_from_the_binary() {
    let broker = start();
    let dir = std::env::temp_dir().join(format!("lt-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hgrm = dir.join("run.hgrm");
    let svg = dir.join("run.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-loadtest"))
        .args([
            "fanout",
            "-s",
            "4",
            "-t",
            "2",
            "-k",
            "1",
            "--rate",
            "200",
            "--duration",
            "1",
            "--json",
        ])
        .args(&addrs(&broker)[..])
        .arg("--hgrm")
        .arg(&hgrm)
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    for key in [
        "scenario",
        "params",
        "duration_s",
        "deliveries",
        "deliveries_per_s",
        "expected_deliveries",
        "quotes_sent",
        "quotes_per_s",
        "subscribers",
        "latency_us",
        "seq_gaps",
        "seq",
        "negative_latency",
        "errors",
        "loadgen_cpu",
        "bottleneck_warning",
        "connect_us",
        "subscribe_ack_us",
        "broker_rss_before_bytes",
        "broker_rss_after_bytes",
        "broker_rss_per_conn_bytes",
        "baseline",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    for key in ["p50", "p90", "p99", "p999", "max", "mean", "count"] {
        assert!(
            report["latency_us"][key].is_number(),
            "latency_us.{key}: {report}"
        );
    }
    for key in ["user_s", "sys_s", "busy_share", "process_cpu_share"] {
        assert!(
            report["loadgen_cpu"][key].is_number(),
            "loadgen_cpu.{key}: {report}"
        );
    }
    for key in ["requested", "subscribed", "failed", "slow"] {
        assert!(report["subscribers"][key].is_number(), "subscribers.{key}");
    }
    for key in [
        "total",
        "connect",
        "handshake",
        "server_error",
        "unexpected_close",
        "protocol",
    ] {
        assert!(report["errors"][key].is_number(), "errors.{key}");
    }
    assert_eq!(report["scenario"], "fanout");
    assert!(report["deliveries"].as_u64().unwrap() > 0, "{report}");
    assert!(report["quotes_sent"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["subscribers"]["subscribed"], 4);
    assert_eq!(report["errors"]["total"], 0, "{report}");
    // One --ws address: no per-address breakdown, not even a null.
    assert!(report.get("latency_by_ws").is_none(), "{report}");

    let text = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(
        text.contains("Percentile") && text.contains("#[Mean"),
        "{text}"
    );
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn normal_run_reports_no_gaps_and_every_delivery() {
    let broker = start();
    for format in ["json", "binary"] {
        let report = tickwire_loadtest::run_args(args(
            &broker,
            &[
                "fanout",
                "-s",
                "8",
                "-t",
                "4",
                "-k",
                "2",
                "-p",
                "2",
                "--rate",
                "2000",
                "--duration",
                "1",
                "--threads",
                "2",
                "--format",
                format,
            ],
        ))
        .expect("run succeeds");
        assert_eq!(report.subscribers.subscribed, 8, "{format}");
        assert!(report.deliveries > 0, "{format}");
        assert_eq!(report.seq_gaps, 0, "{format}: {:?}", report.seq);
        assert_eq!(report.seq.duplicates, 0, "{format}");
        assert_eq!(report.seq.out_of_order, 0, "{format}");
        assert_eq!(report.errors.total, 0, "{format}: {:?}", report.errors);
        // Every quote sent reaches every subscriber of its topic.
        assert_eq!(
            Some(report.deliveries),
            report.expected_deliveries,
            "{format}"
        );
        assert_eq!(report.latency_us.count, report.deliveries);
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn latency_matches_a_known_delay() {
    const DELAY_NS: u64 = 200_000_000;
    let broker = start();
    let run_args = args(
        &broker,
        &[
            "fanout",
            "-s",
            "2",
            "-t",
            "1",
            "-k",
            "1",
            "-p",
            "0",
            "--duration",
            "2",
        ],
    );
    let done = Arc::new(AtomicBool::new(false));
    let ingest = broker.ingest_addr();
    let feed = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut p = Publisher::connect(ingest).expect("publisher connects");
            // Bounded: the load test ends after ~2 s + connect; stop at 30 s regardless.
            for _ in 0..3000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                p.publish(Quote {
                    topic: "lt.0".into(),
                    bid: 1.0,
                    ask: 1.1,
                    bid_size: 1.0,
                    ask_size: 1.0,
                    last: 1.05,
                    volume: 1.0,
                    ts: now_ns() - DELAY_NS,
                })
                .unwrap();
                p.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let report = tickwire_loadtest::run_args(run_args).expect("run succeeds");
    done.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    let l = &report.latency_us;
    assert!(l.count > 0, "{report:?}");
    assert!(
        l.p50 >= 200_000.0,
        "p50 {} µs below the 200 ms built in",
        l.p50
    );
    assert!(l.p50 <= 5_200_000.0, "p50 {} µs", l.p50);
    assert!(l.max >= l.p50 && l.p50 >= 200_000.0);
    assert_eq!(report.negative_latency, 0);
    assert_eq!(report.seq_gaps, 0);
}

#[test]
fn connections_scenario_reports_setup_times() {
    let broker = start();
    let pid = std::process::id().to_string();
    let report = tickwire_loadtest::run_args(args(
        &broker,
        &[
            "connections",
            "-n",
            "50",
            "-t",
            "5",
            "--duration",
            "0.2",
            "--broker-pid",
            &pid,
        ],
    ))
    .expect("run succeeds");
    assert_eq!(report.subscribers.subscribed, 50);
    let connect = report.connect_us.as_ref().expect("connect_us");
    let ack = report.subscribe_ack_us.as_ref().expect("subscribe_ack_us");
    assert_eq!(connect.count, 50);
    assert_eq!(ack.count, 50);
    assert!(ack.max >= connect.p50);
    // The broker runs in this process, so its RSS is ours: present, not judged.
    assert!(report.broker_rss_per_conn_bytes.is_some());
    assert_eq!(report.errors.total, 0, "{:?}", report.errors);
}

#[test]
fn slow_compare_runs_both_phases() {
    let broker = start();
    let report = tickwire_loadtest::run_args(args(
        &broker,
        &[
            "slow",
            "-s",
            "10",
            "-t",
            "2",
            "-k",
            "1",
            "--rate",
            "1000",
            "--duration",
            "1",
            "--slow-share",
            "0.2",
            "--compare",
            "--drain",
            "1",
        ],
    ))
    .expect("run succeeds");
    assert_eq!(report.scenario, "slow");
    assert_eq!(report.subscribers.slow, 2);
    assert_eq!(report.subscribers.subscribed, 10);
    assert!(report.latency_us.count > 0);
    let base = report.baseline.as_ref().expect("baseline phase");
    assert_eq!(base.subscribers.slow, 0);
    assert_eq!(base.subscribers.requested, 8);
    assert!(base.latency_us.count > 0);
    // Fast subscribers are unaffected in what they receive.
    assert_eq!(report.seq_gaps, 0);
}

#[test]
fn refuses_remote_addresses_and_bad_parameters() {
    let e = tickwire_loadtest::run_args(["x", "fanout", "--ws", "10.0.0.1:8080"]).unwrap_err();
    assert!(e.to_string().contains("--allow-remote"), "{e}");
    let e = tickwire_loadtest::run_args(["x", "fanout", "-t", "2", "-k", "3"]).unwrap_err();
    assert!(e.to_string().contains("topics-per-sub"), "{e}");
    let e = tickwire_loadtest::run_args(["x", "latency", "--rate", "0"]).unwrap_err();
    assert!(e.to_string().contains("rate"), "{e}");
}

/// A fanout run with `--ws` set to `ws` (the rest as `args`).
fn ws_list_args(ws: &str, ingest: &Broker, scenario: &[&str]) -> Vec<String> {
    let mut v = args(ingest, scenario);
    let i = v.iter().position(|a| a == "--ws").unwrap();
    v[i + 1] = ws.to_string();
    v
}

#[test]
fn ws_list_reports_latency_per_address() {
    let broker = start();
    let ws = broker.ws_addr().to_string();
    let fanout = [
        "fanout",
        "-s",
        "6",
        "-t",
        "3",
        "-k",
        "1",
        "--rate",
        "500",
        "--duration",
        "1",
        "--threads",
        "2",
    ];
    // The same broker listed twice: subscribers alternate between the two
    // entries, and both groups receive every quote of their topics.
    let report = tickwire_loadtest::run_args(ws_list_args(&format!("{ws},{ws}"), &broker, &fanout))
        .expect("run succeeds");
    assert_eq!(report.errors.total, 0, "{:?}", report.errors);
    assert_eq!(report.subscribers.subscribed, 6);
    assert_eq!(Some(report.deliveries), report.expected_deliveries);
    assert_eq!(report.params["ws"], format!("{ws},{ws}"));
    let by_ws = report.latency_by_ws.as_ref().expect("latency_by_ws");
    assert_eq!(by_ws.len(), 2, "{by_ws:?}");
    for w in by_ws {
        assert_eq!(w.ws, ws);
        assert_eq!(w.subscribers, 3, "{by_ws:?}");
        assert!(w.latency_us.count > 0, "{by_ws:?}");
        assert!(w.latency_us.max <= report.latency_us.max);
    }
    // Every delivery is in the overall histogram and in exactly one per-address one.
    let sum: u64 = by_ws.iter().map(|w| w.latency_us.count).sum();
    assert_eq!(sum, report.latency_us.count);
    assert_eq!(report.latency_us.count, report.deliveries);
    let json = serde_json::to_value(&report).unwrap();
    let entries = json["latency_by_ws"].as_array().expect("array");
    assert_eq!(entries.len(), 2, "{json}");
    for e in entries {
        assert_eq!(e["ws"], ws.as_str());
        assert_eq!(e["subscribers"], 3);
        for key in ["count", "p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(e["latency_us"][key].is_number(), "{key}: {e}");
        }
    }

    // A single address (the default form) adds no breakdown.
    let single = tickwire_loadtest::run_args(args(&broker, &fanout)).expect("run succeeds");
    assert!(single.latency_by_ws.is_none());
    let json = serde_json::to_value(&single).unwrap();
    assert!(json.get("latency_by_ws").is_none(), "{json}");
}

#[test]
fn ws_list_over_two_brokers_keeps_their_subscribers_apart() {
    // Two independent brokers (no cluster): quotes published to A's ingest
    // reach only the subscribers connected to A.
    let a = start();
    let b = start();
    let list = format!("{},{}", a.ws_addr(), b.ws_addr());
    let report = tickwire_loadtest::run_args(ws_list_args(
        &list,
        &a,
        &[
            "fanout",
            "-s",
            "4",
            "-t",
            "2",
            "-k",
            "1",
            "--rate",
            "500",
            "--duration",
            "1",
            "--drain",
            "1",
        ],
    ))
    .expect("run succeeds");
    assert_eq!(report.errors.total, 0, "{:?}", report.errors);
    assert_eq!(report.subscribers.subscribed, 4);
    let by_ws = report.latency_by_ws.as_ref().expect("latency_by_ws");
    assert_eq!(by_ws.len(), 2);
    assert_eq!(by_ws[0].ws, a.ws_addr().to_string());
    assert_eq!(by_ws[1].ws, b.ws_addr().to_string());
    assert_eq!((by_ws[0].subscribers, by_ws[1].subscribers), (2, 2));
    assert!(by_ws[0].latency_us.count > 0, "{by_ws:?}");
    assert_eq!(by_ws[0].latency_us.count, report.latency_us.count);
    assert_eq!(by_ws[1].latency_us.count, 0, "{by_ws:?}");
    // B's subscribers got nothing: fewer deliveries than expected, said so.
    assert!(report.deliveries < report.expected_deliveries.unwrap());
    assert!(report.bottleneck_warning.is_some());
}

#[test]
fn ws_list_errors_name_the_flag() {
    for bad in ["127.0.0.1:8080,nonsense", "127.0.0.1:8080,,127.0.0.1:8081"] {
        let e = tickwire_loadtest::run_args(["x", "fanout", "--ws", bad]).unwrap_err();
        assert!(e.to_string().starts_with("--ws "), "{bad}: {e}");
    }
    let e = tickwire_loadtest::run_args(["x", "fanout", "--ws", "127.0.0.1:8080,10.0.0.1:8080"])
        .unwrap_err();
    assert!(e.to_string().contains("--allow-remote"), "{e}");
}
