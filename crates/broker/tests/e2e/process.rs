//! The `tickwire` binary as an operator runs it: config errors, SIGTERM.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::*;

pub(super) const BIN: &str = env!("CARGO_BIN_EXE_tickwire");

/// A broker process this test started: killed (by its PID) if the test
/// ends without stopping it — a failing assertion must not leave it running.
pub(super) struct Spawned(pub(super) Child);

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the binary on ephemeral ports and reads the addresses it logs.
fn spawn_broker(extra: &[&str]) -> (Spawned, SocketAddr, SocketAddr) {
    let (child, line, _log) = spawn_broker_line(extra);
    let ws = field(&line, " ws_addr=").expect("ws_addr logged");
    let ingest = field(&line, "ingest_addr=").expect("ingest_addr logged");
    (child, ws, ingest)
}

/// Starts the binary on ephemeral ports with `extra` arguments; returns it
/// and its stdout (the log) line by line, drained for the life of the
/// process so it never blocks on a full pipe (the channel ends when the
/// process closes stdout).
pub(super) fn spawn_logged(extra: &[&str]) -> (Spawned, Receiver<String>) {
    let mut child = Spawned(
        Command::new(BIN)
            .args([
                "--ws-addr",
                "127.0.0.1:0",
                "--ingest-addr",
                "127.0.0.1:0",
                "--log-level",
                "info",
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tickwire"),
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(strip_ansi(&line));
        }
    });
    (child, rx)
}

/// Starts the binary; returns its `tickwire listening` log line and the
/// log lines after it.
fn spawn_broker_line(extra: &[&str]) -> (Spawned, String, Receiver<String>) {
    let (child, log) = spawn_logged(extra);
    let listening = log_line(&log, &["tickwire listening"]);
    (child, listening, log)
}

/// Waits for a log line containing every one of `words`.
fn log_line(log: &Receiver<String>, words: &[&str]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log.recv_timeout(left).expect("the expected log line");
        if words.iter().all(|w| line.contains(w)) {
            return line;
        }
    }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(key)? + key.len();
    line[start..].split_whitespace().next()?.parse().ok()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

pub(super) fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn sigterm_sends_1001_to_every_client_and_exits_0() {
    let (mut child, ws_addr, ingest_addr) = spawn_broker(&[]);
    let mut clients: Vec<Ws> = (0..5).map(|_| connect_path(ws_addr, "/ws")).collect();
    for ws in clients.iter_mut() {
        subscribe(ws, &["X"], false);
    }
    let mut p = tickwire_client::Publisher::connect(ingest_addr).unwrap();
    publish(&mut p, quote("X", 1.0));
    for ws in clients.iter_mut() {
        next_quote(ws);
    }
    let started = Instant::now();
    terminate(child.id());
    for ws in clients.iter_mut() {
        match recv(ws) {
            tungstenite::Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1001);
                let _ = ws.flush(); // sends tungstenite's close reply
            }
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    assert_eq!(wait_exit(&mut child), Some(0));
    // Generous: the contract says within a second or two.
    assert!(started.elapsed() < PATIENCE);
}

#[test]
fn demo_feed_publishes_through_the_ingest_socket() {
    let (mut child, ws_addr, _) = spawn_broker(&["--demo", "--demo-rate", "500"]);
    let mut ws = connect_path(ws_addr, "/ws");
    subscribe(&mut ws, &["AAPL", "BTC-USD", "EURUSD"], true);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        let q = next_quote(&mut ws);
        assert!(q["bid"].as_f64().unwrap() < q["ask"].as_f64().unwrap());
        seen.insert(q["topic"].as_str().unwrap().to_owned());
    }
    terminate(child.id());
    assert_eq!(wait_exit(&mut child), Some(0));
}

#[test]
fn invalid_config_exits_2_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("tickwire-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[websocket]\nidle_ping_ms = \"soon\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("idle_ping_ms"), "{err}");

    std::fs::write(&path, "[server]\nmax_connections = 0\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.max_connections"));

    let out = Command::new(BIN)
        .args(["--workers", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.workers"));

    // Ingest reachable from other hosts with no tokens and no mutual TLS.
    let out = Command::new(BIN)
        .args(["--ingest-addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.addr"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends SIGTERM to a process this test started.
pub(super) fn terminate(pid: u32) {
    signal(pid, "-TERM");
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_is_kept_out() {
    let mut pki = common::tls::Pki::new();
    let (cert, key) = (
        pki.cert_file.display().to_string(),
        pki.key_file.display().to_string(),
    );
    let (mut child, line, log) = spawn_broker_line(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-addr",
        "127.0.0.1:0",
    ]);
    let tls_addr = field(&line, "tls_addr=").expect("tls_addr logged");
    let name = |pki: &common::tls::Pki| {
        common::tls::peer_common_name(&common::tls::tls_connect(tls_addr, &pki.client_config()))
    };
    assert_eq!(name(&pki), "tickwire test server");
    // An open wss connection, to see it survive the reload.
    let url = format!("wss://localhost:{}/ws", tls_addr.port());
    let stream = common::tls::tls_connect(tls_addr, &pki.client_config());
    let (mut ws, _) = tungstenite::client::client(url.as_str(), stream).unwrap();
    subscribe(&mut ws, &["X"], false);

    pki.issue_server("tickwire renewed server");
    signal(child.id(), "-HUP");
    log_line(&log, &["certificate reloaded"]);
    assert_eq!(name(&pki), "tickwire renewed server");
    // A broken file: SIGHUP keeps the renewed certificate, logs the file's
    // name, and the broker runs on.
    std::fs::write(&pki.key_file, "garbage").unwrap();
    signal(child.id(), "-HUP");
    let error = log_line(&log, &["certificate not reloaded"]);
    assert!(error.contains(&key), "names the file: {error}");
    assert!(!error.contains("garbage"), "never the contents: {error}");
    send_json(
        &mut ws,
        serde_json::json!({"op": "subscribe", "topics": ["Y"], "id": 2}),
    );
    assert_eq!(recv_json(&mut ws)["id"], 2, "old connection still served");
    assert_eq!(name(&pki), "tickwire renewed server");
    terminate(child.id());
    assert_eq!(wait_exit(&mut child), Some(0));
}

/// Ephemeral ports and a certificate that cannot be read: the process logs
/// the error and exits 2 at once.
const UNUSABLE_CERTIFICATE: [&str; 10] = [
    "--ws-addr",
    "127.0.0.1:0",
    "--ingest-addr",
    "127.0.0.1:0",
    "--tls-addr",
    "127.0.0.1:0",
    "--tls-cert",
    "/nonexistent/chain.pem",
    "--tls-key",
    "/nonexistent/key.pem",
];

#[test]
fn a_certificate_file_that_cannot_be_used_exits_2_naming_it() {
    let out = Command::new(BIN)
        .args(UNUSABLE_CERTIFICATE)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("/nonexistent/chain.pem"), "{log}");
}

#[test]
fn a_busy_port_exits_2_naming_the_listener_and_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    for (listener, ws, ingest) in [
        ("websocket", addr.as_str(), "127.0.0.1:0"),
        ("ingest", "127.0.0.1:0", addr.as_str()),
    ] {
        let out = Command::new(BIN)
            .args(["--ws-addr", ws, "--ingest-addr", ingest])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        // The error is logged (on stdout, with the rest of the log); either
        // stream will do, so long as the operator sees which address is taken.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains(&format!("cannot listen on {addr} ({listener}): ")),
            "{text}"
        );
    }
    drop(busy);
}

#[test]
fn the_log_has_no_colour_codes_when_not_on_a_terminal() {
    // Piped output and no NO_COLOR: only the terminal check keeps the
    // escape codes out. A certificate that cannot be used is logged (at
    // error) and ends the process at once.
    let out = Command::new(BIN)
        .args(UNUSABLE_CERTIFICATE)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("cannot start"),
        "something was logged: {stdout}"
    );
    assert!(!stdout.contains("\x1b["), "{stdout:?}");
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}

/// SIGTERM ends an `/sse` stream after the events already queued (no
/// error event: the stream just ends), and a query — which may hold a
/// token — never reaches the log.
#[test]
fn sigterm_ends_sse_streams_after_their_events_and_queries_are_never_logged() {
    use std::io::{Read, Write};
    let (mut child, line, log) = spawn_broker_line(&[]);
    let ws_addr = field(&line, " ws_addr=").expect("ws_addr logged");
    let ingest_addr = field(&line, "ingest_addr=").expect("ingest_addr logged");
    let mut s = std::net::TcpStream::connect(ws_addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET /sse?topics=X&token=SECRETQUERYVALUE HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut p = tickwire_client::Publisher::connect(ingest_addr).unwrap();
    publish(&mut p, quote("X", 1.0));
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(r#""type":"quote""#) {
        let n = s.read(&mut chunk).expect("the quote event");
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&chunk[..n]);
    }
    terminate(child.id());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        !rest.contains(r#""type":"error""#),
        "no error event: {rest}"
    );
    assert_eq!(wait_exit(&mut child), Some(0));
    let lines: Vec<String> = log.try_iter().collect();
    assert!(
        lines.iter().all(|l| !l.contains("SECRETQUERYVALUE")),
        "{lines:?}"
    );
}
