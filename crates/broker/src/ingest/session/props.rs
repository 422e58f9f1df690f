//! Property tests: however a producer's byte stream is cut into reads, the
//! session forwards the same quotes in the same order, holds at most one
//! frame between reads, and a bad frame anywhere ends it after the good
//! frames before it.

use std::time::Instant;

use proptest::prelude::*;
use tickwire_protocol::ingest::{IngestFrame, DEFAULT_MAX_FRAME};
use tickwire_protocol::Quote;

use super::tests::{bytes, open, quote};
use super::*;

fn quote_strategy() -> impl Strategy<Value = Quote> {
    ("[A-Z]{1,8}(\\.[A-Z]{1,4})?", -1.0e6..1.0e6f64, any::<u64>()).prop_map(|(topic, price, ts)| {
        let mut q = quote(&topic, price);
        q.ts = ts;
        q
    })
}

fn frame_strategy() -> impl Strategy<Value = IngestFrame> {
    prop_oneof![
        3 => quote_strategy().prop_map(IngestFrame::Quote),
        1 => prop::collection::vec(quote_strategy(), 0..5).prop_map(IngestFrame::Batch),
    ]
}

fn quotes_of(frames: &[IngestFrame]) -> Vec<Quote> {
    frames
        .iter()
        .flat_map(|f| match f {
            IngestFrame::Quote(q) => vec![q.clone()],
            IngestFrame::Batch(b) => b.clone(),
            IngestFrame::Hello { .. } => vec![],
        })
        .collect()
}

/// `data` cut at `cuts` (any positions, in any order, repeats allowed).
fn reads<'a>(data: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Feeds `reads` until the session closes; the quotes forwarded and why it
/// closed, checking the buffer bound after every read.
fn feed(s: &mut ProducerSession, reads: &[&[u8]]) -> (Vec<Quote>, Option<RejectReason>) {
    let now = Instant::now();
    let mut quotes = Vec::new();
    for read in reads {
        let out = s.on_bytes(read, now);
        assert!(s.buffered() <= PREFIX_LEN + DEFAULT_MAX_FRAME);
        quotes.extend(out.quotes);
        if let Some(reject) = out.close {
            return (quotes, Some(reject.reason));
        }
    }
    (quotes, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_split_forwards_the_same_quotes(
        frames in prop::collection::vec(frame_strategy(), 1..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let data = bytes(&frames);
        let (mut s, _) = open();
        let (quotes, closed) = feed(&mut s, &reads(&data, &cuts));
        prop_assert_eq!(closed, None);
        prop_assert_eq!(quotes, quotes_of(&frames));
        prop_assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn a_bad_frame_ends_the_stream_after_the_good_ones(
        good in prop::collection::vec(frame_strategy(), 0..8),
        after in prop::collection::vec(frame_strategy(), 0..4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let mut data = bytes(&good);
        data.extend(bytes(&[IngestFrame::Quote(quote("bad topic", 1.0))]));
        data.extend(bytes(&after));
        let (mut s, _) = open();
        let (quotes, closed) = feed(&mut s, &reads(&data, &cuts));
        prop_assert_eq!(closed, Some(RejectReason::BadTopic));
        prop_assert_eq!(quotes, quotes_of(&good));
        prop_assert!(s.is_closed());
        prop_assert_eq!(s.buffered(), 0);
    }
}
