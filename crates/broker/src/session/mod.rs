//! One connection on the WebSocket listener as a state machine without I/O,
//! in the manner of quinn-proto's `Connection`: the worker (the I/O shell)
//! feeds it events — bytes read, router messages, timers, ticks — with the
//! time, and it answers with bytes to write (its [`Outbound`] queue, the
//! `poll_transmit` of this design) and [`Action`]s for the shell to carry
//! out (router commands, route-index changes, timers, counters, drop).
//!
//! Phases: `Http` (reading the request head) → `Ws` (a subscriber) →
//! `Closing` (a close frame or final response is queued: flush it,
//! half-close, discard input until the peer closes or a deadline passes).
//!
//! Where each rule lives: HTTP routing in `http`, WebSocket frames, pings,
//! closes, timeouts and the reply gate here, subscription rules
//! (atomicity, at-most-once, most-specific options, snapshots) in
//! `subscriptions`, `max_hz` in `throttle`, the byte budget and conflation
//! in `outbound`.

mod delivery;
mod entitlements;
mod frames;
mod gate;
mod http;
mod lifecycle;
pub mod outbound;
#[cfg(test)]
mod props;
mod rate;
mod subscriptions;
#[cfg(test)]
mod tests;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::Selector;
use tickwire_ws::frame::{DecoderLimits, FrameDecoder, Role};
use tickwire_ws::handshake::accept_response;

use crate::auth::{Entitlements, GrantSet};
use crate::config::{ms, Config, SlowConsumerPolicy};
use crate::messages::Format;
use gate::ReplyGate;
use http::{route, HttpOutcome};
use outbound::Outbound;
use rate::{RequestBucket, SnapshotBucket};
use subscriptions::Subscriptions;

/// Control-lane bytes (pongs) a peer may leave unread before the broker
/// stops reading its pings.
const PRIORITY_LIMIT: usize = 64 * 1024;
/// Subscribe commands of one connection waiting for the router before the
/// broker stops reading that connection.
const MAX_PENDING_COMMANDS: u64 = 64;

/// The parts of the config a connection obeys, resolved once.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub max_head_bytes: usize,
    pub handshake_timeout: Duration,
    pub max_message_bytes: usize,
    pub idle_ping: Duration,
    pub dead_peer: Duration,
    pub close_timeout: Duration,
    pub max_subscriptions: usize,
    pub requests_per_second: u32,
    pub request_burst: u32,
    pub snapshots_per_second: u32,
    pub outbound_budget_bytes: usize,
    pub slow_consumer_policy: SlowConsumerPolicy,
    pub disconnect_after: Duration,
    pub stall_timeout: Duration,
    /// Sent in every `subscribed` ack.
    pub epoch: Arc<crate::epoch::Epoch>,
    /// `[server] allowed_origins`: empty = any Origin.
    pub allowed_origins: Vec<String>,
    /// `[auth]`: subscriber entitlements; None = every topic for everyone.
    pub auth: Option<Arc<Entitlements>>,
    /// Maps `Instant`s to Unix time (token expiry is in Unix seconds).
    pub wall: WallClock,
}

/// An `Instant` and the Unix time it corresponds to: the connection's clock
/// is `Instant`s passed in; JWT `exp` is Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub at: Instant,
    pub unix: Duration,
}

impl WallClock {
    pub fn now() -> WallClock {
        WallClock {
            at: Instant::now(),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// Unix seconds at `now`.
    pub fn unix_secs(&self, now: Instant) -> u64 {
        (self.unix + now.saturating_duration_since(self.at)).as_secs()
    }
}

impl SessionConfig {
    pub fn from_config(
        c: &Config,
        epoch: Arc<crate::epoch::Epoch>,
        auth: Option<Arc<Entitlements>>,
    ) -> SessionConfig {
        SessionConfig {
            max_head_bytes: c.server.max_head_bytes,
            handshake_timeout: ms(c.server.handshake_timeout_ms),
            max_message_bytes: c.websocket.max_message_bytes,
            idle_ping: ms(c.websocket.idle_ping_ms),
            dead_peer: ms(c.websocket.dead_peer_ms),
            close_timeout: ms(c.websocket.close_timeout_ms),
            max_subscriptions: c.subscriber.max_subscriptions,
            requests_per_second: c.subscriber.requests_per_second,
            request_burst: c.subscriber.request_burst,
            snapshots_per_second: c.subscriber.snapshots_per_second,
            outbound_budget_bytes: c.subscriber.outbound_budget_bytes,
            slow_consumer_policy: c.subscriber.slow_consumer_policy,
            disconnect_after: ms(c.subscriber.disconnect_after_ms),
            stall_timeout: ms(c.subscriber.stall_timeout_ms),
            epoch,
            allowed_origins: c.server.allowed_origins.clone(),
            auth,
            wall: WallClock::now(),
        }
    }
}

/// What the shell must do on a connection's behalf.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send the router this subscribe. `added` are the entries it created
    /// (interest may change); call [`Connection::on_command_taken`] once the
    /// router has it.
    Subscribe {
        request: u32,
        selectors: Vec<Selector>,
        added: Vec<Selector>,
        snapshot: bool,
    },
    /// Route live quotes matching `selector` to this connection, with this
    /// `max_hz` (replacing any earlier one).
    Route {
        selector: Selector,
        max_hz: Option<f32>,
    },
    /// Stop routing quotes matching `selector` here.
    Unroute(Selector),
    /// These entries are gone: release the connection's interest in them.
    Release(Vec<Selector>),
    /// The connection left while its snapshot was outstanding: the router
    /// stops collecting it.
    CancelSnapshots,
    /// Call [`Connection::on_timer`] for `topic` at `at`.
    ArmTimer { at: Instant, topic: Arc<str> },
    /// `GET /metrics`: call [`Connection::on_metrics`] with the rendering.
    ServeMetrics,
    /// `GET /healthz`: call [`Connection::on_health`].
    ServeHealth,
    /// The connection became a subscriber (upgrade done).
    Opened,
    /// The connection stopped being a subscriber.
    Left,
    /// Subscription entries added (+) or removed (−).
    SubscriptionsChanged(i64),
    /// A request was answered with this error.
    RequestError(ErrorCode),
    /// A close frame with this code was queued; `slow_consumer` when it
    /// is the slow-consumer close.
    CloseSent { code: u16, slow_consumer: bool },
    /// Drop the connection now, without further writes.
    Drop,
}

/// Effects of one or more events, collected by the shell: actions in
/// order, and the quotes conflated away (a counter, not an action: it can
/// happen for every quote of a slow reader).
#[derive(Debug, Default)]
pub struct Effects {
    pub actions: Vec<Action>,
    pub conflated: u64,
}

pub struct Connection {
    config: Arc<SessionConfig>,
    phase: Phase,
    /// Bytes received but not yet a whole frame / head; empty (unallocated)
    /// whenever everything received was consumed.
    read_buf: Vec<u8>,
    out: Outbound,
    /// Last time the socket took bytes, the queue drained, a quote was
    /// queued on an empty queue, or closing began: the stall clock.
    progress_at: Instant,
}

enum Phase {
    /// Before the upgrade; the handshake deadline runs from `opened_at`.
    Http {
        opened_at: Instant,
    },
    Ws(Box<Session>),
    Closing {
        /// When everything queued was written (then the peer has
        /// `close_timeout` to close); None while bytes still wait.
        drained_at: Option<Instant>,
        write_shut: bool,
        /// The peer has closed its side: once our bytes are out, we are done.
        peer_closed: bool,
    },
}

/// What the last accepted token granted; the anonymous grants apply besides.
struct TokenGrant {
    grants: GrantSet,
    /// The token's `exp`: close 1008 `token expired` then, unless refreshed.
    expires: Option<Instant>,
}

/// The WebSocket phase: one subscriber's protocol state.
struct Session {
    decoder: FrameDecoder,
    format: Format,
    subs: Subscriptions,
    /// The liveness clock: when the peer was last heard from or, once
    /// `ping_sent`, when our ping went out (the dead-peer deadline runs from
    /// there). One instant for both keeps an idle connection small.
    liveness_at: Instant,
    ping_sent: bool,
    /// Replies held behind subscribe commands the router has not taken.
    gate: ReplyGate,
    /// The last accepted token (with `[auth]`); boxed, since most
    /// connections never send one and every idle connection pays for its
    /// inline size.
    token: Option<Box<TokenGrant>>,
    requests: RequestBucket,
    snapshots: SnapshotBucket,
}

impl Connection {
    pub fn new(config: Arc<SessionConfig>, now: Instant) -> Connection {
        let budget = config.outbound_budget_bytes;
        Connection {
            config,
            phase: Phase::Http { opened_at: now },
            read_buf: Vec::new(),
            out: Outbound::new(budget),
            progress_at: now,
        }
    }

    /// A connection refused at accept (over the per-IP limit): it answers
    /// `503` and closes, whatever the client sends.
    pub fn refused(config: Arc<SessionConfig>, now: Instant) -> Connection {
        let mut conn = Connection::new(config, now);
        conn.out.push_priority(tickwire_ws::http::response(
            503,
            "Service Unavailable",
            &[],
            "text/plain; charset=utf-8",
            b"too many connections from this address\n",
        ));
        conn.start_closing(now);
        conn
    }

    /// The bytes to write (the shell writes them and then calls
    /// [`Connection::on_written`]).
    pub fn outbound(&mut self) -> &mut Outbound {
        &mut self.out
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.wants_write_shutdown()
    }

    /// False while the peer leaves too many of our pongs unread, too many
    /// of its subscribes wait for the router, or a snapshot request waits
    /// for its answer: its input is not read until then (bounded memory
    /// per connection, one snapshot request at a time). Unread replies are
    /// bounded by the outbound budget instead (see `frames`).
    pub fn wants_read(&self) -> bool {
        let (pending, snapshot_outstanding) = match &self.phase {
            Phase::Ws(session) => (session.gate.pending(), session.snapshots.outstanding()),
            _ => (0, false),
        };
        self.out.priority_bytes() <= PRIORITY_LIMIT
            && pending < MAX_PENDING_COMMANDS
            && !snapshot_outstanding
    }

    /// True while unread control frames alone keep the input unread: the
    /// only reason to stop reading that a flush can end. (The shell asks
    /// this, not [`Connection::wants_read`], before every flush: it needs no
    /// look at the session's state, which a flush cannot change.)
    pub fn reads_held_by_output(&self) -> bool {
        self.out.priority_bytes() > PRIORITY_LIMIT
    }

    pub fn is_subscriber(&self) -> bool {
        matches!(self.phase, Phase::Ws(_))
    }

    fn wants_write_shutdown(&self) -> bool {
        matches!(
            self.phase,
            Phase::Closing {
                write_shut: false,
                ..
            }
        ) && self.out.is_empty()
    }

    /// Bytes read from the socket.
    pub fn on_bytes(&mut self, data: &[u8], now: Instant, fx: &mut Effects) {
        match &mut self.phase {
            Phase::Http { .. } => {
                self.read_buf.extend_from_slice(data);
                self.on_http(now, fx);
            }
            Phase::Ws(session) => {
                session.liveness_at = now;
                session.ping_sent = false;
                if self.read_buf.is_empty() {
                    let used = self.on_frames(data, now, fx);
                    if used < data.len() && self.is_subscriber() {
                        self.read_buf
                            .extend_from_slice(data.get(used..).unwrap_or_default());
                    }
                } else {
                    self.read_buf.extend_from_slice(data);
                    self.on_buffered_frames(now, fx);
                }
            }
            Phase::Closing { .. } => {}
        }
    }

    fn on_http(&mut self, now: Instant, fx: &mut Effects) {
        match route(
            &self.read_buf,
            self.config.max_head_bytes,
            &self.config.allowed_origins,
        ) {
            HttpOutcome::NeedMore => {}
            HttpOutcome::Metrics => {
                self.read_buf = Vec::new();
                fx.actions.push(Action::ServeMetrics);
            }
            HttpOutcome::Health => {
                self.read_buf = Vec::new();
                fx.actions.push(Action::ServeHealth);
            }
            HttpOutcome::Respond(response) => {
                self.out.push_priority(response);
                self.start_closing(now);
            }
            HttpOutcome::Upgrade {
                accept,
                format,
                head_len,
            } => {
                self.out.push_priority(accept_response(&accept));
                self.phase = Phase::Ws(Box::new(Session {
                    decoder: FrameDecoder::new(
                        Role::Server,
                        DecoderLimits {
                            max_message: self.config.max_message_bytes,
                            accept_binary: false,
                        },
                    ),
                    format,
                    subs: Subscriptions::default(),
                    liveness_at: now,
                    ping_sent: false,
                    gate: ReplyGate::default(),
                    token: None,
                    requests: RequestBucket::full(self.config.request_burst, now),
                    snapshots: SnapshotBucket::full(self.config.snapshots_per_second, now),
                }));
                fx.actions.push(Action::Opened);
                self.read_buf.drain(..head_len.min(self.read_buf.len()));
                if self.read_buf.is_empty() {
                    self.read_buf = Vec::new();
                } else {
                    self.on_buffered_frames(now, fx);
                }
            }
        }
    }

    /// The shell wrote `wrote` bytes; `drained` when nothing is left.
    /// Returns true when the write side should be shut down now (the
    /// final bytes of a closing connection are out).
    pub fn on_written(&mut self, wrote: usize, drained: bool, now: Instant) -> bool {
        if wrote > 0 || drained {
            self.progress_at = now;
        }
        if let Phase::Closing {
            drained_at,
            write_shut,
            ..
        } = &mut self.phase
        {
            if drained && !*write_shut {
                *write_shut = true;
                *drained_at = Some(now);
                return true;
            }
        }
        false
    }

    /// Subscription entries (pending or active); 0 outside the Ws phase.
    #[cfg(test)]
    pub fn subscription_count(&self) -> usize {
        match &self.phase {
            Phase::Ws(session) => session.subs.len(),
            _ => 0,
        }
    }
}
