//! The machine-readable ready line (`--print-ready`): one JSON object with
//! the bound addresses, once every listener is up.

use crate::common;

use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use common::*;

use super::process::{spawn_logged, terminate, wait_exit, Spawned};

/// Starts the binary with `--print-ready` and every address on port 0;
/// returns the ready line (parsed), the log lines before it, and the
/// stdout lines after it (until the process exits).
fn spawn_ready(extra: &[&str]) -> (Spawned, serde_json::Value, Vec<String>, Receiver<String>) {
    let args: Vec<&str> = ["--print-ready"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let (child, rx) = spawn_logged(&args);
    // Generous: a loaded CI machine, a debug build.
    let deadline = Instant::now() + 3 * PATIENCE;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no ready line ({e}); stdout so far: {before:#?}"));
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) if v["ready"] == true => return (child, v, before, rx),
            _ => before.push(line),
        }
    }
}

fn addr_of(ready: &serde_json::Value, key: &str) -> SocketAddr {
    ready[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string: {ready}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} is an address ({e}): {ready}"))
}

/// Sends SIGTERM, waits for exit 0, and returns the rest of stdout.
fn stop_and_collect(mut child: Spawned, rest: Receiver<String>) -> Vec<String> {
    terminate(child.id());
    assert_eq!(wait_exit(&mut child), Some(0));
    let deadline = Instant::now() + PATIENCE;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rest.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
            Err(e) => panic!("stdout not closed after exit: {e}"),
        }
    }
}

fn is_ready_line(line: &str) -> bool {
    line.contains("\"ready\"")
}

#[test]
fn print_ready_prints_the_bound_addresses_once_as_json() {
    let (child, ready, before, rest) = spawn_ready(&[]);
    // The line comes after the broker is listening, whole, on its own line.
    assert!(
        before.iter().any(|l| l.contains("tickwire listening")),
        "{before:#?}"
    );
    assert!(!before.iter().any(|l| is_ready_line(l)), "{before:#?}");
    let mut keys: Vec<&str> = ready
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["ingest", "pid", "ready", "ws", "wss"], "{ready}");
    assert_eq!(ready["pid"], child.id(), "{ready}");
    assert!(ready["wss"].is_null(), "no [tls]: {ready}");
    let (ws, ingest) = (addr_of(&ready, "ws"), addr_of(&ready, "ingest"));
    assert!(ws.ip().is_loopback() && ws.port() != 0, "{ready}");
    assert!(ingest.ip().is_loopback() && ingest.port() != 0, "{ready}");

    // Both listeners serve at once: no retrying, the line means bound.
    let health = http(
        ws,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let mut sub = connect_path(ws, "/ws");
    subscribe(&mut sub, &["READY"], false);
    let mut p = tickwire_client::Publisher::connect(ingest).unwrap();
    publish(&mut p, quote("READY", 1.0));
    assert_eq!(next_quote(&mut sub)["topic"], "READY");

    let after = stop_and_collect(child, rest);
    assert!(
        !after.iter().any(|l| is_ready_line(l)),
        "only one: {after:#?}"
    );
}

#[test]
fn print_ready_names_the_wss_listener_with_tls() {
    let pki = common::tls::Pki::new();
    let (cert, key) = (
        pki.cert_file.display().to_string(),
        pki.key_file.display().to_string(),
    );
    let (child, ready, _, rest) = spawn_ready(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-addr",
        "127.0.0.1:0",
    ]);
    let wss = addr_of(&ready, "wss");
    assert!(wss.ip().is_loopback() && wss.port() != 0, "{ready}");
    assert_ne!(wss, addr_of(&ready, "ws"));
    let health = common::tls::https(
        wss,
        &pki.client_config(),
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    stop_and_collect(child, rest);
}
