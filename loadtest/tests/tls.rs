//! The load generator over wss: a real broker with a certificate made at
//! test time (rcgen), the generator trusting that CA only.

mod common;

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tickwire_broker::config::TlsConfig;
use tickwire_broker::{Broker, Config};

#[test]
fn fanout_and_connections_over_tls_with_and_without_resumption() {
    let (dir, ca, cert, key) = common::pki("lt-tls");
    let mut config = Config::default();
    config.server.ws_addr = "127.0.0.1:0".into();
    config.ingest.addr = "127.0.0.1:0".into();
    config.server.workers = 2;
    config.tls = Some(TlsConfig {
        addr: "127.0.0.1:0".into(),
        cert_file: cert.display().to_string(),
        key_file: key.display().to_string(),
    });
    let broker = Broker::start(&config).expect("broker starts");
    let tls_addr = broker.tls_addr().unwrap().to_string();
    let common = |scenario: &[&str], extra: &[&str]| {
        let mut v: Vec<String> = vec!["tickwire-loadtest".into()];
        v.extend(scenario.iter().map(|s| s.to_string()));
        v.extend(
            [
                "--ws",
                &tls_addr,
                "--ingest",
                &broker.ingest_addr().to_string(),
                "--tls",
                "--ca-file",
                &ca.display().to_string(),
                "--quiet",
                "--connect-timeout",
                "20",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let report = tickwire_loadtest::run_args(common(
        &[
            "fanout",
            "-s",
            "20",
            "-t",
            "4",
            "-k",
            "2",
            "--rate",
            "400",
            "--duration",
            "1",
        ],
        &[],
    ))
    .expect("fanout over TLS");
    assert_eq!(report.errors.total, 0, "{:?}", report.errors);
    assert_eq!(report.subscribers.subscribed, 20);
    assert_eq!(Some(report.deliveries), report.expected_deliveries);
    assert_eq!(report.params["tls"], true);
    assert!(report.latency_by_ws.is_none());

    // A --ws list over TLS: the same listener twice, one --server-name for both.
    let report = tickwire_loadtest::run_args({
        let mut v = common(
            &[
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
            ],
            &[],
        );
        let i = v.iter().position(|a| a == "--ws").unwrap();
        v[i + 1] = format!("{tls_addr},{tls_addr}");
        v
    })
    .expect("fanout over TLS with a --ws list");
    assert_eq!(report.errors.total, 0, "{:?}", report.errors);
    assert_eq!(report.subscribers.subscribed, 4);
    let by_ws = report.latency_by_ws.as_ref().expect("latency_by_ws");
    assert_eq!(by_ws.len(), 2);
    for w in by_ws {
        assert_eq!(w.ws, tls_addr);
        assert_eq!(w.subscribers, 2);
        assert!(w.latency_us.count > 0, "{by_ws:?}");
    }

    for resume in [true, false] {
        let extra: &[&str] = if resume { &[] } else { &["--no-resume"] };
        let report = tickwire_loadtest::run_args(common(
            &["connections", "-n", "50", "--duration", "0.2"],
            extra,
        ))
        .expect("connections over TLS");
        assert_eq!(report.subscribers.subscribed, 50);
        assert!(report.setups_per_s.is_some_and(|r| r > 0.0));
        assert_eq!(report.params["tls_resume"], resume);
    }
    // Without the CA the broker's certificate is not trusted: nothing connects.
    let other = dir.join("other-ca.pem");
    let (odir, oca) = pki_other();
    std::fs::copy(&oca, &other).unwrap();
    let refused = tickwire_loadtest::run_args({
        let mut v = common(
            &[
                "fanout",
                "-s",
                "2",
                "-t",
                "1",
                "-k",
                "1",
                "--rate",
                "10",
                "--duration",
                "0.2",
            ],
            &[],
        );
        let i = v.iter().position(|a| a == "--ca-file").unwrap();
        v[i + 1] = other.display().to_string();
        v.extend(["--connect-timeout".into(), "3".into()]);
        v
    });
    assert!(
        refused.is_err(),
        "an untrusted certificate must fail the handshake"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&odir);
}

/// A second, unrelated CA: (dir, ca file).
fn pki_other() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lt-tls-other-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let ca = ca.self_signed(&key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (dir, ca_file)
}
