//! Shared helpers for the end-to-end tests: a real broker on ephemeral
//! loopback ports, tungstenite as the independent WebSocket client, raw TCP
//! for malformed input. Waits use generous deadlines and conditions, never
//! sleeps as synchronisation.
#![allow(dead_code)]

pub mod nats;
pub mod tls;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tickwire_broker::{Broker, Config};
use tickwire_client::{Publisher, Quote};
use tungstenite::{Message, WebSocket};

/// Deadline for anything that should happen "soon" on a loaded 2-core box.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub type Ws = WebSocket<TcpStream>;

pub fn test_config() -> Config {
    let mut config = Config::default();
    config.server.ws_addr = "127.0.0.1:0".into();
    config.ingest.addr = "127.0.0.1:0".into();
    config.server.workers = 2;
    config
}

pub fn start() -> Broker {
    start_with(test_config())
}

pub fn start_with(config: Config) -> Broker {
    Broker::start(&config).expect("broker starts")
}

pub fn connect(broker: &Broker) -> Ws {
    connect_path(broker.ws_addr(), "/ws")
}

pub fn connect_path(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let url = format!("ws://{addr}{path}");
    let (ws, _response) =
        tungstenite::client::client(url.as_str(), stream).expect("websocket handshake");
    ws
}

pub fn send_json<S: Duplex>(ws: &mut WebSocket<S>, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .expect("send");
}

/// The next data message (pings are answered by tungstenite), or panics
/// after PATIENCE.
pub fn recv<S: Duplex>(ws: &mut WebSocket<S>) -> Message {
    recv_within(ws, PATIENCE).expect("a message within the deadline")
}

pub fn recv_within<S: Duplex>(ws: &mut WebSocket<S>, timeout: Duration) -> Option<Message> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        ws.get_mut().tcp().set_read_timeout(Some(left)).unwrap();
        match ws.read() {
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => continue,
            Ok(msg) => return Some(msg),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return None
            }
            // A read with a timeout is not restarted after the process was
            // stopped and continued (signal(7)): just read again.
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("websocket error: {e}"),
        }
    }
}

pub fn recv_json<S: Duplex>(ws: &mut WebSocket<S>) -> Value {
    match recv(ws) {
        Message::Text(text) => serde_json::from_str(&text).expect("server sends JSON"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Reads until a message of `type`; returns it and what came before.
pub fn recv_type<S: Duplex>(ws: &mut WebSocket<S>, kind: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let msg = recv_json(ws);
        if msg["type"] == kind {
            return (msg, before);
        }
        before.push(msg);
    }
}

/// Subscribes and waits for the ack (which comes before any quote).
pub fn subscribe<S: Duplex>(ws: &mut WebSocket<S>, topics: &[&str], snapshot: bool) -> Value {
    send_json(
        ws,
        serde_json::json!({"op": "subscribe", "topics": topics, "snapshot": snapshot}),
    );
    let ack = recv_json(ws);
    assert_eq!(ack["type"], "subscribed", "ack first: {ack}");
    ack
}

/// (topic, seq) of the next `n` messages, each a quote.
pub fn topic_seqs<S: Duplex>(ws: &mut WebSocket<S>, n: usize) -> Vec<(String, u64)> {
    (0..n)
        .map(|_| {
            let q = next_quote(ws);
            let topic = q["topic"].as_str().expect("a topic").to_string();
            (topic, q["seq"].as_u64().expect("a seq"))
        })
        .collect()
}

/// `config` with one worker: every connection lands on the same one.
pub fn one_worker(mut config: Config) -> Config {
    config.server.workers = 1;
    config
}

/// Reads quotes until one of `topic`; panics on any other message type.
pub fn next_quote<S: Duplex>(ws: &mut WebSocket<S>) -> Value {
    let msg = recv_json(ws);
    assert_eq!(msg["type"], "quote", "expected a quote, got {msg}");
    msg
}

pub fn publisher(broker: &Broker) -> Publisher {
    Publisher::connect(broker.ingest_addr()).expect("publisher connects")
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn quote(topic: &str, price: f64) -> Quote {
    Quote {
        topic: topic.into(),
        bid: price - 0.01,
        ask: price + 0.01,
        bid_size: 100.0,
        ask_size: 200.0,
        last: price,
        volume: 1000.0,
        ts: now_ns(),
    }
}

pub fn publish(p: &mut Publisher, q: Quote) {
    p.publish(q).expect("publish");
    p.flush().expect("flush");
}

/// Waits for `cond`, polling; false if it never held within PATIENCE.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(1);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    cond()
}

// ---- raw TCP, for what a well-behaved client library will not send ----

/// Opens a raw connection and completes the upgrade by hand.
pub fn raw_upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    upgrade_on(TcpStream::connect(addr).unwrap(), path)
}

/// Like `raw_upgrade`, with a small fixed receive buffer (which also turns
/// off the kernel's autotuning, up to 32 MiB on loopback here): a client
/// that stops reading fills up after kilobytes, as a stuck browser on a slow
/// link would, not after tens of megabytes.
pub fn raw_upgrade_small_rcvbuf(addr: SocketAddr, path: &str) -> TcpStream {
    upgrade_on(small_rcvbuf_socket(addr), path)
}

/// A socket connected to `addr` with a 4 KiB receive buffer, before any
/// HTTP (the caller sends its request).
pub fn raw_small_rcvbuf(addr: SocketAddr) -> TcpStream {
    let s = small_rcvbuf_socket(addr);
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// A socket connected to `addr` with a 4 KiB receive buffer.
fn small_rcvbuf_socket(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

fn upgrade_on(s: TcpStream, path: &str) -> TcpStream {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    upgrade_raw(s, path)
}

/// Completes the upgrade by hand on any byte stream (plain or TLS).
fn upgrade_raw<S: Read + Write>(mut s: S, path: &str) -> S {
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    s
}

/// Reads an HTTP response head byte by byte (leaves the body unread).
pub fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Sends a raw HTTP request; returns the whole response (until EOF).
/// One sample of `/metrics` (`name` with its labels, as written), or 0.
pub fn metric(broker: &Broker, name: &str) -> f64 {
    let text = http(
        broker.ws_addr(),
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A client frame, masked (or not) with a fixed mask.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    if masked {
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// One server frame: (opcode, payload). None on EOF/timeout.
pub fn read_server_frame(s: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((h[0] & 0x0f, payload))
}

/// Reads frames until a close frame; returns its code (None: empty close).
/// Panics if the connection ends without one.
pub fn read_close_code(s: &mut impl Read) -> Option<u16> {
    loop {
        let (opcode, payload) = read_server_frame(s).expect("a close frame before EOF");
        if opcode == 8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

/// True once the server has closed the TCP connection (EOF or reset).
pub fn sees_eof(s: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
    false
}

// ---- one suite over plain TCP and over TLS ----

/// A byte stream to the broker, plain or TLS, with its TCP socket (for
/// read timeouts).
pub trait Duplex: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Duplex for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Duplex for tls::TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

impl Duplex for Box<dyn Duplex> {
    fn tcp(&self) -> &TcpStream {
        (**self).tcp()
    }
}

pub type Raw = Box<dyn Duplex>;

/// Which listener a parameterised test talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    Plain,
    Tls,
}

/// Run a rule test over both listeners.
pub const BOTH: [Over; 2] = [Over::Plain, Over::Tls];

/// A broker with, for `Over::Tls`, a test CA's certificate on its wss
/// listener; tests reach it the same way either way.
pub struct Target {
    pub broker: Broker,
    pub over: Over,
    pub pki: Option<tls::Pki>,
}

impl Target {
    pub fn start(over: Over) -> Target {
        Target::start_with(over, test_config())
    }

    pub fn start_with(over: Over, mut config: Config) -> Target {
        let pki = (over == Over::Tls).then(tls::Pki::new);
        if let Some(pki) = &pki {
            config.tls = Some(tickwire_broker::config::TlsConfig {
                addr: "127.0.0.1:0".into(),
                cert_file: pki.cert_file.display().to_string(),
                key_file: pki.key_file.display().to_string(),
            });
        }
        Target {
            broker: start_with(config),
            over,
            pki,
        }
    }

    /// The listener this target's clients use.
    pub fn addr(&self) -> SocketAddr {
        match self.over {
            Over::Plain => self.broker.ws_addr(),
            Over::Tls => self.broker.tls_addr().expect("a TLS listener"),
        }
    }

    /// A connected byte stream (TLS handshake done), before any HTTP.
    pub fn stream(&self) -> Raw {
        match &self.pki {
            None => {
                let s = TcpStream::connect(self.addr()).unwrap();
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                Box::new(s)
            }
            Some(pki) => Box::new(tls::tls_connect(self.addr(), &pki.client_config())),
        }
    }

    /// A raw stream upgraded to WebSocket by hand whose socket has a 4 KiB
    /// receive buffer: when it stops reading, the broker's side fills after
    /// kilobytes (over TLS, the connection then holds sealed records too).
    pub fn raw_upgrade_small_rcvbuf(&self, path: &str) -> Raw {
        let sock = small_rcvbuf_socket(self.addr());
        let stream: Raw = match &self.pki {
            None => {
                sock.set_read_timeout(Some(PATIENCE)).unwrap();
                Box::new(sock)
            }
            Some(pki) => Box::new(tls::tls_connect_on(sock, &pki.client_config())),
        };
        upgrade_raw(stream, path)
    }

    /// A raw stream upgraded to WebSocket by hand.
    pub fn raw_upgrade(&self, path: &str) -> Raw {
        upgrade_raw(self.stream(), path)
    }

    /// An independent WebSocket client (tungstenite) on this listener.
    pub fn connect(&self) -> WebSocket<Raw> {
        let scheme = match self.over {
            Over::Plain => "ws",
            Over::Tls => "wss",
        };
        let url = format!("{scheme}://localhost:{}/ws", self.addr().port());
        let (ws, _) =
            tungstenite::client::client(url.as_str(), self.stream()).expect("websocket handshake");
        ws
    }
}

/// This test process's resident memory (the broker runs in it).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}
