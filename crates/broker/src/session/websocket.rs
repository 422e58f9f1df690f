//! The WebSocket framing (RFC 6455, codec in `tickwire-ws`): client frames
//! in, control frames (ping/pong/close) and the liveness rules (idle ping,
//! dead peer), and the [`Framing`] the subscriber core writes through.
//! Nothing here knows what a subscription is.

use std::time::{Duration, Instant};

use tickwire_ws::close;
use tickwire_ws::frame::{
    encode_close, encode_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role,
};

use super::framing::{Ending, Framing};
use crate::encodings::frame;
use crate::moment::Moment;

pub(super) struct WebSocket {
    decoder: FrameDecoder,
    /// The liveness clock: when the peer was last heard from or, once
    /// `ping_sent`, when our ping went out (the dead-peer deadline runs from
    /// there). One instant for both keeps an idle connection small.
    liveness_at: Moment,
    ping_sent: bool,
    /// permessage-deflate negotiated (beside `ping_sent`: in padding).
    deflate: bool,
}

/// What a decoded client frame asks of the connection.
pub(super) enum Input {
    /// A text message: a request for the core.
    Request(String),
    /// A control frame to answer on the control lane (a pong).
    Control(Vec<u8>),
    /// Close with this code and reason (a protocol error, a binary
    /// message, or the echo of the client's close).
    Close(u16, &'static str),
    /// Nothing to do (a pong, or a frame of an unfinished message).
    Nothing,
}

/// What the liveness clock asks for on a tick.
pub(super) enum Liveness {
    Fine,
    /// Send this ping on the control lane.
    Ping(Vec<u8>),
    /// No answer to our ping within `dead_peer`: drop the connection.
    Dead,
}

impl WebSocket {
    /// `deflate`: permessage-deflate was negotiated (client messages may
    /// come compressed; replies from 64 bytes on go compressed).
    pub(super) fn new(max_message: usize, deflate: bool, now: Instant) -> WebSocket {
        WebSocket {
            decoder: FrameDecoder::new(
                Role::Server,
                DecoderLimits {
                    max_message,
                    accept_binary: false,
                    deflate,
                },
            ),
            liveness_at: now.into(),
            ping_sent: false,
            deflate,
        }
    }

    /// Bytes arrived: the peer is alive.
    pub(super) fn heard(&mut self, now: Instant) {
        self.liveness_at = now.into();
        self.ping_sent = false;
    }

    /// Decodes the next frame of `input`: (bytes consumed, what it asks);
    /// 0 bytes consumed means a frame is not complete yet.
    pub(super) fn decode(&mut self, input: &[u8]) -> (usize, Input) {
        match self.decoder.decode(input) {
            Ok((n, None)) => (n, Input::Nothing),
            Ok((n, Some(event))) => (n, on_event(event)),
            Err(e) => {
                tracing::debug!(code = e.code, reason = e.reason, "protocol error");
                (input.len(), Input::Close(e.code, e.reason))
            }
        }
    }

    /// When the idle ping goes, or (once it went) the peer counts as dead.
    pub(super) fn poll_timeout(&self, idle_ping: Duration, dead_peer: Duration) -> Moment {
        self.liveness_at + if self.ping_sent { dead_peer } else { idle_ping }
    }

    /// The idle ping and the dead-peer deadline.
    pub(super) fn on_tick(
        &mut self,
        idle_ping: Duration,
        dead_peer: Duration,
        now: Instant,
    ) -> Liveness {
        let quiet = now.saturating_duration_since(self.liveness_at.instant());
        if !self.ping_sent && quiet >= idle_ping {
            let mut ping = Vec::with_capacity(2);
            encode_frame(&mut ping, OpCode::Ping, &[]);
            self.ping_sent = true;
            self.liveness_at = now.into();
            Liveness::Ping(ping)
        } else if self.ping_sent && quiet >= dead_peer {
            Liveness::Dead
        } else {
            Liveness::Fine
        }
    }
}

fn on_event(event: Event) -> Input {
    match event {
        Event::Text(text) => Input::Request(text),
        Event::Binary(_) => {
            Input::Close(close::UNSUPPORTED_DATA, "binary messages are not accepted")
        }
        Event::Ping(payload) => {
            let mut pong = Vec::with_capacity(payload.len() + 2);
            encode_frame(&mut pong, OpCode::Pong, &payload);
            Input::Control(pong)
        }
        Event::Pong(_) => Input::Nothing,
        // The echo: the code the client sent, no reason.
        Event::Close(Some((code, _))) => Input::Close(code, ""),
        Event::Close(None) => Input::Close(close::NORMAL, ""),
    }
}

/// A close frame with this code and reason.
pub(super) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(reason.len() + 4);
    encode_close(&mut frame, code, reason);
    frame
}

impl Framing for WebSocket {
    fn message(&self, json: &str) -> Box<[u8]> {
        let mut out = Vec::with_capacity(json.len() + 4);
        // Compressed alone (no shared window), like a quote: replies are
        // rare, so per connection is fine here.
        frame(OpCode::Text, json.as_bytes(), self.deflate, &mut out);
        out.into_boxed_slice()
    }

    fn ending(&self, why: Ending) -> (Vec<u8>, u16) {
        let (code, reason) = match why {
            Ending::SlowConsumer => (close::POLICY_VIOLATION, "slow consumer"),
            Ending::TokenExpired => (close::POLICY_VIOLATION, "token expired"),
            Ending::GoingAway => (close::GOING_AWAY, "going away"),
        };
        (close_frame(code, reason), code)
    }
}
