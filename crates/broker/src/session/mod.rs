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

mod http;
pub mod outbound;
#[cfg(test)]
mod props;
mod subscriptions;
#[cfg(test)]
mod tests;
pub mod throttle;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::control::{parse_request, ErrorCode, Request};
use tickwire_protocol::{server, Selector};
use tickwire_ws::close;
use tickwire_ws::frame::{
    encode_close, encode_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role,
};
use tickwire_ws::handshake::accept_response;

use crate::config::{ms, Config, SlowConsumerPolicy};
use crate::messages::{Format, SharedQuote};
use http::{route, HttpOutcome};
use outbound::{OutFrame, Outbound};
use subscriptions::{QuoteSink, Subscriptions};

/// Control-lane bytes (pongs) a peer may leave unread before the broker
/// stops reading its pings.
const PRIORITY_LIMIT: usize = 64 * 1024;

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
    pub outbound_budget_bytes: usize,
    pub slow_consumer_policy: SlowConsumerPolicy,
    pub disconnect_after: Duration,
    pub stall_timeout: Duration,
    /// Sent in every `subscribed` ack.
    pub epoch: Arc<str>,
}

impl SessionConfig {
    pub fn from_config(c: &Config, epoch: Arc<str>) -> SessionConfig {
        SessionConfig {
            max_head_bytes: c.server.max_head_bytes,
            handshake_timeout: ms(c.server.handshake_timeout_ms),
            max_message_bytes: c.websocket.max_message_bytes,
            idle_ping: ms(c.websocket.idle_ping_ms),
            dead_peer: ms(c.websocket.dead_peer_ms),
            close_timeout: ms(c.websocket.close_timeout_ms),
            max_subscriptions: c.subscriber.max_subscriptions,
            outbound_budget_bytes: c.subscriber.outbound_budget_bytes,
            slow_consumer_policy: c.subscriber.slow_consumer_policy,
            disconnect_after: ms(c.subscriber.disconnect_after_ms),
            stall_timeout: ms(c.subscriber.stall_timeout_ms),
            epoch,
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
    /// Call [`Connection::on_timer`] for `topic` at `at`.
    ArmTimer { at: Instant, topic: Arc<str> },
    /// `GET /metrics`: call [`Connection::on_metrics`] with the rendering.
    ServeMetrics,
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
    opened_at: Instant,
    /// Last time the socket took bytes, the queue drained, a quote was
    /// queued on an empty queue, or closing began: the stall clock.
    progress_at: Instant,
}

enum Phase {
    Http,
    Ws(Box<Session>),
    Closing {
        /// When everything queued was written (then the peer has
        /// `close_timeout` to close); None while bytes still wait.
        drained_at: Option<Instant>,
        write_shut: bool,
    },
}

/// The WebSocket phase: one subscriber's protocol state.
struct Session {
    decoder: FrameDecoder,
    format: Format,
    subs: Subscriptions,
    last_heard: Instant,
    ping_sent_at: Option<Instant>,
    /// Subscribe commands the router has not taken yet. While any is
    /// pending, replies wait in `held`: an ack the client has seen must
    /// mean the router will number every later quote after the subscribe.
    untaken: u32,
    held: VecDeque<Box<[u8]>>,
}

impl Connection {
    pub fn new(config: Arc<SessionConfig>, now: Instant) -> Connection {
        let budget = config.outbound_budget_bytes;
        Connection {
            config,
            phase: Phase::Http,
            read_buf: Vec::new(),
            out: Outbound::new(budget),
            opened_at: now,
            progress_at: now,
        }
    }

    /// The bytes to write (the shell writes them and then calls
    /// [`Connection::on_written`]).
    pub fn outbound(&mut self) -> &mut Outbound {
        &mut self.out
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.wants_write_shutdown()
    }

    /// False while the peer leaves too many of our pongs unread: its pings
    /// are not read until it reads.
    pub fn wants_read(&self) -> bool {
        self.out.priority_bytes() <= PRIORITY_LIMIT
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
            Phase::Http => {
                self.read_buf.extend_from_slice(data);
                self.on_http(now, fx);
            }
            Phase::Ws(session) => {
                session.last_heard = now;
                session.ping_sent_at = None;
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
        match route(&self.read_buf, self.config.max_head_bytes) {
            HttpOutcome::NeedMore => {}
            HttpOutcome::Metrics => {
                self.read_buf = Vec::new();
                fx.actions.push(Action::ServeMetrics);
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
                    last_heard: now,
                    ping_sent_at: None,
                    untaken: 0,
                    held: VecDeque::new(),
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

    /// The rendering of `/metrics` asked for by [`Action::ServeMetrics`].
    pub fn on_metrics(&mut self, body: &[u8], now: Instant) {
        if matches!(self.phase, Phase::Http) {
            let response =
                tickwire_ws::http::response(200, "OK", &[], crate::metrics::CONTENT_TYPE, body);
            self.out.push_priority(response);
            self.start_closing(now);
        }
    }

    fn on_buffered_frames(&mut self, now: Instant, fx: &mut Effects) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let used = self.on_frames(&buf, now, fx);
        if self.is_subscriber() && used < buf.len() {
            buf.drain(..used);
            self.read_buf = buf;
        }
    }

    /// Decodes and handles whole frames from `input`; returns bytes consumed.
    fn on_frames(&mut self, input: &[u8], now: Instant, fx: &mut Effects) -> usize {
        let mut offset = 0;
        loop {
            let Phase::Ws(session) = &mut self.phase else {
                return input.len();
            };
            match session
                .decoder
                .decode(input.get(offset..).unwrap_or_default())
            {
                Ok((0, _)) => return offset,
                Ok((n, event)) => {
                    offset += n;
                    if let Some(event) = event {
                        self.on_event(event, now, fx);
                    }
                }
                Err(e) => {
                    tracing::debug!(code = e.code, reason = e.reason, "protocol error");
                    self.close_with(e.code, e.reason, now, fx);
                    return input.len();
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant, fx: &mut Effects) {
        match event {
            Event::Text(text) => self.on_request(&text, now, fx),
            Event::Binary(_) => self.close_with(
                close::UNSUPPORTED_DATA,
                "binary messages are not accepted",
                now,
                fx,
            ),
            Event::Ping(payload) => {
                let mut pong = Vec::with_capacity(payload.len() + 2);
                encode_frame(&mut pong, OpCode::Pong, &payload);
                self.out.push_priority(pong);
            }
            Event::Pong(_) => {}
            Event::Close(Some((code, _))) => self.close_with(code, "", now, fx),
            Event::Close(None) => self.close_with(close::NORMAL, "", now, fx),
        }
    }

    fn on_request(&mut self, text: &str, _now: Instant, fx: &mut Effects) {
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let reply = match parse_request(text) {
            Ok(Request::Subscribe {
                id,
                topics,
                snapshot,
                max_hz,
            }) => {
                let max = self.config.max_subscriptions;
                match session.subs.subscribe(&topics, snapshot, max_hz, max, fx) {
                    Ok(()) => {
                        // Held until the router has taken the command.
                        session.untaken += 1;
                        server::json_subscribed(id, &topics, &self.config.epoch)
                    }
                    Err((code, message)) => {
                        fx.actions.push(Action::RequestError(code));
                        server::json_error(id, code, &message)
                    }
                }
            }
            Ok(Request::Unsubscribe { id, topics }) => {
                session.subs.unsubscribe(&topics, &mut self.out, fx);
                server::json_unsubscribed(id, &topics)
            }
            Err(e) => {
                fx.actions.push(Action::RequestError(e.code));
                server::json_error(e.id, e.code, &e.message)
            }
        };
        let mut frame = Vec::with_capacity(reply.len() + 4);
        encode_frame(&mut frame, OpCode::Text, reply.as_bytes());
        if session.untaken > 0 {
            session.held.push_back(frame.into_boxed_slice());
        } else {
            self.out
                .push_data(OutFrame::Owned(frame.into_boxed_slice()));
        }
    }

    /// The router has taken one of this connection's subscribe commands:
    /// once it has them all, the replies held behind them may go.
    pub fn on_command_taken(&mut self) {
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        session.untaken = session.untaken.saturating_sub(1);
        if session.untaken == 0 {
            for reply in session.held.drain(..) {
                self.out.push_data(OutFrame::Owned(reply));
            }
            session.held = VecDeque::new();
        }
    }

    /// The router processed subscribe `request` (which named `selectors`).
    pub fn on_activate(
        &mut self,
        request: u32,
        selectors: &[Selector],
        snapshots: Vec<Arc<SharedQuote>>,
        now: Instant,
        fx: &mut Effects,
    ) {
        let was_empty = self.out.is_empty();
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let mut sink = QuoteSink {
            out: &mut self.out,
            format: session.format,
            now,
            fx,
        };
        session
            .subs
            .activate(request, selectors, snapshots, &mut sink);
        self.note_queued(was_empty, now);
    }

    /// A live quote routed here, with the spacing (`max_hz`) of the most
    /// specific entry matching its topic.
    pub fn on_quote(
        &mut self,
        quote: &Arc<SharedQuote>,
        interval: Option<Duration>,
        now: Instant,
        fx: &mut Effects,
    ) {
        let was_empty = self.out.is_empty();
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let mut sink = QuoteSink {
            out: &mut self.out,
            format: session.format,
            now,
            fx,
        };
        session.subs.on_quote(quote, interval, &mut sink);
        self.note_queued(was_empty, now);
    }

    /// A timer armed by [`Action::ArmTimer`] is due.
    pub fn on_timer(&mut self, topic: &Arc<str>, now: Instant, fx: &mut Effects) {
        let was_empty = self.out.is_empty();
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let mut sink = QuoteSink {
            out: &mut self.out,
            format: session.format,
            now,
            fx,
        };
        session.subs.on_timer(topic, &mut sink);
        self.note_queued(was_empty, now);
    }

    /// A quote landing on an empty queue starts the stall clock.
    fn note_queued(&mut self, was_empty: bool, now: Instant) {
        if was_empty && !self.out.is_empty() {
            self.progress_at = now;
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

    /// Periodic check of every deadline: handshake, idle ping, dead peer,
    /// slow consumer, closing.
    pub fn on_tick(&mut self, now: Instant, fx: &mut Effects) {
        if self.is_subscriber() && self.is_too_slow(now) {
            self.close_with(close::POLICY_VIOLATION, "slow consumer", now, fx);
            return;
        }
        let c = &self.config;
        match &mut self.phase {
            Phase::Http => {
                if now.saturating_duration_since(self.opened_at) >= c.handshake_timeout {
                    fx.actions.push(Action::Drop);
                }
            }
            Phase::Ws(session) => match session.ping_sent_at {
                None if now.saturating_duration_since(session.last_heard) >= c.idle_ping => {
                    let mut ping = Vec::with_capacity(2);
                    encode_frame(&mut ping, OpCode::Ping, &[]);
                    self.out.push_priority(ping);
                    session.ping_sent_at = Some(now);
                }
                Some(at) if now.saturating_duration_since(at) >= c.dead_peer => {
                    fx.actions.push(Action::Drop);
                }
                _ => {}
            },
            Phase::Closing { drained_at, .. } => {
                let expired = match drained_at {
                    Some(at) => now.saturating_duration_since(*at) >= c.close_timeout,
                    // Final bytes still waiting: as long as the peer keeps
                    // reading, up to the stall timeout without progress.
                    None => now.saturating_duration_since(self.progress_at) >= c.stall_timeout,
                };
                if expired {
                    fx.actions.push(Action::Drop);
                }
            }
        }
    }

    /// The slow-consumer rules: nothing read for `stall_timeout` while
    /// quotes are pending, or (policy `disconnect`) over budget for
    /// `disconnect_after`.
    fn is_too_slow(&self, now: Instant) -> bool {
        let c = &self.config;
        if !self.out.is_empty()
            && now.saturating_duration_since(self.progress_at) >= c.stall_timeout
        {
            return true;
        }
        c.slow_consumer_policy == SlowConsumerPolicy::Disconnect
            && self
                .out
                .conflating_since()
                .is_some_and(|since| now.saturating_duration_since(since) >= c.disconnect_after)
    }

    /// Shutdown: subscribers get close 1001; a connection still in its
    /// HTTP phase is dropped.
    pub fn begin_shutdown(&mut self, now: Instant, fx: &mut Effects) {
        match self.phase {
            Phase::Ws(_) => self.close_with(close::GOING_AWAY, "going away", now, fx),
            Phase::Http => fx.actions.push(Action::Drop),
            Phase::Closing { .. } => {}
        }
    }

    /// Queues a close frame ahead of any queued quotes (which are dropped:
    /// a closing client gets nothing more, and a slow one would otherwise
    /// have to read them all first) and starts closing.
    pub fn close_with(&mut self, code: u16, reason: &str, now: Instant, fx: &mut Effects) {
        if !self.is_subscriber() {
            return;
        }
        self.leave(fx);
        self.out.clear_data();
        let mut frame = Vec::with_capacity(reason.len() + 4);
        encode_close(&mut frame, code, reason);
        self.out.push_priority(frame);
        fx.actions.push(Action::CloseSent {
            code,
            slow_consumer: code == close::POLICY_VIOLATION && reason == "slow consumer",
        });
        self.start_closing(now);
    }

    fn start_closing(&mut self, now: Instant) {
        self.read_buf = Vec::new();
        self.progress_at = now;
        self.phase = Phase::Closing {
            drained_at: None,
            write_shut: false,
        };
    }

    /// The shell is dropping the connection: give back what it holds.
    pub fn on_removed(&mut self, fx: &mut Effects) {
        self.leave(fx);
    }

    /// Leaves the WebSocket phase, giving back every entry.
    fn leave(&mut self, fx: &mut Effects) {
        if let Phase::Ws(session) = &mut self.phase {
            session.subs.clear(fx);
            fx.actions.push(Action::Left);
            // Any phase but Ws; the caller sets the real next one.
            self.phase = Phase::Http;
        }
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
