//! A quote's wire frames, made once per quote: every subscriber of either
//! format shares these bytes.

use std::sync::Arc;
use std::time::Instant;

use tickwire_protocol::{server, Quote};
use tickwire_ws::frame::{header_len, write_header, OpCode};

use crate::messages::SharedQuote;

/// Encodes `quote` once per wire format as complete server frames.
pub(super) fn encode(
    quote: &Quote,
    topic: Arc<str>,
    (seq, accepted): (u64, u64),
    decoded_at: Instant,
    scratch: &mut Vec<u8>,
) -> SharedQuote {
    scratch.clear();
    server::json_quote(quote, seq, scratch);
    let json_frame = frame(OpCode::Text, scratch);
    scratch.clear();
    server::binary_quote(quote, seq, scratch);
    let binary_frame = frame(OpCode::Binary, scratch);
    SharedQuote {
        topic,
        seq,
        accepted,
        json_frame,
        binary_frame,
        sse: Default::default(),
        decoded_at,
    }
}

fn frame(opcode: OpCode, payload: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(header_len(payload.len(), false) + payload.len());
    write_header(&mut out, opcode, true, payload.len(), None);
    out.extend_from_slice(payload);
    out.into_boxed_slice()
}
