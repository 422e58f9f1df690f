//! The server-side WebSocket frame decoder on arbitrary bytes, fed in
//! arbitrary chunks: it must never panic, and once it reports an error it
//! keeps reporting it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_ws::frame::{DecoderLimits, FrameDecoder, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let mut decoder = FrameDecoder::new(
        Role::Server,
        DecoderLimits {
            max_message: 4096,
            accept_binary: split & 1 == 1,
            deflate: split & 2 == 2,
        },
    );
    let chunk = usize::from(split).max(1);
    let mut buf: Vec<u8> = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&buf) {
                Ok((0, _)) => break,
                Ok((n, _event)) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                }
                Err(e) => {
                    assert_eq!(decoder.decode(&buf).err(), Some(e), "errors are sticky");
                    return;
                }
            }
        }
    }
});
