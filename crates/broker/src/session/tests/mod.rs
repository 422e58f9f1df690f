//! The connection's rules without sockets or sleeping: bytes and events in
//! with an injected clock, frames and actions out. This file is the
//! harness (a client's view of one connection); the rules are in
//! `subscribe` and `lifecycle`.

mod delta_props;
mod deltas;
mod entitlements;
mod lifecycle;
mod resume;
mod sse;
mod subscribe;
mod worker_answers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::Selector;
use tickwire_ws::frame::{
    encode_frame, encode_masked_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role,
};

use super::outbound::tests::WriteTo;
use super::outbound::OutFrame;
use super::*;
use crate::config::SlowConsumerPolicy;
use crate::messages::{LocalQuote, SharedQuote};

pub(super) fn config() -> SessionConfig {
    SessionConfig {
        max_head_bytes: 8192,
        handshake_timeout: Duration::from_secs(10),
        max_message_bytes: 65_536,
        permessage_deflate: true,
        idle_ping: Duration::from_secs(30),
        dead_peer: Duration::from_secs(30),
        close_timeout: Duration::from_secs(2),
        max_subscriptions: 4,
        // Off unless a test is about it.
        requests_per_second: 0,
        request_burst: 100,
        snapshots_per_second: 0,
        outbound_budget_bytes: 4096,
        slow_consumer_policy: SlowConsumerPolicy::Conflate,
        disconnect_after: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(60),
        epoch: Arc::new(crate::epoch::Epoch::fixed("e")),
        allowed_origins: Vec::new(),
        auth: None,
        wall: WallClock::now(),
        status: Arc::new(FixedStatus {
            metrics: "tickwire_up 1\n",
            degraded: false,
        }),
        sse_instance: 0x5e5e,
    }
}

/// What `/metrics` and `/healthz` report in these tests.
pub(super) struct FixedStatus {
    pub metrics: &'static str,
    pub degraded: bool,
}

impl BrokerStatus for FixedStatus {
    fn metrics_text(&self) -> String {
        self.metrics.to_owned()
    }
    fn degraded(&self) -> bool {
        self.degraded
    }
}

impl Connection {
    /// The connection's queue, for tests that look inside it.
    pub(super) fn outbound(&mut self) -> &mut outbound::Outbound {
        &mut self.out
    }

    /// The shell's flush, with a `Write` as the socket: writes what the
    /// socket takes (`limit` bytes at most), then a final
    /// [`Connection::poll_transmit`] when drained. True when that asked to
    /// shut the write side. Other actions it asked for are dropped.
    pub(super) fn flush_to(
        &mut self,
        w: &mut impl std::io::Write,
        limit: usize,
        now: Instant,
    ) -> bool {
        let mut fx = Effects::default();
        let reading = self.wants_read();
        let mut n = 0;
        let drained = self
            .out
            .write_to(w, limit, &mut n, &mut |_: &OutFrame| {})
            .expect("test sockets do not fail");
        if n > 0 {
            self.progress_at = now.into();
        }
        if drained {
            let mut buf = Vec::new();
            self.poll_transmit(&mut buf, usize::MAX, now, &mut fx);
        }
        self.sync_read_interest(reading, &mut fx);
        fx.actions.contains(&Action::ShutdownWrite)
    }
}

pub(super) fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// A quote whose JSON frame reads `Q <topic> <seq>` (padded to `size`).
pub(super) fn quote(topic: &str, seq: u64) -> LocalQuote {
    sized_quote(topic, seq, 0)
}

pub(super) fn sized_quote(topic: &str, seq: u64, size: usize) -> LocalQuote {
    let mut text = format!("Q {topic} {seq}");
    while text.len() < size {
        text.push(' ');
    }
    let mut frame = Vec::new();
    encode_frame(&mut frame, OpCode::Text, text.as_bytes());
    LocalQuote::from(SharedQuote {
        topic: topic.into(),
        seq: 0,
        accepted: 0,
        json_frame: frame.clone().into(),
        binary_frame: frame.into(),
        changed: None,
        lazy: Default::default(),
        decoded_at: Instant::now(),
    })
}

/// One connection driven by a test: a client's view of what it writes.
pub(super) struct Client {
    pub(super) conn: Connection,
    pub(super) fx: Effects,
    pub(super) now: Instant,
    pub(super) decoder: FrameDecoder,
    /// Bytes the "socket" accepted but not yet decoded.
    pub(super) wire: Vec<u8>,
}

impl Client {
    /// A new connection, before its request.
    pub(super) fn fresh(config: SessionConfig) -> Client {
        let now = Instant::now();
        Client {
            conn: Connection::new(Arc::new(config), now),
            fx: Effects::default(),
            now,
            decoder: FrameDecoder::new(
                Role::Client,
                DecoderLimits {
                    max_message: 1 << 20,
                    accept_binary: true,
                    deflate: false,
                },
            ),
            wire: Vec::new(),
        }
    }

    pub(super) fn upgraded(config: SessionConfig) -> Client {
        Client::upgraded_at(config, "/ws")
    }

    /// Upgraded at `target` (a path and query: `/ws?format=binary&delta=1`).
    pub(super) fn upgraded_at(config: SessionConfig, target: &str) -> Client {
        let mut c = Client::fresh(config);
        let now = c.now;
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.conn.on_bytes(request.as_bytes(), now, &mut c.fx);
        assert_eq!(c.take_actions(), [Action::Opened]);
        c.write_all();
        let end = c.wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(c.wire.starts_with(b"HTTP/1.1 101 "));
        c.wire.drain(..end);
        c
    }

    pub(super) fn at(&mut self, after: Duration) -> Instant {
        self.now += after;
        self.now
    }

    pub(super) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.fx.actions)
    }

    pub(super) fn send(&mut self, text: &str) {
        let mut frame = Vec::new();
        encode_masked_frame(
            &mut frame,
            OpCode::Text,
            true,
            text.as_bytes(),
            [1, 2, 3, 4],
        );
        self.conn.on_bytes(&frame, self.now, &mut self.fx);
    }

    /// Sends a request and, like the shell with a router that has room,
    /// confirms its subscribe command at once.
    pub(super) fn request(&mut self, text: &str) -> Vec<Action> {
        self.send(text);
        let actions = self.take_actions();
        for a in &actions {
            if matches!(a, Action::Subscribe { .. }) {
                self.conn.on_command_taken(&mut self.fx);
            }
        }
        actions
    }

    /// Sends a request and, like the shell and a router with nothing
    /// stored, takes and activates its subscribe at once (its ack goes
    /// with the activation).
    /// Returns the request's actions, then the activation's.
    pub(super) fn request_answered(&mut self, text: &str) -> Vec<Action> {
        let mut actions = self.request(text);
        let subscribes: Vec<(u32, Vec<Selector>)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Subscribe {
                    request, selectors, ..
                } => Some((*request, selectors.clone())),
                _ => None,
            })
            .collect();
        for (request, selectors) in subscribes {
            self.answer(request, &selectors, vec![], false, None);
        }
        actions.extend(self.take_actions());
        actions
    }

    /// Writes everything queued to the "socket".
    pub(super) fn write_all(&mut self) -> bool {
        self.conn.flush_to(&mut self.wire, usize::MAX, self.now)
    }

    /// Everything written so far, as text (`Q …` quotes and JSON replies)
    /// or `close <code> <reason>` / `ping`.
    pub(super) fn frames(&mut self) -> Vec<String> {
        self.write_all();
        let mut out = Vec::new();
        let mut offset = 0;
        while let Ok((n, event)) = self.decoder.decode(&self.wire[offset..]) {
            if n == 0 {
                break;
            }
            offset += n;
            match event {
                Some(Event::Text(t)) => out.push(t),
                Some(Event::Close(Some((code, reason)))) => {
                    out.push(format!("close {code} {reason}"))
                }
                Some(Event::Ping(_)) => out.push("ping".into()),
                Some(other) => out.push(format!("{other:?}")),
                None => {}
            }
        }
        self.wire.drain(..offset);
        out
    }

    pub(super) fn activate(
        &mut self,
        request: u32,
        selectors: &[&str],
        snapshots: Vec<LocalQuote>,
    ) {
        let selectors: Vec<Selector> = selectors.iter().map(|s| sel(s)).collect();
        self.answer(request, &selectors, snapshots, false, None);
    }

    /// An activation whose snapshot continues in slices.
    pub(super) fn activate_sliced(
        &mut self,
        request: u32,
        selectors: &[&str],
        snapshots: Vec<LocalQuote>,
    ) {
        let selectors: Vec<Selector> = selectors.iter().map(|s| sel(s)).collect();
        self.answer(request, &selectors, snapshots, true, None);
    }

    /// The router's answer to subscribe `request`.
    pub(super) fn answer(
        &mut self,
        request: u32,
        selectors: &[Selector],
        snapshots: Vec<LocalQuote>,
        more: bool,
        unrecovered: Option<&[std::sync::Arc<str>]>,
    ) {
        let answer = Activation {
            selectors,
            snapshots: snapshots.into(),
            more,
            unrecovered,
        };
        self.conn
            .on_activate(request, answer, self.now, &mut self.fx);
    }

    /// The router's answer to subscribe `request` with a catch-up slice
    /// (replays leading), nothing more to follow.
    pub(super) fn answer_slice(
        &mut self,
        request: u32,
        selectors: &[Selector],
        snapshots: CatchUpSlice,
    ) {
        let answer = Activation {
            selectors,
            snapshots,
            more: false,
            unrecovered: None,
        };
        self.conn
            .on_activate(request, answer, self.now, &mut self.fx);
    }

    pub(super) fn slice(&mut self, request: u32, quotes: Vec<LocalQuote>, more: bool) {
        self.conn
            .on_snapshots(request, quotes.into(), more, self.now, &mut self.fx);
    }

    pub(super) fn live(&mut self, q: &LocalQuote, max_hz: Option<f32>) {
        let interval = max_hz.map(throttle::spacing);
        self.conn.on_quote(q, interval, self.now, &mut self.fx);
    }
}

pub(super) fn kinds(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match serde_json::from_str::<serde_json::Value>(f) {
            Ok(v) => v["type"].as_str().unwrap_or("?").to_owned(),
            Err(_) => f.clone(),
        })
        .collect()
}
