//! A quote's wire frames, made once per quote: every subscriber of either
//! format shares these bytes.

use std::sync::Arc;
use std::time::Instant;

use tickwire_protocol::server::{self, changed_mask, fields};
use tickwire_protocol::Quote;
use tickwire_ws::frame::{header_len, write_header, OpCode};

use crate::messages::SharedQuote;

/// Encodes `quote` once per wire format as complete server frames.
pub fn encode(
    quote: &Quote,
    topic: Arc<str>,
    (seq, accepted): (u64, u64),
    decoded_at: Instant,
    changed: Option<u8>,
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
        changed,
        lazy: Default::default(),
        decoded_at,
    }
}

fn frame(opcode: OpCode, payload: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(header_len(payload.len(), false) + payload.len());
    write_header(&mut out, opcode, true, payload.len(), None);
    out.extend_from_slice(payload);
    out.into_boxed_slice()
}

/// What a quote numbered `seq` changes of its topic's last value `prev`
/// (field deltas): known only when `prev` is the quote of `seq - 1`.
pub fn changed(prev: Option<&SharedQuote>, quote: &Quote, seq: u64) -> Option<u8> {
    let prev = prev.filter(|p| p.seq.checked_add(1) == Some(seq))?;
    Some(changed_mask(&prev.numbers().1, &fields(quote)))
}
