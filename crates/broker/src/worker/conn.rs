//! One connection on the WebSocket listener: HTTP request → WebSocket
//! session → closing. Owned by exactly one worker; all I/O is done by the
//! worker, this file turns bytes and router messages into queued frames.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::control::{parse_request, ErrorCode, Request};
use tickwire_protocol::{server, Selector};
use tickwire_ws::frame::{
    encode_close, encode_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role,
};
use tickwire_ws::handshake::accept_response;

use super::http::{route, HttpOutcome};
use super::outbound::{OutFrame, Outbound, Pushed};
use super::subscriptions::spacing;
use super::Ctx;
use crate::messages::{ConnId, Format, RouterCmd, SharedQuote};
use crate::metrics;
use crate::transport::Transport;

pub struct Conn {
    pub id: ConnId,
    pub transport: Transport,
    /// Bytes received but not yet a whole frame / head; empty (unallocated)
    /// whenever everything received was consumed.
    pub read_buf: Vec<u8>,
    pub out: Outbound,
    pub state: State,
    pub opened_at: Instant,
    /// Queued in the worker's list of connections to flush this round.
    pub dirty: bool,
    /// Last time the socket took bytes, the queue drained, or a quote was
    /// queued on an empty queue: the stall clock.
    pub progress_at: Instant,
}

pub enum State {
    Http,
    Ws(Box<Session>),
    /// A close frame or final HTTP response is queued: flush it, half-close,
    /// discard input until the peer closes or the deadline passes.
    Closing {
        deadline: Instant,
        write_shut: bool,
    },
}

pub struct Session {
    decoder: FrameDecoder,
    pub format: Format,
    entries: HashMap<Selector, Entry>,
    next_request: u32,
    pub last_heard: Instant,
    pub ping_sent_at: Option<Instant>,
    /// Per throttled topic (`max_hz`): when the next delivery may go and
    /// the newest quote held until then. Allocated on first use: boxed so
    /// the unthrottled majority pays one pointer, not an empty map's 48 B.
    #[allow(clippy::box_collection)]
    throttles: Option<Box<HashMap<Arc<str>, Throttle>>>,
}

struct Throttle {
    next_allowed: Instant,
    held: Option<Arc<SharedQuote>>,
}

struct Entry {
    /// The subscribe request that created it; the router's `Activate` for
    /// that request turns it on.
    request: u32,
    /// The latest subscribe request that named it (creation or re-subscribe):
    /// only that request's snapshots are delivered for it.
    named_in: u32,
    active: bool,
    /// f32, not f64: this struct is stored four times over in a small hash
    /// map per connection, and idle connections must stay cheap.
    max_hz: Option<f32>,
}

impl Conn {
    pub fn new(id: ConnId, transport: Transport, now: Instant, budget: usize) -> Conn {
        Conn {
            id,
            transport,
            read_buf: Vec::new(),
            out: Outbound::new(budget),
            state: State::Http,
            opened_at: now,
            dirty: false,
            progress_at: now,
        }
    }

    /// The slow-consumer rules, checked by the sweep: nothing read for
    /// `stall_timeout` while quotes are pending, or (policy `disconnect`)
    /// over budget for `disconnect_after`.
    pub fn is_too_slow(&self, s: &super::WorkerSettings, now: Instant) -> bool {
        if !self.out.is_empty() && now.duration_since(self.progress_at) >= s.stall_timeout {
            return true;
        }
        s.slow_consumer_policy == crate::config::SlowConsumerPolicy::Disconnect
            && self
                .out
                .conflating_since()
                .is_some_and(|since| now.duration_since(since) >= s.disconnect_after)
    }

    pub fn mark_dirty(&mut self, ctx: &mut Ctx) {
        if !self.dirty {
            self.dirty = true;
            ctx.dirty.push(self.id.slot);
        }
    }

    /// Handles bytes read from the socket.
    pub fn on_bytes(&mut self, ctx: &mut Ctx, data: &[u8]) {
        match &mut self.state {
            State::Http => {
                self.read_buf.extend_from_slice(data);
                self.on_http(ctx);
            }
            State::Ws(session) => {
                session.last_heard = ctx.now;
                session.ping_sent_at = None;
                if self.read_buf.is_empty() {
                    let used = self.on_frames(ctx, data);
                    if used < data.len() && matches!(self.state, State::Ws(_)) {
                        self.read_buf.extend_from_slice(&data[used..]);
                    }
                } else {
                    self.read_buf.extend_from_slice(data);
                    self.on_buffered_frames(ctx);
                }
            }
            State::Closing { .. } => {}
        }
    }

    fn on_http(&mut self, ctx: &mut Ctx) {
        match route(&self.read_buf, ctx.settings.max_head_bytes) {
            HttpOutcome::NeedMore => {}
            HttpOutcome::Metrics => {
                let body = crate::metrics::render(&ctx.metrics);
                let response = tickwire_ws::http::response(
                    200,
                    "OK",
                    &[],
                    crate::metrics::CONTENT_TYPE,
                    body.as_bytes(),
                );
                self.read_buf = Vec::new();
                self.out.push_priority(response);
                self.start_closing(ctx);
            }
            HttpOutcome::Respond(response) => {
                self.read_buf = Vec::new();
                self.out.push_priority(response);
                self.start_closing(ctx);
            }
            HttpOutcome::Upgrade {
                accept,
                format,
                head_len,
            } => {
                self.out.push_priority(accept_response(&accept));
                self.mark_dirty(ctx);
                self.state = State::Ws(Box::new(Session {
                    decoder: FrameDecoder::new(
                        Role::Server,
                        DecoderLimits {
                            max_message: ctx.settings.max_message_bytes,
                            accept_binary: false,
                        },
                    ),
                    format,
                    entries: HashMap::new(),
                    next_request: 0,
                    last_heard: ctx.now,
                    ping_sent_at: None,
                    throttles: None,
                }));
                metrics::gauge_add(&ctx.metrics.subscriber_connections, 1);
                self.read_buf.drain(..head_len.min(self.read_buf.len()));
                if !self.read_buf.is_empty() {
                    self.on_buffered_frames(ctx);
                } else {
                    self.read_buf = Vec::new();
                }
            }
        }
    }

    fn on_buffered_frames(&mut self, ctx: &mut Ctx) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let used = self.on_frames(ctx, &buf);
        if matches!(self.state, State::Ws(_)) && used < buf.len() {
            buf.drain(..used);
            self.read_buf = buf;
        }
    }

    /// Decodes and handles whole frames from `input`; returns bytes consumed.
    fn on_frames(&mut self, ctx: &mut Ctx, input: &[u8]) -> usize {
        let mut offset = 0;
        loop {
            let State::Ws(session) = &mut self.state else {
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
                        self.on_event(ctx, event);
                    }
                }
                Err(e) => {
                    tracing::debug!(
                        conn = self.id.slot,
                        code = e.code,
                        reason = e.reason,
                        "protocol error"
                    );
                    self.close_with(ctx, e.code, e.reason);
                    return input.len();
                }
            }
        }
    }

    fn on_event(&mut self, ctx: &mut Ctx, event: Event) {
        match event {
            Event::Text(text) => self.on_request(ctx, &text),
            Event::Binary(_) => self.close_with(
                ctx,
                tickwire_ws::close::UNSUPPORTED_DATA,
                "binary messages are not accepted",
            ),
            Event::Ping(payload) => {
                let mut pong = Vec::with_capacity(payload.len() + 2);
                encode_frame(&mut pong, OpCode::Pong, &payload);
                self.out.push_priority(pong);
                self.mark_dirty(ctx);
            }
            Event::Pong(_) => {}
            Event::Close(Some((code, _))) => self.close_with(ctx, code, ""),
            Event::Close(None) => self.close_with(ctx, tickwire_ws::close::NORMAL, ""),
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx, text: &str) {
        let result = match parse_request(text) {
            Ok(Request::Subscribe {
                id,
                topics,
                snapshot,
                max_hz,
            }) => self.subscribe(ctx, id, &topics, snapshot, max_hz),
            Ok(Request::Unsubscribe { id, topics }) => {
                self.unsubscribe(ctx, id, &topics);
                Ok(())
            }
            Err(e) => Err((e.id, e.code, e.message)),
        };
        if let Err((id, code, message)) = result {
            ctx.metrics.request_error(code);
            self.reply(ctx, server::json_error(id, code, &message));
        }
    }

    fn subscribe(
        &mut self,
        ctx: &mut Ctx,
        id: Option<u64>,
        topics: &[String],
        snapshot: bool,
        max_hz: Option<f64>,
    ) -> Result<(), (Option<u64>, ErrorCode, String)> {
        let State::Ws(session) = &mut self.state else {
            return Ok(());
        };
        let selectors = unique_selectors(topics)
            .map_err(|t| (id, ErrorCode::BadTopic, format!("invalid topic {t:?}")))?;
        let added = selectors
            .iter()
            .filter(|s| !session.entries.contains_key(*s))
            .count();
        let max = ctx.settings.max_subscriptions;
        if session.entries.len() + added > max {
            return Err((
                id,
                ErrorCode::TooManySubscriptions,
                format!("at most {max} subscription entries per connection"),
            ));
        }
        let max_hz = max_hz.map(|hz| hz as f32);
        let request = session.next_request;
        session.next_request = session.next_request.wrapping_add(1);
        let mut interest_add = Vec::new();
        for selector in &selectors {
            match session.entries.get_mut(selector) {
                Some(entry) => {
                    // Subscribing again replaces the entry's options.
                    entry.named_in = request;
                    if entry.max_hz != max_hz {
                        entry.max_hz = max_hz;
                        if entry.active {
                            ctx.subs.deactivate(selector, self.id.slot);
                            ctx.subs.activate(selector, self.id.slot, max_hz);
                        }
                    }
                }
                None => {
                    let entry = Entry {
                        request,
                        named_in: request,
                        active: false,
                        max_hz,
                    };
                    session.entries.insert(selector.clone(), entry);
                    if ctx.subs.add_ref(selector) {
                        interest_add.push(selector.clone());
                    }
                }
            }
        }
        metrics::gauge_add(&ctx.metrics.subscriptions, added as i64);
        // The ack is queued before anything the router sends for the request.
        self.reply(ctx, server::json_subscribed(id, topics, &ctx.epoch));
        ctx.send_router(RouterCmd::Subscribe {
            worker: ctx.id,
            conn: self.id,
            request,
            selectors,
            snapshot,
            interest_add,
        });
        Ok(())
    }

    fn unsubscribe(&mut self, ctx: &mut Ctx, id: Option<u64>, topics: &[String]) {
        let State::Ws(session) = &mut self.state else {
            return;
        };
        let mut dropped = Vec::new();
        let mut removed = 0;
        // Topics were validated by the parser; invalid ones cannot be entries.
        for selector in topics.iter().filter_map(|t| Selector::parse(t)) {
            if let Some(entry) = session.entries.remove(&selector) {
                removed += 1;
                release_entry(ctx, self.id.slot, &selector, &entry, &mut dropped);
            }
        }
        if removed > 0 {
            metrics::gauge_add(&ctx.metrics.subscriptions, -removed);
            // Quotes queued but not yet written for topics no longer wanted
            // are not sent after the `unsubscribed` reply.
            let entries = &session.entries;
            self.out
                .retain_quotes(|topic| entries.keys().any(|s| s.matches(topic)));
            if let Some(throttles) = session.throttles.as_mut() {
                throttles.retain(|topic, _| entries.keys().any(|s| s.matches(topic)));
            }
        }
        if !dropped.is_empty() {
            ctx.send_router(RouterCmd::DropInterest {
                worker: ctx.id,
                selectors: dropped,
            });
        }
        self.reply(ctx, server::json_unsubscribed(id, topics));
    }

    /// The router processed subscribe `request`: write the snapshots, then
    /// let live quotes flow to the entries it created.
    pub fn activate(&mut self, ctx: &mut Ctx, request: u32, snapshots: Vec<Arc<SharedQuote>>) {
        let State::Ws(session) = &mut self.state else {
            return;
        };
        for (selector, entry) in session.entries.iter_mut() {
            if entry.request == request && !entry.active {
                entry.active = true;
                ctx.subs.activate(selector, self.id.slot, entry.max_hz);
            }
        }
        for quote in snapshots {
            if !snapshot_wanted(&session.entries, request, &quote.topic) {
                continue;
            }
            // A snapshot counts as a delivery for `max_hz` spacing, and it is
            // the topic's newest quote: a held one is older or the same.
            let superseded = match min_interval(&session.entries, &quote.topic) {
                Some(interval) => {
                    let throttle = throttle_of(&mut session.throttles, &quote.topic, ctx.now);
                    throttle.next_allowed = ctx.now + interval;
                    throttle.held.take().is_some()
                }
                None => session
                    .throttles
                    .as_mut()
                    .and_then(|t| t.remove(&quote.topic))
                    .is_some_and(|t| t.held.is_some()),
            };
            if superseded {
                ctx.conflated += 1;
            }
            enqueue(
                &mut self.out,
                &mut self.progress_at,
                ctx,
                quote,
                session.format,
            );
        }
        self.mark_dirty(ctx);
    }

    /// Delivers a live quote, or holds it when its topic is throttled and
    /// the spacing has not passed (newest wins; a timer sends it later).
    pub fn push_quote(
        &mut self,
        ctx: &mut Ctx,
        quote: &Arc<SharedQuote>,
        min_interval: Option<Duration>,
    ) {
        let State::Ws(session) = &mut self.state else {
            return;
        };
        if let Some(interval) = min_interval {
            let throttle = throttle_of(&mut session.throttles, &quote.topic, ctx.now);
            if throttle.held.is_some() || ctx.now < throttle.next_allowed {
                match throttle.held.replace(quote.clone()) {
                    Some(_) => ctx.conflated += 1,
                    None => ctx.timers.push(Reverse((
                        throttle.next_allowed,
                        self.id,
                        quote.topic.clone(),
                    ))),
                }
                return;
            }
            throttle.next_allowed = ctx.now + interval;
        } else if let Some(throttles) = session.throttles.as_mut() {
            // No longer throttled (re-subscribed without max_hz): a held
            // older quote must not follow this newer one.
            if let Some(Throttle { held: Some(_), .. }) = throttles.remove(&quote.topic) {
                ctx.conflated += 1;
            }
        }
        enqueue(
            &mut self.out,
            &mut self.progress_at,
            ctx,
            quote.clone(),
            session.format,
        );
        self.mark_dirty(ctx);
    }

    /// A throttle timer fired: send the held quote of `topic`, if any.
    pub fn release_held(&mut self, ctx: &mut Ctx, topic: &Arc<str>) {
        let State::Ws(session) = &mut self.state else {
            return;
        };
        let interval = min_interval(&session.entries, topic);
        let Some(throttle) = session.throttles.as_mut().and_then(|t| t.get_mut(topic)) else {
            return;
        };
        if ctx.now < throttle.next_allowed {
            // A timer from an earlier hold (e.g. before a re-subscribe):
            // never release inside the current spacing; come back then.
            if throttle.held.is_some() {
                ctx.timers
                    .push(Reverse((throttle.next_allowed, self.id, topic.clone())));
            }
            return;
        }
        let Some(quote) = throttle.held.take() else {
            return;
        };
        throttle.next_allowed = ctx.now + interval.unwrap_or_default();
        enqueue(
            &mut self.out,
            &mut self.progress_at,
            ctx,
            quote,
            session.format,
        );
        self.mark_dirty(ctx);
    }

    pub fn ping(&mut self, ctx: &mut Ctx) {
        let mut ping = Vec::with_capacity(2);
        encode_frame(&mut ping, OpCode::Ping, &[]);
        self.out.push_priority(ping);
        if let State::Ws(session) = &mut self.state {
            session.ping_sent_at = Some(ctx.now);
        }
        self.mark_dirty(ctx);
    }

    fn reply(&mut self, ctx: &mut Ctx, json: String) {
        let mut frame = Vec::with_capacity(json.len() + 4);
        encode_frame(&mut frame, OpCode::Text, json.as_bytes());
        self.out
            .push_data(OutFrame::Owned(frame.into_boxed_slice()));
        self.mark_dirty(ctx);
    }

    /// Sends a close frame (ahead of any queued quotes, which are dropped)
    /// and starts closing.
    pub fn close_with(&mut self, ctx: &mut Ctx, code: u16, reason: &str) {
        if !matches!(self.state, State::Ws(_)) {
            return;
        }
        self.leave_session(ctx);
        self.out.clear_data();
        let mut frame = Vec::with_capacity(reason.len() + 4);
        encode_close(&mut frame, code, reason);
        self.out.push_priority(frame);
        ctx.metrics.close_sent(code);
        self.start_closing(ctx);
    }

    fn start_closing(&mut self, ctx: &mut Ctx) {
        self.read_buf = Vec::new();
        self.state = State::Closing {
            deadline: ctx.now + ctx.settings.close_timeout,
            write_shut: false,
        };
        self.mark_dirty(ctx);
    }

    /// Gives back everything the connection holds in shared state; called
    /// when it leaves the WebSocket state, whichever way.
    pub fn leave_session(&mut self, ctx: &mut Ctx) {
        let State::Ws(session) = &mut self.state else {
            return;
        };
        let mut dropped = Vec::new();
        let count = session.entries.len() as i64;
        for (selector, entry) in session.entries.drain() {
            release_entry(ctx, self.id.slot, &selector, &entry, &mut dropped);
        }
        metrics::gauge_add(&ctx.metrics.subscriptions, -count);
        metrics::gauge_add(&ctx.metrics.subscriber_connections, -1);
        if !dropped.is_empty() {
            ctx.send_router(RouterCmd::DropInterest {
                worker: ctx.id,
                selectors: dropped,
            });
        }
        // Any state but Ws; the caller sets the real next state.
        self.state = State::Http;
    }
}

fn release_entry(
    ctx: &mut Ctx,
    slot: usize,
    selector: &Selector,
    entry: &Entry,
    dropped: &mut Vec<Selector>,
) {
    if entry.active {
        ctx.subs.deactivate(selector, slot);
    }
    if ctx.subs.remove_ref(selector) {
        dropped.push(selector.clone());
    }
}

/// The throttle state of `topic`, created (with its map) on first use.
#[allow(clippy::box_collection)]
fn throttle_of<'a>(
    throttles: &'a mut Option<Box<HashMap<Arc<str>, Throttle>>>,
    topic: &Arc<str>,
    now: Instant,
) -> &'a mut Throttle {
    throttles
        .get_or_insert_with(Box::default)
        .entry(topic.clone())
        .or_insert(Throttle {
            next_allowed: now,
            held: None,
        })
}

/// Queues a quote on `out`, counting what conflation did. A quote landing
/// on an empty queue starts the stall clock.
fn enqueue(
    out: &mut Outbound,
    progress_at: &mut Instant,
    ctx: &mut Ctx,
    quote: Arc<SharedQuote>,
    format: Format,
) {
    if out.is_empty() {
        *progress_at = ctx.now;
    }
    match out.push_quote(quote, format, ctx.now) {
        Pushed::Queued | Pushed::Conflated { replaced: false } => ctx.deliveries += 1,
        Pushed::Conflated { replaced: true } => ctx.conflated += 1,
    }
}

/// The spacing set by the most specific entry matching `topic`, if any.
fn min_interval(entries: &HashMap<Selector, Entry>, topic: &str) -> Option<Duration> {
    entries
        .iter()
        .filter(|(s, _)| s.matches(topic))
        .max_by_key(|(s, _)| s.specificity())
        .and_then(|(_, e)| e.max_hz)
        .map(spacing)
}

/// Whether subscribe `request`'s snapshot of `topic` goes out: an entry that
/// request named must match it (not unsubscribed or re-requested without a
/// snapshot meanwhile), and — unless that entry already existed and was
/// re-subscribed, where the contract asks for the snapshot again — no other
/// active entry may already be delivering the topic, so a quote the client
/// got under an overlapping pattern is not sent twice.
fn snapshot_wanted(entries: &HashMap<Selector, Entry>, request: u32, topic: &str) -> bool {
    let mut new_match = false;
    for (selector, entry) in entries {
        if entry.named_in == request && selector.matches(topic) {
            if entry.request != request {
                return true; // re-subscribed existing entry
            }
            new_match = true;
        }
    }
    new_match
        && !entries
            .iter()
            .any(|(s, e)| e.active && e.named_in != request && s.matches(topic))
}

/// Request topics as selectors, a topic repeated in one request counted once.
/// Linear in the request size: a hash set, not `Vec::contains`, so a 64 KiB
/// request of a thousand topics costs microseconds, not milliseconds.
fn unique_selectors(topics: &[String]) -> Result<Vec<Selector>, &str> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(topics.len());
    let mut out: Vec<Selector> = Vec::with_capacity(topics.len());
    for topic in topics {
        let selector = Selector::parse(topic).ok_or(topic.as_str())?;
        if seen.insert(topic.as_str()) {
            out.push(selector);
        }
    }
    Ok(out)
}
