//! `tickwire tail` across a lost connection: a loopback proxy between the
//! tail and the broker cuts the connection (and refuses new ones for a
//! while, as a broker that is away would); the tail reconnects through it
//! and resumes from its last seq (v1.2 `since`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::common::*;
use crate::tools::{lines_until_exit, Tool, BIN};

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// Forwards bytes both ways between each accepted connection and
/// `target`; `cut` shuts every forwarded connection down and refuses
/// (accepts and at once closes) new ones until `restore`.
struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    target: Mutex<SocketAddr>,
    /// The forwarded sockets; its lock also orders `cut` with accepts.
    open: Mutex<Vec<TcpStream>>,
    refusing: AtomicBool,
    refused: AtomicUsize,
    forwarded: AtomicUsize,
    stop: AtomicBool,
}

impl Proxy {
    fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            open: Mutex::new(Vec::new()),
            refusing: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let mut open = s.open.lock().unwrap();
                if s.refusing.load(SeqCst) {
                    s.refused.fetch_add(1, SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let target = *s.target.lock().unwrap();
                let Ok(upstream) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = upstream.set_nodelay(true);
                let _ = client.set_nodelay(true);
                open.push(client.try_clone().unwrap());
                open.push(upstream.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
                s.forwarded.fetch_add(1, SeqCst);
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

    fn forwarded(&self) -> usize {
        self.shared.forwarded.load(SeqCst)
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

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// `run_tool` with stderr kept too (and echoed, for a failing run).
pub(crate) fn run_tail(args: &[&str]) -> (Tool, Receiver<String>, JoinHandle<Vec<String>>) {
    let mut child = Command::new(BIN)
        .env_remove("TICKWIRE_TOKEN")
        .arg("tail")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tickwire binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("tail: {line}");
            lines.push(line);
        }
        lines
    });
    (Tool(child), rx, errors)
}

/// The (topic, seq) of the tail's next JSON line, within PATIENCE.
pub(crate) fn next_line(lines: &Receiver<String>) -> (String, u64) {
    let line = lines
        .recv_timeout(PATIENCE)
        .expect("the tail prints a line in time");
    parse(&line)
}

pub(crate) fn parse(line: &str) -> (String, u64) {
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    (
        v["topic"].as_str().expect("topic").to_owned(),
        v["seq"].as_u64().expect("seq"),
    )
}

/// Publishes quotes of `topic` numbered `seqs` (the broker's seqs when
/// nothing else publishes it), and waits until `watch`, subscribed to
/// the topic on the broker directly, has seen the last: then the broker
/// holds them all.
pub(crate) fn publish_seen(
    p: &mut tickwire_client::Publisher,
    watch: &mut Ws,
    topic: &str,
    seqs: std::ops::RangeInclusive<u64>,
) {
    let last = *seqs.end();
    for seq in seqs {
        p.publish(quote(topic, 100.0 + seq as f64))
            .expect("publish");
    }
    p.flush().expect("flush");
    loop {
        let q = next_quote(watch);
        if q["seq"].as_u64() == Some(last) {
            return;
        }
    }
}

/// Cut once the tail has printed quotes 1..=3; quotes 4..=10 are
/// published while it cannot get in; let in, it prints 4..=10 (the
/// broker's replay) and then the live 11 and 12: every quote once, in
/// seq order, no gap, and one stderr line saying it was recovered.
#[test]
fn tail_reconnects_after_a_cut_and_prints_each_quote_once_in_order() {
    let broker = start();
    let proxy = Proxy::start(broker.ws_addr());
    let mut p = publisher(&broker);
    let mut watch = connect(&broker);
    subscribe(&mut watch, &["CUT.A"], false);
    publish_seen(&mut p, &mut watch, "CUT.A", 1..=1);

    let ws = proxy.addr.to_string();
    let (tool, lines, errors) = run_tail(&["--ws", &ws, "--json", "--count", "12", "CUT.*"]);
    let mut seen = vec![next_line(&lines)]; // the snapshot: subscribed
    publish_seen(&mut p, &mut watch, "CUT.A", 2..=3);
    seen.push(next_line(&lines));
    seen.push(next_line(&lines));

    proxy.cut();
    publish_seen(&mut p, &mut watch, "CUT.A", 4..=10);
    // The tail keeps trying (with backoff) while refused.
    assert!(wait_until(|| proxy.refused() >= 2), "the tail retries");
    proxy.restore();
    for _ in 4..=10 {
        seen.push(next_line(&lines));
    }
    assert_eq!(proxy.forwarded(), 2, "one reconnect");
    publish_seen(&mut p, &mut watch, "CUT.A", 11..=12);
    let (rest, code) = lines_until_exit(tool, lines);
    seen.extend(rest.iter().map(|l| parse(l)));
    let errors = errors.join().expect("stderr reader");

    assert_eq!(code, Some(0), "exits after --count quotes: {errors:?}");
    let expected: Vec<(String, u64)> = (1..=12).map(|s| ("CUT.A".to_owned(), s)).collect();
    assert_eq!(seen, expected, "each quote once, in order: {errors:?}");
    let reconnects: Vec<&String> = errors
        .iter()
        .filter(|l| l.starts_with("reconnected"))
        .collect();
    assert_eq!(reconnects.len(), 1, "{errors:?}");
    assert!(reconnects[0].contains("recovered 1 topic"), "{errors:?}");
    assert!(!errors.iter().any(|l| l.contains("gap")), "{errors:?}");
}

/// The broker behind the proxy is a new one (a restart that lost the
/// history: another epoch): the tail says the topic was not recovered
/// and goes on with the new broker's quotes, seq numbering anew.
#[test]
fn tail_says_what_a_new_broker_could_not_recover() {
    let old = start();
    let new = start();
    assert_ne!(old.epoch(), new.epoch(), "two brokers, two epochs");
    let proxy = Proxy::start(old.ws_addr());
    let mut p = publisher(&old);
    let mut watch = connect(&old);
    subscribe(&mut watch, &["CUT.B"], false);
    publish_seen(&mut p, &mut watch, "CUT.B", 1..=1);

    let ws = proxy.addr.to_string();
    let (tool, lines, errors) = run_tail(&["--ws", &ws, "--json", "--count", "4", "CUT.B"]);
    let mut seen = vec![next_line(&lines)];
    publish_seen(&mut p, &mut watch, "CUT.B", 2..=3);
    seen.push(next_line(&lines));
    seen.push(next_line(&lines));

    proxy.cut();
    proxy.retarget(new.ws_addr());
    let mut p = publisher(&new);
    let mut watch = connect(&new);
    subscribe(&mut watch, &["CUT.B"], false);
    publish_seen(&mut p, &mut watch, "CUT.B", 1..=1);
    proxy.restore();
    let (rest, code) = lines_until_exit(tool, lines);
    seen.extend(rest.iter().map(|l| parse(l)));
    let errors = errors.join().expect("stderr reader");

    assert_eq!(code, Some(0), "{errors:?}");
    let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs, [1, 2, 3, 1], "the new broker's snapshot: {errors:?}");
    assert!(
        errors.iter().any(|l| l.starts_with("reconnected")
            && l.contains("new epoch")
            && l.contains("unrecovered 1 of 1 topic: CUT.B")),
        "{errors:?}"
    );
}

/// `tail --delta`: the broker sends field deltas, the tail prints the full
/// quotes rebuilt from them — the very lines a plain tail prints — and
/// across a cut too (the new connection starts from full quotes).
#[test]
fn tail_with_deltas_prints_what_a_plain_tail_prints_across_a_cut() {
    let broker = start();
    let proxy = Proxy::start(broker.ws_addr());
    let mut p = publisher(&broker);
    let mut watch = connect(&broker);
    subscribe(&mut watch, &["DT.A"], false);
    publish_seen(&mut p, &mut watch, "DT.A", 1..=1);
    let direct = broker.ws_addr().to_string();
    let (plain, plain_lines, _) = run_tail(&["--ws", &direct, "--json", "--count", "9", "DT.A"]);
    let through = proxy.addr.to_string();
    let (delta, delta_lines, errors) = run_tail(&[
        "--ws", &through, "--json", "--delta", "--count", "9", "DT.A",
    ]);
    let mut got = Vec::new();
    let mut want = Vec::new();
    // The snapshot (seq 1) on both.
    want.push(plain_lines.recv_timeout(PATIENCE).expect("plain line"));
    got.push(delta_lines.recv_timeout(PATIENCE).expect("delta line"));
    // Each update changes one field: deltas of one field each.
    let mut q = quote("DT.A", 100.0);
    let mut send = |p: &mut tickwire_client::Publisher, i: usize| {
        match i % 3 {
            0 => q.bid += 0.01,
            1 => q.ask_size += 100.0,
            _ => q.volume += 10.0,
        }
        q.ts += 1;
        p.publish(q.clone()).expect("publish");
        p.flush().expect("flush");
    };
    for i in 0..4 {
        send(&mut p, i);
        want.push(plain_lines.recv_timeout(PATIENCE).expect("plain line"));
        got.push(delta_lines.recv_timeout(PATIENCE).expect("delta line"));
    }
    proxy.cut();
    for i in 4..8 {
        send(&mut p, i);
        want.push(plain_lines.recv_timeout(PATIENCE).expect("plain line"));
    }
    proxy.restore();
    let (rest, code) = lines_until_exit(delta, delta_lines);
    got.extend(rest);
    let (_, plain_code) = lines_until_exit(plain, plain_lines);
    let errors = errors.join().expect("stderr reader");
    assert_eq!((code, plain_code), (Some(0), Some(0)), "{errors:?}");
    assert_eq!(got, want, "{errors:?}");
}
