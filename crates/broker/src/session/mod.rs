//! One connection on the subscriber listeners as a state machine without
//! I/O, in the manner of quinn-proto's `Connection`: the worker (the I/O
//! shell) feeds it events — bytes read, router messages, timers, ticks —
//! with the time; it answers with bytes to write ([`Connection::poll_transmit`],
//! then [`Connection::on_written`]) and [`Action`]s for everything else
//! (router commands, route-index changes, timers, counters, `ResumeRead`,
//! `ShutdownWrite`, `Drop`). This module names no socket, poller, channel
//! or TLS type (a test below checks it).
//!
//! Layers, outermost first:
//! - HTTP (`crate::http`): the request head is routed; a plain route is
//!   answered and closed, `/ws` upgrades.
//! - framing (`websocket`): frames in, control frames, liveness; it frames
//!   what the core writes ([`framing::Framing`]).
//! - the subscriber core (`subscriber` with `subscriptions`, `throttle`,
//!   `gate`, `rate`, `entitlements`, `delivery`): every rule of what a
//!   subscriber gets, whatever the framing.
//! - `outbound`: the byte budget, conflation and the control lane.
//!
//! Phases: `Http` (reading the request head) → `Open` (a subscriber) →
//! `Closing` (a last response or close frame is queued: flush it,
//! half-close, discard input until the peer closes or a deadline passes).

// Socket data reaches every function here: no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod action;
mod catch_up;
mod config;
mod delivery;
mod entitlements;
mod event_stream;
pub mod framing;
mod gate;
mod lifecycle;
mod named;
mod open_stream;
pub mod outbound;
#[cfg(test)]
mod props;
mod rate;
mod read_buf;
mod sink;
mod subscriber;
mod subscriptions;
#[cfg(test)]
mod tests;
pub mod throttle;
pub mod topic_names;
mod transmit;
mod websocket;

use std::sync::Arc;
use std::time::Instant;

use tickwire_ws::handshake::accept_response;

pub use action::{Action, Effects};
#[cfg(test)]
use config::WallClock;
pub use config::{BrokerStatus, SessionConfig};
pub use delivery::Activation;
use event_stream::EventStream;
use framing::Framing;
use outbound::Outbound;
use read_buf::ReadBuf;
pub use sink::CatchUpSlice;
use subscriber::{Cx, Subscriber};
use websocket::{Input, WebSocket};

use crate::encodings::Encoding;
use crate::http::{self, HttpOutcome};
use crate::moment::Moment;

/// Control-lane bytes (pongs) a peer may leave unread before the broker
/// stops reading its pings.
const PRIORITY_LIMIT: usize = 64 * 1024;

pub struct Connection {
    config: Arc<SessionConfig>,
    phase: Phase,
    /// Bytes received but not yet a whole frame / head; empty (unallocated)
    /// whenever everything received was consumed.
    read_buf: ReadBuf,
    out: Outbound,
    /// Last time the socket took bytes, the queue drained, a quote was
    /// queued on an empty queue, or closing began: the stall clock.
    progress_at: Moment,
}

enum Phase {
    /// Before the upgrade; the handshake deadline runs from `opened_at`.
    Http { opened_at: Moment },
    /// A subscriber: its framing and its core, inline rather than boxed.
    /// An idle subscriber's bytes then sit in the worker's slab with no
    /// allocation of their own: boxed, each box landed among the transient
    /// allocations of other connections' set-ups and kept their holes
    /// resident (peerbench C, 10,000 idle subscribers: 488 → 462 bytes per
    /// connection). The HTTP phase, short-lived, pays the size.
    #[allow(clippy::large_enum_variant)]
    Open(Open),
    Closing {
        /// When everything queued was written (then the peer has
        /// `close_timeout` to close); None while bytes still wait.
        drained_at: Option<Moment>,
        write_shut: bool,
        /// The peer has closed its side: once our bytes are out, we are done.
        peer_closed: bool,
        /// The subscriber's [`Connection::encoding`], kept for its last bytes.
        encoding: Option<Encoding>,
    },
}

struct Open {
    transport: Transport,
    core: Subscriber,
}

/// The framing a subscriber's stream is carried in.
enum Transport {
    /// `/ws`: frames both ways.
    Ws(WebSocket),
    /// `/sse`: events one way, the request said everything.
    Sse(EventStream),
}

impl Transport {
    fn framing(&self) -> &dyn Framing {
        match self {
            Transport::Ws(ws) => ws,
            Transport::Sse(sse) => sse,
        }
    }
}

impl Connection {
    pub fn new(config: Arc<SessionConfig>, now: Instant) -> Connection {
        let budget = config.outbound_budget_bytes;
        Connection {
            config,
            phase: Phase::Http {
                opened_at: now.into(),
            },
            read_buf: ReadBuf::default(),
            out: Outbound::new(budget),
            progress_at: now.into(),
        }
    }

    /// A connection refused at accept (over the per-IP limit): it answers
    /// `503` and closes, whatever the client sends.
    pub fn refused(config: Arc<SessionConfig>, now: Instant) -> Connection {
        let mut conn = Connection::new(config, now);
        conn.out.push_priority(http::too_many_connections());
        conn.start_closing(now);
        conn
    }

    pub fn is_subscriber(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Whether the subscribe this connection just made is all it awaits
    /// from the router, so the worker may answer it itself
    /// ([`Subscriber::awaits_only_the_last`]).
    pub fn awaits_only_the_last(&self) -> bool {
        self.subscriber()
            .is_some_and(Subscriber::awaits_only_the_last)
    }

    fn subscriber(&self) -> Option<&Subscriber> {
        match &self.phase {
            Phase::Open(open) => Some(&open.core),
            _ => None,
        }
    }

    /// Whether the input should be read now: not while the peer leaves too
    /// many of our pongs unread or the core holds its input (see
    /// [`Subscriber::wants_input`]). Unread replies are bounded by the
    /// outbound budget instead.
    fn wants_read(&self) -> bool {
        let core_reads = match self.subscriber() {
            Some(core) => core.wants_input(),
            None => true,
        };
        self.out.priority_bytes() <= PRIORITY_LIMIT && core_reads
    }

    /// Tells the shell when reading should stop or go on: `before` is
    /// [`Connection::wants_read`] as the event began. The one place that
    /// compares the read interest before and after an event (the shell
    /// keeps the one copy of the answer).
    fn sync_read_interest(&self, before: bool, fx: &mut Effects) {
        let wants = self.wants_read();
        if wants != before {
            fx.actions.push(if wants {
                Action::ResumeRead
            } else {
                Action::PauseRead
            });
        }
    }

    /// Bytes read from the socket.
    pub fn on_bytes(&mut self, data: &[u8], now: Instant, fx: &mut Effects) {
        let reading = self.wants_read();
        match &mut self.phase {
            Phase::Http { .. } => {
                // A request head comes in one read nearly always: routed
                // straight from it, buffered only when it does not.
                if self.read_buf.is_empty() {
                    self.on_http(data, now, fx);
                } else {
                    self.read_buf.extend_from_slice(data);
                    let head = self.read_buf.take();
                    self.on_http(&head, now, fx);
                }
            }
            Phase::Open(open) => {
                let Transport::Ws(ws) = &mut open.transport else {
                    // An SSE client has nothing more to say: its bytes are
                    // read (to see its FIN) and dropped.
                    return;
                };
                ws.heard(now);
                if self.read_buf.is_empty() {
                    // The common case: decode straight from the read.
                    let used = self.on_frames(data, now, fx);
                    if used < data.len() && self.is_subscriber() {
                        self.read_buf
                            .extend_from_slice(data.get(used..).unwrap_or_default());
                    }
                } else {
                    self.read_buf.extend_from_slice(data);
                    self.on_buffered_input(now, fx);
                }
            }
            Phase::Closing { .. } => {}
        }
        self.sync_read_interest(reading, fx);
    }

    /// The request head so far (`input`: what was buffered and what came).
    fn on_http(&mut self, input: &[u8], now: Instant, fx: &mut Effects) {
        let c = &self.config;
        let deflate = c.permessage_deflate;
        match http::route(input, c.max_head_bytes, &c.allowed_origins, deflate) {
            HttpOutcome::NeedMore => self.read_buf.put(input.to_vec()),
            HttpOutcome::Metrics => {
                let body = c.status.metrics_text();
                self.respond(http::metrics_response(body.as_bytes()), now);
            }
            HttpOutcome::Health => {
                let response = http::health_response(c.status.degraded());
                self.respond(response, now);
            }
            HttpOutcome::Respond(response) => self.respond(response, now),
            HttpOutcome::EventStream(req) => self.open_event_stream(*req, now, fx),
            HttpOutcome::Upgrade {
                accept,
                wire,
                extensions,
                head_len,
            } => {
                let response = accept_response(&accept, extensions.as_deref());
                self.out.push_priority(response);
                if wire.delta {
                    self.out.track_deltas();
                }
                let socket = WebSocket::new(c.max_message_bytes, wire.deflate, now);
                self.phase = Phase::Open(Open {
                    transport: Transport::Ws(socket),
                    core: Subscriber::new(c, wire, now),
                });
                fx.actions.push(Action::Opened);
                // Frames the client sent right behind its request.
                let rest = input.get(head_len..).unwrap_or_default();
                if !rest.is_empty() {
                    self.read_buf.put(rest.to_vec());
                    self.on_buffered_input(now, fx);
                }
            }
        }
    }

    /// A plain HTTP answer: queued, then the connection closes.
    fn respond(&mut self, response: Vec<u8>, now: Instant) {
        self.out.push_priority(response);
        self.start_closing(now);
    }

    fn on_buffered_input(&mut self, now: Instant, fx: &mut Effects) {
        let mut buf = self.read_buf.take();
        let used = self.on_frames(&buf, now, fx);
        if self.is_subscriber() && used < buf.len() {
            buf.drain(..used);
            self.read_buf.put(buf);
        }
    }

    /// Decodes and handles whole frames from `input`; returns bytes consumed.
    fn on_frames(&mut self, input: &[u8], now: Instant, fx: &mut Effects) -> usize {
        let mut offset = 0;
        loop {
            let Phase::Open(open) = &mut self.phase else {
                return input.len();
            };
            if open.core.input_held() {
                return offset;
            }
            let Transport::Ws(ws) = &mut open.transport else {
                return input.len();
            };
            let (n, what) = ws.decode(input.get(offset..).unwrap_or_default());
            if n == 0 {
                return offset;
            }
            offset += n;
            let ending = match what {
                Input::Request(text) => {
                    let mut cx = Cx {
                        config: &self.config,
                        framing: &*ws,
                        out: &mut self.out,
                        fx,
                        now,
                    };
                    open.core.on_request(&text, &mut cx)
                }
                Input::Control(frame) => {
                    self.out.push_priority(frame);
                    None
                }
                Input::Close(code, reason) => {
                    let frame = websocket::close_frame(code, reason);
                    self.end(frame, code, false, now, fx);
                    None
                }
                Input::Nothing => None,
            };
            if let Some(why) = ending {
                self.end_with(why, now, fx);
            }
        }
    }

    /// The router has taken this connection's oldest pending subscribe
    /// command: the replies held behind it may go.
    pub fn on_command_taken(&mut self, fx: &mut Effects) {
        let reading = self.wants_read();
        if let Phase::Open(open) = &mut self.phase {
            open.core.on_command_taken(&mut self.out);
        }
        self.sync_read_interest(reading, fx);
    }

    /// Topics with `max_hz` state; 0 outside the Open phase.
    #[cfg(test)]
    pub fn throttled_topics(&self) -> usize {
        self.subscriber().map_or(0, |s| s.subs.throttled_topics())
    }

    /// Subscription entries (pending or active); 0 outside the Open phase.
    #[cfg(test)]
    pub fn subscription_count(&self) -> usize {
        self.subscriber().map_or(0, |s| s.subs.len())
    }
}

#[cfg(test)]
mod no_io {
    /// The connection is protocol code: it must not be able to reach a
    /// socket, a poller, a channel or TLS. Fails when a file of this module
    /// (or of `crate::http`) names one, outside its own tests.
    #[test]
    fn session_and_http_name_no_io() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for dir in [root.join("session"), root.join("http")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Inline test modules come last; comments may name anything.
                let code: String = text
                    .split("#[cfg(test)]\nmod tests {")
                    .next()
                    .unwrap()
                    .split("#[cfg(test)]\nmod no_io {")
                    .next()
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                for name in [
                    "mio",
                    "rustls",
                    "crossbeam",
                    "std::net",
                    "std::io",
                    "io::Error",
                    "Write",
                    "TcpStream",
                ] {
                    let named = code.match_indices(name).any(|(i, _)| {
                        let before = code[..i].chars().next_back();
                        let after = code[i + name.len()..].chars().next();
                        let ident =
                            |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                        !ident(before) && !ident(after)
                    });
                    let is_test_file = ["tests.rs", "props.rs", "world.rs"]
                        .iter()
                        .any(|f| path.ends_with(f));
                    assert!(is_test_file || !named, "{} names {name}", path.display());
                }
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} files checked");
    }
}
