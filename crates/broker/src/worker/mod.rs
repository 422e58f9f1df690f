//! A worker thread: its own `mio::Poll`, its own SO_REUSEPORT listener, and
//! every connection it accepted. It receives shared encoded quotes from the
//! router and queues them on its subscribers; nothing here is shared with
//! other workers except counters.

mod conn;
mod http;
mod outbound;
mod subscriptions;

pub mod internals {
    pub use super::outbound::{OutFrame, Outbound};
    pub use super::subscriptions::SubscriptionIndex;
}

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::{ms, Config, SlowConsumerPolicy};
use crate::messages::{ConnId, RouterCmd, WorkerMsg};
use crate::metrics::{self, LatencyRecorder, Metrics};
use crate::transport::Transport;
use conn::{Conn, State};
use outbound::OutFrame;
use subscriptions::SubscriptionIndex;

const LISTENER: Token = Token(0);
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// How often timeouts (handshake, idle ping, dead peer, closing) are checked.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// Work per loop turn (quote routings to connections: queued, held or
/// conflated alike) before everything is flushed and sockets get a look
/// again. Under load, messages pile up in the channel and a turn takes
/// several: more frames per `writev`, fewer syscalls per delivery (the
/// kernel's TCP send path is most of the cost). The bound also keeps one
/// connection's burst (≤ 8192 frames) small next to a second of traffic.
const DELIVERIES_PER_TURN: u64 = 8192;
/// Reads per socket per readiness event before other sockets get a turn.
const READS_PER_EVENT: usize = 8;
/// Control-lane bytes (pongs) a peer may leave unread before we stop
/// reading its pings.
const PRIORITY_LIMIT: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Timer-heap size past which timers of closed connections are purged.
const TIMER_PURGE_AT: usize = 65_536;
/// How often local counters and latency samples are merged into `Metrics`.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The parts of the config a worker needs, resolved once.
pub struct WorkerSettings {
    pub max_head_bytes: usize,
    pub handshake_timeout: Duration,
    pub max_message_bytes: usize,
    pub idle_ping: Duration,
    pub dead_peer: Duration,
    pub close_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_subscriptions: usize,
    pub outbound_budget_bytes: usize,
    pub slow_consumer_policy: SlowConsumerPolicy,
    pub disconnect_after: Duration,
    pub stall_timeout: Duration,
    pub socket_send_buffer_bytes: usize,
    pub max_connections: usize,
}

impl WorkerSettings {
    pub fn from_config(c: &Config) -> WorkerSettings {
        WorkerSettings {
            max_head_bytes: c.server.max_head_bytes,
            handshake_timeout: ms(c.server.handshake_timeout_ms),
            max_message_bytes: c.websocket.max_message_bytes,
            idle_ping: ms(c.websocket.idle_ping_ms),
            dead_peer: ms(c.websocket.dead_peer_ms),
            close_timeout: ms(c.websocket.close_timeout_ms),
            shutdown_grace: ms(c.server.shutdown_grace_ms),
            max_subscriptions: c.subscriber.max_subscriptions,
            outbound_budget_bytes: c.subscriber.outbound_budget_bytes,
            slow_consumer_policy: c.subscriber.slow_consumer_policy,
            disconnect_after: ms(c.subscriber.disconnect_after_ms),
            stall_timeout: ms(c.subscriber.stall_timeout_ms),
            socket_send_buffer_bytes: c.subscriber.socket_send_buffer_bytes,
            max_connections: c.server.max_connections,
        }
    }
}

/// Everything a connection may touch while handling its events.
pub struct Ctx {
    pub id: usize,
    pub settings: Arc<WorkerSettings>,
    pub metrics: Arc<Metrics>,
    pub epoch: Arc<str>,
    pub subs: SubscriptionIndex,
    router_tx: Sender<RouterCmd>,
    /// Commands the router's queue had no room for; sent first next turn.
    /// A worker never blocks on the router (the router may be blocked on us).
    deferred: VecDeque<RouterCmd>,
    pub dirty: Vec<usize>,
    pub now: Instant,
    /// Deliveries queued since the last metrics update.
    pub deliveries: u64,
    /// Quotes replaced by a newer one before a slow reader got them.
    pub conflated: u64,
    /// `max_hz` deadlines: when a connection's held quote of a topic is due.
    /// One heap per worker, no timer per subscription.
    pub timers: BinaryHeap<Reverse<(Instant, ConnId, Arc<str>)>>,
}

impl Ctx {
    pub fn send_router(&mut self, cmd: RouterCmd) {
        if !self.deferred.is_empty() {
            self.deferred.push_back(cmd);
            return;
        }
        match self.router_tx.try_send(cmd) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(cmd)) => self.deferred.push_back(cmd),
        }
    }

    fn retry_deferred(&mut self) {
        while let Some(cmd) = self.deferred.pop_front() {
            match self.router_tx.try_send(cmd) {
                Ok(()) => {}
                Err(TrySendError::Full(cmd)) => {
                    self.deferred.push_front(cmd);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.deferred.clear();
                    return;
                }
            }
        }
    }
}

pub struct Worker {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    rx: Receiver<WorkerMsg>,
    ctx: Ctx,
    open_connections: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
    next_serial: u64,
    scratch: Vec<u8>,
    /// Connections that may have more input: edge-triggered readiness will
    /// not fire again for them, so they get another turn next loop.
    unread: Vec<usize>,
    /// `accept` failed (e.g. EMFILE) with connections possibly still in the
    /// backlog: the sweep tries again.
    accept_retry: bool,
    /// Ingest decode → bytes handed to a subscriber's socket.
    delivery_latency: LatencyRecorder,
    /// Router send → this worker picking the batch up.
    hop_latency: LatencyRecorder,
    frames_out: u64,
    last_publish: Instant,
}

pub struct WorkerParts {
    pub id: usize,
    pub poll: Poll,
    pub listener: std::net::TcpListener,
    pub rx: Receiver<WorkerMsg>,
    pub router_tx: Sender<RouterCmd>,
    pub settings: Arc<WorkerSettings>,
    pub metrics: Arc<Metrics>,
    pub epoch: Arc<str>,
    pub open_connections: Arc<AtomicUsize>,
    pub shutdown: Arc<AtomicBool>,
}

impl Worker {
    pub fn new(parts: WorkerParts) -> io::Result<Worker> {
        let mut listener = TcpListener::from_std(parts.listener);
        parts
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Worker {
            poll: parts.poll,
            listener: Some(listener),
            conns: Slab::new(),
            rx: parts.rx,
            ctx: Ctx {
                id: parts.id,
                settings: parts.settings,
                metrics: parts.metrics,
                epoch: parts.epoch,
                subs: SubscriptionIndex::default(),
                router_tx: parts.router_tx,
                deferred: VecDeque::new(),
                dirty: Vec::new(),
                now: Instant::now(),
                deliveries: 0,
                conflated: 0,
                timers: BinaryHeap::new(),
            },
            open_connections: parts.open_connections,
            shutdown: parts.shutdown,
            next_serial: 0,
            scratch: vec![0; READ_CHUNK],
            unread: Vec::new(),
            accept_retry: false,
            delivery_latency: LatencyRecorder::default(),
            hop_latency: LatencyRecorder::default(),
            frames_out: 0,
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
            } else {
                let next_timer = self.ctx.timers.peek().map(|Reverse((at, _, _))| *at);
                let wake = next_timer.map_or(next_sweep, |t| t.min(next_sweep));
                // Round up: waking a moment early would just poll again.
                wake.saturating_duration_since(Instant::now()) + Duration::from_micros(100)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(worker = self.ctx.id, error = %e, "poll failed; worker stops");
                    break;
                }
            }
            self.ctx.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let slot = t - FIRST_CONN;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(slot);
                        }
                        if event.is_writable() {
                            self.flush(slot);
                        }
                    }
                }
            }
            for slot in std::mem::take(&mut self.unread) {
                self.read(slot);
            }
            self.fire_timers();
            busy = self.handle_router_msgs();
            self.flush_dirty();
            busy |= !self.unread.is_empty();
            self.ctx.retry_deferred();
            metrics::add(
                &self.ctx.metrics.deliveries,
                std::mem::take(&mut self.ctx.deliveries),
            );
            metrics::add(
                &self.ctx.metrics.conflated,
                std::mem::take(&mut self.ctx.conflated),
            );
            if self.ctx.now.duration_since(self.last_publish) >= PUBLISH_INTERVAL {
                self.publish_stats();
            }

            if shutdown_deadline.is_none() && self.shutdown.load(Ordering::Acquire) {
                shutdown_deadline = Some(self.ctx.now + self.ctx.settings.shutdown_grace);
                self.begin_shutdown();
            }
            if self.ctx.now >= next_sweep {
                self.sweep();
                next_sweep = self.ctx.now + SWEEP_INTERVAL;
            }
            if let Some(deadline) = shutdown_deadline {
                if self.conns.is_empty() || self.ctx.now >= deadline {
                    break;
                }
            }
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            self.remove(slot);
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _addr)) => {
                    let open = self.open_connections.fetch_add(1, Ordering::Relaxed);
                    if open >= self.ctx.settings.max_connections {
                        self.open_connections.fetch_sub(1, Ordering::Relaxed);
                        metrics::add(&self.ctx.metrics.connections_refused, 1);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    if self.ctx.settings.socket_send_buffer_bytes > 0 {
                        let size = self.ctx.settings.socket_send_buffer_bytes;
                        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(size);
                    }
                    let entry = self.conns.vacant_entry();
                    let slot = entry.key();
                    let mut transport = Transport::Plain(stream);
                    if let Err(e) = self.poll.registry().register(
                        &mut transport,
                        Token(slot + FIRST_CONN),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::warn!(error = %e, "cannot register connection");
                        self.open_connections.fetch_sub(1, Ordering::Relaxed);
                        continue;
                    }
                    self.next_serial += 1;
                    let id = ConnId {
                        slot,
                        serial: self.next_serial,
                    };
                    let budget = self.ctx.settings.outbound_budget_bytes;
                    entry.insert(Conn::new(id, transport, self.ctx.now, budget));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends. Edge-triggered: connections already
                    // in the backlog would get no new edge, so the sweep
                    // retries; don't spin on it this turn.
                    tracing::warn!(error = %e, "accept failed; retrying at the next sweep");
                    self.accept_retry = true;
                    return;
                }
            }
        }
    }

    fn read(&mut self, slot: usize) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            if conn.out.priority_bytes() > PRIORITY_LIMIT {
                // Resumed from flush() once the peer reads its pongs.
                return;
            }
            match conn.transport.read(&mut self.scratch) {
                Ok(0) => {
                    self.remove(slot);
                    return;
                }
                Ok(n) => {
                    let data = self.scratch.get(..n).unwrap_or_default();
                    conn.on_bytes(&mut self.ctx, data);
                    if let State::Http = conn.state {
                        if conn.read_buf.len() > self.ctx.settings.max_head_bytes + READ_CHUNK {
                            // route() answered 431 already; never buffer more.
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.remove(slot);
                    return;
                }
            }
        }
        self.unread.push(slot);
    }

    fn flush_dirty(&mut self) {
        // A flush can resume a paused read, which can dirty connections
        // again: take the list until it stays empty.
        while !self.ctx.dirty.is_empty() {
            for slot in std::mem::take(&mut self.ctx.dirty) {
                if let Some(conn) = self.conns.get_mut(slot) {
                    conn.dirty = false;
                }
                self.flush(slot);
            }
        }
    }

    fn flush(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let paused = conn.out.priority_bytes() > PRIORITY_LIMIT;
        let mut written = 0;
        let now = Instant::now();
        let (latency, frames) = (&mut self.delivery_latency, &mut self.frames_out);
        let mut on_sent = |frame: &OutFrame| {
            *frames += 1;
            if let OutFrame::Quote(quote, _) = frame {
                latency.record(now.saturating_duration_since(quote.decoded_at));
            }
        };
        let result = conn
            .out
            .write_to(&mut conn.transport, &mut written, &mut on_sent);
        metrics::add(&self.ctx.metrics.bytes_out, written as u64);
        match result {
            Ok(drained) => {
                if let State::Closing { write_shut, .. } = &mut conn.state {
                    if drained && !*write_shut {
                        *write_shut = true;
                        conn.transport.shutdown_write();
                    }
                }
                if written > 0 || drained {
                    conn.progress_at = now;
                }
                if paused && conn.out.priority_bytes() <= PRIORITY_LIMIT {
                    // Resume reading next turn, within the per-event read cap.
                    self.unread.push(slot);
                }
            }
            Err(_) => self.remove(slot),
        }
    }

    /// Handles router messages until the channel is empty (false) or the
    /// turn's work budget is spent (true: more may be waiting). Work counts
    /// every connection a quote was routed to (delivered, held or conflated
    /// alike), so a turn always ends and sockets, timers and the sweep get
    /// their turn even when every quote is conflated.
    fn handle_router_msgs(&mut self) -> bool {
        let mut work: u64 = 0;
        while work < DELIVERIES_PER_TURN {
            let Ok(msg) = self.rx.try_recv() else {
                return false;
            };
            match msg {
                WorkerMsg::Quotes { quotes, sent_at } => {
                    self.hop_latency
                        .record_n(sent_at.elapsed(), quotes.len() as u64);
                    for quote in &quotes {
                        let targets = self.ctx.subs.targets(&quote.topic);
                        work += targets.len().max(1) as u64;
                        for target in targets.iter() {
                            if let Some(conn) = self.conns.get_mut(target.slot) {
                                conn.push_quote(&mut self.ctx, quote, target.min_interval);
                            }
                        }
                    }
                }
                WorkerMsg::Activate {
                    conn,
                    request,
                    snapshots,
                } => {
                    work += snapshots.len().max(1) as u64;
                    if let Some(c) = self.conns.get_mut(conn.slot) {
                        if c.id == conn {
                            c.activate(&mut self.ctx, request, snapshots);
                        }
                    }
                }
            }
        }
        true
    }

    /// Drops timers of connections that have gone, once they pile up
    /// (reconnecting `max_hz` subscribers would otherwise leave theirs until
    /// their deadline, up to a day away).
    fn purge_timers(&mut self) {
        if self.ctx.timers.len() <= TIMER_PURGE_AT.max(2 * self.conns.len()) {
            return;
        }
        let conns = &self.conns;
        self.ctx
            .timers
            .retain(|Reverse((_, id, _))| conns.get(id.slot).is_some_and(|c| c.id == *id));
    }

    /// Sends the held quotes whose `max_hz` spacing has passed.
    fn fire_timers(&mut self) {
        while let Some(Reverse((at, id, _))) = self.ctx.timers.peek() {
            if *at > self.ctx.now {
                return;
            }
            let id = *id;
            let Some(Reverse((_, _, topic))) = self.ctx.timers.pop() else {
                return;
            };
            if let Some(conn) = self.conns.get_mut(id.slot) {
                if conn.id == id {
                    conn.release_held(&mut self.ctx, &topic);
                }
            }
        }
    }

    fn publish_stats(&mut self) {
        let now = self.ctx.now;
        self.last_publish = now;
        let m = &self.ctx.metrics;
        metrics::add(&m.frames_out, std::mem::take(&mut self.frames_out));
        if let Some(depth) = m.worker_queue_depth.get(self.ctx.id) {
            depth.store(self.rx.len() as u64, Ordering::Relaxed);
        }
        m.delivery_latency
            .lock()
            .absorb(&mut self.delivery_latency, now);
        m.router_worker_latency
            .lock()
            .absorb(&mut self.hop_latency, now);
    }

    /// Timeouts. O(connections) every SWEEP_INTERVAL: cheap next to the
    /// per-quote work, and no timer state per connection.
    fn sweep(&mut self) {
        if std::mem::take(&mut self.accept_retry) {
            self.accept();
        }
        self.purge_timers();
        let now = self.ctx.now;
        let s = &self.ctx.settings;
        let mut expired = Vec::new();
        let mut to_ping = Vec::new();
        let mut too_slow = Vec::new();
        for (slot, conn) in self.conns.iter_mut() {
            if matches!(conn.state, State::Ws(_)) && conn.is_too_slow(s, now) {
                too_slow.push(slot);
                continue;
            }
            match &conn.state {
                State::Http => {
                    if now.duration_since(conn.opened_at) >= s.handshake_timeout {
                        expired.push(slot);
                    }
                }
                State::Ws(session) => match session.ping_sent_at {
                    None if now.duration_since(session.last_heard) >= s.idle_ping => {
                        to_ping.push(slot)
                    }
                    Some(at) if now.duration_since(at) >= s.dead_peer => expired.push(slot),
                    _ => {}
                },
                State::Closing { deadline, .. } => {
                    if now >= *deadline {
                        expired.push(slot);
                    }
                }
            }
        }
        for slot in expired {
            self.remove(slot);
        }
        for slot in too_slow {
            if let Some(conn) = self.conns.get_mut(slot) {
                tracing::info!(worker = self.ctx.id, conn = slot, "slow consumer closed");
                metrics::add(&self.ctx.metrics.slow_consumer_closes, 1);
                conn.close_with(
                    &mut self.ctx,
                    tickwire_ws::close::POLICY_VIOLATION,
                    "slow consumer",
                );
            }
        }
        for slot in to_ping {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.ping(&mut self.ctx);
            }
        }
        self.flush_dirty();
    }

    fn begin_shutdown(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            match conn.state {
                State::Ws(_) => {
                    conn.close_with(&mut self.ctx, tickwire_ws::close::GOING_AWAY, "going away")
                }
                State::Http => self.remove(slot),
                State::Closing { .. } => {}
            }
        }
        self.flush_dirty();
    }

    fn remove(&mut self, slot: usize) {
        if !self.conns.contains(slot) {
            return;
        }
        let mut conn = self.conns.remove(slot);
        conn.leave_session(&mut self.ctx);
        let _ = self.poll.registry().deregister(&mut conn.transport);
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A waker for `poll`, registered under the token the worker listens on.
pub fn waker(poll: &Poll) -> io::Result<Arc<Waker>> {
    Ok(Arc::new(Waker::new(poll.registry(), WAKER)?))
}
