//! The only module that touches the `bincode` crate (frozen at 2.0.1), so
//! replacing it is a one-file change. Uses the bincode 1.x "legacy" layout:
//! little-endian fixed-width ints, u64 length prefixes, u32 enum tags.

use bincode::config::{self, Config};
use bincode::enc::write::Writer;
use bincode::error::EncodeError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Appends bincode output to a caller-owned buffer without an extra Vec.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Appends the legacy encoding of `v` to `out`. On error `out` is left as it was.
pub(crate) fn encode<T: Serialize>(v: &T, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    let res = bincode::serde::encode_into_writer(v, VecWriter(out), config::legacy());
    res.map_err(|e| {
        out.truncate(start);
        e.to_string()
    })
}

/// Decodes exactly one `T` from all of `bytes`; trailing bytes are an error.
///
/// Allocation is bounded: bincode allocates a string/byte buffer from its
/// length prefix *before* reading it, so a hostile `u64::MAX` prefix would
/// abort the process. A byte limit makes such prefixes fail instead. Valid
/// data never claims more bytes than it occupies, so a limit of at least
/// `bytes.len()` never rejects valid input; picking the next power of 16
/// keeps any allocation within 16x of the input size.
pub(crate) fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let n = bytes.len();
    if n <= 1 << 12 {
        decode_limited(bytes, config::legacy().with_limit::<{ 1 << 12 }>())
    } else if n <= 1 << 16 {
        decode_limited(bytes, config::legacy().with_limit::<{ 1 << 16 }>())
    } else if n <= 1 << 20 {
        decode_limited(bytes, config::legacy().with_limit::<{ 1 << 20 }>())
    } else if n <= 1 << 24 {
        decode_limited(bytes, config::legacy().with_limit::<{ 1 << 24 }>())
    } else if n <= 1 << 28 {
        decode_limited(bytes, config::legacy().with_limit::<{ 1 << 28 }>())
    } else if n <= u32::MAX as usize {
        // Ingest frames carry a u32 length, so nothing larger reaches here.
        decode_limited(
            bytes,
            config::legacy().with_limit::<{ u32::MAX as usize }>(),
        )
    } else {
        Err(format!("{n} bytes is too large to decode"))
    }
}

fn decode_limited<T: DeserializeOwned, C: Config>(bytes: &[u8], cfg: C) -> Result<T, String> {
    let (v, used) =
        bincode::serde::decode_from_slice::<T, C>(bytes, cfg).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the message",
            bytes.len().saturating_sub(used)
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_trailing() {
        let mut out = vec![0xAA];
        encode(&("hi".to_string(), 7u32), &mut out).unwrap();
        assert_eq!(out, [0xAA, 2, 0, 0, 0, 0, 0, 0, 0, b'h', b'i', 7, 0, 0, 0]);
        let v: (String, u32) = decode_exact(&out[1..]).unwrap();
        assert_eq!(v, ("hi".to_string(), 7));
        out.push(0);
        assert!(decode_exact::<(String, u32)>(&out[1..]).is_err());
    }

    #[test]
    fn huge_length_prefix_fails_without_allocating() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        assert!(decode_exact::<String>(&bytes).is_err());
        // Just over what the input could hold, but under the 4 KiB limit:
        // must fail on short input, not succeed or panic.
        let mut bytes = 100u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        assert!(decode_exact::<String>(&bytes).is_err());
    }

    #[test]
    fn length_prefix_over_limit_is_refused() {
        // 5000 > 4096 limit for a 12-byte input.
        let mut bytes = 5000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abcd");
        let err = decode_exact::<String>(&bytes).unwrap_err();
        assert!(err.to_lowercase().contains("limit"), "{err}");
    }
}
