//! The producers' side of the router's thread: accepts feed producers,
//! decodes their frames and hands quotes to the router in batches (one per
//! read). A bad frame closes only the producer that sent it; quotes it sent
//! before that frame stand.
//!
//! It runs on the router's thread (`router_thread.rs`), in its poll: a
//! quote costs no thread wake-up between decoding and numbering. A turn
//! reads at most a budget of batches; producers with more to read wait for
//! the next turn, after the router has handed the last one to the workers,
//! and feel TCP back-pressure while the router as a whole cannot keep up.
//!
//! This file is the I/O shell: the listener, the sockets and their
//! `Transport`, and the reads. The producer protocol — admission deadline,
//! `Hello` and tokens, grants, framing, decoding — is
//! `session::ProducerSession`, a state machine without I/O that this shell
//! feeds bytes and the time and whose outcomes it carries out.
//!
//! With `[ingest.tls]` producers speak TLS (mutual TLS with a client CA): the
//! same `Transport` as the WebSocket listener; a handshake that fails or is
//! not done within the handshake timeout closes the producer
//! (`reason="tls"`).

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, RawFd};

use mio::event::Event;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::config::IngestConfig;
use crate::messages::IngestBatch;
use crate::metrics::{self, Metrics};
use crate::transport::Transport;
use read_queue::ReadQueue;
use session::{ProducerSession, Reject, Rules};

mod access;
mod read_queue;
mod session;

const LISTENER: Token = Token(0);
/// The router thread's doorbell, in the same poll.
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
const READ_CHUNK: usize = 64 * 1024;
/// Reads per producer per turn, so one fast producer cannot starve others.
const READS_PER_TURN: usize = 16;

struct Producer {
    stream: Transport,
    session: ProducerSession,
}

pub struct Ingest {
    registry: Registry,
    listener: Option<TcpListener>,
    producers: Slab<Producer>,
    max_producers: usize,
    rules: Arc<Rules>,
    tls: Option<Arc<rustls::ServerConfig>>,
    metrics: Arc<Metrics>,
    /// Every read lands here; a session copies only a partial frame out.
    scratch: Vec<u8>,
    /// Producers with bytes to read, in the order they are served.
    unread: ReadQueue,
}

/// Opens the producer listener from the thread that starts the broker,
/// while the router's thread, which owns it, already runs (the poll's
/// registry may be used from any thread).
pub struct ProducerGate {
    registry: Registry,
    listener: RawFd,
}

impl ProducerGate {
    pub fn open(self) -> io::Result<()> {
        // Connections already in the backlog are reported at once.
        self.registry
            .register(&mut SourceFd(&self.listener), LISTENER, Interest::READABLE)
    }
}

enum ReadEnd {
    WouldBlock,
    MoreLeft,
    Closed,
}

impl Ingest {
    /// `registry` is the router thread's poll's: producers register there.
    /// No producer is taken until the returned gate opens: the broker opens
    /// it once the router is ready to number quotes (with a cluster, once
    /// the stored `seq`s are known); until then they wait in the backlog.
    pub fn new(
        registry: Registry,
        listener: std::net::TcpListener,
        config: IngestConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        handshake_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> io::Result<(Ingest, ProducerGate)> {
        let listener = TcpListener::from_std(listener);
        let gate = ProducerGate {
            registry: registry.try_clone()?,
            listener: listener.as_raw_fd(),
        };
        let ingest = Ingest {
            registry,
            listener: Some(listener),
            producers: Slab::new(),
            max_producers: config.max_producers,
            rules: Arc::new(Rules::from_config(&config, handshake_timeout)),
            tls,
            metrics,
            scratch: vec![0; READ_CHUNK],
            unread: ReadQueue::default(),
        };
        Ok((ingest, gate))
    }

    /// How long the poll may sleep as far as producers go: not at all
    /// while reads are carried over, else until the earliest admission
    /// deadline (mio rounds a timeout up to whole milliseconds, so it is
    /// never early).
    pub fn wait_limit(&self, now: Instant) -> Option<Duration> {
        if !self.unread.is_empty() {
            return Some(Duration::ZERO);
        }
        self.next_deadline()
            .map(|d| d.saturating_duration_since(now))
    }

    /// One of the poll's events (the listener or a producer; the doorbell's
    /// are the router thread's).
    pub fn on_event(&mut self, event: &Event) {
        match event.token() {
            LISTENER => self.accept(),
            WAKER => {}
            Token(t) => self
                .unread
                .ready(t - FIRST_CONN, event.is_read_closed() || event.is_error()),
        }
    }

    /// Closes producers past their admission deadline, then reads those
    /// with bytes waiting, handing each read's quotes to `batch`, until
    /// `budget` batches have gone; the rest are read next turn, first in,
    /// first out (`read_queue.rs`).
    pub fn read_turn(&mut self, budget: usize, batch: &mut dyn FnMut(IngestBatch)) {
        self.expire_handshakes();
        let handed = Cell::new(0);
        let mut counting = |b: IngestBatch| {
            handed.set(handed.get() + 1);
            batch(b)
        };
        // Read and with more to read: behind those the budget skipped.
        let mut more = Vec::new();
        for ready in self.unread.take() {
            if handed.get() >= budget {
                // Its event is spent: read it next turn without one.
                self.unread.carry(ready.slot);
                continue;
            }
            let reads = READS_PER_TURN.min(budget - handed.get());
            match self.read(ready.slot, reads, ready.short_ends, &mut counting) {
                ReadEnd::MoreLeft => more.push(ready.slot),
                ReadEnd::Closed => self.remove(ready.slot),
                ReadEnd::WouldBlock => {}
            }
        }
        if !more.is_empty() || !self.unread.is_empty() {
            // Bytes left for the next round: the feed outruns the router.
            metrics::add(&self.metrics.ingest_backlog_rounds, 1);
        }
        for slot in more {
            self.unread.carry(slot);
        }
    }

    /// Shutdown: handle what producers already sent (bounded: what is in
    /// their socket buffers now), then close them.
    pub fn drain_and_close(&mut self, batch: &mut dyn FnMut(IngestBatch)) {
        if let Some(listener) = self.listener.take() {
            // Registered by its gate, by fd: taken out the same way.
            let _ = self
                .registry
                .deregister(&mut SourceFd(&listener.as_raw_fd()));
        }
        let slots: Vec<usize> = self.producers.iter().map(|(s, _)| s).collect();
        for slot in slots {
            let _ = self.read(slot, 64, false, batch);
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
                    if self.producers.len() >= self.max_producers {
                        tracing::warn!(%addr, max = self.max_producers, "producer refused: too many producers");
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
                    if let Err(e) = self.registry.register(
                        &mut stream,
                        Token(entry.key() + FIRST_CONN),
                        interest,
                    ) {
                        tracing::warn!(error = %e, "cannot register producer");
                        continue;
                    }
                    tracing::info!(%addr, "producer connected");
                    metrics::gauge_add(&self.metrics.producer_connections, 1);
                    let session = ProducerSession::new(
                        self.rules.clone(),
                        Instant::now(),
                        stream.is_handshaking(),
                    );
                    entry.insert(Producer { stream, session });
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

    /// Reads up to `max_reads` times. With `short_ends` (the readiness
    /// event carried no FIN or error), a short read of a plain socket has
    /// taken everything it held: a later arrival raises a new edge, so the
    /// read that would only say `EAGAIN` is saved (one per quote at a low
    /// rate). TLS reads go on: the stream may hold decrypted bytes.
    fn read(
        &mut self,
        slot: usize,
        max_reads: usize,
        short_ends: bool,
        batch: &mut dyn FnMut(IngestBatch),
    ) -> ReadEnd {
        for _ in 0..max_reads {
            let Some(producer) = self.producers.get_mut(slot) else {
                return ReadEnd::Closed;
            };
            let read = producer.stream.read(&mut self.scratch);
            // A TLS handshake advances only inside `read`.
            producer.sync_transport();
            let n = match read {
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
                        self.metrics.reject(metrics::RejectReason::Tls);
                    }
                    return ReadEnd::Closed;
                }
            };
            let drained = short_ends && n < self.scratch.len() && !producer.stream.is_tls();
            let decoded_at = Instant::now();
            // `read` returned at most the scratch buffer's length.
            let data = self.scratch.get(..n).unwrap_or_default();
            let outcome = producer.session.on_bytes(data, decoded_at);
            if outcome.admitted {
                producer.log_admitted();
            }
            if !outcome.quotes.is_empty() {
                batch(IngestBatch {
                    quotes: outcome.quotes,
                    decoded_at,
                });
            }
            if let Some(reject) = outcome.close {
                producer.log_reject(&reject);
                self.metrics.reject(reject.reason);
                return ReadEnd::Closed;
            }
            if drained {
                return ReadEnd::WouldBlock;
            }
        }
        ReadEnd::MoreLeft
    }

    /// The earliest admission deadline of any producer.
    fn next_deadline(&self) -> Option<Instant> {
        self.producers
            .iter()
            .filter_map(|(_, p)| p.session.poll_timeout())
            .min()
    }

    /// Hands every producer whose admission deadline has passed to its
    /// session, which closes it unless it is admitted by now.
    fn expire_handshakes(&mut self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        for (slot, producer) in self.producers.iter_mut() {
            match producer.session.poll_timeout() {
                Some(deadline) if deadline <= now => {}
                _ => continue,
            }
            producer.sync_transport();
            if let Some(reject) = producer.session.handle_timeout(now) {
                producer.log_reject(&reject);
                self.metrics.reject(reject.reason);
                expired.push(slot);
            }
        }
        for slot in expired {
            self.remove(slot);
        }
    }

    fn remove(&mut self, slot: usize) {
        self.unread.forget(slot);
        if let Some(mut producer) = self.producers.try_remove(slot) {
            let _ = self.registry.deregister(&mut producer.stream);
            metrics::gauge_add(&self.metrics.producer_connections, -1);
            if let Ok(addr) = producer.stream.socket().peer_addr() {
                tracing::info!(%addr, "producer disconnected");
            }
        }
    }
}

impl Producer {
    /// Tells the session once the transport's TLS handshake is done: that
    /// is one of the two steps of admission, and it picks the reason
    /// (`tls` or `unauthorized`) should the deadline pass.
    fn sync_transport(&mut self) {
        if self.session.transport_pending()
            && !self.stream.is_handshaking()
            && self.session.on_transport_ready()
        {
            self.log_admitted();
        }
    }

    fn log_admitted(&self) {
        let addr = self.stream.socket().peer_addr().ok();
        tracing::debug!(addr = ?addr, "producer admitted");
    }

    fn log_reject(&self, reject: &Reject) {
        let addr = self.stream.socket().peer_addr().ok();
        tracing::warn!(addr = ?addr, reason = reject.reason.label(), why = %reject.why, "producer closed");
    }
}

#[cfg(test)]
mod tests;
