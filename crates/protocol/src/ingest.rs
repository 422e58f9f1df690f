//! Producer ingest framing: `u32` little-endian payload length, then a
//! bincode-legacy `IngestFrame`. The decoder works on a caller-owned buffer
//! (the broker's read buffer) and never does I/O itself.

use serde::{Deserialize, Serialize};

use crate::bincode_legacy;
use crate::quote::Quote;
use crate::topic::is_valid_topic;

/// One producer message. Variant order fixes the u32 tag: 0, 1, 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IngestFrame {
    Hello {
        token: String,
    },
    Quote(Quote),
    /// All or nothing: one bad quote rejects the whole frame. May be empty.
    Batch(Vec<Quote>),
}

/// Default cap on a frame's payload (the 4 prefix bytes not counted).
pub const DEFAULT_MAX_FRAME: usize = 1_048_576;

const PREFIX_LEN: usize = 4;

/// Why a frame was refused; any of these closes the producer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IngestError {
    #[error("frame of {len} bytes over the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("frame does not decode: {0}")]
    Decode(String),
    #[error("invalid topic {0:?}")]
    BadTopic(String),
}

impl IngestError {
    /// Stable short name, used as a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::TooLong { .. } => "too_long",
            IngestError::Decode(_) => "decode",
            IngestError::BadTopic(_) => "bad_topic",
        }
    }
}

/// Decodes one frame from the front of `buf`.
///
/// `Ok(None)`: need more bytes. On success also returns the bytes consumed,
/// prefix included. `TooLong` is reported as soon as the 4 length bytes are
/// present, so an oversized frame is never buffered. Every quote's topic is
/// validated.
pub fn decode_frame(
    buf: &[u8],
    max_frame: usize,
) -> Result<Option<(IngestFrame, usize)>, IngestError> {
    let Some(prefix) = buf.first_chunk::<PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*prefix);
    // On a 16-bit usize a length that does not fit is certainly too long.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max_frame {
        return Err(IngestError::TooLong {
            len,
            max: max_frame,
        });
    }
    let total = PREFIX_LEN.saturating_add(len);
    let Some(payload) = buf.get(PREFIX_LEN..total) else {
        return Ok(None);
    };
    let frame: IngestFrame = bincode_legacy::decode_exact(payload).map_err(IngestError::Decode)?;
    check_topics(&frame)?;
    Ok(Some((frame, total)))
}

fn check_topics(frame: &IngestFrame) -> Result<(), IngestError> {
    let quotes: &[Quote] = match frame {
        IngestFrame::Hello { .. } => &[],
        IngestFrame::Quote(q) => std::slice::from_ref(q),
        IngestFrame::Batch(qs) => qs,
    };
    match quotes.iter().find(|q| !is_valid_topic(&q.topic)) {
        Some(bad) => Err(IngestError::BadTopic(bad.topic.clone())),
        None => Ok(()),
    }
}

/// Appends the length prefix and payload of `frame` to `out`.
///
/// # Panics
/// If the payload exceeds `u32::MAX` bytes (no protocol-valid frame can), or
/// if bincode refuses the value (it cannot for these types).
// Encoding a value of our own, never socket data: a failure here is a bug
// to surface, not input to survive.
#[allow(clippy::expect_used, clippy::indexing_slicing)]
pub fn encode_frame(frame: &IngestFrame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX_LEN]);
    bincode_legacy::encode(frame, out).expect("IngestFrame always encodes");
    let payload_len = out.len() - start - PREFIX_LEN;
    let len = u32::try_from(payload_len).expect("ingest frame payload over 4 GiB");
    out[start..start + PREFIX_LEN].copy_from_slice(&len.to_le_bytes());
}
