//! Property tests of the connection state machine against a model of the
//! shell and the router: any sequence of requests, router activations,
//! quotes, timers, partial writes and garbage keeps the books straight
//! (entries counted, routes and interest references balanced, everything
//! given back on removal) and never delivers a topic's quotes out of order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tickwire_protocol::Selector;
use tickwire_ws::frame::{encode_masked_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role};

use super::tests::{config, quote};
use super::throttle::spacing;
use super::*;
use crate::messages::LocalQuote;

mod world;
use world::*;

/// The shell and the router, as far as one connection can tell.
struct Model {
    conn: Connection,
    fx: Effects,
    now: Instant,
    seq: HashMap<&'static str, u64>,
    /// Commands issued but not taken by the router yet, then taken ones
    /// waiting for their activation.
    untaken: VecDeque<(u32, Vec<Selector>, bool)>,
    pending: VecDeque<(u32, Vec<Selector>, bool)>,
    /// Sliced snapshots: the request, its topics still to send, and every
    /// topic's seq at its activation (the router leaves out topics
    /// published since).
    slicing: VecDeque<Sliced>,
    /// Per request, its place among successful subscribes (= its ack's).
    ordinal: HashMap<u32, u64>,
    issued: u64,
    /// Per topic, the ack the client must have seen before its first quote.
    need_ack: HashMap<String, u64>,
    acks_seen: u64,
    routed: HashMap<Selector, Option<f32>>,
    refs: HashMap<Selector, i64>,
    entries: i64,
    timers: Vec<(Instant, Arc<str>)>,
    dropped: bool,
    socket: Socket,
    client: FrameDecoder,
    /// Per topic, the last seq the client received.
    received: HashMap<String, u64>,
}

impl Model {
    fn new() -> Model {
        let now = Instant::now();
        let mut cfg = config();
        cfg.max_subscriptions = 4;
        let mut m = Model {
            conn: Connection::new(Arc::new(cfg), now),
            fx: Effects::default(),
            now,
            seq: HashMap::new(),
            untaken: VecDeque::new(),
            pending: VecDeque::new(),
            slicing: VecDeque::new(),
            ordinal: HashMap::new(),
            issued: 0,
            need_ack: HashMap::new(),
            acks_seen: 0,
            routed: HashMap::new(),
            refs: HashMap::new(),
            entries: 0,
            timers: Vec::new(),
            dropped: false,
            socket: Socket {
                bytes: Vec::new(),
                room: 0,
            },
            client: FrameDecoder::new(
                Role::Client,
                DecoderLimits {
                    max_message: 1 << 20,
                    accept_binary: true,
                    deflate: false,
                },
            ),
            received: HashMap::new(),
        };
        let upgrade =
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        m.conn.on_bytes(upgrade.as_bytes(), now, &mut m.fx);
        m.settle();
        m.socket.room = usize::MAX;
        m.conn.flush_to(&mut m.socket, usize::MAX, now);
        assert!(m.conn.out.is_empty());
        let end = m
            .socket
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        assert!(m.socket.bytes.starts_with(b"HTTP/1.1 101 "));
        m.socket.bytes.drain(..end);
        m
    }

    fn text(&mut self, text: &str) {
        let mut frame = Vec::new();
        encode_masked_frame(
            &mut frame,
            OpCode::Text,
            true,
            text.as_bytes(),
            [9, 8, 7, 6],
        );
        self.conn.on_bytes(&frame, self.now, &mut self.fx);
    }

    /// Carries out the actions like the shell (the router takes every
    /// command at once), checking each against the books.
    fn settle(&mut self) {
        for action in std::mem::take(&mut self.fx.actions) {
            match action {
                Action::Subscribe {
                    request,
                    selectors,
                    added,
                    catch_up,
                } => {
                    let snapshot = catch_up.snapshot;
                    for s in &added {
                        assert!(selectors.contains(s), "added {s:?} not in the request");
                        *self.refs.entry(s.clone()).or_default() += 1;
                    }
                    self.issued += 1;
                    self.ordinal.insert(request, self.issued);
                    self.untaken.push_back((request, selectors, snapshot));
                }
                Action::Route { selector, max_hz } => {
                    self.routed.insert(selector, max_hz);
                }
                Action::Unroute(selector) => {
                    assert!(
                        self.routed.remove(&selector).is_some(),
                        "unrouted {selector:?} twice"
                    );
                }
                Action::Release(selectors) => {
                    for s in selectors {
                        let r = self.refs.entry(s.clone()).or_default();
                        *r -= 1;
                        assert!(*r >= 0, "released {s:?} more often than added");
                    }
                }
                Action::ArmTimer { at, topic } => {
                    assert!(at >= self.now, "a timer in the past");
                    self.timers.push((at, topic));
                }
                Action::SubscriptionsChanged(d) => self.entries += d,
                Action::Drop => self.dropped = true,
                Action::CancelSnapshots => self.slicing.clear(),
                Action::PauseRead
                | Action::ResumeRead
                | Action::ShutdownWrite
                | Action::Opened
                | Action::OpenedSse
                | Action::Left
                | Action::LeftSse
                | Action::RequestError(_)
                | Action::CloseSent { .. }
                | Action::CatchUpCredit => {}
            }
        }
        if self.conn.is_subscriber() {
            assert_eq!(self.entries, self.conn.subscription_count() as i64);
        }
    }

    fn write(&mut self, room: usize) {
        self.socket.room = room;
        self.conn.flush_to(&mut self.socket, usize::MAX, self.now);
        self.check_received();
    }

    /// Quotes of one topic reach the client in seq order; a repeat is only
    /// ever a snapshot (a re-subscribe asks for it again), never a live
    /// quote sent twice (e.g. a held one after a snapshot superseded it).
    fn check_received(&mut self) {
        let mut offset = 0;
        while let Ok((n, event)) = self.client.decode(&self.socket.bytes[offset..]) {
            if n == 0 {
                break;
            }
            offset += n;
            if let Some(Event::Text(t)) = event {
                if t.contains(r#""type":"subscribed""#) {
                    self.acks_seen += 1;
                }
                if let Some(rest) = t.strip_prefix("Q ") {
                    let mut parts = rest.split_whitespace();
                    let (topic, seq) = (parts.next().unwrap(), parts.next().unwrap());
                    let seq: u64 = seq.parse().unwrap();
                    let snapshot = parts.next() == Some("S");
                    let need = self.need_ack.get(topic).copied().unwrap_or(0);
                    assert!(
                        self.acks_seen >= need,
                        "{topic}: a quote before the ack of the subscribe that brought it"
                    );
                    let last = self.received.entry(topic.to_owned()).or_insert(0);
                    if snapshot {
                        assert!(seq >= *last, "{topic}: snapshot {seq} after {last}");
                    } else {
                        assert!(seq > *last, "{topic}: live {seq} after {last}");
                    }
                    *last = seq;
                }
            }
        }
        self.socket.bytes.drain(..offset);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Subscribe {
                entries,
                snapshot,
                max_hz,
            } => {
                let topics: Vec<&str> = entries.iter().map(|&i| SELECTORS[i]).collect();
                let mut req =
                    serde_json::json!({"op": "subscribe", "topics": topics, "snapshot": snapshot});
                if let Some(hz) = max_hz {
                    req["max_hz"] = hz.into();
                }
                self.text(&req.to_string());
            }
            Op::Unsubscribe(entries) => {
                let topics: Vec<&str> = entries.iter().map(|&i| SELECTORS[i]).collect();
                self.text(&serde_json::json!({"op": "unsubscribe", "topics": topics}).to_string());
            }
            Op::BadRequest(text) => self.text(&text),
            Op::Ping(payload) => {
                let mut frame = Vec::new();
                encode_masked_frame(&mut frame, OpCode::Ping, true, &payload, [1, 2, 3, 4]);
                self.conn.on_bytes(&frame, self.now, &mut self.fx);
            }
            Op::Close(code) => {
                let mut frame = Vec::new();
                encode_masked_frame(
                    &mut frame,
                    OpCode::Close,
                    true,
                    &code.to_be_bytes(),
                    [1, 2, 3, 4],
                );
                self.conn.on_bytes(&frame, self.now, &mut self.fx);
            }
            Op::Take => {
                if let Some(command) = self.untaken.pop_front() {
                    self.pending.push_back(command);
                    self.conn.on_command_taken(&mut self.fx);
                }
            }
            Op::Activate => {
                if let Some((request, selectors, snapshot)) = self.pending.pop_front() {
                    // Topics that start flowing with this request need its ack first.
                    let ordinal = self.ordinal.get(&request).copied().unwrap_or(0);
                    for topic in TOPICS {
                        let flowing = self.routed.keys().any(|s| s.matches(topic));
                        if !flowing && selectors.iter().any(|s| s.matches(topic)) {
                            self.need_ack.entry(topic.to_string()).or_insert(ordinal);
                        }
                    }
                    let mut snapshots: Vec<LocalQuote> = if snapshot {
                        TOPICS
                            .iter()
                            .filter(|t| selectors.iter().any(|s| s.matches(t)))
                            .filter_map(|t| self.seq.get(t).map(|&seq| snapshot_of(t, seq)))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let more = request % 2 == 1 && snapshots.len() > 1;
                    if more {
                        let rest = snapshots.split_off(1);
                        let rest = TOPICS
                            .iter()
                            .copied()
                            .filter(|t| rest.iter().any(|q| &*q.topic == *t))
                            .collect();
                        self.slicing.push_back((request, rest, self.seq.clone()));
                    }
                    let answer = Activation {
                        selectors: &selectors,
                        snapshots: snapshots.into(),
                        more,
                        unrecovered: None,
                    };
                    self.conn
                        .on_activate(request, answer, self.now, &mut self.fx);
                }
            }
            Op::Slice => {
                // Round robin over the jobs, as the router does.
                if let Some((request, mut rest, at_activation)) = self.slicing.pop_front() {
                    let topic = rest.pop_front();
                    let quotes = topic
                        .filter(|t| self.seq.get(t) == at_activation.get(t))
                        .and_then(|t| self.seq.get(t).map(|&seq| snapshot_of(t, seq)))
                        .into_iter()
                        .collect();
                    let more = !rest.is_empty();
                    if more {
                        self.slicing.push_back((request, rest, at_activation));
                    }
                    self.conn
                        .on_snapshots(request, quotes, more, self.now, &mut self.fx);
                }
            }
            Op::Publish(i) => {
                let topic = TOPICS[i];
                let seq = self.seq.entry(topic).or_insert(0);
                *seq += 1;
                let q = quote(topic, *seq);
                // The route index: the most specific routed entry's rate.
                let best = self
                    .routed
                    .iter()
                    .filter(|(s, _)| s.matches(topic))
                    .max_by_key(|(s, _)| s.specificity());
                if let Some((_, hz)) = best {
                    let interval = hz.map(spacing);
                    self.conn.on_quote(&q, interval, self.now, &mut self.fx);
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms)),
            Op::Tick => {
                // Before its `poll_timeout` a tick does nothing: the shell
                // skips it then.
                let due = self.conn.poll_timeout().is_some_and(|at| at <= self.now);
                let (queued, actions) = (self.conn.out.queued_bytes(), self.fx.actions.len());
                self.conn.on_tick(self.now, &mut self.fx);
                if !due {
                    assert_eq!(
                        self.conn.out.queued_bytes(),
                        queued,
                        "a tick before its time queued"
                    );
                    assert_eq!(
                        self.fx.actions.len(),
                        actions,
                        "a tick before its time acted"
                    );
                }
            }
            Op::Write(room) => self.write(usize::from(room)),
            Op::FireTimers => {
                let now = self.now;
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
                    .into_iter()
                    .partition(|(at, _)| *at <= now);
                self.timers = later;
                for (_, topic) in due {
                    self.conn.on_timer(&topic, now, &mut self.fx);
                }
            }
        }
        self.settle();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn books_balance_and_quotes_stay_in_order(
        ops in prop::collection::vec(op(), 0..120),
        close in prop::option::of(prop::sample::select(vec![1000u16, 1001, 1002, 999, 5000])),
    ) {
        let mut m = Model::new();
        for op in ops {
            if m.dropped {
                break;
            }
            m.apply(op);
        }
        if let Some(code) = close {
            m.apply(Op::Close(code));
        }
        m.write(usize::MAX);
        m.conn.on_removed(&mut m.fx);
        m.settle();
        prop_assert_eq!(m.entries, 0);
        prop_assert!(m.routed.is_empty(), "still routed: {:?}", m.routed);
        prop_assert!(m.refs.values().all(|&r| r == 0), "interest left: {:?}", m.refs);
    }

    #[test]
    fn arbitrary_bytes_in_any_phase_never_panic(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..12),
        upgrade_first in any::<bool>(),
    ) {
        let mut m = if upgrade_first {
            Model::new()
        } else {
            let now = Instant::now();
            let mut m = Model::new();
            m.conn = Connection::new(Arc::new(config()), now);
            m
        };
        for chunk in chunks {
            m.conn.on_bytes(&chunk, m.now, &mut m.fx);
            m.now += Duration::from_secs(3);
            m.conn.on_tick(m.now, &mut m.fx);
            let _ = std::mem::take(&mut m.fx.actions);
            m.socket.room = usize::MAX;
            m.conn.flush_to(&mut m.socket, usize::MAX, m.now);
        }
    }
}
