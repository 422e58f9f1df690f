//! Opening an `/sse` stream. Its request is its one subscribe, so it is
//! applied before any byte of the response: a refused request (bad topic,
//! bad `since`, a token that does not cover the topics, a snapshot rate
//! exceeded) gets the HTTP status and the protocol's `error` object as a
//! small JSON body instead of a stream. `Last-Event-ID` (what a browser's
//! `EventSource` sends when it reconnects) resumes every topic of the
//! stream from the point that id names, and wins over `since=`.

use std::time::Instant;

use tickwire_protocol::control::Request;

use super::catch_up::Ask;
use super::event_stream::{status_of, EventStream};
use super::subscriber::{Cx, Subscriber};
use super::{Action, Connection, Effects, Open, Phase, Transport};
use crate::encodings::Wire;
use crate::http::event_id::EventId;
use crate::http::{self, EventStreamRequest};
use crate::messages::Format;

impl Connection {
    pub(super) fn open_event_stream(
        &mut self,
        req: EventStreamRequest,
        now: Instant,
        fx: &mut Effects,
    ) {
        let config = self.config.clone();
        let EventStreamRequest {
            query,
            bearer,
            last_event_id,
            delta,
        } = req;
        let Request::Subscribe {
            topics,
            snapshot,
            max_hz,
            since,
            rewind,
            ..
        } = query.request
        else {
            // The query parser builds only subscribes.
            return self.refuse(400, "bad_request", "not a subscribe", now);
        };
        let wire = Wire {
            format: Format::Sse,
            delta,
            deflate: false,
        };
        if delta {
            self.out.track_deltas();
        }
        let mut core = Subscriber::new(&config, wire, now);
        if let Some(token) = query.token.or(bearer) {
            if let Err(why) = core.grant(&token, &config, now) {
                return self.refuse(403, "not_authorized", &why, now);
            }
        }
        // An id this broker did not issue (another broker, or before a
        // restart) still resumes: every topic unrecovered, their snapshots.
        let resume_from = last_event_id
            .as_deref()
            .and_then(EventId::parse)
            .map(|id| (id.accepted, id.instance == config.sse_instance));
        let since = since.filter(|_| resume_from.is_none());
        let ask = Ask {
            snapshot,
            max_hz,
            rewind,
            since: None,
            window: config.outbound_budget_bytes / 2,
            resume_from,
        };
        let sse = EventStream::new(now);
        let mut cx = Cx {
            config: &config,
            framing: &sse,
            out: &mut self.out,
            fx,
            now,
        };
        if let Err((code, message)) = core.subscribe(None, &topics, ask, since.as_ref(), &mut cx) {
            cx.fx.actions.push(Action::RequestError(code));
            let (status, _) = status_of(code);
            return self.refuse(status, code.as_str(), &message, now);
        }
        // The head first (the control lane goes before anything queued);
        // the ack waits in the reply gate for the activation, then the
        // quotes.
        cx.out.push_priority(http::event_stream_head());
        fx.actions.push(Action::OpenedSse);
        self.read_buf.clear();
        self.phase = Phase::Open(Open {
            transport: Transport::Sse(sse),
            core,
        });
    }

    /// A refused `/sse` request: its status and JSON error, then close.
    fn refuse(&mut self, status: u16, code: &str, message: &str, now: Instant) {
        let reason = match status {
            403 => "Forbidden",
            429 => "Too Many Requests",
            _ => "Bad Request",
        };
        self.respond(
            http::json_error_response(status, reason, code, message),
            now,
        );
    }
}
