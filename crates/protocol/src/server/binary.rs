//! Binary quote frame (WebSocket binary message), little-endian:
//!
//! | offset | size | field                      |
//! |--------|------|----------------------------|
//! | 0      | 1    | message type (1 = quote)   |
//! | 1      | 1    | topic length L (1..=64)    |
//! | 2      | 8    | seq u64                    |
//! | 10     | 8    | ts u64                     |
//! | 18     | 8×6  | bid ask bid_size ask_size last volume (f64) |
//! | 66     | L    | topic (ASCII)              |
//!
//! Non-finite numbers travel as their raw bit patterns.

use super::decode::{DecodeError, ServerMessage};
use super::delta::{decode_binary_delta, BINARY_DELTA};
use crate::quote::Quote;
use crate::topic::{is_valid_topic, MAX_TOPIC_LEN};

pub const BINARY_QUOTE: u8 = 1;
pub const BINARY_QUOTE_HEADER_LEN: usize = 66;

/// Appends the binary frame for `q` to `out`.
///
/// The topic is expected to be valid (ingest validates it); an over-long one
/// is cut to 64 bytes so the frame stays self-consistent rather than panic.
pub fn binary_quote(q: &Quote, seq: u64, out: &mut Vec<u8>) {
    let topic = q.topic.as_bytes();
    let topic = topic.get(..MAX_TOPIC_LEN).unwrap_or(topic);
    out.reserve(BINARY_QUOTE_HEADER_LEN + topic.len());
    out.push(BINARY_QUOTE);
    // topic.len() <= 64, so the cast is lossless.
    out.push(topic.len() as u8);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&q.ts.to_le_bytes());
    for x in [q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(topic);
}

/// Reads the 8 bytes at `at`; None if out of range.
fn le8(bytes: &[u8], at: usize) -> Option<[u8; 8]> {
    bytes.get(at..at + 8)?.try_into().ok()
}

/// Decodes a binary frame; must be exactly one well-formed quote (type 1)
/// or delta (type 2).
pub fn decode_binary(bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
    let err = |m: &str| DecodeError(m.to_owned());
    let (&kind, rest) = bytes.split_first().ok_or_else(|| err("empty frame"))?;
    match kind {
        BINARY_QUOTE => {}
        BINARY_DELTA => return decode_binary_delta(bytes),
        _ => return Err(DecodeError(format!("unknown binary message type {kind}"))),
    }
    let topic_len = usize::from(*rest.first().ok_or_else(|| err("truncated header"))?);
    if bytes.len() < BINARY_QUOTE_HEADER_LEN {
        return Err(err("truncated header"));
    }
    if bytes.len() != BINARY_QUOTE_HEADER_LEN + topic_len {
        return Err(DecodeError(format!(
            "frame is {} bytes, topic length {topic_len} needs {}",
            bytes.len(),
            BINARY_QUOTE_HEADER_LEN + topic_len
        )));
    }
    let u = |at| {
        le8(bytes, at)
            .map(u64::from_le_bytes)
            .ok_or_else(|| err("truncated"))
    };
    let f = |at| {
        le8(bytes, at)
            .map(f64::from_le_bytes)
            .ok_or_else(|| err("truncated"))
    };
    let topic = bytes
        .get(BINARY_QUOTE_HEADER_LEN..)
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| is_valid_topic(t))
        .ok_or_else(|| err("invalid topic"))?;
    Ok(ServerMessage::Quote {
        seq: u(2)?,
        quote: Quote {
            topic: topic.to_owned(),
            ts: u(10)?,
            bid: f(18)?,
            ask: f(26)?,
            bid_size: f(34)?,
            ask_size: f(42)?,
            last: f(50)?,
            volume: f(58)?,
        },
    })
}
