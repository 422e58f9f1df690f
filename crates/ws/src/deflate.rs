//! permessage-deflate (RFC 7692) without I/O: the extension negotiation,
//! compression of server messages once per shared frame, and bounded
//! decompression of client messages.
//!
//! Both directions run without context takeover (see [`negotiate`]): every
//! message is compressed and inflated with a fresh DEFLATE context, so one
//! compressed encoding of a message is valid for every subscriber, and any
//! [`Inflater`] (one per worker thread is enough) can inflate any client's
//! message.
//!
//! The DEFLATE implementation is flate2 on the zlib-rs backend (pure Rust),
//! chosen by measurement: see docs/decisions.md, "permessage-deflate: which
//! deflate (issue 23)", and `benches/benches/deflate.rs`.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::close;
use crate::frame::{header_len, write_header, OpCode};

mod negotiate;

pub use negotiate::{negotiate, PERMESSAGE_DEFLATE, RESPONSE, SERVER_WINDOW_BITS};

/// The empty stored block that ends a sync flush; RFC 7692 section 7.2.1
/// removes it from every compressed message and section 7.2.2 puts it back.
pub const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The RSV1 bit of a frame's first byte: "this message is compressed"
/// (RFC 7692 section 6), set on the first frame of a message only.
pub const RSV1: u8 = 0x40;

/// The default compression level (zlib's). On a quote or a delta, levels
/// 2 to 9 give the same size (within 3 bytes) at the same cost, dominated
/// by the fresh context (clearing a 128 KiB hash table) and the dynamic
/// Huffman tables; level 1 skips the latter at half the cost and ~9% more
/// bytes. The numbers are in docs/decisions.md.
pub const LEVEL: u32 = 6;

/// What the inflater appends after a message: [`SYNC_TAIL`], then an empty
/// final block (fixed Huffman, BFINAL = 1). A message that ends where the
/// RFC says it must (at a block boundary, after the tail is put back) then
/// ends the DEFLATE stream; one cut inside a block does not, and is
/// reported as invalid rather than inflated to a silently truncated text.
const INFLATE_TAIL: [u8; 6] = [0x00, 0x00, 0xff, 0xff, 0x03, 0x00];

/// Longest frame header of an unmasked frame.
const MAX_HEADER: usize = 10;

/// A reusable compressor for server messages: each call compresses with a
/// fresh context (no context takeover), so the output does not depend on
/// earlier messages and can be shared by every connection.
pub struct Deflater {
    inner: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at [`LEVEL`] with a 32 KiB window (allocates the
    /// DEFLATE state, a few hundred KiB: keep it, e.g. one per thread).
    pub fn new() -> Self {
        Self::with_level(LEVEL)
    }

    /// A compressor at `level` (0 = stored, 1 = fastest, 9 = smallest;
    /// higher values are taken as 9).
    pub fn with_level(level: u32) -> Self {
        Self {
            inner: Compress::new(Compression::new(level.min(9)), false),
        }
    }

    /// Appends `payload` compressed as one permessage-deflate message: raw
    /// DEFLATE, sync flush, the trailing `00 00 ff ff` removed. Never
    /// fails: should the compressor ever report an error, the message is
    /// written as stored (uncompressed) DEFLATE blocks, which are as valid.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if self.try_compress(payload, out).is_none() {
            out.truncate(start);
            stored_blocks(payload, out);
        }
    }

    fn try_compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Option<()> {
        self.inner.reset();
        let start = out.len();
        // Deflate's worst case is the input plus 5 bytes per 16 KiB stored
        // block; the sync flush adds 5 more.
        out.reserve(payload.len() + payload.len() / 1024 + 64);
        let mut input = payload;
        loop {
            let (before, written_before) = (self.inner.total_in(), out.len());
            let status = self
                .inner
                .compress_vec(input, out, FlushCompress::Sync)
                .ok()?;
            let consumed = usize::try_from(self.inner.total_in().checked_sub(before)?).ok()?;
            input = input.get(consumed..)?;
            let spare = out.len() < out.capacity();
            // The flush is complete once all input is in and the compressor
            // stopped with output space to spare.
            if input.is_empty() && spare {
                break;
            }
            let stuck = spare && consumed == 0 && out.len() == written_before;
            if status == Status::StreamEnd || stuck {
                return None;
            }
            out.reserve(input.len() + 64);
        }
        let end = out.len().checked_sub(SYNC_TAIL.len())?;
        if end < start || out.get(end..)? != SYNC_TAIL {
            return None;
        }
        out.truncate(end);
        Some(())
    }
}

/// `payload` as stored DEFLATE blocks followed by the first byte of the
/// sync flush's empty stored block: a valid compressed message that a
/// compliant inflater turns back into `payload`.
fn stored_blocks(payload: &[u8], out: &mut Vec<u8>) {
    for chunk in payload.chunks(usize::from(u16::MAX)) {
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(0x00); // BFINAL = 0, BTYPE = 00, padding
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0x00);
}

thread_local! {
    static DEFLATER: RefCell<Deflater> = RefCell::new(Deflater::new());
    /// Made on a thread's first compressed client message (rare: requests).
    static INFLATER: RefCell<Option<Inflater>> = const { RefCell::new(None) };
}

/// Inflates one compressed client message with this thread's [`Inflater`]
/// (see [`Inflater::inflate`]: at most `max` bytes, then `TooBig`).
pub fn inflate_message(
    compressed: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), InflateError> {
    let shared = INFLATER.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => Some(
            slot.get_or_insert_with(Inflater::new)
                .inflate(compressed, max, out),
        ),
        Err(_) => None,
    });
    match shared.ok().flatten() {
        Some(result) => result,
        None => Inflater::new().inflate(compressed, max, out),
    }
}

/// Appends `payload` compressed as one permessage-deflate message (see
/// [`Deflater::compress`]) with this thread's [`Deflater`]. The bytes
/// depend on `payload` alone: compress a shared frame once, send the result
/// to every connection that negotiated the extension.
pub fn deflate_message(payload: &[u8], out: &mut Vec<u8>) {
    let done = DEFLATER
        .try_with(|d| match d.try_borrow_mut() {
            Ok(mut d) => {
                d.compress(payload, out);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    if !done {
        Deflater::new().compress(payload, out);
    }
}

/// Appends a final, unmasked (server) frame with RSV1 set, carrying the
/// already compressed message `compressed` (from [`deflate_message`]).
pub fn encode_deflated_frame(out: &mut Vec<u8>, opcode: OpCode, compressed: &[u8]) {
    out.reserve(header_len(compressed.len(), false) + compressed.len());
    let start = out.len();
    write_header(out, opcode, true, compressed.len(), None);
    if let Some(b0) = out.get_mut(start) {
        *b0 |= RSV1;
    }
    out.extend_from_slice(compressed);
}

/// Compresses `payload` and appends it as one final server frame with
/// RSV1 set, without an intermediate buffer. Returns the compressed
/// payload's length (the caller may prefer the plain frame when that is
/// not smaller than `payload`).
pub fn encode_deflated_message(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) -> usize {
    let start = out.len();
    // Compress behind room for the longest header, then close the gap.
    out.resize(start + MAX_HEADER, 0);
    deflate_message(payload, out);
    let body = start + MAX_HEADER;
    let len = out.len().saturating_sub(body);
    let mut header = Vec::with_capacity(MAX_HEADER);
    write_header(&mut header, opcode, true, len, None);
    if let Some(b0) = header.first_mut() {
        *b0 |= RSV1;
    }
    let at = start + header.len();
    out.copy_within(body.., at);
    out.truncate(at + len);
    if let Some(gap) = out.get_mut(start..at) {
        gap.copy_from_slice(&header);
    }
    len
}

/// Why a compressed client message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The message inflates to more than the limit (close 1009). Found
    /// while inflating: at most `max + 1` bytes were produced.
    #[error("inflated message too big")]
    TooBig,
    /// Not a valid permessage-deflate message (close 1007).
    #[error("compressed data does not inflate")]
    Invalid,
}

impl InflateError {
    /// The close code to send (RFC 6455 section 7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            Self::TooBig => close::MESSAGE_TOO_BIG,
            Self::Invalid => close::INVALID_PAYLOAD,
        }
    }
}

/// A reusable decompressor for client messages, with a fresh context for
/// every message (the client was told `client_no_context_takeover`), so
/// one per worker thread serves all its connections. Holds a 32 KiB window
/// and the inflate state once used.
pub struct Inflater {
    inner: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Self {
            inner: Decompress::new(false),
        }
    }

    /// Inflates one whole compressed message (the payloads of its frames
    /// concatenated, RSV1 having been set on the first) and appends it to
    /// `out`, putting back the `00 00 ff ff` tail (RFC 7692 section 7.2.2).
    ///
    /// Stops with [`InflateError::TooBig`] as soon as the output would pass
    /// `max` bytes: never more than `max + 1` bytes are inflated, so a zip
    /// bomb costs what `max` bytes cost. Data that is not DEFLATE, uses a
    /// window it was not given (context takeover), or ends inside a block
    /// is [`InflateError::Invalid`]. On error, what was appended to `out`
    /// is unspecified (the message is refused anyway). An empty payload is
    /// an empty message; bytes after a final (BFINAL) block are ignored, as
    /// zlib-based endpoints do (RFC 7692 section 7.2.3.4 pads one there).
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        self.inner.reset(false);
        if compressed.is_empty() {
            return Ok(());
        }
        let start = out.len();
        // One byte past the limit tells "exactly max" from "more than max".
        let limit = max.saturating_add(1);
        // The first output buffer: a guess from the input size (JSON
        // inflates by 2–5×), grown as needed, never past `limit`.
        let mut step = compressed.len().saturating_mul(4).max(256);
        for piece in [compressed, &INFLATE_TAIL[..]] {
            let mut input = piece;
            loop {
                let produced = out.len() - start;
                let room = limit.saturating_sub(produced);
                if room == 0 {
                    return Err(InflateError::TooBig);
                }
                let size = step.min(room);
                let at = out.len();
                out.resize(at + size, 0);
                let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
                let result = match out.get_mut(at..) {
                    Some(buf) => self.inner.decompress(input, buf, FlushDecompress::None),
                    None => return Err(InflateError::Invalid),
                };
                let consumed = delta(self.inner.total_in(), in_before)?;
                let written = delta(self.inner.total_out(), out_before)?;
                out.truncate(at + written.min(size));
                let status = result.map_err(|_| InflateError::Invalid)?;
                input = input.get(consumed..).ok_or(InflateError::Invalid)?;
                if status == Status::StreamEnd {
                    return if out.len() - start > max {
                        Err(InflateError::TooBig)
                    } else {
                        Ok(())
                    };
                }
                if written == size {
                    // Output space ran out: there may be more to come.
                    step = step.saturating_mul(2);
                    continue;
                }
                if input.is_empty() {
                    break;
                }
                if consumed == 0 && written == 0 {
                    // No progress with input and output space left.
                    return Err(InflateError::Invalid);
                }
            }
        }
        // The final block appended above was not reached.
        Err(InflateError::Invalid)
    }
}

/// `after - before` of a running byte count, as a length.
fn delta(after: u64, before: u64) -> Result<usize, InflateError> {
    after
        .checked_sub(before)
        .and_then(|d| usize::try_from(d).ok())
        .ok_or(InflateError::Invalid)
}

#[cfg(test)]
mod tests;
