//! Shared test driver: plays the caller's role of accumulating received
//! bytes and calling `decode` until it needs more.

#![allow(dead_code)] // each test binary uses a different subset

use tickwire_ws::{Event, FrameDecoder, ProtocolError};

/// Feeds `chunks` one after another into a caller-side buffer, decoding
/// whole frames as they become available. Returns the events and the bytes
/// left undecoded, or the first error.
pub fn feed_chunks<'a>(
    dec: &mut FrameDecoder,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Vec<Event>, Vec<u8>), ProtocolError> {
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let (n, ev) = dec.decode(&buf)?;
            assert!(n <= buf.len(), "consumed more than available");
            if n == 0 {
                assert!(ev.is_none(), "event without consuming bytes");
                break;
            }
            buf.drain(..n);
            events.extend(ev);
        }
    }
    Ok((events, buf))
}

/// Splits `bytes` at the given (unsorted, possibly duplicate) cut points.
pub fn chunk_at(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect()
}

/// Feeds all of `bytes` split at `cuts`; asserts nothing is left over.
pub fn feed_split(
    dec: &mut FrameDecoder,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<Event>, ProtocolError> {
    let chunks = chunk_at(bytes, cuts);
    let (events, rest) = feed_chunks(dec, chunks.iter().map(Vec::as_slice))?;
    assert!(rest.is_empty(), "{} bytes left undecoded", rest.len());
    Ok(events)
}
