//! Property tests for the ingest codec: round trips and hostile bytes.

mod common;

use common::quote;
use proptest::prelude::*;
use tickwire_protocol::ingest::{decode_frame, encode_frame, IngestError, IngestFrame};
use tickwire_protocol::Quote;

fn frame() -> impl Strategy<Value = IngestFrame> {
    prop_oneof![
        any::<String>().prop_map(|token| IngestFrame::Hello { token }),
        quote().prop_map(IngestFrame::Quote),
        prop::collection::vec(quote(), 0..8).prop_map(IngestFrame::Batch),
    ]
}

/// Compares floats by bits so NaN payloads count too.
fn same(a: &IngestFrame, b: &IngestFrame) -> bool {
    fn q(a: &Quote, b: &Quote) -> bool {
        let bits =
            |x: &Quote| [x.bid, x.ask, x.bid_size, x.ask_size, x.last, x.volume].map(f64::to_bits);
        a.topic == b.topic && a.ts == b.ts && bits(a) == bits(b)
    }
    match (a, b) {
        (IngestFrame::Hello { token: x }, IngestFrame::Hello { token: y }) => x == y,
        (IngestFrame::Quote(x), IngestFrame::Quote(y)) => q(x, y),
        (IngestFrame::Batch(x), IngestFrame::Batch(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| q(x, y))
        }
        _ => false,
    }
}

proptest! {
    #[test]
    fn round_trip(f in frame(), split in any::<prop::sample::Index>()) {
        let mut bytes = Vec::new();
        encode_frame(&f, &mut bytes);
        let got = decode_frame(&bytes, bytes.len() - 4).unwrap();
        let (back, used) = got.unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert!(same(&f, &back), "{:?} != {:?}", f, back);
        // Any strict prefix is "need more".
        let cut = split.index(bytes.len());
        prop_assert_eq!(decode_frame(&bytes[..cut], usize::MAX), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512),
                                   max in 0usize..2048) {
        if let Ok(Some((_, used))) = decode_frame(&bytes, max) {
            prop_assert!(used <= bytes.len());
        }
    }

    /// A valid-looking frame header followed by arbitrary payload, where
    /// every u64 in the payload might be a hostile length prefix.
    #[test]
    fn hostile_payloads_never_panic_or_allocate_hugely(
        tag in 0u32..4,
        lens in prop::collection::vec(prop_oneof![any::<u64>(), Just(u64::MAX), 0u64..100], 1..4),
        tail in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut payload = tag.to_le_bytes().to_vec();
        for l in &lens {
            payload.extend_from_slice(&l.to_le_bytes());
        }
        payload.extend_from_slice(&tail);
        let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        match decode_frame(&bytes, 1 << 20) {
            Ok(Some((_, used))) => prop_assert_eq!(used, bytes.len()),
            Ok(None) => prop_assert!(false, "complete frame reported as partial"),
            Err(e) => prop_assert!(matches!(e, IngestError::Decode(_) | IngestError::BadTopic(_))),
        }
    }
}
