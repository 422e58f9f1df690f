//! The soak end to end, a few seconds of it: an in-process broker with
//! `[auth]` (HS256) and small slow-consumer limits, the binary against it
//! with every kind of churn on, over plain WebSocket and over wss (the
//! broker's own TLS 1.3 record layer under churn: handshakes, resumed
//! sessions, slow readers' partial writes, closes). Checks the verdict and
//! that each kind of churn happened, never how fast anything was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;
use tickwire_broker::config::{AuthConfig, TlsConfig};
use tickwire_broker::{Broker, Config};

const SECRET: &str = "soak end-to-end secret, at least 32 bytes";

/// The broker's certificate and key, and the CA the soak trusts.
struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn start(secret_file: &str, tls: Option<&Tls>) -> Broker {
    let mut config = Config::default();
    config.server.ws_addr = "127.0.0.1:0".into();
    config.ingest.addr = "127.0.0.1:0".into();
    config.server.workers = 2;
    // Slow and stalled readers back up into the broker within a second or
    // two; the checked subscribers read far faster than quotes come.
    config.subscriber.outbound_budget_bytes = 16 * 1024;
    config.subscriber.socket_send_buffer_bytes = 8 * 1024;
    config.subscriber.stall_timeout_ms = 1000;
    config.auth = Some(AuthConfig {
        jwt_hs256_secret: None,
        jwt_hs256_secret_file: Some(secret_file.into()),
        jwt_public_key_file: None,
        issuer: String::new(),
        audience: String::new(),
        anonymous_topics: vec![],
    });
    config.tls = tls.map(|t| TlsConfig {
        addr: "127.0.0.1:0".into(),
        cert_file: t.cert.display().to_string(),
        key_file: t.key.display().to_string(),
    });
    Broker::start(&config).expect("broker starts")
}

fn num(v: &Value, path: &[&str]) -> u64 {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_u64()
        .unwrap_or_else(|| panic!("{} is not a count: {at}", path.join(".")))
}

#[test]
fn a_short_soak_with_every_churn_passes_and_churns() {
    let dir = std::env::temp_dir().join(format!("lt-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = soak_with_every_churn(&dir, None);
    assert_eq!(report["params"]["tls"], false, "{report}");
    assert_eq!(report["soak"]["churn"]["tls_key_updates"], 0, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_short_soak_over_tls_passes_and_churns() {
    let (dir, ca, cert, key) = common::pki("lt-soak-tls");
    let report = soak_with_every_churn(&dir, Some(&Tls { ca, cert, key }));
    assert_eq!(report["params"]["tls"], true, "{report}");
    let key_updates = num(&report, &["soak", "churn", "tls_key_updates"]);
    assert!(key_updates > 0, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One soak at a time: each is a broker and a load generator with every
/// churn on, and two at once on a 2-core machine would starve each other
/// into the very slow-consumer closes and silences the soak fails on.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the binary's soak with every kind of churn against a broker of
/// its own (over `tls` when given) and checks its verdict and counts;
/// returns its report. Files go to `dir`.
fn soak_with_every_churn(dir: &Path, tls: Option<&Tls>) -> Value {
    // A soak that failed (panicked) leaves the lock poisoned; the next one
    // runs all the same.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let secret = dir.join("jwt.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let csv = dir.join("samples.csv");
    let broker = start(secret.to_str().unwrap(), tls);
    // The broker runs in this process: its RSS and fds are ours.
    let pid = std::process::id().to_string();
    let (ws, ingest) = (
        match tls {
            Some(_) => broker.tls_addr().expect("a TLS listener").to_string(),
            None => broker.ws_addr().to_string(),
        },
        broker.ingest_addr().to_string(),
    );
    let mut soak = Command::new(env!("CARGO_BIN_EXE_tickwire-loadtest"));
    if let Some(t) = tls {
        soak.arg("--tls").arg("--ca-file").arg(&t.ca);
    }
    let out = soak
        .args(["--ws", &ws, "--ingest", &ingest, "--quiet", "--json"])
        .args(["--duration", "6", "--connect-timeout", "20", "--drain", "5"])
        .args(["soak", "-s", "4", "-t", "10", "-k", "3", "--rate", "200"])
        .args([
            "--broker-pid",
            &pid,
            "--warmup",
            "1",
            "--sample-every",
            "0.5",
        ])
        .arg("--samples-csv")
        .arg(&csv)
        .arg("--hs256-secret-file")
        .arg(&secret)
        .args(["--token-ttl", "6"])
        // Over TLS: KeyUpdates both ways under way, the quotes after each
        // gap-checked (without --tls the flag does nothing).
        .args(["--tls-key-update-every", "0.5"])
        .args(["--conn-churn", "10", "--conn-pool", "4"])
        .args(["--resubscribers", "2", "--resubscribe-every", "0.2"])
        .args(["--slow-readers", "1", "--slow-pause", "1.5"])
        .args(["--stalled-readers", "1", "--stall-hold", "2"])
        .args([
            "--producer-reconnect-every",
            "1.5",
            "--producer-outage",
            "0.1",
        ])
        .args([
            "--resumers",
            "2",
            "--resume-every",
            "1",
            "--resume-outage",
            "0.2",
        ])
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let soak = &report["soak"];
    assert!(
        out.status.success(),
        "exit {:?}: {stderr}\n{soak:#}",
        out.status
    );
    assert_eq!(report["scenario"], "soak");
    assert_eq!(soak["passed"], true, "{soak:#}");
    assert_eq!(soak["failures"], serde_json::json!([]), "{soak:#}");

    // The checked subscribers: every quote published for them, no gap.
    assert_eq!(report["subscribers"]["subscribed"], 4, "{report}");
    for key in ["gaps", "missing", "duplicates", "out_of_order"] {
        assert_eq!(num(&report, &["seq", key]), 0, "seq.{key}: {report}");
    }
    let expected = num(&report, &["expected_deliveries"]);
    assert!(expected > 0, "{report}");
    assert_eq!(num(&report, &["deliveries"]), expected, "{report}");
    assert_eq!(num(&report, &["errors", "total"]), 0, "{report}");

    // Each kind of churn happened.
    let churn = &soak["churn"];
    for path in [
        &["connections", "opened"][..],
        &["connections", "closed"],
        &["subscriptions", "subscribes"],
        &["subscriptions", "unsubscribes"],
        &["slow_readers", "pauses"],
        &["stalled_readers", "stalls"],
        &["producers", "reconnects"],
        &["resumes", "attempted"],
        &["resumes", "recovered"],
        &["tokens", "authed"],
        &["tokens", "refreshes"],
        &["deliveries"],
    ] {
        assert!(num(churn, path) > 0, "churn.{}: {churn:#}", path.join("."));
    }
    // Resumes: none unexplained, no gap across them; no unexpected event.
    assert_eq!(num(churn, &["resumes", "unexplained"]), 0, "{churn:#}");
    assert_eq!(num(churn, &["resumes", "seq", "gaps"]), 0, "{churn:#}");
    assert_eq!(
        num(churn, &["subscriptions", "seq", "gaps"]),
        0,
        "{churn:#}"
    );
    assert_eq!(num(churn, &["errors", "total"]), 0, "{churn:#}");
    // Stalls and slow pauses end one way or the other.
    let stalled = &churn["stalled_readers"];
    assert!(
        num(stalled, &["closed_by_broker"]) + num(stalled, &["released"])
            <= num(stalled, &["stalls"]),
        "{stalled}"
    );

    // Samples: RSS, fds and queue depths, with a slope past the warm-up.
    assert!(num(soak, &["samples"]) >= 2, "{soak:#}");
    for series in ["broker_rss_kib", "broker_fds"] {
        assert!(soak[series]["max"].as_f64().unwrap() > 0.0, "{soak:#}");
        assert!(soak[series]["slope_per_min"].is_number(), "{soak:#}");
    }
    let queues = soak["queue_depth"].as_object().expect("queue depths");
    assert!(queues.contains_key("worker-0"), "{soak:#}");
    assert!(soak["broker_after"]["fds"].is_number(), "{soak:#}");
    let text = std::fs::read_to_string(&csv).expect("samples written");
    assert!(text.starts_with("t_s,rss_kib,fds,"), "{text}");
    assert!(text.lines().count() > 2, "{text}");
    report
}

#[test]
fn soak_refuses_a_plan_it_cannot_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-loadtest"))
        .args(["--duration", "5", "soak", "--warmup", "9"])
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--warmup"), "{stderr}");
}
