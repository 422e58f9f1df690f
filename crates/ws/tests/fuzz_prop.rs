//! Property tests: hostile input never panics, whatever the chunking.

mod common;

use common::{chunk_at, feed_chunks};
use proptest::prelude::*;
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::http::parse_request_head;
use tickwire_ws::{handshake, DecoderLimits, FrameDecoder, OpCode, Role};

fn decoder(role_server: bool, accept_binary: bool, max_message: usize) -> FrameDecoder {
    let role = if role_server {
        Role::Server
    } else {
        Role::Client
    };
    FrameDecoder::new(
        role,
        DecoderLimits {
            max_message,
            accept_binary,
            deflate: accept_binary,
        },
    )
}

/// Feeds chunks; any Ok/Err is fine, only panics (and the driver's own
/// consistency asserts) fail the test.
fn run(dec: &mut FrameDecoder, bytes: &[u8], cuts: &[usize]) {
    let chunks = chunk_at(bytes, cuts);
    if feed_chunks(dec, chunks.iter().map(Vec::as_slice)).is_err() {
        // After an error the decoder keeps failing rather than resyncing.
        assert!(dec.decode(bytes).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        server in any::<bool>(),
        binary in any::<bool>(),
        max_message in 0usize..300,
    ) {
        run(&mut decoder(server, binary, max_message), &bytes, &cuts);
    }

    /// Random mutations of a valid stream reach deeper decoder states
    /// (fragments in progress, UTF-8 boundaries) than pure noise.
    #[test]
    fn mutated_valid_streams_never_panic(
        text in ".{0,60}",
        split in any::<usize>(),
        mask in any::<[u8; 4]>(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let raw = text.as_bytes();
        let split = split % (raw.len() + 1);
        let mut bytes = Vec::new();
        encode_masked_frame(&mut bytes, OpCode::Text, false, &raw[..split], mask);
        encode_masked_frame(&mut bytes, OpCode::Ping, true, b"p", mask);
        encode_masked_frame(&mut bytes, OpCode::Continuation, true, &raw[split..], mask);
        for (pos, xor) in flips {
            let i = pos % bytes.len();
            bytes[i] ^= xor;
        }
        run(&mut decoder(true, false, 65_536), &bytes, &cuts);
    }

    #[test]
    fn http_parsers_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        max_head in 0usize..700,
    ) {
        let _ = parse_request_head(&bytes, max_head);
        let _ = handshake::parse_client_response(&bytes, "dGhlIHNhbXBsZSBub25jZQ==", max_head);
        let mut prefixed = b"GET /ws?a HTTP/1.1\r\nUpgrade: websocket\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        if let Ok(tickwire_ws::http::HeadParse::Complete { head, len }) = parse_request_head(&prefixed, 8192) {
            prop_assert!(len <= prefixed.len());
            let _ = handshake::validate_upgrade(&head);
            let _ = head.query_param("a");
        }
    }
}
