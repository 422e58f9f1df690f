//! The WebSocket phase's input: frames from the client (decoded by
//! `tickwire-ws`), control frames, and requests (parsed by
//! `tickwire-protocol`), with the reply gate that holds replies until the
//! router has taken every subscribe before them.

use std::time::Instant;

use tickwire_protocol::control::{parse_request, ErrorCode, Request};
use tickwire_protocol::server;
use tickwire_ws::close;
use tickwire_ws::frame::{encode_frame, Event, OpCode};

use super::outbound::OutFrame;
use super::outbound::Outbound;
use super::{entitlements, Action, Connection, Effects, Phase, Session};

impl Connection {
    pub(super) fn on_buffered_frames(&mut self, now: Instant, fx: &mut Effects) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let used = self.on_frames(&buf, now, fx);
        if self.is_subscriber() && used < buf.len() {
            buf.drain(..used);
            self.read_buf = buf;
        }
    }

    /// Decodes and handles whole frames from `input`; returns bytes consumed.
    pub(super) fn on_frames(&mut self, input: &[u8], now: Instant, fx: &mut Effects) -> usize {
        let mut offset = 0;
        loop {
            let Phase::Ws(session) = &mut self.phase else {
                return input.len();
            };
            if session.snapshots.outstanding() {
                // One snapshot request at a time: the rest of the input
                // waits (buffered) for its answer — see `SnapshotBucket`.
                return offset;
            }
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

    fn on_request(&mut self, text: &str, now: Instant, fx: &mut Effects) {
        let request = parse_request(text);
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let (per_second, burst) = (self.config.requests_per_second, self.config.request_burst);
        if !session.requests.take(per_second, burst, now) {
            // Not executed; the id echoed as for any error.
            let id = match &request {
                Ok(Request::Subscribe { id, .. })
                | Ok(Request::Unsubscribe { id, .. })
                | Ok(Request::Auth { id, .. }) => *id,
                Err(e) => e.id,
            };
            fx.actions
                .push(Action::RequestError(ErrorCode::RateLimited));
            let reply = server::json_error(
                id,
                ErrorCode::RateLimited,
                &format!("over {per_second} requests per second"),
            );
            queue_reply(session, &mut self.out, &reply);
            return self.check_reply_budget(now, fx);
        }
        if let Ok(Request::Auth { id, token }) = request {
            self.on_auth(id, &token, now, fx);
            return self.check_reply_budget(now, fx);
        }
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let reply = match request {
            Ok(Request::Subscribe {
                id,
                topics,
                snapshot,
                max_hz,
            }) => {
                let max = self.config.max_subscriptions;
                let denied = entitlements::first_uncovered(&self.config, session, &topics);
                let snapshots = self.config.snapshots_per_second;
                let result = match denied {
                    Some(topic) => Err((
                        ErrorCode::NotAuthorized,
                        format!("not authorized for {topic:?}"),
                    )),
                    None if snapshot && !session.snapshots.allows(snapshots, now) => Err((
                        ErrorCode::RateLimited,
                        format!(
                            "over {snapshots} snapshot quotes per second; retry later or subscribe with \"snapshot\":false"
                        ),
                    )),
                    None => session.subs.subscribe(&topics, snapshot, max_hz, max, fx),
                };
                match result {
                    Ok(()) => {
                        if snapshot {
                            let request = session.subs.last_request();
                            session.snapshots.reserve(snapshots, request);
                        }
                        // Held until the router has taken the command.
                        session.gate.issue();
                        server::json_subscribed(id, &topics, &self.config.epoch.current())
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
            Ok(Request::Auth { .. }) => return,
            Err(e) => {
                fx.actions.push(Action::RequestError(e.code));
                server::json_error(e.id, e.code, &e.message)
            }
        };
        queue_reply(session, &mut self.out, &reply);
        self.check_reply_budget(now, fx);
    }

    /// Replies count against the outbound budget: a client whose unread
    /// replies pass it (it floods requests and never reads) is closed 1008
    /// `slow consumer`, so its replies cannot grow without bound.
    fn check_reply_budget(&mut self, now: Instant, fx: &mut Effects) {
        let held = match &self.phase {
            Phase::Ws(session) => session.gate.held_bytes(),
            _ => return,
        };
        if self.out.reply_bytes() + held > self.config.outbound_budget_bytes {
            self.close_with(close::POLICY_VIOLATION, "slow consumer", now, fx);
        }
    }

    /// The router has taken this connection's oldest pending subscribe
    /// command: the replies held behind it may go.
    pub fn on_command_taken(&mut self) {
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        for reply in session.gate.taken() {
            self.out.push_data(OutFrame::Owned(reply));
        }
    }
}

/// Queues a reply (JSON text) behind the reply gate.
pub(super) fn queue_reply(session: &mut Session, out: &mut Outbound, json: &str) {
    let mut frame = Vec::with_capacity(json.len() + 4);
    encode_frame(&mut frame, OpCode::Text, json.as_bytes());
    if let Some(frame) = session.gate.reply(frame.into_boxed_slice()) {
        out.push_data(OutFrame::Owned(frame));
    }
}
