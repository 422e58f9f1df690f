//! One subscriber connection: its state, the per-thread context, opening
//! the socket, the upgrade request once TCP (and TLS) is up (built by
//! `upgrade`), the subscribe request, writes, and what a failure counts as.

use std::io::{ErrorKind, IoSlice, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use tickwire_client::tls_io;
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::{DecoderLimits, FrameDecoder, OpCode, Role};

use super::config::{RecvConfig, Shared, PHASE_STOP};
use super::result::{ErrorCounts, WsResult};
use super::upgrade;
use crate::gaps::GapTracker;
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Connecting,
    Handshake,
    AwaitAck,
    Streaming,
    Parked,
    Closed,
}

pub(super) struct Conn {
    pub(super) sock: Option<TcpStream>,
    /// The TLS session over `sock` (`--tls`), from the moment TCP connects.
    pub(super) tls: Option<Box<rustls::ClientConnection>>,
    pub(super) state: State,
    pub(super) sub: usize,
    /// Index into `RecvConfig::ws` (and `Ctx::by_ws`) of this subscriber's address.
    pub(super) ws: usize,
    pub(super) slow: bool,
    pub(super) key: String,
    pub(super) started: Instant,
    /// Bytes of an incomplete frame (or handshake response) carried over.
    pub(super) rbuf: Vec<u8>,
    /// Bytes not yet accepted by the socket.
    pub(super) wbuf: Vec<u8>,
    pub(super) dec: FrameDecoder,
    /// Indexed by position in this subscriber's topic list.
    pub(super) trackers: Vec<GapTracker>,
    pub(super) first_topic: usize,
}

#[derive(Debug)]
pub(super) enum Fail {
    Connect,
    Handshake,
    Protocol,
    Closed,
    Refused,
}

/// One receiving thread's state besides its connections.
pub(super) struct Ctx<'a> {
    pub(super) cfg: &'a RecvConfig,
    pub(super) shared: &'a Shared,
    pub(super) poll: Poll,
    pub(super) latency: Histogram<u64>,
    /// Per `--ws` address, indexed by `Conn::ws`; empty with one address.
    pub(super) by_ws: Vec<WsResult>,
    pub(super) connect: Histogram<u64>,
    pub(super) subscribe_ack: Histogram<u64>,
    pub(super) deliveries: u64,
    pub(super) negative_latency: u64,
    pub(super) errors: ErrorCounts,
    pub(super) inflight: usize,
    pub(super) subscribed: usize,
    pub(super) slow: usize,
    pub(super) mask_state: u64,
    pub(super) prefix: Vec<u8>,
    pub(super) last_delivery_ns: u64,
    /// WebSocket bytes read from this thread's subscriber sockets after
    /// their 101 responses (frame headers included, compressed as they came;
    /// with `--tls`, the decrypted bytes, not the TLS records).
    pub(super) wire_bytes: u64,
    /// Connections whose 101 response accepted permessage-deflate.
    pub(super) deflate_negotiated: usize,
    /// `authed` replies (first tokens and refreshes).
    pub(super) authed: u64,
    /// `auth` requests sent on connections already streaming.
    pub(super) auth_refreshes: u64,
    /// TLS KeyUpdates sent (`TlsClient::key_update_every`).
    pub(super) tls_key_updates: u64,
}

impl Ctx<'_> {
    pub(super) fn mask(&mut self) -> [u8; 4] {
        // xorshift: masks need not be strong, only present.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        (x as u32).to_le_bytes()
    }
}

/// Starts connecting subscriber `s` (to its `--ws` address) and registers it.
pub(super) fn open(ctx: &mut Ctx<'_>, conns: &mut Vec<Conn>, s: usize) {
    let cfg = ctx.cfg;
    let ws = cfg.ws_of(s);
    let sock = match connect_socket(cfg, cfg.ws[ws], s) {
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
        ws,
        slow: cfg.is_slow(s),
        key: sys::ws_key(s as u64),
        started: Instant::now(),
        rbuf: Vec::new(),
        wbuf: Vec::new(),
        dec: decoder(cfg.deflate),
        trackers: vec![GapTracker::default(); cfg.per_sub],
        first_topic: (s * cfg.per_sub) % cfg.topics,
    });
}

/// A subscriber's frame decoder; `deflate`: compressed (RSV1) messages are
/// inflated, else refused as a protocol error.
pub(super) fn decoder(deflate: bool) -> FrameDecoder {
    FrameDecoder::new(
        Role::Client,
        DecoderLimits {
            max_message: 16 << 20,
            accept_binary: true,
            deflate,
        },
    )
}

fn connect_socket(cfg: &RecvConfig, addr: SocketAddr, s: usize) -> std::io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if cfg.spread_sources && addr.ip().is_loopback() {
        sock.bind(&sys::spread_source(s).into())?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

pub(super) fn fail(ctx: &mut Ctx<'_>, c: &mut Conn, kind: Fail) {
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

pub(super) fn on_connected(ctx: &mut Ctx<'_>, c: &mut Conn) -> Result<(), Fail> {
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
    let host = ctx.cfg.ws[c.ws].to_string();
    c.wbuf
        .extend_from_slice(&upgrade::request(ctx.cfg, &host, &c.key));
    c.state = State::Handshake;
    Ok(())
}

pub(super) fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 60_000_000)
}

pub(super) fn flush(c: &mut Conn) -> Result<(), Fail> {
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

/// Queues an `auth` request with a fresh token (with `RecvConfig::auth`).
pub(super) fn send_auth(ctx: &mut Ctx<'_>, c: &mut Conn, token_request: &str) {
    let mask = ctx.mask();
    encode_masked_frame(
        &mut c.wbuf,
        OpCode::Text,
        true,
        token_request.as_bytes(),
        mask,
    );
}

/// Queues the subscribe request, after an `auth` when the broker wants one
/// (the broker handles them in order: the subscribe sees the grants).
pub(super) fn send_subscribe(ctx: &mut Ctx<'_>, c: &mut Conn) {
    let cfg = ctx.cfg;
    if let Some(tokens) = &cfg.auth {
        send_auth(ctx, c, &tokens.auth_request(None));
    }
    let names: Vec<String> = cfg.topics_of(c.sub).map(|i| cfg.topic_name(i)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let text = tickwire_protocol::control::encode_subscribe(&refs, Some(1), Some(false), None);
    let mask = ctx.mask();
    encode_masked_frame(&mut c.wbuf, OpCode::Text, true, text.as_bytes(), mask);
}
