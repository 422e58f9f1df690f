//! The ingest thread: accepts feed producers, decodes their frames and hands
//! quotes to the router in batches (one per read). A bad frame closes only
//! the producer that sent it; quotes it sent before that frame stand.
//!
//! The queue to the router is bounded. When it is full this thread blocks in
//! `send`, stops reading, and producers feel TCP back-pressure: that happens
//! only when the router as a whole cannot keep up.
//!
//! With `[ingest.tls]` producers speak TLS (mutual TLS with a client CA): the
//! same `Transport` as the WebSocket listener; a handshake that fails or is
//! not done within the handshake timeout closes the producer
//! (`reason="tls"`).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use tickwire_protocol::ingest::{decode_frame, IngestError, IngestFrame};
use tickwire_protocol::Quote;

use crate::config::IngestConfig;
use crate::messages::IngestBatch;
use access::{Grants, ProducerAuth};

mod access;
use crate::metrics::{self, Metrics, RejectReason};
use crate::transport::Transport;

const LISTENER: Token = Token(0);
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
const READ_CHUNK: usize = 64 * 1024;
/// Reads per producer per turn, so one fast producer cannot starve others.
const READS_PER_TURN: usize = 16;
/// How often TLS handshake deadlines are checked while any is pending.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

struct Producer {
    stream: Transport,
    /// For the admission deadline (TLS handshake, `Hello` with a token).
    accepted_at: Instant,
    buf: Vec<u8>,
    hello_seen: bool,
    quote_seen: bool,
    /// What it may publish; None until a `Hello` with a valid token when
    /// tokens are configured.
    grants: Option<Grants>,
}

pub struct Ingest {
    poll: Poll,
    listener: Option<TcpListener>,
    producers: Slab<Producer>,
    tx: Sender<IngestBatch>,
    config: IngestConfig,
    auth: ProducerAuth,
    tls: Option<Arc<rustls::ServerConfig>>,
    handshake_timeout: Duration,
    metrics: Arc<Metrics>,
    shutdown: Arc<AtomicBool>,
    scratch: Vec<u8>,
    unread: Vec<usize>,
}

enum ReadEnd {
    WouldBlock,
    MoreLeft,
    Closed,
}

impl Ingest {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        listener: std::net::TcpListener,
        tx: Sender<IngestBatch>,
        config: IngestConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        handshake_timeout: Duration,
        metrics: Arc<Metrics>,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<Ingest> {
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Ingest {
            poll,
            listener: Some(listener),
            producers: Slab::new(),
            tx,
            auth: ProducerAuth::from_config(&config),
            config,
            tls,
            handshake_timeout,
            metrics,
            shutdown,
            scratch: vec![0; READ_CHUNK],
            unread: Vec::new(),
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = if !self.unread.is_empty() {
                Some(Duration::ZERO)
            } else if self.producers.iter().any(|(_, p)| !p.admitted()) {
                Some(SWEEP_INTERVAL)
            } else {
                None
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "ingest poll failed; ingest stops");
                    break;
                }
            }
            if self.shutdown.load(Ordering::Acquire) {
                break;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => self.unread.push(t - FIRST_CONN),
                }
            }
            self.expire_handshakes();
            self.unread.sort_unstable();
            self.unread.dedup();
            for slot in std::mem::take(&mut self.unread) {
                match self.read(slot, READS_PER_TURN) {
                    ReadEnd::MoreLeft => self.unread.push(slot),
                    ReadEnd::Closed => self.remove(slot),
                    ReadEnd::WouldBlock => {}
                }
            }
        }
        self.drain_and_close();
    }

    /// Shutdown: handle what producers already sent (bounded: what is in
    /// their socket buffers now), then close them.
    fn drain_and_close(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let slots: Vec<usize> = self.producers.iter().map(|(s, _)| s).collect();
        for slot in slots {
            let _ = self.read(slot, 64);
            self.remove(slot);
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => {
                    if self.producers.len() >= self.config.max_producers {
                        tracing::warn!(%addr, max = self.config.max_producers, "producer refused: too many producers");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let mut stream = match &self.tls {
                        Some(config) => match Transport::tls(stream, config.clone()) {
                            Ok(t) => t,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot start TLS for a producer");
                                continue;
                            }
                        },
                        None => Transport::Plain(stream),
                    };
                    // TLS needs writable events too (handshake replies).
                    let interest = if self.tls.is_some() {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    let entry = self.producers.vacant_entry();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(entry.key() + FIRST_CONN),
                        interest,
                    ) {
                        tracing::warn!(error = %e, "cannot register producer");
                        continue;
                    }
                    tracing::info!(%addr, "producer connected");
                    metrics::gauge_add(&self.metrics.producer_connections, 1);
                    entry.insert(Producer {
                        stream,
                        accepted_at: Instant::now(),
                        buf: Vec::new(),
                        hello_seen: false,
                        quote_seen: false,
                        grants: (!self.auth.required()).then_some(Grants::All),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "ingest accept failed");
                    return;
                }
            }
        }
    }

    fn read(&mut self, slot: usize, max_reads: usize) -> ReadEnd {
        for _ in 0..max_reads {
            let Some(producer) = self.producers.get_mut(slot) else {
                return ReadEnd::Closed;
            };
            let n = match producer.stream.read(&mut self.scratch) {
                Ok(0) => return ReadEnd::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Handshake replies the socket had no room for go out
                    // on the next writable event (this same path).
                    let _ = producer.stream.flush_tls();
                    return ReadEnd::WouldBlock;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() == io::ErrorKind::InvalidData {
                        // A TLS failure: no client certificate under mutual
                        // TLS, a wrong one, or not TLS at all.
                        tracing::warn!(addr = ?producer.stream.socket().peer_addr().ok(), error = %e, "producer closed: TLS handshake failed");
                        self.metrics.reject(RejectReason::Tls);
                    }
                    return ReadEnd::Closed;
                }
            };
            let decoded_at = Instant::now();
            producer
                .buf
                .extend_from_slice(self.scratch.get(..n).unwrap_or_default());
            let (quotes, result) = decode_all(producer, &self.config, &self.auth);
            if !quotes.is_empty() {
                // Blocks while the router is saturated: TCP back-pressure.
                if self.tx.send(IngestBatch { quotes, decoded_at }).is_err() {
                    return ReadEnd::Closed;
                }
            }
            if let Err(reason) = result {
                self.metrics.reject(reason);
                return ReadEnd::Closed;
            }
        }
        ReadEnd::MoreLeft
    }

    /// Closes producers not admitted within the handshake timeout: a TLS
    /// handshake still going on, or no `Hello` with a valid token when
    /// tokens are required. A client that connects and stalls must not
    /// hold one of the producer slots.
    fn expire_handshakes(&mut self) {
        let now = Instant::now();
        let expired: Vec<(usize, RejectReason)> = self
            .producers
            .iter()
            .filter(|(_, p)| {
                !p.admitted()
                    && now.saturating_duration_since(p.accepted_at) >= self.handshake_timeout
            })
            .map(|(slot, p)| {
                let reason = if p.stream.is_handshaking() {
                    RejectReason::Tls
                } else {
                    RejectReason::Unauthorized
                };
                (slot, reason)
            })
            .collect();
        for (slot, reason) in expired {
            tracing::warn!(
                reason = reason.label(),
                "producer closed: not admitted within the handshake timeout"
            );
            self.metrics.reject(reason);
            self.remove(slot);
        }
    }

    fn remove(&mut self, slot: usize) {
        if let Some(mut producer) = self.producers.try_remove(slot) {
            let _ = self.poll.registry().deregister(&mut producer.stream);
            metrics::gauge_add(&self.metrics.producer_connections, -1);
            if let Ok(addr) = producer.stream.socket().peer_addr() {
                tracing::info!(%addr, "producer disconnected");
            }
        }
    }
}

/// Decodes every whole frame buffered for `producer`. Returns the quotes
/// accepted, and the reason to close it if a frame was bad.
fn decode_all(
    producer: &mut Producer,
    config: &IngestConfig,
    auth: &ProducerAuth,
) -> (Vec<Quote>, Result<(), RejectReason>) {
    let mut quotes = Vec::new();
    let mut offset = 0;
    let result = loop {
        let input = producer.buf.get(offset..).unwrap_or_default();
        match decode_frame(input, config.max_frame_bytes) {
            Ok(None) => break Ok(()),
            Ok(Some((frame, used))) => {
                offset += used;
                if let Err(reason) = accept_frame(producer, auth, frame, &mut quotes) {
                    break Err(reason);
                }
            }
            Err(e) => {
                let reason = match e {
                    IngestError::TooLong { .. } => RejectReason::TooLong,
                    IngestError::Decode(_) => RejectReason::Decode,
                    IngestError::BadTopic(_) => RejectReason::BadTopic,
                };
                log_reject(producer, &e.to_string());
                break Err(reason);
            }
        }
    };
    producer.buf.drain(..offset.min(producer.buf.len()));
    if producer.buf.is_empty() {
        producer.buf = Vec::new();
    }
    (quotes, result)
}

fn accept_frame(
    producer: &mut Producer,
    auth: &ProducerAuth,
    frame: IngestFrame,
    quotes: &mut Vec<Quote>,
) -> Result<(), RejectReason> {
    match frame {
        IngestFrame::Hello { token } => {
            if producer.hello_seen || producer.quote_seen {
                log_reject(producer, "Hello must be the first frame, once");
                return Err(RejectReason::UnexpectedHello);
            }
            producer.hello_seen = true;
            if auth.required() {
                // The token itself is never logged.
                match auth.check(&token) {
                    Some(grants) => producer.grants = Some(grants),
                    None => {
                        log_reject(producer, "wrong token");
                        return Err(RejectReason::Unauthorized);
                    }
                }
            }
            Ok(())
        }
        IngestFrame::Quote(quote) => {
            check_granted(producer, std::slice::from_ref(&quote))?;
            producer.quote_seen = true;
            quotes.push(quote);
            Ok(())
        }
        IngestFrame::Batch(batch) => {
            // All or nothing: one quote outside the grants rejects the frame.
            check_granted(producer, &batch)?;
            // An empty batch does nothing, so it is not "a quote" before Hello.
            producer.quote_seen |= !batch.is_empty();
            quotes.extend(batch);
            Ok(())
        }
    }
}

impl Producer {
    /// Past the TLS handshake (if any) and authorized (if tokens are set).
    fn admitted(&self) -> bool {
        self.grants.is_some() && !self.stream.is_handshaking()
    }
}

/// The producer said `Hello` with a valid token (when required) and every
/// quote's topic is within its grants.
fn check_granted(producer: &Producer, quotes: &[Quote]) -> Result<(), RejectReason> {
    let Some(grants) = &producer.grants else {
        log_reject(producer, "Hello with a token required first");
        return Err(RejectReason::Unauthorized);
    };
    if let Some(q) = quotes.iter().find(|q| !grants.covers(&q.topic)) {
        let why = format!("topic {:?} is outside this producer's grants", q.topic);
        log_reject(producer, &why);
        return Err(RejectReason::NotAuthorized);
    }
    Ok(())
}

fn log_reject(producer: &Producer, why: &str) {
    let addr = producer.stream.socket().peer_addr().ok();
    tracing::warn!(addr = ?addr, reason = why, "producer closed: bad frame");
}
