//! Receiving threads: each owns a `mio::Poll` and a share of the
//! subscribers, connects them (bounded in-flight handshakes, a deadline),
//! subscribes, then reads quotes: latency into an HdrHistogram, `seq` into
//! per-topic gap trackers.
//!
//! Receive path per read: one `read` into the thread's scratch buffer, one
//! clock read for every message in it, frames parsed in place. Complete,
//! unfragmented, unmasked data frames (what the broker sends for quotes) are
//! parsed without `FrameDecoder`, so no per-message allocation; everything
//! else (control frames, fragments, protocol violations) goes through
//! `tickwire_ws::FrameDecoder` with `Role::Client`.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use tickwire_client::tls_io;
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::handshake::{client_request, parse_client_response, ResponseParse};
use tickwire_ws::{DecoderLimits, Event, FrameDecoder, OpCode, Role};

use crate::gaps::{GapCounts, GapTracker};
use crate::parse::{self, TextKind};
use crate::sys;

pub const PHASE_CONNECT: u8 = 0;
pub const PHASE_MEASURE: u8 = 1;
pub const PHASE_STOP: u8 = 2;

/// Bytes read per `read` call.
const SCRATCH: usize = 256 * 1024;
/// Reads per connection per loop turn before moving on (fairness); the
/// connection is revisited on the next turn.
const MAX_READS_PER_TURN: usize = 4;
/// Largest frame taken by the allocation-free path; larger ones go through
/// `FrameDecoder` (which enforces its own limit).
const FAST_PATH_MAX: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Binary,
}

/// What to do with the subscribers designated slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowMode {
    /// No subscriber is slow.
    None,
    /// Slow subscribers connect and subscribe, then never read again.
    Park,
    /// Slow subscribers are not opened at all (baseline for comparison).
    Skip,
}

/// Everything a receiving thread needs to know; shared by all of them.
#[derive(Clone, Debug)]
pub struct RecvConfig {
    pub ws: SocketAddr,
    pub format: Format,
    pub topics: usize,
    pub per_sub: usize,
    pub prefix: String,
    pub slow_share: f64,
    pub slow_mode: SlowMode,
    /// Bind sources over 127.0.0.0/8 (see `sys::spread_source`).
    pub spread_sources: bool,
    /// Connections being set up at once per thread.
    pub max_inflight: usize,
    pub connect_deadline: Instant,
    /// Subscribers speak TLS (`--tls`).
    pub tls: Option<TlsClient>,
}

/// What a TLS subscriber needs: one config shared by all (one session
/// cache, so reconnects resume) and the name to verify.
#[derive(Clone)]
pub struct TlsClient {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
    /// Session resumption on (off: `--no-resume`, every handshake full).
    pub resume: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsClient({:?})", self.name)
    }
}

impl RecvConfig {
    /// Topic indices of subscriber `s`: K consecutive topics (mod T)
    /// starting at `s·K mod T`, so topics are covered evenly.
    pub fn topics_of(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        let first = (s * self.per_sub) % self.topics;
        (0..self.per_sub).map(move |j| (first + j) % self.topics)
    }

    pub fn topic_name(&self, idx: usize) -> String {
        format!("{}{idx}", self.prefix)
    }

    /// Subscriber `s` is slow when `⌊(s+1)·share⌋ > ⌊s·share⌋`: spreads the
    /// slow ones evenly (every 10th for 0.1).
    pub fn is_slow(&self, s: usize) -> bool {
        self.slow_mode != SlowMode::None
            && ((s + 1) as f64 * self.slow_share).floor() > (s as f64 * self.slow_share).floor()
    }
}

/// Counters the controlling thread watches while the run goes on.
#[derive(Default)]
pub struct Shared {
    pub phase: AtomicU8,
    pub deliveries: AtomicU64,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    pub settled_threads: AtomicUsize,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ErrorCounts {
    /// TCP connect failed or timed out.
    pub connect: u64,
    /// WebSocket upgrade refused, malformed or timed out.
    pub handshake: u64,
    /// No `subscribed` ack before the connect deadline.
    pub subscribe: u64,
    /// `{"type":"error"}` replies from the broker.
    pub server_error: u64,
    /// EOF, reset or close frame from the broker during the run.
    pub unexpected_close: u64,
    /// WebSocket protocol violations and unparseable quotes.
    pub protocol: u64,
    /// Quotes for topics this subscriber did not subscribe to.
    pub unexpected_topic: u64,
    /// Publisher connect/write failures.
    pub publisher: u64,
}

impl ErrorCounts {
    pub fn add(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.handshake += o.handshake;
        self.subscribe += o.subscribe;
        self.server_error += o.server_error;
        self.unexpected_close += o.unexpected_close;
        self.protocol += o.protocol;
        self.unexpected_topic += o.unexpected_topic;
        self.publisher += o.publisher;
    }

    pub fn total(&self) -> u64 {
        self.connect
            + self.handshake
            + self.subscribe
            + self.server_error
            + self.unexpected_close
            + self.protocol
            + self.unexpected_topic
            + self.publisher
    }
}

/// Latency histogram in microseconds: 1 µs .. 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one receiving thread measured.
pub struct RecvResult {
    pub latency: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub subscribe_ack: Histogram<u64>,
    pub deliveries: u64,
    /// Quotes whose `ts` was in the future (clock skew); recorded as 1 µs.
    pub negative_latency: u64,
    pub gaps: GapCounts,
    pub errors: ErrorCounts,
    pub subscribed: usize,
    pub slow: usize,
    /// CPU used by this thread during the measurement phase / its wall time.
    pub busy_share: f64,
    /// Wall-clock ns of the last quote received (0 = none).
    pub last_delivery_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Handshake,
    AwaitAck,
    Streaming,
    Parked,
    Closed,
}

struct Conn {
    sock: Option<TcpStream>,
    /// The TLS session over `sock` (`--tls`), from the moment TCP connects.
    tls: Option<Box<rustls::ClientConnection>>,
    state: State,
    sub: usize,
    slow: bool,
    key: String,
    started: Instant,
    /// Bytes of an incomplete frame (or handshake response) carried over.
    rbuf: Vec<u8>,
    /// Bytes not yet accepted by the socket.
    wbuf: Vec<u8>,
    dec: FrameDecoder,
    /// Indexed by position in this subscriber's topic list.
    trackers: Vec<GapTracker>,
    first_topic: usize,
}

#[derive(Debug)]
enum Fail {
    Connect,
    Handshake,
    Protocol,
    Closed,
    Refused,
}

struct Ctx<'a> {
    cfg: &'a RecvConfig,
    shared: &'a Shared,
    poll: Poll,
    latency: Histogram<u64>,
    connect: Histogram<u64>,
    subscribe_ack: Histogram<u64>,
    deliveries: u64,
    negative_latency: u64,
    errors: ErrorCounts,
    inflight: usize,
    subscribed: usize,
    slow: usize,
    mask_state: u64,
    prefix: Vec<u8>,
    last_delivery_ns: u64,
}

impl Ctx<'_> {
    fn mask(&mut self) -> [u8; 4] {
        // xorshift: masks need not be strong, only present.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        (x as u32).to_le_bytes()
    }
}

/// Runs one receiving thread until the phase becomes `PHASE_STOP`.
pub fn run(cfg: &RecvConfig, subs: Vec<usize>, shared: &Shared, thread_no: usize) -> RecvResult {
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(_) => {
            shared.failed.fetch_add(subs.len(), Ordering::Relaxed);
            shared.settled_threads.fetch_add(1, Ordering::Release);
            let errors = ErrorCounts {
                connect: subs.len() as u64,
                ..ErrorCounts::default()
            };
            return RecvResult {
                latency: new_histogram(),
                connect: new_histogram(),
                subscribe_ack: new_histogram(),
                deliveries: 0,
                negative_latency: 0,
                gaps: GapCounts::default(),
                errors,
                subscribed: 0,
                slow: 0,
                busy_share: 0.0,
                last_delivery_ns: 0,
            };
        }
    };
    let mut ctx = Ctx {
        cfg,
        shared,
        poll,
        latency: new_histogram(),
        connect: new_histogram(),
        subscribe_ack: new_histogram(),
        deliveries: 0,
        negative_latency: 0,
        errors: ErrorCounts::default(),
        inflight: 0,
        subscribed: 0,
        slow: 0,
        mask_state: 0x2545_F491_4F6C_DD1D ^ (thread_no as u64 + 1),
        prefix: cfg.prefix.as_bytes().to_vec(),
        last_delivery_ns: 0,
    };
    let mut conns: Vec<Conn> = Vec::with_capacity(subs.len());
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; SCRATCH];
    let mut next = 0usize;
    let mut settled = false;
    let mut again: Vec<usize> = Vec::new();
    let mut again_now: Vec<usize> = Vec::new();
    let mut published = 0u64;
    let mut measure: Option<(Instant, Duration)> = None;

    loop {
        let phase = shared.phase.load(Ordering::Acquire);
        if phase >= PHASE_MEASURE && measure.is_none() {
            measure = Some((Instant::now(), sys::thread_cpu()));
        }
        if phase >= PHASE_STOP {
            break;
        }
        if !settled {
            let now = Instant::now();
            while next < subs.len() && ctx.inflight < cfg.max_inflight && now < cfg.connect_deadline
            {
                let s = subs[next];
                next += 1;
                if cfg.slow_mode == SlowMode::Skip && cfg.is_slow(s) {
                    continue;
                }
                open(&mut ctx, &mut conns, s);
            }
            if now >= cfg.connect_deadline {
                // Out of time: whatever is not subscribed yet has failed.
                let never = subs[next..]
                    .iter()
                    .filter(|&&s| !(cfg.slow_mode == SlowMode::Skip && cfg.is_slow(s)))
                    .count();
                ctx.errors.connect += never as u64;
                shared.failed.fetch_add(never, Ordering::Relaxed);
                next = subs.len();
                for c in conns.iter_mut() {
                    let kind = match c.state {
                        State::Connecting => Fail::Connect,
                        State::Handshake => Fail::Handshake,
                        State::AwaitAck => Fail::Refused,
                        _ => continue,
                    };
                    fail(&mut ctx, c, kind);
                }
            }
            if next >= subs.len() && ctx.inflight == 0 {
                settled = true;
                shared.settled_threads.fetch_add(1, Ordering::Release);
            }
        }

        let timeout = if again.is_empty() {
            Duration::from_millis(20)
        } else {
            Duration::ZERO
        };
        if let Err(e) = ctx.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                break;
            }
        }
        std::mem::swap(&mut again, &mut again_now);
        again.clear();
        for ev in events.iter() {
            let idx = ev.token().0;
            let Some(c) = conns.get_mut(idx) else {
                continue;
            };
            let more = handle(
                &mut ctx,
                c,
                &mut scratch,
                ev.is_readable(),
                ev.is_writable(),
            );
            if more {
                again.push(idx);
            }
        }
        for &idx in &again_now {
            if again.contains(&idx) {
                continue;
            }
            if let Some(c) = conns.get_mut(idx) {
                if handle(&mut ctx, c, &mut scratch, true, false) {
                    again.push(idx);
                }
            }
        }
        again_now.clear();
        if ctx.deliveries != published {
            shared
                .deliveries
                .fetch_add(ctx.deliveries - published, Ordering::Relaxed);
            published = ctx.deliveries;
        }
    }

    let busy_share = measure
        .map(|(t0, cpu0)| {
            let wall = t0.elapsed().as_secs_f64();
            let cpu = sys::thread_cpu().saturating_sub(cpu0).as_secs_f64();
            if wall > 0.0 {
                cpu / wall
            } else {
                0.0
            }
        })
        .unwrap_or(0.0);

    let mut gaps = GapCounts::default();
    for c in &conns {
        for t in &c.trackers {
            gaps.add(&t.counts);
        }
    }
    // Closing: dropping the sockets (the broker sees EOF).
    drop(conns);
    RecvResult {
        latency: ctx.latency,
        connect: ctx.connect,
        subscribe_ack: ctx.subscribe_ack,
        deliveries: ctx.deliveries,
        negative_latency: ctx.negative_latency,
        gaps,
        errors: ctx.errors,
        subscribed: ctx.subscribed,
        slow: ctx.slow,
        busy_share,
        last_delivery_ns: ctx.last_delivery_ns,
    }
}

fn open(ctx: &mut Ctx<'_>, conns: &mut Vec<Conn>, s: usize) {
    let cfg = ctx.cfg;
    let sock = match connect_socket(cfg, s) {
        Ok(sock) => sock,
        Err(_) => {
            ctx.errors.connect += 1;
            ctx.shared.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let idx = conns.len();
    let mut sock = sock;
    if ctx
        .poll
        .registry()
        .register(
            &mut sock,
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        )
        .is_err()
    {
        ctx.errors.connect += 1;
        ctx.shared.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    ctx.inflight += 1;
    conns.push(Conn {
        sock: Some(sock),
        tls: None,
        state: State::Connecting,
        sub: s,
        slow: cfg.is_slow(s),
        key: sys::ws_key(s as u64),
        started: Instant::now(),
        rbuf: Vec::new(),
        wbuf: Vec::new(),
        dec: FrameDecoder::new(
            Role::Client,
            DecoderLimits {
                max_message: 16 << 20,
                accept_binary: true,
            },
        ),
        trackers: vec![GapTracker::default(); cfg.per_sub],
        first_topic: (s * cfg.per_sub) % cfg.topics,
    });
}

fn connect_socket(cfg: &RecvConfig, s: usize) -> std::io::Result<TcpStream> {
    let sock = Socket::new(
        Domain::for_address(cfg.ws),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_nodelay(true)?;
    if cfg.spread_sources {
        sock.bind(&sys::spread_source(s).into())?;
    }
    match sock.connect(&cfg.ws.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

/// Handles readiness; returns true if the connection has unread data left
/// (read cap hit) and should be revisited next turn.
fn handle(
    ctx: &mut Ctx<'_>,
    c: &mut Conn,
    scratch: &mut [u8],
    readable: bool,
    writable: bool,
) -> bool {
    let result = (|| {
        if writable {
            if c.state == State::Connecting {
                on_connected(ctx, c)?;
            }
            flush(c)?;
        }
        if readable
            && matches!(
                c.state,
                State::Handshake | State::AwaitAck | State::Streaming
            )
        {
            return read(ctx, c, scratch);
        }
        Ok(false)
    })();
    match result {
        Ok(more) => more,
        Err(kind) => {
            fail(ctx, c, kind);
            false
        }
    }
}

fn fail(ctx: &mut Ctx<'_>, c: &mut Conn, kind: Fail) {
    let was = c.state;
    if was == State::Closed {
        return;
    }
    if let Some(mut sock) = c.sock.take() {
        let _ = ctx.poll.registry().deregister(&mut sock);
    }
    c.state = State::Closed;
    c.rbuf = Vec::new();
    c.wbuf = Vec::new();
    let setting_up = matches!(was, State::Connecting | State::Handshake | State::AwaitAck);
    if setting_up {
        ctx.inflight = ctx.inflight.saturating_sub(1);
        ctx.shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    let stopping = ctx.shared.phase.load(Ordering::Relaxed) >= PHASE_STOP;
    match (kind, setting_up) {
        (Fail::Connect, _) => ctx.errors.connect += 1,
        (Fail::Handshake, _) => ctx.errors.handshake += 1,
        (Fail::Refused, _) => ctx.errors.subscribe += 1,
        (Fail::Protocol, _) => ctx.errors.protocol += 1,
        (Fail::Closed, true) => ctx.errors.handshake += 1,
        (Fail::Closed, false) if !stopping => ctx.errors.unexpected_close += 1,
        (Fail::Closed, false) => {}
    }
}

fn on_connected(ctx: &mut Ctx<'_>, c: &mut Conn) -> Result<(), Fail> {
    let sock = c.sock.as_ref().ok_or(Fail::Connect)?;
    if let Ok(Some(_)) | Err(_) = sock.take_error() {
        return Err(Fail::Connect);
    }
    match sock.peer_addr() {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(()), // not yet
        Err(_) => return Err(Fail::Connect),
    }
    let _ = ctx.connect.record(micros(c.started.elapsed()));
    if let Some(tls) = &ctx.cfg.tls {
        // The upgrade request waits in rustls until the handshake is done.
        let conn = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
            .map_err(|_| Fail::Handshake)?;
        c.tls = Some(Box::new(conn));
    }
    let path = match ctx.cfg.format {
        Format::Json => "/ws",
        Format::Binary => "/ws?format=binary",
    };
    c.wbuf
        .extend_from_slice(&client_request(&ctx.cfg.ws.to_string(), path, &c.key));
    c.state = State::Handshake;
    Ok(())
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 60_000_000)
}

fn flush(c: &mut Conn) -> Result<(), Fail> {
    let Some(sock) = c.sock.as_mut() else {
        return Ok(());
    };
    let mut off = 0;
    while off < c.wbuf.len() {
        let written = match c.tls.as_mut() {
            Some(tls) => tls_io::write_plain(tls, sock, &[IoSlice::new(&c.wbuf[off..])]),
            None => sock.write(&c.wbuf[off..]),
        };
        match written {
            Ok(0) => return Err(Fail::Closed),
            Ok(n) => off += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(Fail::Closed),
        }
    }
    c.wbuf.drain(..off);
    if let Some(tls) = c.tls.as_mut() {
        match tls_io::flush_records(tls, sock) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Err(Fail::Closed),
        }
    }
    Ok(())
}

fn read(ctx: &mut Ctx<'_>, c: &mut Conn, scratch: &mut [u8]) -> Result<bool, Fail> {
    for _ in 0..MAX_READS_PER_TURN {
        let Some(sock) = c.sock.as_mut() else {
            return Ok(false);
        };
        let got = match c.tls.as_mut() {
            Some(tls) => tls_io::read_plain(tls, sock, scratch),
            None => sock.read(scratch),
        };
        match got {
            Ok(0) => return Err(Fail::Closed),
            Ok(n) => {
                let now_ns = sys::wall_ns();
                on_bytes(ctx, c, &scratch[..n], now_ns)?;
                if c.state == State::Parked || c.state == State::Closed {
                    return Ok(false);
                }
                if !c.wbuf.is_empty() {
                    flush(c)?;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(Fail::Closed),
        }
    }
    Ok(true)
}

fn on_bytes(ctx: &mut Ctx<'_>, c: &mut Conn, data: &[u8], now_ns: u64) -> Result<(), Fail> {
    if c.state == State::Handshake {
        c.rbuf.extend_from_slice(data);
        match parse_client_response(&c.rbuf, &c.key, 8192) {
            Ok(ResponseParse::Partial) => return Ok(()),
            Ok(ResponseParse::Complete { len }) => {
                c.rbuf.drain(..len);
                send_subscribe(ctx, c);
                c.state = State::AwaitAck;
                flush(c)?;
                let buf = std::mem::take(&mut c.rbuf);
                let used = frames(ctx, c, &buf, now_ns)?;
                if c.state != State::Parked {
                    c.rbuf = buf;
                    c.rbuf.drain(..used);
                }
                return Ok(());
            }
            Err(_) => return Err(Fail::Handshake),
        }
    }
    if c.rbuf.is_empty() {
        let used = frames(ctx, c, data, now_ns)?;
        if used < data.len() && c.state != State::Parked {
            c.rbuf.extend_from_slice(&data[used..]);
        }
    } else {
        c.rbuf.extend_from_slice(data);
        let mut buf = std::mem::take(&mut c.rbuf);
        let used = frames(ctx, c, &buf, now_ns)?;
        if c.state != State::Parked {
            buf.drain(..used);
            if buf.is_empty() && buf.capacity() > SCRATCH {
                buf = Vec::new();
            }
            c.rbuf = buf;
        }
    }
    Ok(())
}

fn send_subscribe(ctx: &mut Ctx<'_>, c: &mut Conn) {
    let cfg = ctx.cfg;
    let names: Vec<String> = cfg.topics_of(c.sub).map(|i| cfg.topic_name(i)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let text = tickwire_protocol::control::encode_subscribe(&refs, Some(1), Some(false), None);
    let mask = ctx.mask();
    encode_masked_frame(&mut c.wbuf, OpCode::Text, true, text.as_bytes(), mask);
}

/// Header of a complete-able, unfragmented, unmasked text/binary frame:
/// (is_binary, header length, payload length). None → use FrameDecoder.
#[inline]
fn fast_header(b: &[u8]) -> Option<(bool, usize, usize)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let binary = match b0 {
        0x81 => false,
        0x82 => true,
        _ => return None,
    };
    if b1 & 0x80 != 0 {
        return None;
    }
    let (hl, pl) = match b1 & 0x7F {
        126 => (
            4,
            usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
        ),
        127 => {
            let len = u64::from_be_bytes(b.get(2..10)?.try_into().ok()?);
            (10, usize::try_from(len).ok()?)
        }
        n => (2, usize::from(n)),
    };
    (pl <= FAST_PATH_MAX).then_some((binary, hl, pl))
}

/// Consumes whole frames from `buf`; returns the bytes used.
fn frames(ctx: &mut Ctx<'_>, c: &mut Conn, buf: &[u8], now_ns: u64) -> Result<usize, Fail> {
    let mut off = 0;
    while off < buf.len() {
        if c.state == State::Parked {
            return Ok(buf.len());
        }
        let b = &buf[off..];
        if c.dec.is_idle() {
            if let Some((binary, hl, pl)) = fast_header(b) {
                if b.len() < hl + pl {
                    break;
                }
                message(ctx, c, binary, &b[hl..hl + pl], now_ns)?;
                off += hl + pl;
                continue;
            }
        }
        match c.dec.decode(b) {
            Ok((0, _)) => break,
            Ok((n, ev)) => {
                off += n;
                match ev {
                    None | Some(Event::Pong(_)) => {}
                    Some(Event::Text(t)) => message(ctx, c, false, t.as_bytes(), now_ns)?,
                    Some(Event::Binary(v)) => message(ctx, c, true, &v, now_ns)?,
                    Some(Event::Ping(p)) => {
                        let mask = ctx.mask();
                        encode_masked_frame(&mut c.wbuf, OpCode::Pong, true, &p, mask);
                    }
                    Some(Event::Close(_)) => {
                        let mask = ctx.mask();
                        tickwire_ws::frame::encode_masked_close(&mut c.wbuf, 1000, "", mask);
                        let _ = flush(c);
                        return Err(Fail::Closed);
                    }
                }
            }
            Err(_) => return Err(Fail::Protocol),
        }
    }
    Ok(off)
}

#[inline]
fn message(
    ctx: &mut Ctx<'_>,
    c: &mut Conn,
    binary: bool,
    p: &[u8],
    now_ns: u64,
) -> Result<(), Fail> {
    let q = if binary {
        parse::binary_quote(p)
    } else {
        match parse::text_kind(p) {
            TextKind::Quote => parse::json_quote(p),
            TextKind::Subscribed => {
                if c.state == State::AwaitAck {
                    on_ack(ctx, c);
                }
                return Ok(());
            }
            TextKind::Error => {
                ctx.errors.server_error += 1;
                if c.state == State::AwaitAck {
                    return Err(Fail::Refused);
                }
                return Ok(());
            }
            TextKind::Unsubscribed | TextKind::Other => return Ok(()),
        }
    };
    let Some(q) = q else {
        ctx.errors.protocol += 1;
        return Ok(());
    };
    ctx.deliveries += 1;
    ctx.last_delivery_ns = now_ns;
    if now_ns >= q.ts {
        let us = (now_ns - q.ts) / 1000;
        ctx.latency.saturating_record(us.max(1));
    } else {
        ctx.negative_latency += 1;
        ctx.latency.saturating_record(1);
    }
    let topics = ctx.cfg.topics;
    match parse::topic_index(q.topic, &ctx.prefix) {
        Some(i) if i < topics => {
            let j = (i + topics - c.first_topic) % topics;
            match c.trackers.get_mut(j) {
                Some(t) => t.observe(q.seq),
                None => ctx.errors.unexpected_topic += 1,
            }
        }
        _ => ctx.errors.unexpected_topic += 1,
    }
    Ok(())
}

fn on_ack(ctx: &mut Ctx<'_>, c: &mut Conn) {
    let _ = ctx.subscribe_ack.record(micros(c.started.elapsed()));
    ctx.inflight = ctx.inflight.saturating_sub(1);
    ctx.subscribed += 1;
    ctx.shared.ready.fetch_add(1, Ordering::Relaxed);
    if c.slow {
        // Stop reading for good: no more readiness events, buffers freed.
        if let Some(sock) = c.sock.as_mut() {
            let _ = ctx.poll.registry().deregister(sock);
        }
        c.rbuf = Vec::new();
        c.state = State::Parked;
        ctx.slow += 1;
    } else {
        c.state = State::Streaming;
    }
}
