//! Ingest frames written straight into a reused buffer.
//!
//! Byte-for-byte the bincode-legacy `IngestFrame::Batch` that
//! `tickwire_protocol::ingest::encode_frame` produces (a unit test pins
//! this), without building a `Vec<Quote>` with one `String` per quote.

/// Fields of one quote to encode; the topic is borrowed.
pub struct QuoteFields<'a> {
    pub topic: &'a [u8],
    pub price: f64,
    pub volume: f64,
    pub ts: u64,
}

/// Tag of `IngestFrame::Batch` (variant 2, u32 little-endian).
const BATCH_TAG: u32 = 2;

/// Starts a batch frame in `out`; returns the frame's start offset.
pub fn begin_batch(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // length prefix, patched in `end_batch`
    out.extend_from_slice(&BATCH_TAG.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // quote count, patched in `end_batch`
    start
}

#[inline]
pub fn push_quote(out: &mut Vec<u8>, q: &QuoteFields<'_>) {
    out.extend_from_slice(&(q.topic.len() as u64).to_le_bytes());
    out.extend_from_slice(q.topic);
    let bid = q.price;
    let ask = q.price + 0.01;
    for x in [bid, ask, 100.0, 200.0, q.price + 0.005, q.volume] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&q.ts.to_le_bytes());
}

/// Patches the length prefix and the quote count.
pub fn end_batch(out: &mut [u8], start: usize, count: u64) {
    let payload = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&payload.to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&count.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_protocol::ingest::{decode_frame, encode_frame, IngestFrame, DEFAULT_MAX_FRAME};
    use tickwire_protocol::Quote;

    #[test]
    fn identical_to_the_protocol_encoder() {
        let fields = [
            QuoteFields {
                topic: b"lt.0",
                price: 100.0,
                volume: 1.0,
                ts: 7,
            },
            QuoteFields {
                topic: b"lt.12345",
                price: 3.25,
                volume: 0.0,
                ts: u64::MAX,
            },
        ];
        let mut mine = Vec::new();
        let start = begin_batch(&mut mine);
        for f in &fields {
            push_quote(&mut mine, f);
        }
        end_batch(&mut mine, start, fields.len() as u64);

        let quotes: Vec<Quote> = fields
            .iter()
            .map(|f| Quote {
                topic: String::from_utf8(f.topic.to_vec()).unwrap(),
                bid: f.price,
                ask: f.price + 0.01,
                bid_size: 100.0,
                ask_size: 200.0,
                last: f.price + 0.005,
                volume: f.volume,
                ts: f.ts,
            })
            .collect();
        let mut theirs = Vec::new();
        encode_frame(&IngestFrame::Batch(quotes.clone()), &mut theirs);
        assert_eq!(mine, theirs);
        let (frame, used) = decode_frame(&mine, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(used, mine.len());
        assert_eq!(frame, IngestFrame::Batch(quotes));
    }

    #[test]
    fn empty_batch_is_valid() {
        let mut out = Vec::new();
        let start = begin_batch(&mut out);
        end_batch(&mut out, start, 0);
        let mut theirs = Vec::new();
        encode_frame(&IngestFrame::Batch(vec![]), &mut theirs);
        assert_eq!(out, theirs);
    }
}
