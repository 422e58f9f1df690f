//! A quote's encodings past the two the router makes for every quote (the
//! full JSON and binary frames): deltas, permessage-deflate, Server-Sent
//! Events. Each is made the first time some connection needs it and then
//! shared by every connection of every worker (a `OnceLock`: one write per
//! quote and encoding, then reads only), so nothing is encoded per
//! subscriber whatever the mix of connections.

use std::sync::OnceLock;

use tickwire_protocol::server::{binary_delta, json_delta};
use tickwire_ws::deflate::encode_deflated_message;
use tickwire_ws::frame::{header_len, write_header, OpCode};

use crate::messages::{Format, SharedQuote};

/// JSON messages from this size on go compressed on a permessage-deflate
/// connection (the contract's rule); smaller ones would not shrink.
pub const DEFLATE_FROM: usize = 64;

/// How a connection wants its quotes.
///
/// `delta` on a frame waiting to be queued means "may go as a delta" (the
/// connection asked for deltas and this is not a quote that must be full);
/// the outbound queue decides when the frame enters its ordered lane
/// (`session::outbound`), after which it means "is a delta".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    pub format: Format,
    pub delta: bool,
    /// permessage-deflate was negotiated (WebSocket only).
    pub deflate: bool,
}

impl Wire {
    /// Full quotes, uncompressed: the v1 wire.
    pub fn plain(format: Format) -> Wire {
        Wire {
            format,
            delta: false,
            deflate: false,
        }
    }

    /// The label of `tickwire_bytes_out_total{encoding}` for bytes sent on
    /// a connection of this wire (deltas count under their format).
    pub fn metric_label(&self) -> Encoding {
        match (self.format, self.deflate) {
            (Format::Json, false) => Encoding::Json,
            (Format::Json, true) => Encoding::JsonDeflate,
            (Format::Binary, false) => Encoding::Binary,
            (Format::Binary, true) => Encoding::BinaryDeflate,
            (Format::Sse | Format::SseBare, _) => Encoding::Sse,
        }
    }
}

/// A [`Wire`] in one byte, for state every idle connection carries (it
/// then fits in padding beside other small fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedWire(u8);

impl From<Wire> for PackedWire {
    fn from(wire: Wire) -> Self {
        let format = match wire.format {
            Format::Json => 0,
            Format::Binary => 1,
            Format::Sse => 2,
            Format::SseBare => 3,
        };
        PackedWire(format | u8::from(wire.delta) << 2 | u8::from(wire.deflate) << 3)
    }
}

impl From<PackedWire> for Wire {
    fn from(packed: PackedWire) -> Self {
        let format = match packed.0 & 3 {
            0 => Format::Json,
            1 => Format::Binary,
            2 => Format::Sse,
            _ => Format::SseBare,
        };
        Wire {
            format,
            delta: packed.0 & 4 != 0,
            deflate: packed.0 & 8 != 0,
        }
    }
}

/// The connection kinds bytes out are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json = 0,
    Binary = 1,
    JsonDeflate = 2,
    BinaryDeflate = 3,
    Sse = 4,
}

impl Encoding {
    pub const ALL: [Encoding; 5] = [
        Encoding::Json,
        Encoding::Binary,
        Encoding::JsonDeflate,
        Encoding::BinaryDeflate,
        Encoding::Sse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Binary => "binary",
            Encoding::JsonDeflate => "json+deflate",
            Encoding::BinaryDeflate => "binary+deflate",
            Encoding::Sse => "sse",
        }
    }
}

/// The lazily made encodings of one quote. One pointer while none is
/// made (most quotes of a plain feed): history keeps thousands of quotes.
#[derive(Debug, Default)]
pub struct LazyEncodings(OnceLock<Box<[Encoded; LAZY_KINDS]>>);

/// One lazily made encoding.
type Encoded = OnceLock<Box<[u8]>>;

const LAZY_KINDS: usize = 8;

/// Which lazy encoding (the index into [`LazyEncodings`]).
#[derive(Clone, Copy)]
enum Lazy {
    JsonDelta = 0,
    BinaryDelta = 1,
    JsonDeflate = 2,
    JsonDeltaDeflate = 3,
    Sse = 4,
    SseBare = 5,
    SseDelta = 6,
    SseDeltaBare = 7,
}

impl LazyEncodings {
    fn cell(&self, kind: Lazy) -> &Encoded {
        &self.0.get_or_init(Default::default)[kind as usize]
    }

    fn get(&self, kind: Lazy) -> Option<&[u8]> {
        self.0.get()?[kind as usize].get().map(|b| &b[..])
    }
}

impl SharedQuote {
    /// The bytes of this quote on `wire`, made now if no connection needed
    /// them before. An SSE event must have been made first
    /// ([`SharedQuote::prepare_sse`]); if not, nothing. A delta of a quote
    /// without a known predecessor is the full quote (the outbound queue
    /// never asks for one).
    pub fn frame(&self, wire: Wire) -> &[u8] {
        let delta = wire.delta && self.changed.is_some();
        match (wire.format, delta, wire.deflate) {
            (Format::Json, false, false) => &self.json_frame,
            (Format::Binary, false, _) => &self.binary_frame,
            (Format::Binary, true, _) => self.made(Lazy::BinaryDelta, |out| {
                let mut payload = Vec::with_capacity(80);
                self.binary_delta_payload(&mut payload);
                frame(OpCode::Binary, &payload, false, out);
            }),
            (Format::Json, true, false) => self.made(Lazy::JsonDelta, |out| {
                let mut payload = Vec::with_capacity(96);
                self.json_delta_payload(&mut payload);
                frame(OpCode::Text, &payload, false, out);
            }),
            (Format::Json, false, true) => self.made(Lazy::JsonDeflate, |out| {
                frame(OpCode::Text, ws_payload(&self.json_frame), true, out);
            }),
            (Format::Json, true, true) => self.made(Lazy::JsonDeltaDeflate, |out| {
                let mut payload = Vec::with_capacity(96);
                self.json_delta_payload(&mut payload);
                frame(OpCode::Text, &payload, true, out);
            }),
            (Format::Sse | Format::SseBare, _, _) => self
                .lazy
                .get(sse_kind(wire.format, delta))
                .unwrap_or_default(),
        }
    }

    fn made(&self, kind: Lazy, make: impl FnOnce(&mut Vec<u8>)) -> &[u8] {
        self.lazy.cell(kind).get_or_init(|| {
            let mut out = Vec::new();
            make(&mut out);
            out.into_boxed_slice()
        })
    }

    /// Makes this quote's SSE event for `wire` (once per quote and kind):
    /// the full event, and the delta event too when `wire` may send one.
    /// Its `id:` is written by `id` (the broker's resume token for the
    /// quote's accept count). Other formats need nothing.
    pub fn prepare_sse(&self, wire: Wire, id: &dyn Fn(u64, &mut Vec<u8>)) {
        if !matches!(wire.format, Format::Sse | Format::SseBare) {
            return;
        }
        let with_id = wire.format == Format::Sse;
        let make = |delta: bool| {
            self.lazy
                .cell(sse_kind(wire.format, delta))
                .get_or_init(|| {
                    let mut json = Vec::with_capacity(self.json_frame.len());
                    if delta {
                        self.json_delta_payload(&mut json);
                    } else {
                        json.extend_from_slice(ws_payload(&self.json_frame));
                    }
                    let mut out = Vec::with_capacity(json.len() + 48);
                    if with_id {
                        out.extend_from_slice(b"id: ");
                        id(self.accepted, &mut out);
                        out.push(b'\n');
                    }
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&json);
                    out.extend_from_slice(b"\n\n");
                    out.into_boxed_slice()
                });
        };
        make(false);
        if wire.delta && self.changed.is_some() {
            make(true);
        }
    }

    /// The quote's `ts` and six numbers, read back from its binary frame
    /// (which holds them exactly): deltas need no second copy per quote.
    pub fn numbers(&self) -> (u64, [f64; 6]) {
        let payload = ws_payload(&self.binary_frame);
        let word = |at: usize| -> u64 {
            payload
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        let mut values = [0.0; 6];
        for (i, v) in values.iter_mut().enumerate() {
            *v = f64::from_bits(word(18 + 8 * i));
        }
        (word(10), values)
    }

    fn json_delta_payload(&self, out: &mut Vec<u8>) {
        let (ts, values) = self.numbers();
        let mask = self.changed.unwrap_or(u8::MAX);
        json_delta(&self.topic, self.seq, ts, &values, mask, out);
    }

    fn binary_delta_payload(&self, out: &mut Vec<u8>) {
        let (ts, values) = self.numbers();
        let mask = self.changed.unwrap_or(u8::MAX);
        binary_delta(&self.topic, self.seq, ts, &values, mask, out);
    }
}

fn sse_kind(format: Format, delta: bool) -> Lazy {
    match (format == Format::Sse, delta) {
        (true, false) => Lazy::Sse,
        (false, false) => Lazy::SseBare,
        (true, true) => Lazy::SseDelta,
        (false, true) => Lazy::SseDeltaBare,
    }
}

/// Appends `payload` as one server frame, compressed (RSV1) when `deflate`
/// and it is at least [`DEFLATE_FROM`] bytes.
pub fn frame(opcode: OpCode, payload: &[u8], deflate: bool, out: &mut Vec<u8>) {
    if deflate && payload.len() >= DEFLATE_FROM {
        encode_deflated_message(out, opcode, payload);
        return;
    }
    out.reserve(header_len(payload.len(), false) + payload.len());
    write_header(out, opcode, true, payload.len(), None);
    out.extend_from_slice(payload);
}

/// The payload of an unmasked, uncompressed server frame.
pub fn ws_payload(frame: &[u8]) -> &[u8] {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return &[],
    };
    frame.get(header..).unwrap_or_default()
}

#[cfg(test)]
mod tests;
