//! Decoding producer ingest frames (length prefix + bincode legacy + topic
//! validation), as ingest (on the router's thread) does for every frame it
//! reads.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickwire_benches::{quote_batch, typical_quote};
use tickwire_protocol::ingest::{decode_frame, encode_frame, IngestFrame, DEFAULT_MAX_FRAME};

const BATCH: usize = 100;

fn encoded(frame: &IngestFrame) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_frame(frame, &mut buf);
    let (decoded, used) = decode_frame(&buf, DEFAULT_MAX_FRAME)
        .expect("valid frame")
        .expect("complete frame");
    assert_eq!((&decoded, used), (frame, buf.len()));
    buf
}

fn bench_ingest_decode(c: &mut Criterion) {
    let single = encoded(&IngestFrame::Quote(typical_quote("AAPL")));
    let batch = encoded(&IngestFrame::Batch(quote_batch(BATCH)));

    let mut group = c.benchmark_group("ingest_decode");

    group.throughput(Throughput::Elements(1));
    group.bench_function("quote_frame", |b| {
        b.iter(|| black_box(decode_frame(black_box(&single), DEFAULT_MAX_FRAME)))
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch_100_quotes", |b| {
        b.iter(|| black_box(decode_frame(black_box(&batch), DEFAULT_MAX_FRAME)))
    });

    group.finish();
}

criterion_group!(benches, bench_ingest_decode);
criterion_main!(benches);
