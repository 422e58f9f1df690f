//! Reassembly at every split point and with every chunking of the input.

mod common;

use common::{feed_chunks, feed_split};
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::{DecoderLimits, Event, FrameDecoder, OpCode, Role};

fn server() -> FrameDecoder {
    let limits = DecoderLimits {
        accept_binary: true,
        ..DecoderLimits::default()
    };
    FrameDecoder::new(Role::Server, limits)
}

fn frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8], seed: u8) {
    let mask = [
        seed,
        seed.wrapping_mul(31),
        0xA5 ^ seed,
        seed.wrapping_add(7),
    ];
    encode_masked_frame(out, opcode, fin, payload, mask);
}

/// Encodes `payload` as two fragments split at `split`, with a ping in
/// between.
fn two_fragments(opcode: OpCode, payload: &[u8], split: usize) -> Vec<u8> {
    let mut out = Vec::new();
    frame(&mut out, opcode, false, &payload[..split], 1);
    frame(&mut out, OpCode::Ping, true, b"between", 2);
    frame(&mut out, OpCode::Continuation, true, &payload[split..], 3);
    out
}

#[test]
fn text_reassembled_at_every_split_point() {
    let text = "tick: 1.25€ ✓ 😀 end";
    let raw = text.as_bytes();
    for split in 0..=raw.len() {
        let bytes = two_fragments(OpCode::Text, raw, split);
        let events = feed_split(&mut server(), &bytes, &[]).unwrap();
        assert_eq!(
            events,
            vec![Event::Ping(b"between".to_vec()), Event::Text(text.into())],
            "split {split}"
        );
    }
}

#[test]
fn binary_reassembled_at_every_split_point() {
    let raw: Vec<u8> = (0..=255u8).rev().collect();
    for split in 0..=raw.len() {
        let bytes = two_fragments(OpCode::Binary, &raw, split);
        let events = feed_split(&mut server(), &bytes, &[]).unwrap();
        assert_eq!(events[1], Event::Binary(raw.clone()), "split {split}");
    }
}

#[test]
fn every_chunking_of_a_small_stream() {
    // "a" + first byte of "é" | second byte of "é": the char is split
    // across fragments and the stream (15 bytes) is small enough to try all
    // 2^14 ways of cutting it into chunks.
    let mut bytes = Vec::new();
    frame(&mut bytes, OpCode::Text, false, b"a\xC3", 9);
    frame(&mut bytes, OpCode::Continuation, true, b"\xA9", 10);
    assert_eq!(bytes.len(), 15);
    let inner = bytes.len() - 1;
    for pattern in 0u32..(1 << inner) {
        let cuts: Vec<usize> = (0..inner)
            .filter(|i| pattern & (1 << i) != 0)
            .map(|i| i + 1)
            .collect();
        let events = feed_split(&mut server(), &bytes, &cuts).unwrap();
        assert_eq!(events, vec![Event::Text("aé".into())], "cuts {cuts:?}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut bytes = Vec::new();
    frame(
        &mut bytes,
        OpCode::Text,
        false,
        "x".repeat(300).as_bytes(),
        1,
    );
    frame(&mut bytes, OpCode::Pong, true, b"", 2);
    frame(&mut bytes, OpCode::Continuation, false, "ü".as_bytes(), 3);
    frame(
        &mut bytes,
        OpCode::Continuation,
        true,
        "y".repeat(70_000 - 302).as_bytes(),
        4,
    );
    frame(&mut bytes, OpCode::Binary, true, &[1, 2, 3], 5);
    frame(&mut bytes, OpCode::Close, true, &1001u16.to_be_bytes(), 6);
    let limits = DecoderLimits {
        max_message: 70_000,
        accept_binary: true,
        deflate: false,
    };
    let mut dec = FrameDecoder::new(Role::Server, limits);
    let (events, rest) = feed_chunks(&mut dec, bytes.chunks(1)).unwrap();
    assert!(rest.is_empty());
    let expected_text = format!("{}ü{}", "x".repeat(300), "y".repeat(70_000 - 302));
    assert_eq!(
        events,
        vec![
            Event::Pong(vec![]),
            Event::Text(expected_text),
            Event::Binary(vec![1, 2, 3]),
            Event::Close(Some((1001, String::new()))),
        ]
    );
}

#[test]
fn invalid_utf8_fails_on_first_fragment_in_any_chunking() {
    let mut bytes = Vec::new();
    frame(&mut bytes, OpCode::Text, false, b"ok\xFF", 1);
    let first_len = bytes.len();
    frame(&mut bytes, OpCode::Continuation, true, b"fine", 2);
    for cut in 1..bytes.len() {
        let mut dec = server();
        let result = feed_chunks(&mut dec, [&bytes[..cut], &bytes[cut..]]);
        assert_eq!(result.unwrap_err().code, 1007, "cut {cut}");
    }
    // And the error appears with only the first fragment delivered.
    let result = feed_chunks(&mut server(), [&bytes[..first_len]]);
    assert_eq!(result.unwrap_err().code, 1007);
}
