//! The ingest frame decoder (length prefix + bincode legacy) on arbitrary
//! bytes: never a panic, never more consumed than given, and a decoded
//! frame re-encodes to exactly the bytes consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_protocol::ingest::{decode_frame, encode_frame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = decode_frame(rest, 1 << 20) {
        assert!(used > 0 && used <= rest.len());
        let mut again = Vec::new();
        encode_frame(&frame, &mut again);
        assert_eq!(again, rest[..used], "decode/encode round trip");
        rest = &rest[used..];
    }
});
