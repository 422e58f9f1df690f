//! `tickwire tail --sse`: the same quotes over `GET /sse` (Server-Sent
//! Events), as an operator checking a proxy path would run it. The proxy
//! here serves the broker under `/tickwire`, re-frames the event stream as
//! `Transfer-Encoding: chunked` (as HTTP proxies may) and can cut every
//! connection; after a cut the tail reconnects through it with
//! `Last-Event-ID` and prints each quote once, in order.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::common::*;
use crate::entitlements::{start_auth, token, unix_now};
use crate::tail_resume::{next_line, parse, publish_seen, run_tail};
use crate::tools::lines_until_exit;

/// An HTTP proxy for one path prefix: `GET {prefix}/…` goes to the
/// broker as `GET /…` (anything else gets a 404), and a `200` without a
/// length comes back chunked. `cut` shuts every forwarded connection down
/// and refuses (closes, having read the request) new ones until `restore`.
struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    target: Mutex<SocketAddr>,
    prefix: String,
    /// The forwarded sockets; its lock also orders `cut` with new
    /// connections.
    open: Mutex<Vec<TcpStream>>,
    /// The request heads forwarded, as the broker got them.
    heads: Mutex<Vec<String>>,
    refusing: AtomicBool,
    refused: AtomicUsize,
    stop: AtomicBool,
}

impl Proxy {
    fn start(target: SocketAddr, prefix: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            prefix: prefix.to_owned(),
            open: Mutex::new(Vec::new()),
            heads: Mutex::new(Vec::new()),
            refusing: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let s = s.clone();
                std::thread::spawn(move || s.serve(client));
            }
        });
        Proxy { addr, shared }
    }

    fn cut(&self) {
        let mut open = self.shared.open.lock().unwrap();
        self.shared.refusing.store(true, SeqCst);
        for s in open.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        let _open = self.shared.open.lock().unwrap();
        self.shared.refusing.store(false, SeqCst);
    }

    fn retarget(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap() = target;
    }

    fn refused(&self) -> usize {
        self.shared.refused.load(SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        self.cut();
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

impl Shared {
    fn serve(&self, mut client: TcpStream) {
        let _ = client.set_read_timeout(Some(PATIENCE));
        let Some(head) = read_head_text(&mut client) else {
            return;
        };
        let open = self.open.lock().unwrap();
        if self.refusing.load(SeqCst) {
            self.refused.fetch_add(1, SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        let Some(rest) = head.strip_prefix(&format!("GET {}/", self.prefix)) else {
            let _ = client.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = client.shutdown(Shutdown::Both);
            return;
        };
        let head = format!("GET /{rest}");
        let target = *self.target.lock().unwrap();
        let Ok(mut upstream) = TcpStream::connect(target) else {
            return;
        };
        let _ = upstream.set_nodelay(true);
        let _ = client.set_nodelay(true);
        let _ = client.set_read_timeout(None);
        if upstream.write_all(head.as_bytes()).is_err() {
            return;
        }
        self.heads.lock().unwrap().push(head);
        let mut open = open;
        open.push(client.try_clone().unwrap());
        open.push(upstream.try_clone().unwrap());
        pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
        rechunk(upstream, client);
    }
}

/// An HTTP head (request or response) read byte by byte, blank line
/// included; `None` if the connection ends first.
fn read_head_text(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    String::from_utf8(head).ok()
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// The broker's response to the client: its head, then its body, each
/// read as one chunk when the response is a `200` without a length.
fn rechunk(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        if let Some(head) = read_head_text(&mut from) {
            let chunked = head.starts_with("HTTP/1.1 200")
                && !head.to_ascii_lowercase().contains("content-length");
            let head = if chunked {
                format!(
                    "{}Transfer-Encoding: chunked\r\n\r\n",
                    &head[..head.len() - 2]
                )
            } else {
                head
            };
            let mut ok = to.write_all(head.as_bytes()).is_ok();
            let mut buf = [0u8; 4096];
            while ok {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                ok = if chunked {
                    let mut chunk = format!("{n:x}\r\n").into_bytes();
                    chunk.extend_from_slice(&buf[..n]);
                    chunk.extend_from_slice(b"\r\n");
                    to.write_all(&chunk).is_ok()
                } else {
                    to.write_all(&buf[..n]).is_ok()
                };
            }
            if ok && chunked {
                let _ = to.write_all(b"0\r\n\r\n");
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

fn expected(topic: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<(String, u64)> {
    seqs.map(|s| (topic.to_owned(), s)).collect()
}

/// Cut once the tail has printed quotes 1..=3; 4..=10 are published while
/// the proxy refuses it; let in again it sends `Last-Event-ID`, prints
/// 4..=10 (the broker's replay), then the live 11 and 12: each quote once,
/// in seq order, no gap, one stderr line saying it was recovered. Every
/// request went through the proxy's path prefix, the stream came back
/// chunked.
#[test]
fn tail_sse_resumes_with_last_event_id_through_a_proxy_path_after_a_cut() {
    let broker = start();
    let proxy = Proxy::start(broker.ws_addr(), "/tickwire");
    let mut p = publisher(&broker);
    let mut watch = connect(&broker);
    subscribe(&mut watch, &["SSE.A"], false);
    publish_seen(&mut p, &mut watch, "SSE.A", 1..=1);

    let ws = proxy.addr.to_string();
    let (tool, lines, errors) = run_tail(&[
        "--sse",
        "--ws",
        &ws,
        "--path-prefix",
        "/tickwire/",
        "--json",
        "--count",
        "12",
        "SSE.*",
    ]);
    let mut seen = vec![next_line(&lines)]; // the snapshot: subscribed
    publish_seen(&mut p, &mut watch, "SSE.A", 2..=3);
    seen.push(next_line(&lines));
    seen.push(next_line(&lines));

    proxy.cut();
    publish_seen(&mut p, &mut watch, "SSE.A", 4..=10);
    // The tail keeps trying (with backoff) while refused.
    assert!(wait_until(|| proxy.refused() >= 2), "the tail retries");
    proxy.restore();
    for _ in 4..=10 {
        seen.push(next_line(&lines));
    }
    publish_seen(&mut p, &mut watch, "SSE.A", 11..=12);
    let (rest, code) = lines_until_exit(tool, lines);
    seen.extend(rest.iter().map(|l| parse(l)));
    let errors = errors.join().expect("stderr reader");

    assert_eq!(code, Some(0), "exits after --count quotes: {errors:?}");
    assert_eq!(
        seen,
        expected("SSE.A", 1..=12),
        "each quote once, in order: {errors:?}"
    );
    let heads = proxy.heads();
    assert_eq!(heads.len(), 2, "one reconnect: {heads:?}");
    for head in &heads {
        assert!(
            head.starts_with("GET /sse?topics=SSE.%2A&snapshot=true HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\nHost: {ws}\r\n")), "{head}");
    }
    assert!(!heads[0].contains("Last-Event-ID"), "{}", heads[0]);
    let id = heads[1]
        .lines()
        .find_map(|l| l.strip_prefix("Last-Event-ID: "))
        .unwrap_or_else(|| panic!("the reconnect resumes: {}", heads[1]));
    assert!(!id.is_empty() && id.len() <= 64, "{id:?}");
    let reconnects: Vec<&String> = errors
        .iter()
        .filter(|l| l.starts_with("reconnected"))
        .collect();
    assert_eq!(reconnects.len(), 1, "{errors:?}");
    assert!(reconnects[0].contains("recovered 1 topic"), "{errors:?}");
    assert!(!errors.iter().any(|l| l.contains("gap")), "{errors:?}");
}

/// The broker behind the proxy is a new one (another epoch): the old
/// broker's `Last-Event-ID` recovers nothing there; the tail says so and
/// goes on with the new broker's snapshot, seq numbering anew.
#[test]
fn tail_sse_says_what_a_new_broker_could_not_recover() {
    let old = start();
    let new = start();
    assert_ne!(old.epoch(), new.epoch(), "two brokers, two epochs");
    let proxy = Proxy::start(old.ws_addr(), "");
    let mut p = publisher(&old);
    let mut watch = connect(&old);
    subscribe(&mut watch, &["SSE.B"], false);
    publish_seen(&mut p, &mut watch, "SSE.B", 1..=2);

    let ws = proxy.addr.to_string();
    let (tool, lines, errors) =
        run_tail(&["--sse", "--ws", &ws, "--json", "--count", "3", "SSE.B"]);
    let mut seen = vec![next_line(&lines)];
    publish_seen(&mut p, &mut watch, "SSE.B", 3..=3);
    seen.push(next_line(&lines));

    proxy.cut();
    proxy.retarget(new.ws_addr());
    let mut p = publisher(&new);
    let mut watch = connect(&new);
    subscribe(&mut watch, &["SSE.B"], false);
    publish_seen(&mut p, &mut watch, "SSE.B", 1..=1);
    proxy.restore();
    let (rest, code) = lines_until_exit(tool, lines);
    seen.extend(rest.iter().map(|l| parse(l)));
    let errors = errors.join().expect("stderr reader");

    assert_eq!(code, Some(0), "{errors:?}");
    let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs, [2, 3, 1], "the new broker's snapshot: {errors:?}");
    assert!(
        proxy.heads()[1].contains("Last-Event-ID: "),
        "{:?}",
        proxy.heads()
    );
    assert!(
        errors.iter().any(|l| l.starts_with("reconnected")
            && l.contains("new epoch")
            && l.contains("unrecovered 1 of 1 topic: SSE.B")),
        "{errors:?}"
    );
}

/// `--no-resume`: the tail ends with the stream, saying so.
#[test]
fn tail_sse_with_no_resume_exits_when_the_stream_ends() {
    let broker = start();
    let proxy = Proxy::start(broker.ws_addr(), "");
    let mut p = publisher(&broker);
    let mut watch = connect(&broker);
    subscribe(&mut watch, &["SSE.N"], false);
    publish_seen(&mut p, &mut watch, "SSE.N", 1..=1);
    let ws = proxy.addr.to_string();
    let (tool, lines, errors) = run_tail(&["--sse", "--no-resume", "--ws", &ws, "--json", "SSE.N"]);
    assert_eq!(next_line(&lines), ("SSE.N".to_owned(), 1));
    proxy.cut();
    let (rest, code) = lines_until_exit(tool, lines);
    let errors = errors.join().expect("stderr reader");
    assert_eq!((rest.len(), code), (0, Some(1)), "{errors:?}");
    assert!(
        errors.iter().any(|l| l.contains("connection ended")),
        "{errors:?}"
    );
    assert_eq!(proxy.heads().len(), 1, "no reconnect");
}

/// Over the TLS listener (`--ca-file`): the snapshot, then a live quote,
/// in the table format by default.
#[test]
fn tail_sse_over_tls_prints_a_table() {
    let target = Target::start(Over::Tls);
    let pki = target.pki.as_ref().expect("a test CA");
    let mut p = publisher(&target.broker);
    let mut watch = connect(&target.broker);
    subscribe(&mut watch, &["SSE.T"], false);
    publish_seen(&mut p, &mut watch, "SSE.T", 1..=1);
    let addr = target.addr().to_string();
    let ca = pki.ca_file.to_str().unwrap();
    let (tool, lines, errors) = run_tail(&[
        "--sse",
        "--ws",
        &addr,
        "--ca-file",
        ca,
        "--server-name",
        "localhost",
        "--count",
        "2",
        "SSE.T",
    ]);
    let header = lines.recv_timeout(PATIENCE).expect("the table's header");
    assert!(header.starts_with("time "), "{header}");
    let first = lines.recv_timeout(PATIENCE).expect("the snapshot");
    publish_seen(&mut p, &mut watch, "SSE.T", 2..=2);
    let (rest, code) = lines_until_exit(tool, lines);
    let errors = errors.join().expect("stderr reader");
    assert_eq!(code, Some(0), "{errors:?}");
    let rows: Vec<Vec<String>> = std::iter::once(first)
        .chain(rest)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(got, [("SSE.T", "1"), ("SSE.T", "2")], "{errors:?}");
}

/// `--token` goes as an `Authorization: Bearer` header; a stream the
/// broker refuses ends the tail at once with the HTTP status and the
/// broker's error code.
#[test]
fn tail_sse_sends_its_token_and_says_why_a_stream_is_refused() {
    let broker = start_auth();
    let good = token(unix_now() + 600, &["AUTH.*"]);
    let mut watch = connect(&broker);
    send_json(&mut watch, json!({"op": "auth", "token": good, "id": 1}));
    assert_eq!(recv_json(&mut watch)["type"], "authed");
    subscribe(&mut watch, &["AUTH.A"], false);
    let mut p = publisher(&broker);
    publish_seen(&mut p, &mut watch, "AUTH.A", 1..=1);
    let ws = broker.ws_addr().to_string();

    let (tool, lines, errors) = run_tail(&[
        "--sse", "--ws", &ws, "--token", &good, "--json", "--count", "1", "AUTH.A",
    ]);
    let (out, code) = lines_until_exit(tool, lines);
    let errors = errors.join().expect("stderr reader");
    assert_eq!(code, Some(0), "{errors:?}");
    assert_eq!(
        out.iter().map(|l| parse(l)).collect::<Vec<_>>(),
        expected("AUTH.A", 1..=1)
    );

    let narrow = token(unix_now() + 600, &["MSFT"]);
    for (args, why) in [
        (
            vec!["--token", narrow.as_str(), "AUTH.A"],
            "HTTP 403: not_authorized",
        ),
        (vec!["AUTH.A"], "HTTP 403: not_authorized"),
        (vec!["BAD TOPIC"], "HTTP 400: bad_topic"),
    ] {
        let mut all = vec!["--sse", "--ws", &ws];
        all.extend(args);
        let (tool, lines, errors) = run_tail(&all);
        let (out, code) = lines_until_exit(tool, lines);
        let errors = errors.join().expect("stderr reader");
        assert_eq!((out.len(), code), (0, Some(1)), "{all:?}: {errors:?}");
        assert!(
            errors.iter().any(|l| l.contains(why)),
            "{all:?}: {errors:?}"
        );
        assert!(
            !errors.iter().any(|l| l.contains(&narrow)),
            "no token in messages"
        );
    }
}
