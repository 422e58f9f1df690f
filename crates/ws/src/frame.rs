//! WebSocket frame decoding (with all RFC 6455 protocol checks and message
//! reassembly) and frame encoding.
//!
//! The decoder is fed the caller's receive buffer and consumes at most one
//! frame per call, so the caller controls buffering and can stop reading at
//! any point (e.g. after a Close). Errors carry the close code to send.

use crate::close;
use crate::deflate::RSV1;
use control::control_event;

/// Largest payload allowed in a control frame (RFC 6455 section 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10,
}

impl OpCode {
    /// Maps the 4-bit wire value; `None` for reserved opcodes.
    fn from_wire(bits: u8) -> Option<Self> {
        Some(match bits {
            0 => Self::Continuation,
            1 => Self::Text,
            2 => Self::Binary,
            8 => Self::Close,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x08 != 0
    }
}

/// Which side of the connection this decoder runs on; decides the masking
/// rule for frames received from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Peer frames (from a client) must be masked.
    Server,
    /// Peer frames (from a server) must NOT be masked (masked → 1002).
    Client,
}

#[derive(Clone, Copy, Debug)]
pub struct DecoderLimits {
    /// Maximum size of a whole message (all fragments), in payload bytes.
    pub max_message: usize,
    /// Whether binary data messages are accepted (else close 1003).
    pub accept_binary: bool,
    /// permessage-deflate was negotiated: RSV1 on a message's first frame
    /// means it is compressed (inflated with `max_message` as the bound on
    /// the inflated size); without it RSV1 is a protocol error.
    pub deflate: bool,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self {
            max_message: 65_536,
            accept_binary: false,
            deflate: false,
        }
    }
}

/// A complete message or a control frame received from the peer.
#[derive(Debug, PartialEq)]
pub enum Event {
    Text(String),
    Binary(Vec<u8>),
    /// The caller should answer with a Pong carrying the same payload.
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// `None` for an empty close payload; otherwise a valid code and reason.
    Close(Option<(u16, String)>),
}

/// A protocol violation; the connection must be closed with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (close {code})")]
pub struct ProtocolError {
    pub code: u16,
    pub reason: &'static str,
}

const fn err(code: u16, reason: &'static str) -> ProtocolError {
    ProtocolError { code, reason }
}

/// Parsed fixed part of a frame header.
struct Header {
    fin: bool,
    opcode: OpCode,
    /// RSV1 (permessage-deflate): the message is compressed.
    compressed: bool,
    mask: Option<[u8; 4]>,
    payload_len: usize,
    header_len: usize,
}

/// Incremental decoder for frames received from the peer.
#[derive(Debug)]
pub struct FrameDecoder {
    /// [`DecoderLimits`]' fields, flat, beside `role`: in one word with
    /// the flags (every idle connection has a decoder).
    max_message: usize,
    role: Role,
    accept_binary: bool,
    deflate: bool,
    /// `None` while idle and healthy: one pointer, no memory.
    stalled: Option<Box<Stalled>>,
}

impl FrameDecoder {
    /// Creates a decoder; allocates nothing.
    pub fn new(role: Role, limits: DecoderLimits) -> Self {
        Self {
            max_message: limits.max_message,
            role,
            accept_binary: limits.accept_binary,
            deflate: limits.deflate,
            stalled: None,
        }
    }

    /// True when no fragmented message is partly assembled.
    pub fn is_idle(&self) -> bool {
        !matches!(self.stalled.as_deref(), Some(Stalled::Partial(_)))
    }

    /// The message in progress, if any.
    fn partial(&self) -> Option<&Partial> {
        match self.stalled.as_deref() {
            Some(Stalled::Partial(p)) => Some(p),
            _ => None,
        }
    }

    /// Decodes at most one whole frame from the front of `buf`.
    ///
    /// Returns the bytes consumed (0 when the frame is not complete yet: keep
    /// the bytes and call again with more) and the event, if the frame
    /// completed a message or was a control frame. Header-level violations
    /// are reported as soon as the relevant header bytes are present.
    pub fn decode(&mut self, buf: &[u8]) -> Result<(usize, Option<Event>), ProtocolError> {
        if let Some(Stalled::Failed(e)) = self.stalled.as_deref() {
            return Err(*e);
        }
        let result = self.decode_inner(buf);
        if let Err(e) = result {
            // Any half-built message goes: nothing will complete it now.
            self.stalled = Some(Box::new(Stalled::Failed(e)));
        }
        result
    }

    fn decode_inner(&mut self, buf: &[u8]) -> Result<(usize, Option<Event>), ProtocolError> {
        let Some(header) = self.parse_header(buf)? else {
            return Ok((0, None));
        };
        // Only overflows if max_message is near usize::MAX on a 32-bit target.
        let total = header
            .header_len
            .checked_add(header.payload_len)
            .ok_or(err(close::MESSAGE_TOO_BIG, "message too big"))?;
        let Some(payload) = buf.get(header.header_len..total) else {
            return Ok((0, None));
        };
        let event = if header.opcode.is_control() {
            Some(control_event(&header, payload)?)
        } else {
            self.data_frame(&header, payload)?
        };
        Ok((total, event))
    }

    /// Parses and validates the header at the front of `buf`. `Ok(None)`
    /// means more bytes are needed. Every check runs as soon as the bytes it
    /// depends on are present, so a hostile header is refused before any
    /// payload is buffered.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let compressed = b0 & RSV1 != 0;
        if b0 & 0x30 != 0 || (compressed && !self.deflate) {
            return Err(err(close::PROTOCOL_ERROR, "reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode =
            OpCode::from_wire(b0 & 0x0F).ok_or(err(close::PROTOCOL_ERROR, "reserved opcode"))?;
        if compressed && (opcode == OpCode::Continuation || opcode.is_control()) {
            // RFC 7692 section 6.1: RSV1 marks a message's first frame only.
            return Err(err(
                close::PROTOCOL_ERROR,
                "RSV1 on a control or continuation frame",
            ));
        }
        if opcode.is_control() && !fin {
            return Err(err(close::PROTOCOL_ERROR, "fragmented control frame"));
        }
        self.check_sequence(opcode)?;

        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => {
                return Err(err(close::PROTOCOL_ERROR, "client frame not masked"))
            }
            (Role::Client, true) => return Err(err(close::PROTOCOL_ERROR, "server frame masked")),
            _ => {}
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(err(close::PROTOCOL_ERROR, "control frame too long"));
        }

        let (wire_len, ext_len) = match len7 {
            126 => match array_at::<2>(buf, 2) {
                Some(be) => (u64::from(u16::from_be_bytes(be)), 2),
                None => return Ok(None),
            },
            127 => match array_at::<8>(buf, 2) {
                Some(be) => {
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(err(close::PROTOCOL_ERROR, "payload length MSB set"));
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 0),
        };
        let payload_len = self.check_length(opcode, wire_len)?;

        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        let mask = if masked {
            match array_at::<4>(buf, 2 + ext_len) {
                Some(key) => Some(key),
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some(Header {
            fin,
            opcode,
            compressed,
            mask,
            payload_len,
            header_len,
        }))
    }

    /// Enforces fragmentation order and the binary policy.
    fn check_sequence(&self, opcode: OpCode) -> Result<(), ProtocolError> {
        match (opcode, self.partial()) {
            (OpCode::Continuation, None) => Err(err(
                close::PROTOCOL_ERROR,
                "continuation frame without a message in progress",
            )),
            (OpCode::Text | OpCode::Binary, Some(_)) => Err(err(
                close::PROTOCOL_ERROR,
                "new data frame while a fragmented message is in progress",
            )),
            (OpCode::Binary, None) if !self.accept_binary => {
                Err(err(close::UNSUPPORTED_DATA, "binary messages not accepted"))
            }
            _ => Ok(()),
        }
    }

    /// Checks the announced length against the message limit, counting
    /// fragments already buffered, and converts it to usize.
    fn check_length(&self, opcode: OpCode, wire_len: u64) -> Result<usize, ProtocolError> {
        if opcode.is_control() {
            // Already bounded by the 7-bit check (<= 125).
            return usize::try_from(wire_len)
                .map_err(|_| err(close::PROTOCOL_ERROR, "control frame too long"));
        }
        let buffered = self.partial().map_or(0, |p| p.data.len());
        let room = self.max_message.saturating_sub(buffered);
        match usize::try_from(wire_len) {
            Ok(len) if len <= room => Ok(len),
            _ => Err(err(close::MESSAGE_TOO_BIG, "message too big")),
        }
    }
}

/// The `N` bytes at `start`, or `None` if they have not all arrived.
fn array_at<const N: usize>(buf: &[u8], start: usize) -> Option<[u8; N]> {
    buf.get(start..start.checked_add(N)?)?.try_into().ok()
}

mod control;
mod message;

use message::{Partial, Stalled};
mod encode;
pub use encode::{
    encode_close, encode_frame, encode_masked_close, encode_masked_frame, header_len, write_header,
};

#[cfg(test)]
mod tests;
