//! A worker thread: the I/O shell around its connections' sans-IO state
//! machines (`crate::session::Connection`). It owns its own `mio::Poll`,
//! its own SO_REUSEPORT listener and every connection it accepted; it reads
//! sockets into the connections, hands them router messages and timers,
//! carries out the actions they return (`effects`), and writes what they
//! queue (`cork` says when). Nothing here is shared with other workers
//! except counters.

mod cork;
mod effects;
mod housekeeping;
mod route_index;
mod router_msgs;
mod sockets;

pub mod internals {
    pub use super::route_index::RouteIndex;
    pub use crate::session::outbound::{OutFrame, Outbound, Pushed};
}

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::{ms, Config};
use crate::messages::{ConnId, RouterCmd, WorkerMsg};
use crate::metrics::{self, LatencyRecorder, Metrics};
use crate::session::{BrokerStatus, Connection, Effects, SessionConfig};
use crate::transport::Transport;
use cork::Cork;
use route_index::RouteIndex;

const LISTENER: Token = Token(0);
pub const WAKER: Token = Token(1);
const TLS_LISTENER: Token = Token(2);
const FIRST_CONN: usize = 3;

/// How often connection deadlines (handshake, idle ping, dead peer, slow
/// consumer, closing) are checked.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// Bound on commands waiting for the router in one worker: past it, the
/// worker reads no more requests until they drain.
const DEFERRED_LIMIT: usize = 65_536;
/// How soon to retry sending commands the router's queue had no room for.
const DEFERRED_RETRY: Duration = Duration::from_millis(1);
/// Reads per socket per readiness event before other sockets get a turn.
const READS_PER_EVENT: usize = 8;
const READ_CHUNK: usize = 64 * 1024;
/// Timer-heap size past which timers of closed connections are purged.
const TIMER_PURGE_AT: usize = 65_536;
/// How often local counters and latency samples are merged into `Metrics`.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The parts of the config a worker needs, resolved once.
pub struct WorkerSettings {
    pub session: Arc<SessionConfig>,
    /// `[server] max_connections_per_ip`; 0 = no limit.
    pub max_connections_per_ip: usize,
    /// Commands waiting for room in the router's queue past which the
    /// worker stops reading requests (the deferred queue's bound).
    pub deferred_limit: usize,
    /// The wss/https listener's TLS, when a certificate is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub shutdown_grace: Duration,
    pub socket_send_buffer_bytes: usize,
    pub max_connections: usize,
}

impl WorkerSettings {
    pub fn from_config(
        c: &Config,
        epoch: Arc<crate::epoch::Epoch>,
        tls: Option<Arc<rustls::ServerConfig>>,
        auth: Option<Arc<crate::auth::Entitlements>>,
        status: Arc<dyn BrokerStatus>,
    ) -> WorkerSettings {
        WorkerSettings {
            session: Arc::new(SessionConfig::from_config(c, epoch, auth, status)),
            max_connections_per_ip: c.server.max_connections_per_ip,
            deferred_limit: DEFERRED_LIMIT,
            tls,
            shutdown_grace: ms(c.server.shutdown_grace_ms),
            socket_send_buffer_bytes: c.subscriber.socket_send_buffer_bytes,
            max_connections: c.server.max_connections,
        }
    }
}

/// One accepted connection: its socket and its protocol state.
struct Conn {
    id: ConnId,
    transport: Transport,
    link: Connection,
    /// The connection asked not to be read (`Action::PauseRead`).
    reads_paused: bool,
}

/// Connections per client IP across all workers (only with
/// `max_connections_per_ip`): touched at accept and close, never per quote.
pub type IpCounts = Arc<parking_lot::Mutex<HashMap<IpAddr, u32>>>;

pub struct Worker {
    id: usize,
    poll: Poll,
    listener: Option<TcpListener>,
    /// The same routes over TLS (`wss://`, `https://`), when configured.
    tls_listener: Option<TcpListener>,
    conns: Slab<Conn>,
    rx: Receiver<WorkerMsg>,
    slices_queued: Arc<AtomicUsize>,
    settings: Arc<WorkerSettings>,
    metrics: Arc<Metrics>,
    routes: RouteIndex,
    router_tx: Sender<RouterCmd>,
    /// Commands the router's queue had no room for; sent first next turn.
    /// A worker never blocks on the router (the router may be blocked on us).
    /// Bounded: see `WorkerSettings::deferred_limit`.
    deferred: VecDeque<RouterCmd>,
    /// Connections not read while `deferred` is full.
    reads_held: Vec<usize>,
    /// `max_hz` deadlines: when a connection's held quote of a topic is due.
    /// One heap per worker, no timer per subscription.
    timers: BinaryHeap<Reverse<(Instant, ConnId, Arc<str>)>>,
    /// What the connections asked for while handling the current event.
    fx: Effects,
    cork: Cork,
    now: Instant,
    open_connections: Arc<AtomicUsize>,
    ip_counts: IpCounts,
    /// The client address each connection is counted under against
    /// `max_connections_per_ip`, by slot (only with that limit: most
    /// brokers pay nothing for it per connection).
    counted_ips: HashMap<usize, IpAddr>,
    shutdown: Arc<AtomicBool>,
    next_serial: u64,
    scratch: Vec<u8>,
    /// Connections that may have more input: edge-triggered readiness will
    /// not fire again for them, so they get another turn next loop.
    unread: Vec<usize>,
    /// Connections whose last flush stopped at [`cork::FLUSH_LIMIT`].
    write_again: Vec<usize>,
    /// `accept` failed (e.g. EMFILE) with connections possibly still in the
    /// backlog: the sweep tries again.
    accept_retry: bool,
    /// Ingest decode → bytes handed to a subscriber's socket.
    delivery_latency: LatencyRecorder,
    /// Router send → this worker picking the batch up.
    hop_latency: LatencyRecorder,
    frames_out: u64,
    /// Write calls to subscriber sockets since the last publish.
    socket_writes: u64,
    /// Frames of one write, copied together (see `sockets::SocketWriter`).
    write_buf: Vec<u8>,
    /// Quotes handed to sockets since the last metrics update.
    deliveries: u64,
    /// Bytes handed to sockets since the last metrics update (added to the
    /// shared counter once per turn, not per flush).
    bytes_out: u64,
    last_publish: Instant,
}

pub struct WorkerParts {
    pub id: usize,
    pub poll: Poll,
    pub listener: std::net::TcpListener,
    pub tls_listener: Option<std::net::TcpListener>,
    pub rx: Receiver<WorkerMsg>,
    /// Snapshot slices the router has sent and this worker not yet handled.
    pub slices_queued: Arc<AtomicUsize>,
    pub router_tx: Sender<RouterCmd>,
    pub settings: Arc<WorkerSettings>,
    pub metrics: Arc<Metrics>,
    pub open_connections: Arc<AtomicUsize>,
    pub ip_counts: IpCounts,
    pub shutdown: Arc<AtomicBool>,
}

impl Worker {
    /// Starts a worker on a thread of its own, built there: its connections
    /// hold worker-local quote handles (`LocalQuote`), so a worker never
    /// crosses threads. A failure to set it up is returned here.
    pub fn spawn(name: String, parts: WorkerParts) -> io::Result<JoinHandle<()>> {
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread =
            std::thread::Builder::new()
                .name(name)
                .spawn(move || match Worker::new(parts) {
                    Ok(worker) => {
                        let _ = ready_tx.send(Ok(()));
                        worker.run();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(thread),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("a worker thread ended while starting"))
            }
        }
    }

    fn new(parts: WorkerParts) -> io::Result<Worker> {
        let mut listener = TcpListener::from_std(parts.listener);
        parts
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let tls_listener = match parts.tls_listener {
            Some(l) => {
                let mut l = TcpListener::from_std(l);
                parts
                    .poll
                    .registry()
                    .register(&mut l, TLS_LISTENER, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        Ok(Worker {
            id: parts.id,
            poll: parts.poll,
            listener: Some(listener),
            tls_listener,
            conns: Slab::new(),
            rx: parts.rx,
            slices_queued: parts.slices_queued,
            settings: parts.settings,
            metrics: parts.metrics,
            routes: RouteIndex::default(),
            router_tx: parts.router_tx,
            deferred: VecDeque::new(),
            reads_held: Vec::new(),
            timers: BinaryHeap::new(),
            fx: Effects::default(),
            cork: Cork::default(),
            now: Instant::now(),
            open_connections: parts.open_connections,
            ip_counts: parts.ip_counts,
            counted_ips: HashMap::new(),
            shutdown: parts.shutdown,
            next_serial: 0,
            scratch: vec![0; READ_CHUNK],
            unread: Vec::new(),
            write_again: Vec::new(),
            accept_retry: false,
            delivery_latency: LatencyRecorder::default(),
            hop_latency: LatencyRecorder::default(),
            frames_out: 0,
            socket_writes: 0,
            write_buf: Vec::new(),
            deliveries: 0,
            bytes_out: 0,
            last_publish: Instant::now(),
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        let mut shutdown_deadline: Option<Instant> = None;
        let mut busy = false;
        loop {
            let timeout = if busy {
                Duration::ZERO
            } else if !self.deferred.is_empty() {
                // Commands wait for room in the router's queue (and acks
                // behind them): retry soon, without spinning.
                DEFERRED_RETRY
            } else {
                let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
                let wake = next_timer.map_or(next_sweep, |t| t.min(next_sweep));
                // Round up: waking a moment early would just poll again.
                wake.saturating_duration_since(Instant::now()) + Duration::from_micros(100)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(worker = self.id, error = %e, "poll failed; worker stops");
                    break;
                }
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(false),
                    TLS_LISTENER => self.accept(true),
                    WAKER => {}
                    Token(t) => {
                        let slot = t - FIRST_CONN;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(slot);
                        }
                        if event.is_writable() {
                            // Corked: written with everything else this turn.
                            self.cork.mark(slot);
                        }
                    }
                }
            }
            for slot in std::mem::take(&mut self.unread) {
                self.read(slot);
            }
            for slot in std::mem::take(&mut self.write_again) {
                self.cork.mark(slot);
            }
            self.fire_timers();
            busy = self.handle_router_msgs();
            self.retry_deferred();
            self.flush_corked();
            busy |= !self.unread.is_empty() || !self.write_again.is_empty();

            if shutdown_deadline.is_none() && self.shutdown.load(Ordering::Acquire) {
                shutdown_deadline = Some(self.now + self.settings.shutdown_grace);
                self.begin_shutdown();
            }
            if self.now >= next_sweep {
                self.sweep();
                next_sweep = self.now + SWEEP_INTERVAL;
            }
            // The sweep or the shutdown may have resumed paused reads.
            busy |= !self.unread.is_empty() || !self.write_again.is_empty();
            // After every flush of the turn (the sweep's and the shutdown's
            // too), so the last turn before exit is counted.
            self.add_turn_counters();
            if self.now.duration_since(self.last_publish) >= PUBLISH_INTERVAL {
                self.publish_stats();
            }
            if let Some(deadline) = shutdown_deadline {
                if self.conns.is_empty() || self.now >= deadline {
                    break;
                }
            }
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            self.remove(slot);
        }
        self.add_turn_counters();
        self.publish_stats();
    }

    /// Adds this turn's counts to the shared counters: one atomic add per
    /// counter per turn, never one per delivery or per flush.
    fn add_turn_counters(&mut self) {
        let m = &self.metrics;
        metrics::add(&m.deliveries, std::mem::take(&mut self.deliveries));
        metrics::add(&m.conflated, std::mem::take(&mut self.fx.conflated));
        metrics::add(&m.bytes_out, std::mem::take(&mut self.bytes_out));
    }

    fn remove(&mut self, slot: usize) {
        if !self.conns.contains(slot) {
            return;
        }
        let mut conn = self.conns.remove(slot);
        if conn.transport.is_handshaking() {
            self.metrics
                .tls_handshake(crate::metrics::TlsHandshake::Failed);
        }
        conn.link.on_removed(&mut self.fx);
        self.apply_effects(conn.id);
        if let Some(ip) = self.counted_ips.remove(&slot) {
            let mut counts = self.ip_counts.lock();
            if let Some(n) = counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
        let _ = self.poll.registry().deregister(&mut conn.transport);
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A waker for `poll`, registered under the token the worker listens on.
pub fn waker(poll: &Poll) -> io::Result<Arc<Waker>> {
    Ok(Arc::new(Waker::new(poll.registry(), WAKER)?))
}

#[cfg(test)]
mod tests;
