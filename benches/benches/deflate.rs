//! permessage-deflate (RFC 7692, issue 23): compressing one server message
//! with a fresh context (no context takeover: done once per shared frame,
//! valid for every subscriber) and inflating one client message with a
//! bound, on a JSON quote, a JSON delta and a 16 KiB snapshot-like batch.
//!
//! Always measured: `tickwire_ws::deflate` (flate2 on zlib-rs, level 6).
//! With `--features deflate-compare` the candidates of docs/decisions.md
//! are measured side by side, each used the way `tickwire_ws` would use it
//! (a kept state, reset per message, sync flush, tail removed):
//! - `zlib-rs`: flate2 on the zlib-rs backend, levels 1, 6, 9;
//! - `miniz`: miniz_oxide's stream API, which is all flate2's default
//!   `rust_backend` calls (one build cannot hold both flate2 backends),
//!   levels 1, 6, 9;
//! - `libdeflate`: libdeflater, levels 1, 6, 9, 12; it has no sync flush,
//!   so its message is a final (BFINAL) block plus the `00` byte of RFC 7692
//!   section 7.2.3.4; its inflate needs the whole message and an output
//!   buffer of the limit + 1 up front.
//!
//! The compressed sizes are printed once (stderr) before the timings.
//!
//! cargo bench -p tickwire-benches --features deflate-compare --bench deflate -- --warm-up-time 1 --measurement-time 2

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tickwire_ws::deflate::{Deflater, Inflater};

/// A full JSON quote as the broker sends it (protocol-v1.md).
const QUOTE: &str = r#"{"type":"quote","topic":"AAPL","seq":1041,"bid":189.12,"ask":189.14,"bid_size":300.0,"ask_size":200.0,"last":189.13,"volume":1234567.0,"ts":1732345678901234567}"#;

/// A JSON delta with one changed field (protocol-v1.md, "Field deltas").
const DELTA: &str =
    r#"{"type":"delta","topic":"AAPL","seq":1042,"ts":1732345678901299999,"bid":189.13}"#;

/// The message limit client messages are inflated under.
const MAX_MESSAGE: usize = 65_536;

/// About 16 KiB of quotes of different topics with moving prices, like the
/// snapshots of a wide subscription sent back to back in one message.
fn snapshot_batch() -> String {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < 16_200 {
        let r = next();
        let topic: String = (0..3 + r % 3)
            .map(|k| char::from(b'A' + ((r >> (8 * k + 8)) % 26) as u8))
            .collect();
        let bid = 10.0 + (r % 50_000) as f64 / 100.0;
        let ask = bid + 0.01 * (1 + r % 5) as f64;
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"type":"quote","topic":"{topic}","seq":{},"bid":{bid:.2},"ask":{ask:.2},"bid_size":{}.0,"ask_size":{}.0,"last":{bid:.2},"volume":{}.0,"ts":{}}}"#,
            1000 + r % 90_000,
            100 * (1 + r % 40),
            100 * (1 + (r >> 3) % 40),
            r % 10_000_000,
            1_732_345_678_901_234_567u64 + i * 1_000_003,
        ));
        i += 1;
    }
    out.push(']');
    out
}

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("quote", QUOTE.as_bytes().to_vec()),
        ("delta", DELTA.as_bytes().to_vec()),
        ("batch_16k", snapshot_batch().into_bytes()),
    ]
}

/// One way to compress a message (appending to `out`).
type CompressFn = Box<dyn FnMut(&[u8], &mut Vec<u8>)>;
/// One way to inflate a message under a limit; `false` if refused.
type InflateFn = Box<dyn FnMut(&[u8], usize, &mut Vec<u8>) -> bool>;

fn compressors() -> Vec<(String, CompressFn)> {
    let mut d = Deflater::new();
    #[allow(unused_mut)] // extended with `deflate-compare`
    let mut v: Vec<(String, CompressFn)> = vec![(
        "tickwire_ws".into(),
        Box::new(move |p: &[u8], out: &mut Vec<u8>| d.compress(p, out)),
    )];
    #[cfg(feature = "deflate-compare")]
    v.extend(compare::compressors());
    v
}

fn inflaters() -> Vec<(String, InflateFn)> {
    let mut inf = Inflater::new();
    #[allow(unused_mut)] // extended with `deflate-compare`
    let mut v: Vec<(String, InflateFn)> = vec![(
        "tickwire_ws".into(),
        Box::new(move |c: &[u8], max: usize, out: &mut Vec<u8>| inf.inflate(c, max, out).is_ok()),
    )];
    #[cfg(feature = "deflate-compare")]
    v.extend(compare::inflaters());
    v
}

#[cfg(feature = "deflate-compare")]
mod compare {
    use super::{CompressFn, InflateFn};
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
    use miniz_oxide::deflate::core::CompressorOxide;
    use miniz_oxide::inflate::stream::{FullReset, InflateState};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};

    const TAIL: [u8; 6] = [0x00, 0x00, 0xff, 0xff, 0x03, 0x00];

    fn strip_tail(out: &mut Vec<u8>) {
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush");
        out.truncate(out.len() - 4);
    }

    fn zlib_rs(level: u32) -> CompressFn {
        let mut c = Compress::new(Compression::new(level), false);
        Box::new(move |p: &[u8], out: &mut Vec<u8>| {
            c.reset();
            out.reserve(p.len() + p.len() / 1024 + 64);
            let before = c.total_in();
            c.compress_vec(p, out, FlushCompress::Sync).unwrap();
            assert_eq!(c.total_in() - before, p.len() as u64);
            strip_tail(out);
        })
    }

    fn miniz(level: u8) -> CompressFn {
        let mut c: Box<CompressorOxide> = Box::default();
        c.set_format_and_level(DataFormat::Raw, level);
        Box::new(move |p: &[u8], out: &mut Vec<u8>| {
            c.reset();
            let start = out.len();
            out.resize(start + p.len() + p.len() / 1024 + 64, 0);
            let r =
                miniz_oxide::deflate::stream::deflate(&mut c, p, &mut out[start..], MZFlush::Sync);
            assert_eq!(r.bytes_consumed, p.len());
            r.status.unwrap();
            out.truncate(start + r.bytes_written);
            strip_tail(out);
        })
    }

    fn libdeflate(level: i32) -> CompressFn {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
        Box::new(move |p: &[u8], out: &mut Vec<u8>| {
            let start = out.len();
            out.resize(start + c.deflate_compress_bound(p.len()), 0);
            let n = c.deflate_compress(p, &mut out[start..]).unwrap();
            out.truncate(start + n);
            // RFC 7692 section 7.2.3.4: after the BFINAL block, the header
            // byte of the empty stored block whose tail was removed.
            out.push(0x00);
        })
    }

    pub fn compressors() -> Vec<(String, CompressFn)> {
        let mut v: Vec<(String, CompressFn)> = Vec::new();
        for level in [1, 2, 4, 6, 9] {
            v.push((format!("zlib-rs/L{level}"), zlib_rs(level)));
        }
        for level in [1, 6, 9] {
            v.push((format!("miniz/L{level}"), miniz(level)));
        }
        for level in [1, 6, 9, 12] {
            v.push((format!("libdeflate/L{level}"), libdeflate(level)));
        }
        v
    }

    pub fn inflaters() -> Vec<(String, InflateFn)> {
        let mut z = Decompress::new(false);
        let zlib_rs: InflateFn = Box::new(move |c: &[u8], max: usize, out: &mut Vec<u8>| {
            // The same loop as tickwire_ws, without its guards.
            z.reset(false);
            let start = out.len();
            for piece in [c, &TAIL[..]] {
                let mut input = piece;
                loop {
                    let room = (max + 1).saturating_sub(out.len() - start);
                    if room == 0 {
                        return false;
                    }
                    let at = out.len();
                    out.resize(at + room.min(4096), 0);
                    let (i0, o0) = (z.total_in(), z.total_out());
                    let st = z.decompress(input, &mut out[at..], FlushDecompress::None);
                    let (used, wrote) =
                        ((z.total_in() - i0) as usize, (z.total_out() - o0) as usize);
                    let full = at + wrote == out.len();
                    out.truncate(at + wrote);
                    input = &input[used..];
                    match st {
                        Ok(Status::StreamEnd) => return out.len() - start <= max,
                        Ok(_) if full => continue,
                        Ok(_) if input.is_empty() => break,
                        _ => return false,
                    }
                }
            }
            false
        });
        let mut m = InflateState::new_boxed(DataFormat::Raw);
        let miniz: InflateFn = Box::new(move |c: &[u8], max: usize, out: &mut Vec<u8>| {
            // What flate2's miniz backend does on reset (zeroes the window).
            m.reset_as(FullReset(DataFormat::Raw));
            let start = out.len();
            for piece in [c, &TAIL[..]] {
                let mut input = piece;
                loop {
                    let room = (max + 1).saturating_sub(out.len() - start);
                    if room == 0 {
                        return false;
                    }
                    let at = out.len();
                    out.resize(at + room.min(4096), 0);
                    let r = miniz_oxide::inflate::stream::inflate(
                        &mut m,
                        input,
                        &mut out[at..],
                        MZFlush::None,
                    );
                    let full = at + r.bytes_written == out.len();
                    out.truncate(at + r.bytes_written);
                    input = &input[r.bytes_consumed..];
                    match r.status {
                        Ok(MZStatus::StreamEnd) => return out.len() - start <= max,
                        Ok(_) | Err(miniz_oxide::MZError::Buf) if full => continue,
                        Ok(_) | Err(miniz_oxide::MZError::Buf) if input.is_empty() => break,
                        _ => return false,
                    }
                }
            }
            false
        });
        let mut d = libdeflater::Decompressor::new();
        let mut whole = Vec::new();
        let mut scratch = Vec::new();
        let libdeflate: InflateFn = Box::new(move |c: &[u8], max: usize, out: &mut Vec<u8>| {
            // No streaming: the whole message with the tail in one buffer,
            // and room for the limit + 1 before starting (a kept scratch
            // buffer, zeroed once, then copied out).
            whole.clear();
            whole.extend_from_slice(c);
            whole.extend_from_slice(&TAIL);
            if scratch.len() < max + 1 {
                scratch.resize(max + 1, 0);
            }
            match d.deflate_decompress(&whole, &mut scratch[..max + 1]) {
                Ok(n) if n <= max => {
                    out.extend_from_slice(&scratch[..n]);
                    true
                }
                _ => false,
            }
        });
        vec![
            ("zlib-rs".into(), zlib_rs),
            ("miniz".into(), miniz),
            ("libdeflate".into(), libdeflate),
        ]
    }
}

fn bench_deflate(c: &mut Criterion) {
    let messages = messages();
    let mut compressors = compressors();
    let mut inflaters = inflaters();

    // Sizes, and a check that every candidate's output inflates back.
    let mut check = Inflater::new();
    eprintln!("deflate: compressed sizes (bytes, frame header not included)");
    for (name, f) in compressors.iter_mut() {
        let sizes: Vec<String> = messages
            .iter()
            .map(|(msg, p)| {
                let mut out = Vec::new();
                f(p, &mut out);
                let mut back = Vec::new();
                check.inflate(&out, p.len(), &mut back).expect("inflates");
                assert_eq!(&back, p, "{name} {msg}");
                format!("{msg} {} -> {}", p.len(), out.len())
            })
            .collect();
        eprintln!("  {name:<14} {}", sizes.join(", "));
    }

    // RFC 7692 section 7.2.3.2's second message needs the first one's
    // window: with no context takeover it must be refused (close 1007).
    for (name, f) in inflaters.iter_mut() {
        let mut out = Vec::new();
        let ok = f(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100, &mut out);
        eprintln!(
            "deflate: {name}: a message that refers past its own start is {}",
            if ok {
                format!("ACCEPTED as {out:?}")
            } else {
                "refused".into()
            }
        );
    }

    let mut group = c.benchmark_group("deflate");
    for (msg, payload) in &messages {
        group.throughput(Throughput::Elements(1));
        for (name, f) in compressors.iter_mut() {
            let mut out = Vec::with_capacity(payload.len() * 2);
            group.bench_function(BenchmarkId::new(format!("compress/{msg}"), &*name), |b| {
                b.iter(|| {
                    out.clear();
                    f(black_box(payload), &mut out);
                    black_box(out.len())
                })
            });
        }
        let mut compressed = Vec::new();
        Deflater::new().compress(payload, &mut compressed);
        for (name, f) in inflaters.iter_mut() {
            let mut out = Vec::with_capacity(MAX_MESSAGE + 1);
            group.bench_function(BenchmarkId::new(format!("inflate/{msg}"), &*name), |b| {
                b.iter(|| {
                    out.clear();
                    assert!(f(black_box(&compressed), MAX_MESSAGE, &mut out));
                    black_box(out.len())
                })
            });
        }
    }
    // A zip bomb: 10 MiB of zeros, refused at the 64 KiB limit.
    let mut bomb = Vec::new();
    Deflater::new().compress(&vec![0u8; 10 << 20], &mut bomb);
    eprintln!("deflate: bomb of 10 MiB zeros -> {} bytes", bomb.len());
    for (name, f) in inflaters.iter_mut() {
        let mut out = Vec::with_capacity(MAX_MESSAGE + 1);
        group.bench_function(BenchmarkId::new("inflate/bomb_10MiB", &*name), |b| {
            b.iter(|| {
                out.clear();
                assert!(!f(black_box(&bomb), MAX_MESSAGE, &mut out));
                assert!(out.len() <= MAX_MESSAGE + 1);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = bench_deflate
}
criterion_main!(benches);
