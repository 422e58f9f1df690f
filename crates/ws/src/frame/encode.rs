//! Frame encoders: server frames (unmasked) and client frames (masked, for
//! tests and the Rust client).

use super::{OpCode, MAX_CONTROL_PAYLOAD};
use crate::mask::apply_mask;

/// Size of a frame header for `payload_len` bytes.
pub fn header_len(payload_len: usize, masked: bool) -> usize {
    let ext = match payload_len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + ext + if masked { 4 } else { 0 }
}

/// Appends a frame header. The caller appends the payload (masked with
/// `mask` if given).
pub fn write_header(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) {
    let b0 = if fin { 0x80 } else { 0 } | opcode as u8;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(b0);
    match payload_len {
        // The match arms bound the value, so the narrowing casts are exact.
        0..=125 => out.push(mask_bit | payload_len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(payload_len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(payload_len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Appends a final, unmasked (server) frame.
pub fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    out.reserve(header_len(payload.len(), false) + payload.len());
    write_header(out, opcode, true, payload.len(), None);
    out.extend_from_slice(payload);
}

/// Appends a masked (client) frame.
pub fn encode_masked_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: [u8; 4],
) {
    out.reserve(header_len(payload.len(), true) + payload.len());
    write_header(out, opcode, fin, payload.len(), Some(mask));
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(fresh) = out.get_mut(start..) {
        apply_mask(fresh, mask);
    }
}

/// Close payload: code plus reason cut at a char boundary so the whole
/// payload fits the 125-byte control-frame limit.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes().get(..cut).unwrap_or_default());
    payload
}

/// Appends a server (unmasked) close frame.
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    encode_frame(out, OpCode::Close, &close_payload(code, reason));
}

/// Appends a client (masked) close frame.
pub fn encode_masked_close(out: &mut Vec<u8>, code: u16, reason: &str, mask: [u8; 4]) {
    encode_masked_frame(out, OpCode::Close, true, &close_payload(code, reason), mask);
}
