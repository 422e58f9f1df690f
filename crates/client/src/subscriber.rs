//! Subscriber side: a blocking WebSocket client speaking the control protocol.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tickwire_protocol::control::{encode_subscribe_resume, encode_unsubscribe, Since};
use tickwire_protocol::server::{decode_binary, decode_json, ServerMessage};
use tickwire_ws::frame::{
    encode_masked_close, encode_masked_frame, DecoderLimits, Event, FrameDecoder, OpCode, Role,
};
use tickwire_ws::handshake::{client_key, client_request, parse_client_response, ResponseParse};

use crate::stream::{Stream, TlsOptions};
use crate::{ClientError, Result};

const MAX_SERVER_MESSAGE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Binary,
}

/// The `/ws` path and query of a connection in `format`, with field
/// deltas when `delta`.
pub fn ws_path(format: Format, delta: bool) -> String {
    let format = match format {
        Format::Json => "json",
        Format::Binary => "binary",
    };
    let delta = if delta { "&delta=1" } else { "" };
    format!("/ws?format={format}{delta}")
}

/// The optional fields of a subscribe request; `None` leaves the broker's
/// default. Build it with `..Default::default()` so new fields do not break
/// callers.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    pub id: Option<u64>,
    pub snapshot: Option<bool>,
    pub max_hz: Option<f64>,
    /// v1.2 resume: the epoch and the last seq seen per exact topic
    /// (`"since"`). Every key must be covered by one of the request's topics
    /// (at most 1,024 keys); the ack then says `recovered` / `unrecovered`.
    pub since: Option<Since>,
    /// v1.2: up to this many recent quotes (1..=1024) per topic not in
    /// `since`, in place of the snapshot (not with `snapshot: Some(false)`).
    pub rewind: Option<u16>,
}

pub struct Subscriber {
    stream: Stream,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    mask_state: u64,
    /// When bytes last arrived from the server (liveness, [`Self::idle_for`]).
    last_read: Instant,
}

impl Subscriber {
    pub fn connect(addr: SocketAddr, format: Format) -> Result<Subscriber> {
        Self::connect_to(addr, &ws_path(format, false), None)
    }

    /// `wss://`: a TLS listener (`[tls]`), trusting the CA in `tls`.
    pub fn connect_tls(addr: SocketAddr, format: Format, tls: &TlsOptions) -> Result<Subscriber> {
        Self::connect_to(addr, &ws_path(format, false), Some(tls))
    }

    /// Connects to `path` (see [`ws_path`]: `delta=1` asks for field
    /// deltas, which [`crate::Deltas`] turns back into quotes), over TLS
    /// when `tls` is given.
    pub fn connect_to(
        addr: SocketAddr,
        path: &str,
        tls: Option<&TlsOptions>,
    ) -> Result<Subscriber> {
        Self::connect_over(TcpStream::connect(addr)?, path, tls)
    }

    /// Like [`Self::connect_to`], over a TCP connection the caller opened
    /// with socket options of its own (a receive buffer size, say, which
    /// must be set before connecting to bound the TCP window).
    pub fn connect_over(
        stream: TcpStream,
        path: &str,
        tls: Option<&TlsOptions>,
    ) -> Result<Subscriber> {
        let addr = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        let stream = match tls {
            Some(tls) => Stream::tls(stream, tls)?,
            None => Stream::Plain(stream),
        };
        Self::handshake(stream, addr, path)
    }

    fn handshake(stream: Stream, addr: SocketAddr, path: &str) -> Result<Subscriber> {
        let mut mask_state = seed();
        let key = websocket_key(&mut mask_state);
        let mut sub = Subscriber {
            stream,
            decoder: FrameDecoder::new(
                Role::Client,
                DecoderLimits {
                    max_message: MAX_SERVER_MESSAGE,
                    accept_binary: true,
                    deflate: false,
                },
            ),
            buf: Vec::new(),
            mask_state,
            last_read: Instant::now(),
        };
        sub.stream
            .write_all(&client_request(&addr.to_string(), path, &key))?;
        sub.stream.flush()?;
        sub.stream
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(10)))?;
        loop {
            match parse_client_response(&sub.buf, &key, 16 * 1024) {
                Ok(ResponseParse::Complete { len }) => {
                    sub.buf.drain(..len);
                    return Ok(sub);
                }
                Ok(ResponseParse::Partial) => sub.fill()?,
                Err(e) => return Err(ClientError::Handshake(e.to_string())),
            }
        }
    }

    pub fn subscribe(&mut self, topics: &[&str], options: SubscribeOptions) -> Result<()> {
        let text = encode_subscribe_resume(
            topics,
            options.id,
            options.snapshot,
            options.max_hz,
            options.since.as_ref(),
            options.rewind,
        );
        self.send_text(&text)
    }

    pub fn unsubscribe(&mut self, topics: &[&str], id: Option<u64>) -> Result<()> {
        let text = encode_unsubscribe(topics, id);
        self.send_text(&text)
    }

    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send_frame(OpCode::Text, text.as_bytes())
    }

    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        let mask = self.next_mask();
        encode_masked_frame(&mut frame, opcode, true, payload, mask);
        self.stream.write_all(&frame)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Sends a ping (empty payload); the server's pong shows the connection
    /// is alive (see [`Self::idle_for`]). `next` skips the pong itself.
    pub fn ping(&mut self) -> Result<()> {
        self.send_frame(OpCode::Ping, &[])
    }

    /// How long since bytes last arrived from the server: a connection
    /// silent well past a ping's round trip is likely dead (a network cut
    /// without a reset).
    pub fn idle_for(&self) -> Duration {
        self.last_read.elapsed()
    }

    pub fn close(&mut self, code: u16) -> Result<()> {
        let mut frame = Vec::new();
        let mask = self.next_mask();
        encode_masked_close(&mut frame, code, "", mask);
        self.stream.write_all(&frame)?;
        self.stream.flush()?;
        Ok(())
    }

    /// The next server message, answering pings on the way. `Ok(None)` when
    /// nothing arrived within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<ServerMessage>> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline)? {
                None => return Ok(None),
                Some(Event::Text(text)) => {
                    return decode_json(&text)
                        .map(Some)
                        .map_err(|e| ClientError::Protocol(e.to_string()))
                }
                Some(Event::Binary(bytes)) => {
                    return decode_binary(&bytes)
                        .map(Some)
                        .map_err(|e| ClientError::Protocol(e.to_string()))
                }
                Some(Event::Ping(payload)) => self.send_frame(OpCode::Pong, &payload)?,
                Some(Event::Pong(_)) => {}
                Some(Event::Close(close)) => {
                    let (code, reason) = match close {
                        Some((code, reason)) => (Some(code), reason),
                        None => (None, String::new()),
                    };
                    return Err(ClientError::Closed { code, reason });
                }
            }
        }
    }

    /// The next raw WebSocket event (tests use it to see pings and frame
    /// types). `Ok(None)` on timeout.
    pub fn next_event(&mut self, deadline: Instant) -> Result<Option<Event>> {
        loop {
            match self.decoder.decode(&self.buf) {
                Ok((0, _)) => {}
                Ok((n, event)) => {
                    self.buf.drain(..n);
                    match event {
                        Some(event) => return Ok(Some(event)),
                        None => continue,
                    }
                }
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.stream.tcp().set_read_timeout(Some(deadline - now))?;
            match self.fill() {
                Ok(()) => {}
                Err(ClientError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Ok(None)
                }
                // A timed read is not restarted after a stop/continue.
                Err(ClientError::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ClientError::Closed {
                code: None,
                reason: "connection closed without a close frame".into(),
            });
        }
        self.buf.extend_from_slice(&chunk[..n]);
        self.last_read = Instant::now();
        Ok(())
    }

    fn next_mask(&mut self) -> [u8; 4] {
        (xorshift(&mut self.mask_state) as u32).to_le_bytes()
    }

    /// The TCP socket (plain or under TLS).
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn websocket_key(state: &mut u64) -> String {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&xorshift(state).to_le_bytes());
    nonce[8..].copy_from_slice(&xorshift(state).to_le_bytes());
    client_key(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ws_path_asks_for_deltas_only_when_told() {
        assert_eq!(ws_path(Format::Json, false), "/ws?format=json");
        assert_eq!(ws_path(Format::Json, true), "/ws?format=json&delta=1");
        assert_eq!(ws_path(Format::Binary, true), "/ws?format=binary&delta=1");
    }
}
