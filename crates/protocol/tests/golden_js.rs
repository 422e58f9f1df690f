//! Golden file shared with the JavaScript decoder: binary quote frames encoded
//! here by `binary_quote`, with the fields a decoder must read back.
//!
//! `browser-tests/golden/quotes.json` is committed; this test regenerates it
//! and fails if the committed copy differs. `browser-tests/golden.test.js`
//! (`node --test`) feeds the same frames through `docs/js/tickwire-decoder.js`
//! and compares every field, so the Rust encoder and the page's decoder are
//! checked against each other. Refresh after a deliberate change with
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p tickwire-protocol --test golden_js
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use tickwire_protocol::server::{binary_quote, decode_binary, ServerMessage};
use tickwire_protocol::Quote;

const REFRESH: &str = "UPDATE_GOLDEN=1 cargo test -p tickwire-protocol --test golden_js";

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../browser-tests/golden/quotes.json")
}

struct Case {
    name: &'static str,
    seq: u64,
    quote: Quote,
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    topic: &str,
    seq: u64,
    ts: u64,
    bid: f64,
    ask: f64,
    bid_size: f64,
    ask_size: f64,
    last: f64,
    volume: f64,
) -> Case {
    Case {
        name,
        seq,
        quote: Quote {
            topic: topic.to_owned(),
            bid,
            ask,
            bid_size,
            ask_size,
            last,
            volume,
            ts,
        },
    }
}

fn cases() -> Vec<Case> {
    // 64 bytes using every character class of the topic syntax.
    let long_topic =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-"[..64].to_owned();
    assert_eq!(long_topic.len(), 64);
    vec![
        // docs/protocol.md section 3 example, byte for byte.
        case(
            "docs example (AAPL)",
            "AAPL",
            1,
            1_732_345_678_901_234_567,
            189.12,
            189.14,
            300.0,
            200.0,
            189.13,
            1_234_567.0,
        ),
        case(
            "non-finite prices and sizes",
            "BTC-USD",
            71,
            1_795_414_051_696_210_195,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            67_071.24,
            183.5,
        ),
        case(
            "u64 max seq and ts",
            "X",
            u64::MAX,
            u64::MAX,
            1.0,
            2.0,
            3.0,
            4.0,
            5.0,
            6.0,
        ),
        case(
            "64-byte topic",
            &long_topic,
            9_007_199_254_740_993,     // 2^53 + 1: not exact as a Number
            9_223_372_036_854_775_808, // 2^63
            0.1 + 0.2,
            1e-7,
            1e16,
            123_456_789.012_345_67,
            0.000_01,
            1e300,
        ),
        case(
            "extreme floats",
            "fx:EUR/USD",
            2,
            0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324, // smallest subnormal
            -1.5,
            0.0,
        ),
        case(
            "NaN payloads",
            "NASDAQ.a_b-c",
            0,
            1,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
            f64::from_bits(0xfff8_0000_0000_0000), // negative quiet NaN
            f64::from_bits(0x7fff_ffff_ffff_ffff),
            1.085_12,
            0.52,
            18_500_000_000.0,
        ),
        case(
            "FX price with 5 decimals",
            "EURUSD",
            4_294_967_296, // 2^32: crosses the low word
            1_700_000_000_123_456_789,
            1.085_12,
            1.085_14,
            1_000_000.0,
            2_000_000.0,
            1.085_13,
            3.5e10,
        ),
    ]
}

/// Frames a decoder must refuse: (name, hex).
fn rejects() -> Vec<(&'static str, String)> {
    let mut good = Vec::new();
    binary_quote(&cases()[0].quote, 1, &mut good);
    let mut wrong_type = good.clone();
    wrong_type[0] = 2;
    let mut longer = good.clone();
    longer.push(b'X');
    let mut len_mismatch = good.clone();
    len_mismatch[1] = 5;
    let mut bad_topic = good.clone();
    let n = bad_topic.len();
    bad_topic[n - 2] = b' '; // "AA L"
    vec![
        ("empty", String::new()),
        ("message type 2", hex(&wrong_type)),
        ("header cut short", hex(&good[..40])),
        ("one byte too many", hex(&longer)),
        ("topic length says 5, 4 bytes follow", hex(&len_mismatch)),
        ("space in topic", hex(&bad_topic)),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An f64 as a JSON string both sides can parse exactly: Rust's shortest
/// round-trip form (JavaScript's `Number()` reads it back to the same
/// double), or NaN / Infinity / -Infinity / -0.
fn float_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "Infinity".into()
    } else if x == f64::NEG_INFINITY {
        "-Infinity".into()
    } else if x == 0.0 && x.is_sign_negative() {
        "-0".into()
    } else {
        format!("{x:?}")
    }
}

/// What the JS decoder computes for `tsMs`, with the same f64 operations.
fn ts_ms(ts: u64) -> f64 {
    (ts / 1_000_000) as f64 + (ts % 1_000_000) as f64 / 1e6
}

fn render() -> String {
    let mut out = String::new();
    out.push_str("{\n");
    out.push_str(
        "  \"about\": \"Binary quote frames encoded by tickwire_protocol::server::binary_quote, and the fields a decoder must read back. \
Generated by crates/protocol/tests/golden_js.rs; checked against docs/js/tickwire-decoder.js by browser-tests/golden.test.js. \
Floats are strings (shortest round-trip decimal, NaN, Infinity, -Infinity, -0) plus their IEEE 754 bits; seq and ts are decimal strings (u64, exact).\",\n",
    );
    let _ = writeln!(out, "  \"refresh\": \"{REFRESH}\",");
    out.push_str("  \"quotes\": [\n");
    let all = cases();
    for (i, c) in all.iter().enumerate() {
        let mut frame = Vec::new();
        binary_quote(&c.quote, c.seq, &mut frame);
        let q = &c.quote;
        let _ = writeln!(out, "    {{");
        let _ = writeln!(out, "      \"name\": \"{}\",", c.name);
        let _ = writeln!(out, "      \"hex\": \"{}\",", hex(&frame));
        let _ = writeln!(out, "      \"topic\": \"{}\",", q.topic);
        let _ = writeln!(out, "      \"seq\": \"{}\",", c.seq);
        let _ = writeln!(out, "      \"ts\": \"{}\",", q.ts);
        let _ = writeln!(out, "      \"tsMs\": \"{}\",", float_text(ts_ms(q.ts)));
        let fields = [
            ("bid", q.bid),
            ("ask", q.ask),
            ("bid_size", q.bid_size),
            ("ask_size", q.ask_size),
            ("last", q.last),
            ("volume", q.volume),
        ];
        for (name, x) in fields {
            let _ = writeln!(out, "      \"{name}\": \"{}\",", float_text(x));
        }
        let bits: Vec<String> = fields
            .iter()
            .map(|(name, x)| format!("\"{name}\": \"{:016x}\"", x.to_bits()))
            .collect();
        let _ = writeln!(out, "      \"bits\": {{ {} }}", bits.join(", "));
        let _ = writeln!(out, "    }}{}", if i + 1 < all.len() { "," } else { "" });
    }
    out.push_str("  ],\n");
    out.push_str("  \"rejects\": [\n");
    let rejects = rejects();
    for (i, (name, h)) in rejects.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {{ \"name\": \"{name}\", \"hex\": \"{h}\" }}{}",
            if i + 1 < rejects.len() { "," } else { "" }
        );
    }
    out.push_str("  ]\n}\n");
    out
}

#[test]
fn golden_frames_decode_back_in_rust() {
    for c in cases() {
        let mut frame = Vec::new();
        binary_quote(&c.quote, c.seq, &mut frame);
        assert_eq!(frame.len(), 66 + c.quote.topic.len(), "{}", c.name);
        match decode_binary(&frame) {
            Ok(ServerMessage::Quote { seq, quote }) => {
                assert_eq!(seq, c.seq, "{}", c.name);
                assert_eq!(quote.topic, c.quote.topic, "{}", c.name);
                assert_eq!(quote.ts, c.quote.ts, "{}", c.name);
                let pairs = [
                    (quote.bid, c.quote.bid),
                    (quote.ask, c.quote.ask),
                    (quote.bid_size, c.quote.bid_size),
                    (quote.ask_size, c.quote.ask_size),
                    (quote.last, c.quote.last),
                    (quote.volume, c.quote.volume),
                ];
                for (got, want) in pairs {
                    assert_eq!(got.to_bits(), want.to_bits(), "{}", c.name);
                }
            }
            other => panic!("{}: {other:?}", c.name),
        }
    }
    for (name, h) in rejects() {
        assert!(decode_binary(&unhex(&h)).is_err(), "{name} must be refused");
    }
}

#[test]
fn docs_example_frame_matches_protocol_md() {
    // docs/protocol.md, section 3, "Example" (the hex dump, offsets dropped).
    let documented = [
        "01 04 01 00 00 00 00 00 00 00 87 4b 17 73 37 87",
        "0a 18 a4 70 3d 0a d7 a3 67 40 14 ae 47 e1 7a a4",
        "67 40 00 00 00 00 00 c0 72 40 00 00 00 00 00 00",
        "69 40 5c 8f c2 f5 28 a4 67 40 00 00 00 00 87 d6",
        "32 41 41 41 50 4c",
    ]
    .concat()
    .replace(' ', "");
    let mut frame = Vec::new();
    binary_quote(&cases()[0].quote, 1, &mut frame);
    assert_eq!(hex(&frame), documented);
}

#[test]
fn golden_file_is_up_to_date() {
    let generated = render();
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\ncreate it with: {REFRESH}",
            path.display()
        )
    });
    assert!(
        committed == generated,
        "{} is out of date with binary_quote / this test's cases.\n\
         Refresh it with: {REFRESH}\n\
         then run the JS side: cd browser-tests && node --test golden.test.js",
        path.display()
    );
}
