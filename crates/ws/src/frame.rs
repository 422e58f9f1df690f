//! WebSocket frame decoding (with all RFC 6455 protocol checks and message
//! reassembly) and frame encoding.
//!
//! The decoder is fed the caller's receive buffer and consumes at most one
//! frame per call, so the caller controls buffering and can stop reading at
//! any point (e.g. after a Close). Errors carry the close code to send.

use crate::close;
use crate::deflate::{inflate_message, InflateError, RSV1};
use crate::mask::apply_mask;
use crate::utf8::{validate_tail, Utf8Check};
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

/// A fragmented data message being reassembled.
#[derive(Debug)]
struct Partial {
    /// Text or Binary, from the first fragment.
    opcode: OpCode,
    /// Unmasked payload of all fragments so far.
    data: Vec<u8>,
    /// `data[..valid_up_to]` is known valid UTF-8 (text only), so each
    /// fragment only costs validating its own bytes.
    valid_up_to: usize,
    /// RSV1 was set on the first frame: `data` is compressed (its UTF-8 is
    /// checked once inflated).
    compressed: bool,
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
    role: Role,
    limits: DecoderLimits,
    /// `Some` only while a fragmented message is in progress, so idle
    /// connections hold no message buffer (boxed: one pointer when idle).
    partial: Option<Box<Partial>>,
    /// Once a violation is found the stream is unusable (frame boundaries
    /// may be lost); keep reporting the same error instead of guessing.
    /// Boxed: a healthy decoder (every idle connection has one) pays one
    /// pointer for it.
    failed: Option<Box<ProtocolError>>,
}

impl FrameDecoder {
    /// Creates a decoder; allocates nothing.
    pub fn new(role: Role, limits: DecoderLimits) -> Self {
        Self {
            role,
            limits,
            partial: None,
            failed: None,
        }
    }

    /// True when no fragmented message is partly assembled.
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Decodes at most one whole frame from the front of `buf`.
    ///
    /// Returns the bytes consumed (0 when the frame is not complete yet: keep
    /// the bytes and call again with more) and the event, if the frame
    /// completed a message or was a control frame. Header-level violations
    /// are reported as soon as the relevant header bytes are present.
    pub fn decode(&mut self, buf: &[u8]) -> Result<(usize, Option<Event>), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(**e);
        }
        let result = self.decode_inner(buf);
        if let Err(e) = result {
            self.failed = Some(Box::new(e));
            // Drop any half-built message: nothing will complete it now.
            self.partial = None;
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
        if b0 & 0x30 != 0 || (compressed && !self.limits.deflate) {
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
        match (opcode, &self.partial) {
            (OpCode::Continuation, None) => Err(err(
                close::PROTOCOL_ERROR,
                "continuation frame without a message in progress",
            )),
            (OpCode::Text | OpCode::Binary, Some(_)) => Err(err(
                close::PROTOCOL_ERROR,
                "new data frame while a fragmented message is in progress",
            )),
            (OpCode::Binary, None) if !self.limits.accept_binary => {
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
        let buffered = self.partial.as_ref().map_or(0, |p| p.data.len());
        let room = self.limits.max_message.saturating_sub(buffered);
        match usize::try_from(wire_len) {
            Ok(len) if len <= room => Ok(len),
            _ => Err(err(close::MESSAGE_TOO_BIG, "message too big")),
        }
    }

    /// Handles a complete data frame (header already validated).
    fn data_frame(
        &mut self,
        header: &Header,
        payload: &[u8],
    ) -> Result<Option<Event>, ProtocolError> {
        let mut part = match self.partial.take() {
            Some(part) => part,
            None if header.fin => {
                // Unfragmented message: no reassembly state needed.
                let data = unmasked(payload, header.mask);
                let data = self.inflated(header.compressed, data)?;
                return finish(header.opcode, data).map(Some);
            }
            None => Box::new(Partial {
                opcode: header.opcode,
                data: Vec::new(),
                valid_up_to: 0,
                compressed: header.compressed,
            }),
        };
        let start = part.data.len();
        part.data.extend_from_slice(payload);
        if let (Some(key), Some(fresh)) = (header.mask, part.data.get_mut(start..)) {
            apply_mask(fresh, key);
        }
        if part.opcode == OpCode::Text && !part.compressed {
            match validate_tail(&part.data, part.valid_up_to, header.fin) {
                Utf8Check::ValidUpTo(n) => part.valid_up_to = n,
                Utf8Check::Invalid => return Err(invalid_utf8()),
            }
        }
        if header.fin {
            let Partial {
                opcode,
                data,
                compressed,
                ..
            } = *part;
            let data = self.inflated(compressed, data)?;
            finish(opcode, data).map(Some)
        } else {
            self.partial = Some(part);
            Ok(None)
        }
    }
}

impl FrameDecoder {
    /// A whole message's payload, inflated if it came compressed, never
    /// past the message limit (a zip bomb costs `max_message` bytes).
    fn inflated(&self, compressed: bool, data: Vec<u8>) -> Result<Vec<u8>, ProtocolError> {
        if !compressed {
            return Ok(data);
        }
        let mut out = Vec::new();
        match inflate_message(&data, self.limits.max_message, &mut out) {
            Ok(()) => Ok(out),
            Err(InflateError::TooBig) => {
                Err(err(close::MESSAGE_TOO_BIG, "inflated message too big"))
            }
            Err(InflateError::Invalid) => Err(err(
                close::INVALID_PAYLOAD,
                "compressed data does not inflate",
            )),
        }
    }
}

/// The `N` bytes at `start`, or `None` if they have not all arrived.
fn array_at<const N: usize>(buf: &[u8], start: usize) -> Option<[u8; N]> {
    buf.get(start..start.checked_add(N)?)?.try_into().ok()
}

fn invalid_utf8() -> ProtocolError {
    err(close::INVALID_PAYLOAD, "invalid UTF-8 in text message")
}

/// Copies and unmasks a payload.
fn unmasked(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut data = payload.to_vec();
    if let Some(key) = mask {
        apply_mask(&mut data, key);
    }
    data
}

/// Turns a complete data message into its event.
fn finish(opcode: OpCode, data: Vec<u8>) -> Result<Event, ProtocolError> {
    if opcode == OpCode::Text {
        String::from_utf8(data)
            .map(Event::Text)
            .map_err(|_| invalid_utf8())
    } else {
        Ok(Event::Binary(data))
    }
}

mod control;
mod encode;
pub use encode::{
    encode_close, encode_frame, encode_masked_close, encode_masked_frame, header_len, write_header,
};

#[cfg(test)]
mod tests;
