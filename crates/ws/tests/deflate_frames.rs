//! Compressed client messages through the frame decoder (RFC 7692 with
//! permessage-deflate negotiated): RSV1 rules, bounded inflation, errors.

mod common;

use common::feed_chunks;
use flate2::{write::DeflateEncoder, Compression};
use std::io::Write;
use tickwire_ws::deflate::{deflate_message, RSV1};
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::{DecoderLimits, Event, FrameDecoder, OpCode, Role};

const MASK: [u8; 4] = [1, 2, 3, 4];

fn decoder(deflate: bool, max_message: usize) -> FrameDecoder {
    FrameDecoder::new(
        Role::Server,
        DecoderLimits {
            max_message,
            accept_binary: true,
            deflate,
        },
    )
}

/// A masked client frame, RSV1 set when `rsv1`.
fn frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, opcode, fin, payload, MASK);
    if rsv1 {
        out[0] |= RSV1;
    }
    out
}

fn compressed(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    deflate_message(text, &mut out);
    out
}

fn decode(dec: &mut FrameDecoder, bytes: &[u8]) -> Result<Vec<Event>, u16> {
    feed_chunks(dec, [bytes])
        .map(|(events, _)| events)
        .map_err(|e| e.code)
}

#[test]
fn a_compressed_text_message_is_inflated() {
    let text = br#"{"type":"subscribe","topics":["AAPL","MSFT"],"id":1}"#;
    let mut dec = decoder(true, 1 << 16);
    let events = decode(
        &mut dec,
        &frame(OpCode::Text, true, true, &compressed(text)),
    )
    .unwrap();
    assert_eq!(
        events,
        [Event::Text(String::from_utf8(text.to_vec()).unwrap())]
    );
    // Uncompressed messages still pass on the same connection.
    let events = decode(&mut dec, &frame(OpCode::Text, true, false, b"plain")).unwrap();
    assert_eq!(events, [Event::Text("plain".into())]);
}

#[test]
fn a_fragmented_compressed_message_has_rsv1_on_its_first_frame_only() {
    let text = "ü".repeat(300);
    let data = compressed(text.as_bytes());
    let (a, b) = data.split_at(data.len() / 2);
    let mut bytes = frame(OpCode::Text, false, true, a);
    // A ping between fragments is fine (and carries no RSV1).
    bytes.extend(frame(OpCode::Ping, true, false, b"p"));
    bytes.extend(frame(OpCode::Continuation, true, false, b));
    let events = decode(&mut decoder(true, 1 << 16), &bytes).unwrap();
    assert_eq!(events, [Event::Ping(b"p".to_vec()), Event::Text(text)]);
}

#[test]
fn rsv1_where_it_may_not_be_is_1002() {
    let data = compressed(b"hello");
    // Not negotiated.
    assert_eq!(
        decode(
            &mut decoder(false, 1 << 16),
            &frame(OpCode::Text, true, true, &data)
        ),
        Err(1002)
    );
    // On a control frame.
    assert_eq!(
        decode(
            &mut decoder(true, 1 << 16),
            &frame(OpCode::Ping, true, true, b"x")
        ),
        Err(1002)
    );
    // On a continuation frame.
    let mut bytes = frame(OpCode::Text, false, true, &data[..2]);
    bytes.extend(frame(OpCode::Continuation, true, true, &data[2..]));
    assert_eq!(decode(&mut decoder(true, 1 << 16), &bytes), Err(1002));
    // RSV2 and RSV3 stay reserved.
    let mut rsv2 = frame(OpCode::Text, true, false, b"x");
    rsv2[0] |= 0x20;
    assert_eq!(decode(&mut decoder(true, 1 << 16), &rsv2), Err(1002));
}

#[test]
fn data_that_does_not_inflate_is_1007() {
    let bad = [0xff, 0xff, 0xff, 0x00, 0x13];
    assert_eq!(
        decode(
            &mut decoder(true, 1 << 16),
            &frame(OpCode::Text, true, true, &bad)
        ),
        Err(1007)
    );
    // Inflates, but not to UTF-8.
    let latin1 = compressed(&[0xe9, 0x20, 0xff]);
    assert_eq!(
        decode(
            &mut decoder(true, 1 << 16),
            &frame(OpCode::Text, true, true, &latin1)
        ),
        Err(1007)
    );
}

#[test]
fn ten_megabytes_of_compressed_zeros_stop_at_the_limit_with_1009() {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&vec![0u8; 10 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(
        bomb.len() < 64 << 10,
        "the bomb fits one message: {}",
        bomb.len()
    );
    let mut dec = decoder(true, 64 << 10);
    assert_eq!(
        decode(&mut dec, &frame(OpCode::Binary, true, true, &bomb)),
        Err(1009)
    );
}

#[test]
fn the_limit_counts_inflated_bytes_exactly() {
    let max = 1000;
    let at = vec![b'a'; max];
    let past = vec![b'a'; max + 1];
    let events = decode(
        &mut decoder(true, max),
        &frame(OpCode::Text, true, true, &compressed(&at)),
    )
    .unwrap();
    assert_eq!(events, [Event::Text("a".repeat(max))]);
    assert_eq!(
        decode(
            &mut decoder(true, max),
            &frame(OpCode::Text, true, true, &compressed(&past))
        ),
        Err(1009)
    );
}
