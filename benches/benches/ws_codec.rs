//! WebSocket frame codec: decoding client frames on the server side (masked,
//! with UTF-8 validation and reassembly) and encoding server frames.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickwire_benches::text_payload;
use tickwire_ws::frame::{encode_frame, encode_masked_frame};
use tickwire_ws::{DecoderLimits, Event, FrameDecoder, OpCode, Role};

const PAYLOAD_LEN: usize = 150;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const STREAM_FRAMES: usize = 64;
const FRAGMENTS: usize = 4;

fn server_decoder() -> FrameDecoder {
    FrameDecoder::new(Role::Server, DecoderLimits::default())
}

fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_masked_frame(&mut frame, OpCode::Text, true, payload, MASK);
    frame
}

/// Decodes every frame in `buf`, returning the number of events.
fn decode_all(decoder: &mut FrameDecoder, mut buf: &[u8]) -> usize {
    let mut events = 0;
    while !buf.is_empty() {
        let (used, event) = decoder.decode(buf).expect("valid frame");
        assert!(used > 0, "incomplete frame in a complete stream");
        events += usize::from(event.is_some());
        buf = &buf[used..];
    }
    events
}

fn bench_ws_codec(c: &mut Criterion) {
    let payload = text_payload(PAYLOAD_LEN);
    let frame = masked_text_frame(&payload);

    // Sanity: the fixture decodes to the payload we built.
    match server_decoder().decode(&frame) {
        Ok((n, Some(Event::Text(t)))) if n == frame.len() && t.as_bytes() == payload => {}
        other => panic!("fixture does not decode: {other:?}"),
    }

    let mut group = c.benchmark_group("ws_codec");

    group.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    group.bench_function("decode_masked_text_150B", |b| {
        let mut decoder = server_decoder();
        b.iter(|| {
            let out = decoder.decode(black_box(&frame)).expect("valid frame");
            black_box(out)
        })
    });

    let stream: Vec<u8> = (0..STREAM_FRAMES).flat_map(|_| frame.clone()).collect();
    group.throughput(Throughput::Elements(STREAM_FRAMES as u64));
    group.bench_function("decode_stream_64x150B", |b| {
        let mut decoder = server_decoder();
        b.iter(|| {
            let events = decode_all(&mut decoder, black_box(&stream));
            assert_eq!(events, STREAM_FRAMES);
        })
    });

    // One 600-byte text message as Text(fin=0), Continuation x2, Continuation(fin=1).
    let message = text_payload(PAYLOAD_LEN * FRAGMENTS);
    let mut fragmented = Vec::new();
    for (i, chunk) in message.chunks(PAYLOAD_LEN).enumerate() {
        let opcode = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        encode_masked_frame(&mut fragmented, opcode, i + 1 == FRAGMENTS, chunk, MASK);
    }
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("decode_fragmented_4x150B", |b| {
        let mut decoder = server_decoder();
        b.iter(|| {
            let events = decode_all(&mut decoder, black_box(&fragmented));
            assert_eq!(events, 1);
        })
    });

    group.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    group.bench_function("encode_server_text_150B", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            encode_frame(&mut out, OpCode::Text, black_box(&payload));
            black_box(out.len())
        })
    });

    group.finish();
}

criterion_group!(benches, bench_ws_codec);
criterion_main!(benches);
