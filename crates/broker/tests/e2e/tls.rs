//! wss/https and ingest over TLS, with certificates made at test time and
//! clients that verify the chain against the test CA. (The WebSocket rules
//! run over TLS in websocket_rules.rs, the same suite as plain.)

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::tls::{https, peer_common_name, tls_connect, Pki};
use common::*;
use rustls::HandshakeKind;
use tickwire_broker::metrics::{RejectReason, TlsHandshake};
use tickwire_client::{Format, Publisher, ServerMessage, SubscribeOptions, Subscriber, TlsOptions};

fn publish_one(target: &Target, topic: &str, price: f64) {
    let mut p = publisher(&target.broker);
    publish(&mut p, quote(topic, price));
}

#[test]
fn wss_json_ack_snapshot_then_live() {
    let target = Target::start(Over::Tls);
    publish_one(&target, "AAPL", 100.0);
    // The snapshot needs the quote in the last-value cache: wait for it.
    assert!(wait_until(|| target
        .broker
        .metrics()
        .quotes_in
        .load(Ordering::Relaxed)
        == 1));
    let mut ws = target.connect();
    send_json(
        &mut ws,
        serde_json::json!({"op": "subscribe", "topics": ["AAPL"], "id": 1}),
    );
    let ack = recv_json(&mut ws);
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_u64()),
        (Some("subscribed"), Some(1))
    );
    let snapshot = next_quote(&mut ws);
    assert_eq!(
        (snapshot["topic"].as_str(), snapshot["seq"].as_u64()),
        (Some("AAPL"), Some(1))
    );
    publish_one(&target, "AAPL", 101.0);
    let live = next_quote(&mut ws);
    assert_eq!(live["seq"], 2);
    assert_eq!(live["last"], 101.0);
}

#[test]
fn wss_binary_with_the_client_crate() {
    let target = Target::start(Over::Tls);
    let pki = target.pki.as_ref().unwrap();
    let tls = TlsOptions::with_ca_file(&pki.ca_file, "localhost").unwrap();
    let mut sub = Subscriber::connect_tls(target.addr(), Format::Binary, &tls).unwrap();
    sub.subscribe(
        &["BTC-USD"],
        SubscribeOptions {
            id: Some(7),
            ..Default::default()
        },
    )
    .unwrap();
    match sub.next(PATIENCE).unwrap() {
        Some(ServerMessage::Subscribed { id, .. }) => assert_eq!(id, Some(7)),
        other => panic!("expected the ack, got {other:?}"),
    }
    publish_one(&target, "BTC-USD", 67_000.25);
    match sub.next(PATIENCE).unwrap() {
        Some(ServerMessage::Quote { quote, seq }) => {
            assert_eq!(
                (quote.topic.as_str(), seq, quote.last),
                ("BTC-USD", 1, 67_000.25)
            );
        }
        other => panic!("expected a binary quote, got {other:?}"),
    }
}

#[test]
fn https_routes_alpn_and_both_protocol_versions() {
    let target = Target::start(Over::Tls);
    let pki = target.pki.as_ref().unwrap();
    let config = pki.client_config();
    let health = https(
        target.addr(),
        &config,
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let page = https(target.addr(), &config, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(page.contains("Content-Type: text/html"), "{page}");
    let metrics = https(
        target.addr(),
        &config,
        "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(metrics.contains("tickwire_deliveries_total"));

    let s = tls_connect(target.addr(), &config);
    assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let only = pki.client_config_versions(&[version]);
        let s = tls_connect(target.addr(), &only);
        assert_eq!(s.conn.protocol_version(), Some(version.version));
    }
}

#[test]
fn sessions_resume_over_tls13_and_tls12() {
    let target = Target::start(Over::Tls);
    let pki = target.pki.as_ref().unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // One client config = one client session cache.
        let config = pki.client_config_versions(&[version]);
        let mut first = tls_connect(target.addr(), &config);
        assert_eq!(first.conn.handshake_kind(), Some(HandshakeKind::Full));
        // TLS 1.3 tickets arrive after the handshake: read the reply to a
        // request so they are in before the second connection.
        first
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut reply = Vec::new();
        let _ = first.read_to_end(&mut reply);
        let second = tls_connect(target.addr(), &config);
        assert_eq!(
            second.conn.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version:?}"
        );
    }
    let m = target.broker.metrics();
    assert!(wait_until(|| m.tls_handshakes(TlsHandshake::Resumed) == 2));
    assert_eq!(m.tls_handshakes(TlsHandshake::Full), 2);
    assert_eq!(m.tls_handshakes(TlsHandshake::Failed), 0);
}

#[test]
fn plain_http_on_the_tls_port_is_closed_promptly() {
    let mut config = test_config();
    config.server.handshake_timeout_ms = 120_000;
    let target = Target::start_with(Over::Tls, config);
    let mut s = TcpStream::connect(target.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    // Closed (at most after a TLS alert), long before the 120 s handshake
    // timeout; never an HTTP answer in the clear.
    assert!(started.elapsed() < PATIENCE, "not closed");
    assert!(!String::from_utf8_lossy(&reply).contains("HTTP/1.1"));
    assert!(reply.len() < 16, "an alert at most: {reply:?}");
    let m = target.broker.metrics();
    assert!(wait_until(|| m.tls_handshakes(TlsHandshake::Failed) == 1));
    // The broker is fine: a real TLS client still gets an answer.
    let ok = https(
        target.addr(),
        &target.pki.as_ref().unwrap().client_config(),
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"));
}

#[test]
fn a_client_that_stops_mid_handshake_is_closed_by_the_handshake_timeout() {
    let mut config = test_config();
    config.server.handshake_timeout_ms = 300;
    let target = Target::start_with(Over::Tls, config);
    let mut s = TcpStream::connect(target.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    // The first bytes of a TLS record header (handshake, TLS 1.0 record
    // version, a long length), then nothing.
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    assert!(sees_eof(&mut s), "closed by the handshake timeout");
}

#[test]
fn a_reloaded_certificate_serves_new_handshakes_while_old_connections_stream() {
    let mut target = Target::start(Over::Tls);
    // A fresh client config (no session to resume) per connection: a
    // resumed session would carry the certificate of its first handshake.
    let fresh = |target: &Target| target.pki.as_ref().unwrap().client_config();
    let old = tls_connect(target.addr(), &fresh(&target));
    assert_eq!(peer_common_name(&old), "tickwire test server");
    let url = format!("wss://localhost:{}/ws", target.addr().port());
    let (mut ws, _) = tungstenite::client::client(url.as_str(), old).unwrap();
    subscribe(&mut ws, &["AAPL"], false);

    target
        .pki
        .as_mut()
        .unwrap()
        .issue_server("tickwire renewed server");
    assert!(target.broker.reload_tls().is_empty(), "reload succeeds");
    let new = tls_connect(target.addr(), &fresh(&target));
    assert_eq!(peer_common_name(&new), "tickwire renewed server");

    // The connection made before the reload keeps streaming.
    publish_one(&target, "AAPL", 1.0);
    let q = next_quote(&mut ws);
    assert_eq!(q["seq"], 1);

    // A broken file on reload: the error names it, the old certificate stays.
    let pki = target.pki.as_ref().unwrap();
    std::fs::write(&pki.cert_file, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let errors = target.broker.reload_tls();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, pki.cert_file);
    let after = tls_connect(target.addr(), &fresh(&target));
    assert_eq!(peer_common_name(&after), "tickwire renewed server");
}

#[test]
fn ingest_over_tls_and_mutual_tls_refuses_a_producer_without_a_certificate() {
    let pki = Pki::new();
    let mut config = test_config();
    config.ingest.tls = Some(tickwire_broker::config::IngestTlsConfig {
        cert_file: pki.cert_file.display().to_string(),
        key_file: pki.key_file.display().to_string(),
        client_ca_file: Some(pki.ca_file.display().to_string()),
    });
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["FEED"], false);

    // No client certificate: the handshake fails, nothing is accepted.
    let anonymous = TlsOptions::with_ca_file(&pki.ca_file, "localhost").unwrap();
    let mut p = Publisher::connect_tls(broker.ingest_addr(), &anonymous).unwrap();
    let _ = p.publish(quote("FEED", 1.0));
    let _ = p.flush();
    p.stream().set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        !matches!(p.read(&mut buf), Ok(n) if n > 0),
        "the broker sends nothing but an alert and closes"
    );
    assert!(wait_until(
        || broker.metrics().rejected(RejectReason::Tls) == 1
    ));

    // With the producer certificate signed by the CA: accepted.
    let with_cert = TlsOptions::with_client_cert(
        &pki.ca_file,
        "localhost",
        &pki.client_cert_file,
        &pki.client_key_file,
    )
    .unwrap();
    let mut p = Publisher::connect_tls(broker.ingest_addr(), &with_cert).unwrap();
    publish(&mut p, quote("FEED", 2.0));
    let q = next_quote(&mut ws);
    assert_eq!(
        (q["seq"].as_u64(), q["last"].as_f64()),
        (Some(1), Some(2.0))
    );
    assert_eq!(broker.metrics().quotes_in.load(Ordering::Relaxed), 1);
}

#[test]
fn ingest_over_tls_without_client_auth_and_a_stalled_handshake() {
    let pki = Pki::new();
    let mut config = test_config();
    config.server.handshake_timeout_ms = 300;
    config.ingest.tls = Some(tickwire_broker::config::IngestTlsConfig {
        cert_file: pki.cert_file.display().to_string(),
        key_file: pki.key_file.display().to_string(),
        client_ca_file: None,
    });
    let broker = start_with(config);
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["FEED"], false);
    let mut p = Publisher::connect_tls(broker.ingest_addr(), &pki.options()).unwrap();
    publish(&mut p, quote("FEED", 3.0));
    assert_eq!(next_quote(&mut ws)["last"], 3.0);

    // A producer that connects and never finishes the handshake is closed.
    let mut stalled = TcpStream::connect(broker.ingest_addr()).unwrap();
    stalled.set_read_timeout(Some(PATIENCE)).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    assert!(sees_eof(&mut stalled));
    assert!(wait_until(
        || broker.metrics().rejected(RejectReason::Tls) == 1
    ));
    // Plain bytes on the TLS ingest port: closed as well, counted.
    let mut plain = publisher(&broker);
    let _ = plain.publish(quote("FEED", 4.0));
    let _ = plain.flush();
    assert!(wait_until(
        || broker.metrics().rejected(RejectReason::Tls) == 2
    ));
}

#[test]
fn a_missing_or_broken_certificate_refuses_to_start_naming_the_file() {
    let pki = Pki::new();
    let mut config = test_config();
    config.tls = Some(tickwire_broker::config::TlsConfig {
        addr: "127.0.0.1:0".into(),
        cert_file: pki.dir.join("nope.pem").display().to_string(),
        key_file: pki.key_file.display().to_string(),
    });
    let err = tickwire_broker::Broker::start(&config)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("nope.pem"), "{err}");
    // A key that does not belong to the certificate.
    std::fs::copy(&pki.client_key_file, pki.dir.join("other-key.pem")).unwrap();
    config.tls = Some(tickwire_broker::config::TlsConfig {
        addr: "127.0.0.1:0".into(),
        cert_file: pki.cert_file.display().to_string(),
        key_file: pki.dir.join("other-key.pem").display().to_string(),
    });
    let err = tickwire_broker::Broker::start(&config)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("other-key.pem"), "{err}");
}
