//! Field deltas (v1.2): a quote sent as only the fields that changed since
//! the previous quote of its topic (seq − 1) that the connection received.
//!
//! JSON: `{"type":"delta","topic":"AAPL","seq":43,"ts":..,"bid":189.13}`.
//! Binary (type 2), little-endian:
//!
//! | offset | size | field                          |
//! |--------|------|--------------------------------|
//! | 0      | 1    | message type (2 = delta)       |
//! | 1      | 1    | topic length L (1..=64)        |
//! | 2      | 8    | seq u64                        |
//! | 10     | 8    | ts u64                         |
//! | 18     | 1    | mask: bit i = field i changed  |
//! | 19     | 8·k  | the changed f64s, in field order |
//! | 19+8k  | L    | topic (ASCII)                  |
//!
//! Fields are compared bit for bit: a NaN that stays the same NaN is
//! unchanged, `0.0` → `-0.0` is a change.

use super::decode::{DecodeError, ServerMessage};
use crate::json_write::{self as w, JsonOut};
use crate::quote::Quote;
use crate::topic::{is_valid_topic, MAX_TOPIC_LEN};

pub const BINARY_DELTA: u8 = 2;
/// Bytes before the changed values: type, topic length, seq, ts, mask.
pub const BINARY_DELTA_HEADER_LEN: usize = 19;
/// The six fields, in wire order (mask bit i ↔ `FIELD_NAMES[i]`).
pub const FIELD_NAMES: [&str; 6] = ["bid", "ask", "bid_size", "ask_size", "last", "volume"];
/// Every mask bit that names a field.
pub const ALL_FIELDS: u8 = 0b11_1111;

/// A quote's six numbers in wire order.
pub fn fields(q: &Quote) -> [f64; 6] {
    [q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume]
}

/// The fields of `next` that differ from `prev`, bit for bit.
pub fn changed_mask(prev: &[f64; 6], next: &[f64; 6]) -> u8 {
    let mut mask = 0;
    for (i, (a, b)) in prev.iter().zip(next).enumerate() {
        if a.to_bits() != b.to_bits() {
            mask |= 1 << i;
        }
    }
    mask
}

/// The changed fields of a delta: `mask` names them, `values[i]` holds field
/// i's new value where bit i is set (other entries are unused).
#[derive(Clone, Copy, Debug)]
pub struct FieldChanges {
    pub mask: u8,
    pub values: [f64; 6],
}

impl PartialEq for FieldChanges {
    /// Bit for bit, over the fields the mask names.
    fn eq(&self, other: &Self) -> bool {
        self.mask == other.mask
            && self
                .values
                .iter()
                .zip(&other.values)
                .enumerate()
                .all(|(i, (a, b))| self.mask & (1 << i) == 0 || a.to_bits() == b.to_bits())
    }
}

impl FieldChanges {
    /// Applies the changes to `base`, the quote of seq − 1, which becomes
    /// this delta's quote once its `seq` and `ts` are set by the caller.
    pub fn apply(&self, base: &mut Quote) {
        let slots = [
            &mut base.bid,
            &mut base.ask,
            &mut base.bid_size,
            &mut base.ask_size,
            &mut base.last,
            &mut base.volume,
        ];
        for (i, (slot, value)) in slots.into_iter().zip(self.values).enumerate() {
            if self.mask & (1 << i) != 0 {
                *slot = value;
            }
        }
    }
}

/// Appends the JSON delta of a quote (topic, seq, ts and the fields of
/// `values` that `mask` names). Non-finite numbers become `null`.
pub fn json_delta(topic: &str, seq: u64, ts: u64, values: &[f64; 6], mask: u8, out: &mut Vec<u8>) {
    out.push_text("{\"type\":\"delta\",\"topic\":");
    w::string(out, topic);
    out.push_text(",\"seq\":");
    w::u64_num(out, seq);
    out.push_text(",\"ts\":");
    w::u64_num(out, ts);
    for (i, (name, value)) in FIELD_NAMES.iter().zip(values).enumerate() {
        if mask & (1 << i) != 0 {
            out.push_text(",\"");
            out.push_text(name);
            out.push_text("\":");
            w::f64_num(out, *value);
        }
    }
    out.push_text("}");
}

/// Appends the binary delta (type 2) of a quote. A topic over 64 bytes is
/// cut, as in [`super::binary_quote`].
pub fn binary_delta(
    topic: &str,
    seq: u64,
    ts: u64,
    values: &[f64; 6],
    mask: u8,
    out: &mut Vec<u8>,
) {
    let topic = topic.as_bytes();
    let topic = topic.get(..MAX_TOPIC_LEN).unwrap_or(topic);
    let mask = mask & ALL_FIELDS;
    out.reserve(BINARY_DELTA_HEADER_LEN + 8 * mask.count_ones() as usize + topic.len());
    out.push(BINARY_DELTA);
    // topic.len() <= 64, so the cast is lossless.
    out.push(topic.len() as u8);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.push(mask);
    for (i, x) in values.iter().enumerate() {
        if mask & (1 << i) != 0 {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.extend_from_slice(topic);
}

/// Decodes a binary delta (the type byte already checked by the caller).
pub(super) fn decode_binary_delta(bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
    let err = |m: &str| DecodeError(m.to_owned());
    let (topic_len, mask) = match (bytes.get(1), bytes.get(BINARY_DELTA_HEADER_LEN - 1)) {
        (Some(&len), Some(&mask)) => (usize::from(len), mask),
        _ => return Err(err("truncated delta header")),
    };
    if mask & !ALL_FIELDS != 0 {
        return Err(DecodeError(format!(
            "delta mask {mask:#04x} names no field"
        )));
    }
    let k = mask.count_ones() as usize;
    let need = BINARY_DELTA_HEADER_LEN + 8 * k + topic_len;
    if bytes.len() != need {
        return Err(DecodeError(format!(
            "delta frame is {} bytes, mask and topic length need {need}",
            bytes.len()
        )));
    }
    // The length is exact by now: every read below is in range.
    let le8 = |at: usize| -> Result<[u8; 8], DecodeError> {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| err("truncated"))
    };
    let mut values = [0.0; 6];
    let mut at = BINARY_DELTA_HEADER_LEN;
    for (i, v) in values.iter_mut().enumerate() {
        if mask & (1 << i) != 0 {
            *v = f64::from_le_bytes(le8(at)?);
            at += 8;
        }
    }
    let topic = bytes
        .get(at..)
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| is_valid_topic(t))
        .ok_or_else(|| err("invalid topic"))?;
    Ok(ServerMessage::Delta {
        topic: topic.to_owned(),
        seq: u64::from_le_bytes(le8(2)?),
        ts: u64::from_le_bytes(le8(10)?),
        changes: FieldChanges { mask, values },
    })
}
