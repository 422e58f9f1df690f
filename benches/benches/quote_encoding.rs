//! Encoding one quote for subscribers, as the router does once per quote and
//! format (the WebSocket header around it is not included).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickwire_benches::typical_quote;
use tickwire_protocol::server::{binary_quote, json_quote};

fn bench_quote_encoding(c: &mut Criterion) {
    let quote = typical_quote("AAPL");
    let seq = 1_234_567;

    let mut group = c.benchmark_group("quote_encoding");
    group.throughput(Throughput::Elements(1));

    group.bench_function("json_quote", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            json_quote(black_box(&quote), black_box(seq), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("binary_quote", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            binary_quote(black_box(&quote), black_box(seq), &mut out);
            black_box(out.len())
        })
    });

    group.finish();
}

criterion_group!(benches, bench_quote_encoding);
criterion_main!(benches);
