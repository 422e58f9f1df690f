//! The server side of the WebSocket opening handshake for a typical browser
//! request: parse the head, validate the upgrade (incl. the SHA-1 accept
//! key), build the 101 response.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickwire_benches::BROWSER_UPGRADE_REQUEST;
use tickwire_ws::handshake::{accept_response, validate_upgrade};
use tickwire_ws::http::{parse_request_head, HeadParse, RequestHead};

/// The broker's request-head limit.
const MAX_HEAD: usize = 8 * 1024;

fn parse(buf: &[u8]) -> RequestHead<'_> {
    match parse_request_head(buf, MAX_HEAD) {
        Ok(HeadParse::Complete { head, .. }) => head,
        other => panic!("request does not parse: {other:?}"),
    }
}

fn bench_handshake(c: &mut Criterion) {
    let request = BROWSER_UPGRADE_REQUEST.as_bytes();
    let head = parse(request);
    let accept = validate_upgrade(&head).expect("valid upgrade");
    assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); // RFC 6455 example key

    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));

    group.bench_function("full_browser_upgrade", |b| {
        b.iter(|| {
            let head = parse(black_box(request));
            let accept = validate_upgrade(&head).expect("valid upgrade");
            black_box(accept_response(&accept, None))
        })
    });
    group.bench_function("parse_request_head", |b| {
        b.iter(|| black_box(parse(black_box(request))))
    });
    group.bench_function("validate_upgrade", |b| {
        b.iter(|| black_box(validate_upgrade(black_box(&head))))
    });
    group.bench_function("accept_response", |b| {
        b.iter(|| black_box(accept_response(black_box(&accept), None)))
    });

    group.finish();
}

criterion_group!(benches, bench_handshake);
criterion_main!(benches);
