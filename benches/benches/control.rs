//! Parsing and validating a client control request, as a worker does for
//! every text message a subscriber sends.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickwire_benches::SUBSCRIBE_3_TOPICS;
use tickwire_protocol::control::{parse_request, Request};

fn bench_control(c: &mut Criterion) {
    match parse_request(SUBSCRIBE_3_TOPICS) {
        Ok(Request::Subscribe { topics, .. }) if topics.len() == 3 => {}
        other => panic!("fixture does not parse as a 3-topic subscribe: {other:?}"),
    }

    let mut group = c.benchmark_group("control");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_subscribe_3_topics", |b| {
        b.iter(|| black_box(parse_request(black_box(SUBSCRIBE_3_TOPICS))))
    });
    group.finish();
}

criterion_group!(benches, bench_control);
criterion_main!(benches);
