//! The Server-Sent Events framing (`GET /sse`, v1.2): the same subscriber
//! core as `/ws`, carried one way over plain HTTP for networks that block
//! WebSocket. Each reply is one `data:` event holding the JSON object the
//! WebSocket JSON mode would send; quotes are the router's shared events
//! (`messages::SseEvents`, with their `id:`); a comment line keeps proxies
//! from timing out a quiet stream. The client sends nothing after its
//! request: the stream ends with the connection.

use std::time::{Duration, Instant};

use tickwire_protocol::control::ErrorCode;
use tickwire_ws::close;

use super::framing::{Ending, Framing};

/// A comment line after this long without bytes out (proxies such as
/// nginx close an upstream that stays silent for 60 s by default).
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// The keepalive: an SSE comment, ignored by every client.
const COMMENT: &[u8] = b":\n\n";

pub(super) struct EventStream {
    /// When bytes last went out (or the stream opened).
    quiet_since: Instant,
}

impl EventStream {
    pub(super) fn new(now: Instant) -> EventStream {
        EventStream { quiet_since: now }
    }

    /// The socket took bytes.
    pub(super) fn sent(&mut self, now: Instant) {
        self.quiet_since = now;
    }

    /// When the next keepalive is due.
    pub(super) fn poll_timeout(&self) -> Instant {
        self.quiet_since + KEEPALIVE
    }

    /// A keepalive comment when the stream has been quiet for
    /// [`KEEPALIVE`] and nothing waits to be written.
    pub(super) fn on_tick(&mut self, idle: bool, now: Instant) -> Option<&'static [u8]> {
        if !idle || now < self.poll_timeout() {
            return None;
        }
        self.quiet_since = now;
        Some(COMMENT)
    }
}

/// One event of the stream: `data: <json>` and the blank line.
pub(super) fn data_event(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

impl Framing for EventStream {
    fn message(&self, json: &str) -> Box<[u8]> {
        data_event(json).into_boxed_slice()
    }

    /// An `error` message the client can read (the WebSocket close
    /// reason's words), then the end of the stream; at shutdown, just the
    /// end, after what is queued. The code is the WebSocket one, for the
    /// close counters.
    fn ending(&self, why: Ending) -> (Vec<u8>, u16) {
        let (code, message, close) = match why {
            Ending::SlowConsumer => ("slow_consumer", "slow consumer", close::POLICY_VIOLATION),
            Ending::TokenExpired => ("token_expired", "token expired", close::POLICY_VIOLATION),
            Ending::GoingAway => return (Vec::new(), close::GOING_AWAY),
        };
        let json = format!(r#"{{"type":"error","code":"{code}","message":"{message}"}}"#);
        (data_event(&json), close)
    }

    fn drains_before_ending(&self, why: Ending) -> bool {
        why == Ending::GoingAway
    }
}

/// The HTTP status an SSE request gets for what the WebSocket protocol
/// answers with an `error` message: the request is refused before any
/// event.
pub fn status_of(code: ErrorCode) -> (u16, &'static str) {
    match code {
        ErrorCode::NotAuthorized => (403, "Forbidden"),
        ErrorCode::RateLimited => (429, "Too Many Requests"),
        ErrorCode::BadRequest | ErrorCode::BadTopic | ErrorCode::TooManySubscriptions => {
            (400, "Bad Request")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_data_events_and_endings_say_why() {
        let now = Instant::now();
        let sse = EventStream::new(now);
        assert_eq!(
            &*sse.message(r#"{"type":"x"}"#),
            b"data: {\"type\":\"x\"}\n\n"
        );
        let (bytes, code) = sse.ending(Ending::TokenExpired);
        assert_eq!(code, close::POLICY_VIOLATION);
        assert_eq!(
            bytes,
            b"data: {\"type\":\"error\",\"code\":\"token_expired\",\"message\":\"token expired\"}\n\n"
        );
        assert!(sse.ending(Ending::GoingAway).0.is_empty());
        assert!(sse.drains_before_ending(Ending::GoingAway));
        assert!(!sse.drains_before_ending(Ending::SlowConsumer));
    }

    #[test]
    fn a_quiet_stream_gets_a_comment_every_15_s() {
        let now = Instant::now();
        let mut sse = EventStream::new(now);
        assert_eq!(sse.poll_timeout(), now + KEEPALIVE);
        assert_eq!(sse.on_tick(true, now + KEEPALIVE / 2), None);
        assert_eq!(sse.on_tick(false, now + KEEPALIVE), None, "bytes wait");
        assert_eq!(sse.on_tick(true, now + KEEPALIVE), Some(COMMENT));
        assert_eq!(sse.poll_timeout(), now + 2 * KEEPALIVE);
        sse.sent(now + KEEPALIVE + Duration::from_secs(10));
        assert_eq!(sse.on_tick(true, now + 2 * KEEPALIVE), None, "just sent");
    }
}
