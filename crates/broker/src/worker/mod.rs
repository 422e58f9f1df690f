//! A worker thread: the I/O shell around its connections' sans-IO state
//! machines (`crate::session::Connection`). It owns its own `mio::Poll`,
//! its own SO_REUSEPORT listener and every connection it accepted; it reads
//! sockets into the connections, hands them router messages and timers,
//! carries out the actions they return (`effects`), and writes what they
//! queue. Nothing here is shared with other workers except counters.
//!
//! The worker is a composition of owned parts, each with private state
//! and its own tests: `Admission` (connection and per-IP caps),
//! `Schedule` (what to flush, read or write again this turn, and the
//! `max_hz` timers; the flush policy itself is `cork`), `RouterChannel`
//! (router messages in, commands out, never blocking), `WorkerStats`
//! (counts batched into the shared metrics), the `RouteIndex` (which
//! connections a topic reaches) and `Following` (what the worker follows,
//! and the newest quotes with which it answers subscribes itself). The
//! rest — the poller, the listeners and the connections — is the I/O this
//! file and `sockets` do.

mod admission;
mod cork;
mod effects;
mod following;
mod housekeeping;
mod route_index;
mod router_channel;
mod router_msgs;
mod schedule;
mod sockets;
mod stats;

pub mod internals {
    pub use super::following::Following;
    pub use super::route_index::RouteIndex;
    pub use crate::session::outbound::{OutFrame, Outbound, Pushed};
}

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::{ms, Config};
use crate::doorbell::BellSender;
use crate::messages::{ConnId, RouterCmd, WorkerMsg};
use crate::metrics::Metrics;
use crate::session::{BrokerStatus, Connection, Effects, SessionConfig};
use crate::transport::Transport;
use admission::Admission;
pub use admission::IpCounts;
use following::Following;
use route_index::RouteIndex;
use router_channel::RouterChannel;
use schedule::Schedule;
use stats::WorkerStats;

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
    /// The serial of its [`ConnId`] (the slot is its key in the slab): a
    /// late message for a closed connection never reaches a new one that
    /// reused the slot.
    serial: u32,
    transport: Transport,
    link: Connection,
    /// The connection asked not to be read (`Action::PauseRead`).
    reads_paused: bool,
    /// The socket may hold input not read yet: false only after a read
    /// found it drained and no readiness event came since. A resumed read
    /// that would only say EAGAIN is then skipped (one per subscribe in a
    /// reconnect storm: reads pause while the router takes the command).
    maybe_unread: bool,
}

pub struct Worker {
    id: usize,
    settings: Arc<WorkerSettings>,
    poll: Poll,
    listener: Option<TcpListener>,
    /// The same routes over TLS (`wss://`, `https://`), when configured.
    tls_listener: Option<TcpListener>,
    conns: Slab<Conn>,
    next_serial: u32,
    admission: Admission,
    schedule: Schedule,
    router: RouterChannel,
    routes: RouteIndex,
    /// What this worker follows, and the newest quotes of its topics.
    following: Following,
    stats: WorkerStats,
    /// What the connections asked for while handling the current event.
    fx: Effects,
    now: Instant,
    shutdown: Arc<AtomicBool>,
    /// Bytes of one read, handed to the connection read.
    scratch: Vec<u8>,
    /// The bytes of one write, laid out by the connection
    /// (`Connection::poll_transmit`); reused across flushes.
    write_buf: Vec<u8>,
    /// `accept` failed (e.g. EMFILE) with connections possibly still in the
    /// backlog: the sweep tries again.
    accept_retry: bool,
}

pub struct WorkerParts {
    pub id: usize,
    pub poll: Poll,
    pub listener: std::net::TcpListener,
    pub tls_listener: Option<std::net::TcpListener>,
    pub rx: Receiver<WorkerMsg>,
    /// Snapshot slices the router has sent and this worker not yet handled.
    pub slices_queued: Arc<AtomicUsize>,
    pub router_tx: BellSender<RouterCmd>,
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
        let now = Instant::now();
        let settings = parts.settings;
        Ok(Worker {
            id: parts.id,
            poll: parts.poll,
            listener: Some(listener),
            tls_listener,
            conns: Slab::new(),
            next_serial: 0,
            admission: Admission::new(
                parts.open_connections,
                settings.max_connections,
                parts.ip_counts,
                settings.max_connections_per_ip,
            ),
            schedule: Schedule::default(),
            router: RouterChannel::new(
                parts.rx,
                parts.router_tx,
                parts.slices_queued,
                settings.deferred_limit,
            ),
            routes: RouteIndex::default(),
            following: Following::default(),
            stats: WorkerStats::new(parts.id, parts.metrics, now),
            settings,
            fx: Effects::default(),
            now,
            shutdown: parts.shutdown,
            scratch: vec![0; READ_CHUNK],
            write_buf: Vec::new(),
            accept_retry: false,
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
            } else if self.router.is_backed_up() {
                // Commands wait for room in the router's queue (and acks
                // behind them): retry soon, without spinning.
                DEFERRED_RETRY
            } else {
                let wake = self
                    .schedule
                    .next_timer()
                    .map_or(next_sweep, |t| t.min(next_sweep));
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
                        if event.is_error() {
                            // A hard error (for TCP, without `IP_RECVERR`:
                            // a reset, or retransmits timed out): nothing
                            // more can be answered, so nothing is read (a
                            // read would only fetch the error: one syscall
                            // per connection in a storm whose clients
                            // leave by RST, as peerbench's do).
                            self.remove(slot);
                            continue;
                        }
                        if event.is_readable() || event.is_read_closed() {
                            if let Some(conn) = self.conns.get_mut(slot) {
                                conn.maybe_unread = true;
                            }
                            // Without a FIN in the event, a short read has
                            // taken everything (see `read`).
                            let short_ends = !event.is_read_closed();
                            self.read(slot, short_ends);
                        }
                        if event.is_writable() {
                            // Corked: written with everything else this turn.
                            self.schedule.flush_later(slot);
                        }
                    }
                }
            }
            for slot in self.schedule.start_turn() {
                self.read(slot, false);
            }
            self.fire_timers();
            busy = self.handle_router_msgs();
            self.retry_deferred();
            self.flush_corked();
            busy |= self.schedule.has_more();

            if shutdown_deadline.is_none() && self.shutdown.load(Ordering::Acquire) {
                shutdown_deadline = Some(self.now + self.settings.shutdown_grace);
                self.begin_shutdown();
            }
            if self.now >= next_sweep {
                self.sweep();
                next_sweep = self.now + SWEEP_INTERVAL;
            }
            if self.router.is_backed_up() {
                // Commands staged after the hand-over (the flush's, the
                // sweep's) go now, not after a sleep; a full queue keeps
                // them for the next turn (`DEFERRED_RETRY`).
                self.retry_deferred();
                self.flush_corked();
            }
            // The sweep or the shutdown may have resumed paused reads.
            busy |= self.schedule.has_more();
            // After every flush of the turn (the sweep's and shutdown's
            // too), so the last turn before exit is counted.
            self.stats.end_turn(std::mem::take(&mut self.fx.conflated));
            self.stats.publish(self.now, self.router.queued(), false);
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
        // What the removals staged (interest dropped, snapshots cancelled)
        // goes to the router, which may outlive this worker.
        self.retry_deferred();
        self.stats.end_turn(std::mem::take(&mut self.fx.conflated));
        self.stats.publish(self.now, self.router.queued(), true);
    }

    fn remove(&mut self, slot: usize) {
        if !self.conns.contains(slot) {
            return;
        }
        let mut conn = self.conns.remove(slot);
        if conn.transport.is_handshaking() {
            self.stats
                .metrics()
                .tls_handshake(crate::metrics::TlsHandshake::Failed);
        }
        conn.link.on_removed(&mut self.fx);
        self.apply_effects(ConnId {
            slot,
            serial: conn.serial,
        });
        self.admission.release(slot);
        // Linux drops a socket from epoll when its last descriptor closes
        // (dropping `conn` here): the `epoll_ctl` call is saved.
        if !cfg!(target_os = "linux") {
            let _ = self.poll.registry().deregister(&mut conn.transport);
        }
    }
}

/// The connection `id` names, if it is still open (not a new one in its
/// slot).
fn conn_of(conns: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns.get_mut(id.slot).filter(|c| c.serial == id.serial)
}

/// A waker for `poll`, registered under the token the worker listens on.
pub fn waker(poll: &Poll) -> io::Result<Arc<Waker>> {
    Ok(Arc::new(Waker::new(poll.registry(), WAKER)?))
}

#[cfg(test)]
mod tests;
