//! The loop of one receiving thread: opens its subscribers within the
//! in-flight bound and the connect deadline, dispatches readiness, and
//! hands back what it measured when the phase turns to `PHASE_STOP`.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::OpCode;

use super::config::{RecvConfig, Shared, SlowMode, PHASE_MEASURE, PHASE_STOP};
use super::conn::{fail, flush, on_connected, open, send_auth, Conn, Ctx, Fail, State};
use super::frames::read;
use super::result::{new_histogram, ErrorCounts, RecvResult, WsResult};
use super::SCRATCH;
use crate::gaps::GapCounts;
use crate::sys;

/// Per-address results for a thread: one per `--ws` address when there are
/// several, none otherwise.
fn by_ws(cfg: &RecvConfig) -> Vec<WsResult> {
    if cfg.per_ws() {
        (0..cfg.ws.len()).map(|_| WsResult::new()).collect()
    } else {
        Vec::new()
    }
}

/// Runs one receiving thread until the phase becomes `PHASE_STOP`.
pub fn run(cfg: &RecvConfig, subs: Vec<usize>, shared: &Shared, thread_no: usize) -> RecvResult {
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(_) => {
            shared.failed.fetch_add(subs.len(), Ordering::Relaxed);
            shared.settled_threads.fetch_add(1, Ordering::Release);
            let errors = ErrorCounts {
                connect: subs.len() as u64,
                ..ErrorCounts::default()
            };
            return RecvResult {
                latency: new_histogram(),
                latency_by_ws: by_ws(cfg),
                connect: new_histogram(),
                subscribe_ack: new_histogram(),
                deliveries: 0,
                negative_latency: 0,
                gaps: GapCounts::default(),
                errors,
                subscribed: 0,
                slow: 0,
                busy_share: 0.0,
                last_delivery_ns: 0,
                wire_bytes: 0,
                deflate_negotiated: 0,
                authed: 0,
                auth_refreshes: 0,
                tls_key_updates: 0,
            };
        }
    };
    let mut ctx = Ctx {
        cfg,
        shared,
        poll,
        latency: new_histogram(),
        by_ws: by_ws(cfg),
        connect: new_histogram(),
        subscribe_ack: new_histogram(),
        deliveries: 0,
        negative_latency: 0,
        errors: ErrorCounts::default(),
        inflight: 0,
        subscribed: 0,
        slow: 0,
        mask_state: 0x2545_F491_4F6C_DD1D ^ (thread_no as u64 + 1),
        prefix: cfg.prefix.as_bytes().to_vec(),
        last_delivery_ns: 0,
        wire_bytes: 0,
        deflate_negotiated: 0,
        authed: 0,
        auth_refreshes: 0,
        tls_key_updates: 0,
    };
    let mut conns: Vec<Conn> = Vec::with_capacity(subs.len());
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; SCRATCH];
    let mut next = 0usize;
    let mut settled = false;
    let mut again: Vec<usize> = Vec::new();
    let mut again_now: Vec<usize> = Vec::new();
    let mut published = 0u64;
    let mut measure: Option<(Instant, Duration)> = None;
    let refresh_every = cfg.auth.as_ref().map(|t| t.refresh_every());
    let mut refresh_at = refresh_every.map(|every| Instant::now() + every);
    let key_update_every = cfg.tls.as_ref().and_then(|t| t.key_update_every);
    let mut key_update_at = key_update_every.map(|every| Instant::now() + every);

    loop {
        let phase = shared.phase.load(Ordering::Acquire);
        if phase >= PHASE_MEASURE && measure.is_none() {
            measure = Some((Instant::now(), sys::thread_cpu()));
        }
        if phase >= PHASE_STOP {
            break;
        }
        if !settled {
            let now = Instant::now();
            while next < subs.len() && ctx.inflight < cfg.max_inflight && now < cfg.connect_deadline
            {
                let s = subs[next];
                next += 1;
                if cfg.slow_mode == SlowMode::Skip && cfg.is_slow(s) {
                    continue;
                }
                open(&mut ctx, &mut conns, s);
            }
            if now >= cfg.connect_deadline {
                // Out of time: whatever is not subscribed yet has failed.
                let never = subs[next..]
                    .iter()
                    .filter(|&&s| !(cfg.slow_mode == SlowMode::Skip && cfg.is_slow(s)))
                    .count();
                ctx.errors.connect += never as u64;
                shared.failed.fetch_add(never, Ordering::Relaxed);
                next = subs.len();
                for c in conns.iter_mut() {
                    let kind = match c.state {
                        State::Connecting => Fail::Connect,
                        State::Handshake => Fail::Handshake,
                        State::AwaitAck => Fail::Refused,
                        _ => continue,
                    };
                    fail(&mut ctx, c, kind);
                }
            }
            if next >= subs.len() && ctx.inflight == 0 {
                settled = true;
                shared.settled_threads.fetch_add(1, Ordering::Release);
            }
        }

        let timeout = if again.is_empty() {
            Duration::from_millis(20)
        } else {
            Duration::ZERO
        };
        if let Err(e) = ctx.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                break;
            }
        }
        std::mem::swap(&mut again, &mut again_now);
        again.clear();
        for ev in events.iter() {
            let idx = ev.token().0;
            let Some(c) = conns.get_mut(idx) else {
                continue;
            };
            let more = handle(
                &mut ctx,
                c,
                &mut scratch,
                ev.is_readable(),
                ev.is_writable(),
            );
            if more {
                again.push(idx);
            }
        }
        for &idx in &again_now {
            if again.contains(&idx) {
                continue;
            }
            if let Some(c) = conns.get_mut(idx) {
                if handle(&mut ctx, c, &mut scratch, true, false) {
                    again.push(idx);
                }
            }
        }
        again_now.clear();
        if let (Some(at), Some(every)) = (refresh_at, refresh_every) {
            let now = Instant::now();
            if now >= at {
                refresh_tokens(&mut ctx, &mut conns);
                refresh_at = Some(now + every);
            }
        }
        if let (Some(at), Some(every)) = (key_update_at, key_update_every) {
            let now = Instant::now();
            if now >= at {
                update_tls_keys(&mut ctx, &mut conns);
                key_update_at = Some(now + every);
            }
        }
        if ctx.deliveries != published {
            shared
                .deliveries
                .fetch_add(ctx.deliveries - published, Ordering::Relaxed);
            published = ctx.deliveries;
        }
    }

    let busy_share = measure
        .map(|(t0, cpu0)| {
            let wall = t0.elapsed().as_secs_f64();
            let cpu = sys::thread_cpu().saturating_sub(cpu0).as_secs_f64();
            if wall > 0.0 {
                cpu / wall
            } else {
                0.0
            }
        })
        .unwrap_or(0.0);

    let mut gaps = GapCounts::default();
    for c in &conns {
        for t in &c.trackers {
            gaps.add(&t.counts);
        }
    }
    // Closing: dropping the sockets (the broker sees EOF).
    drop(conns);
    RecvResult {
        latency: ctx.latency,
        latency_by_ws: ctx.by_ws,
        connect: ctx.connect,
        subscribe_ack: ctx.subscribe_ack,
        deliveries: ctx.deliveries,
        negative_latency: ctx.negative_latency,
        gaps,
        errors: ctx.errors,
        subscribed: ctx.subscribed,
        slow: ctx.slow,
        busy_share,
        last_delivery_ns: ctx.last_delivery_ns,
        wire_bytes: ctx.wire_bytes,
        deflate_negotiated: ctx.deflate_negotiated,
        authed: ctx.authed,
        auth_refreshes: ctx.auth_refreshes,
        tls_key_updates: ctx.tls_key_updates,
    }
}

/// Sends a TLS 1.3 KeyUpdate on every streaming TLS 1.3 connection,
/// asking the broker to update its own keys as well, and a ping after it:
/// the quotes and the pong that follow (checked like any) come under the
/// broker's next key. The ping is also data between two KeyUpdates: a peer
/// may end a connection that sends many in a row with nothing between
/// (the broker does after 32, as rustls does), and a checked subscriber
/// without tokens sends nothing else.
fn update_tls_keys(ctx: &mut Ctx<'_>, conns: &mut [Conn]) {
    for c in conns.iter_mut().filter(|c| c.state == State::Streaming) {
        let Some(tls) = c.tls.as_mut() else {
            continue;
        };
        if tls.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            continue;
        }
        if tls.refresh_traffic_keys().is_err() {
            fail(ctx, c, Fail::Protocol);
            continue;
        }
        let mask = ctx.mask();
        encode_masked_frame(&mut c.wbuf, OpCode::Ping, true, b"key update", mask);
        match flush(c) {
            Ok(()) => ctx.tls_key_updates += 1,
            Err(kind) => fail(ctx, c, kind),
        }
    }
}

/// Sends every streaming connection a fresh token (one for all of them).
fn refresh_tokens(ctx: &mut Ctx<'_>, conns: &mut [Conn]) {
    let cfg = ctx.cfg;
    let Some(tokens) = cfg.auth.as_ref() else {
        return;
    };
    let request = tokens.auth_request(None);
    for c in conns.iter_mut().filter(|c| c.state == State::Streaming) {
        send_auth(ctx, c, &request);
        ctx.auth_refreshes += 1;
        if let Err(kind) = flush(c) {
            fail(ctx, c, kind);
        }
    }
}

/// Handles readiness; returns true if the connection has unread data left
/// (read cap hit) and should be revisited next turn.
fn handle(
    ctx: &mut Ctx<'_>,
    c: &mut Conn,
    scratch: &mut [u8],
    readable: bool,
    writable: bool,
) -> bool {
    let result = (|| {
        if writable {
            if c.state == State::Connecting {
                on_connected(ctx, c)?;
            }
            flush(c)?;
        }
        if readable
            && matches!(
                c.state,
                State::Handshake | State::AwaitAck | State::Streaming
            )
        {
            return read(ctx, c, scratch);
        }
        Ok(false)
    })();
    match result {
        Ok(more) => more,
        Err(kind) => {
            fail(ctx, c, kind);
            false
        }
    }
}
