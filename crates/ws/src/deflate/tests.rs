use super::*;

const QUOTE: &[u8] = br#"{"type":"quote","topic":"AAPL","seq":1041,"bid":189.12,"ask":189.14,"bid_size":300.0,"ask_size":200.0,"last":189.13,"volume":1234567.0,"ts":1732345678901234567}"#;

fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    deflate_message(payload, &mut out);
    out
}

fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    Inflater::new().inflate(compressed, max, &mut out)?;
    Ok(out)
}

// ---- RFC 7692 section 7.2.3 examples ----

#[test]
fn rfc_7_2_3_1_hello_compresses_to_the_rfc_bytes() {
    assert_eq!(
        deflate(b"Hello"),
        [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

#[test]
fn rfc_7_2_3_1_hello_frame() {
    let mut frame = Vec::new();
    encode_deflated_frame(&mut frame, OpCode::Text, &deflate(b"Hello"));
    assert_eq!(
        frame,
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
    let mut one_go = vec![0xaa];
    let len = encode_deflated_message(&mut one_go, OpCode::Text, b"Hello");
    assert_eq!(len, 7);
    assert_eq!(one_go[0], 0xaa, "appends after what was there");
    assert_eq!(one_go[1..], frame[..]);
}

#[test]
fn rfc_examples_inflate_to_hello() {
    let examples: [(&str, &[u8]); 4] = [
        ("7.2.3.1", &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
        (
            "7.2.3.3 stored block",
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
        ),
        (
            "7.2.3.4 BFINAL",
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        ),
        (
            "7.2.3.5 two blocks",
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ),
    ];
    for (name, bytes) in examples {
        assert_eq!(inflate(bytes, 100).as_deref(), Ok(&b"Hello"[..]), "{name}");
    }
}

#[test]
fn rfc_7_2_3_2_context_takeover_message_is_invalid_without_the_window() {
    // The second "Hello" of 7.2.3.2 refers back into the first message's
    // window: a client told client_no_context_takeover must not send it.
    assert_eq!(
        inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100),
        Err(InflateError::Invalid)
    );
}

// ---- compression ----

#[test]
fn quote_round_trips_and_shrinks() {
    let c = deflate(QUOTE);
    assert!(c.len() < QUOTE.len(), "{} >= {}", c.len(), QUOTE.len());
    assert!(!c.ends_with(&SYNC_TAIL));
    assert_eq!(inflate(&c, QUOTE.len()).unwrap(), QUOTE);
}

#[test]
fn no_context_takeover_same_bytes_every_time() {
    let first = deflate(QUOTE);
    deflate(b"something else entirely, to fill the window");
    assert_eq!(deflate(QUOTE), first);
    let mut d = Deflater::new();
    let mut again = Vec::new();
    d.compress(QUOTE, &mut again);
    assert_eq!(again, first);
}

#[test]
fn round_trips_of_various_sizes() {
    let mut big = Vec::new();
    for i in 0u32..40_000 {
        big.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
    }
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        b"a".to_vec(),
        vec![0; 200_000],
        big,
        QUOTE.repeat(100),
    ];
    for payload in cases {
        let c = deflate(&payload);
        assert_eq!(
            inflate(&c, payload.len()).unwrap(),
            payload,
            "{}",
            payload.len()
        );
    }
}

#[test]
fn empty_message_is_one_byte() {
    assert_eq!(deflate(b""), [0x00]);
    assert_eq!(inflate(&[0x00], 0).unwrap(), b"");
    assert_eq!(
        inflate(&[], 0).unwrap(),
        b"",
        "empty payload: empty message"
    );
}

#[test]
fn stored_fallback_is_valid() {
    for len in [0, 1, 65_535, 65_536, 140_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut c = Vec::new();
        stored_blocks(&payload, &mut c);
        assert_eq!(inflate(&c, len).unwrap(), payload, "{len}");
    }
}

#[test]
fn deflated_message_frame_lengths() {
    // 126+ and 65536+ byte payloads take the longer length forms.
    for len in [100, 1_000, 70_000, 300_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let mut expected = Vec::new();
        encode_deflated_frame(&mut expected, OpCode::Binary, &deflate(&payload));
        let mut got = Vec::new();
        let n = encode_deflated_message(&mut got, OpCode::Binary, &payload);
        assert_eq!(got, expected, "{len}");
        assert_eq!(got.len(), header_len(n, false) + n);
        assert_eq!(got[0], 0x80 | RSV1 | OpCode::Binary as u8);
    }
}

// ---- bounded inflate ----

#[test]
fn limit_is_exact() {
    let c = deflate(QUOTE);
    assert_eq!(inflate(&c, QUOTE.len()).unwrap(), QUOTE);
    assert_eq!(inflate(&c, QUOTE.len() - 1), Err(InflateError::TooBig));
    assert_eq!(inflate(&c, 0), Err(InflateError::TooBig));
}

#[test]
fn zip_bomb_stops_at_the_limit() {
    let bomb = deflate(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let mut out = Vec::new();
    let max = 65_536;
    assert_eq!(
        Inflater::new().inflate(&bomb, max, &mut out),
        Err(InflateError::TooBig)
    );
    assert!(out.len() <= max + 1, "{}", out.len());
    assert!(out.capacity() < 4 * max, "{}", out.capacity());
}

#[test]
fn invalid_data() {
    let c = deflate(QUOTE);
    let cases: [(&str, &[u8]); 4] = [
        ("reserved block type", &[0x07, 0x00]),
        ("garbage", &[0xff, 0xff, 0xff, 0xff, 0xff]),
        ("cut inside a block", &c[..c.len() - 3]),
        (
            "stored length mismatch",
            &[0x00, 0x05, 0x00, 0x00, 0x00, b'H'],
        ),
    ];
    for (name, bytes) in cases {
        assert_eq!(
            inflate(bytes, 1 << 20),
            Err(InflateError::Invalid),
            "{name}"
        );
    }
}

#[test]
fn inflater_is_reusable_after_errors() {
    let mut inf = Inflater::new();
    let c = deflate(QUOTE);
    let mut out = Vec::new();
    for _ in 0..3 {
        assert_eq!(
            inf.inflate(&[0xff, 0xee], 100, &mut Vec::new()),
            Err(InflateError::Invalid)
        );
        assert_eq!(
            inf.inflate(&c, 10, &mut Vec::new()),
            Err(InflateError::TooBig)
        );
        out.clear();
        inf.inflate(&c, 1000, &mut out).unwrap();
        assert_eq!(out, QUOTE);
    }
    // Appends.
    inf.inflate(&c, 1000, &mut out).unwrap();
    assert_eq!(out, QUOTE.repeat(2));
}

#[test]
fn close_codes() {
    assert_eq!(InflateError::TooBig.close_code(), 1009);
    assert_eq!(InflateError::Invalid.close_code(), 1007);
}

// ---- negotiation ----

const SMWB15: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15";

#[test]
fn negotiation_table() {
    let accepted: Option<&str> = Some(RESPONSE);
    let table: &[(&[&str], Option<&str>)] = &[
        // Browsers.
        (&["permessage-deflate; client_max_window_bits"], accepted),
        (&["permessage-deflate"], accepted),
        // Hints and client windows.
        (
            &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
            accepted,
        ),
        (&["permessage-deflate; client_max_window_bits=8"], accepted),
        (&["permessage-deflate; client_max_window_bits=15"], accepted),
        (&["permessage-deflate; client_max_window_bits=\"10\""], accepted),
        (&["permessage-deflate; client_max_window_bits=\"1\\5\""], accepted),
        (&["permessage-deflate;client_max_window_bits=12"], accepted),
        (&[" permessage-deflate ; client_max_window_bits = 12 , "], accepted),
        (&["\tpermessage-deflate\t"], accepted),
        (&[", ,permessage-deflate,,"], accepted),
        // Server window: only the full 15 bits.
        (&["permessage-deflate; server_max_window_bits=15"], Some(SMWB15)),
        (&["permessage-deflate; server_max_window_bits=\"15\""], Some(SMWB15)),
        (&["permessage-deflate; server_max_window_bits=8"], None),
        (&["permessage-deflate; server_max_window_bits=9"], None),
        (&["permessage-deflate; server_max_window_bits=14"], None),
        // Invalid values.
        (&["permessage-deflate; server_max_window_bits"], None),
        (&["permessage-deflate; server_max_window_bits=16"], None),
        (&["permessage-deflate; server_max_window_bits=7"], None),
        (&["permessage-deflate; server_max_window_bits=015"], None),
        (&["permessage-deflate; server_max_window_bits=+15"], None),
        (&["permessage-deflate; client_max_window_bits=16"], None),
        (&["permessage-deflate; client_max_window_bits=0"], None),
        (&["permessage-deflate; client_max_window_bits=09"], None),
        (&["permessage-deflate; client_max_window_bits=\"\""], None),
        (&["permessage-deflate; server_no_context_takeover=1"], None),
        (&["permessage-deflate; client_no_context_takeover=\"x\""], None),
        // Unknown and repeated parameters.
        (&["permessage-deflate; foo"], None),
        (&["permessage-deflate; x-webkit=1"], None),
        (&["permessage-deflate; Client_Max_Window_Bits"], None),
        (
            &["permessage-deflate; client_max_window_bits; client_max_window_bits"],
            None,
        ),
        (
            &["permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"],
            None,
        ),
        (
            &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            None,
        ),
        (
            &["permessage-deflate; server_max_window_bits=15; server_max_window_bits=15"],
            None,
        ),
        // Several offers: the first acceptable one.
        (
            &["permessage-deflate; server_max_window_bits=10, permessage-deflate"],
            accepted,
        ),
        (
            &["permessage-deflate; foo, permessage-deflate; server_max_window_bits=15"],
            Some(SMWB15),
        ),
        (
            &["permessage-deflate; server_max_window_bits=15, permessage-deflate"],
            Some(SMWB15),
        ),
        (
            &["permessage-deflate; server_max_window_bits=8", "permessage-deflate; client_max_window_bits"],
            accepted,
        ),
        (
            &["permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9"],
            None,
        ),
        (&["x-webkit-deflate-frame", "permessage-deflate"], accepted),
        (&["foo; a=\"b\"; c, permessage-deflate"], accepted),
        // Nothing we know.
        (&[], None),
        (&[""], None),
        (&["x-webkit-deflate-frame"], None),
        (&["deflate-frame; no_context_takeover"], None),
        (&["PerMessage-Deflate"], None),
        (&["permessage-deflate-x"], None),
        // Malformed headers: nothing at all.
        (&["permessage-deflate;"], None),
        (&["permessage-deflate; ;client_max_window_bits"], None),
        (&["permessage-deflate; client_max_window_bits="], None),
        (&["permessage-deflate; client_max_window_bits=\"10"], None),
        (&["permessage-deflate; client_max_window_bits=\"1 0\""], None),
        (&["permessage-deflate client_max_window_bits"], None),
        (&["\"permessage-deflate\""], None),
        (&["permessage-deflate; =10"], None),
        (&["permessage-deflate, foo bar"], None),
        (&["permessage-deflate", "foo;"], None),
        (&["permessage-deflate; a=b=c"], None),
        (&["permessage-deflate\r\n"], None),
    ];
    for (offers, want) in table {
        let bytes: Vec<&[u8]> = offers.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(negotiate(&bytes).as_deref(), *want, "{offers:?}");
    }
}

#[test]
fn negotiation_non_ascii_and_control_bytes() {
    for bad in [
        &b"permessage-deflate\xff"[..],
        b"permessage-deflate; client_max_window_bits=\"\xc3\xa9\"",
        b"permessage-deflate\x00",
        b"\x80",
    ] {
        assert_eq!(negotiate(&[bad]), None, "{bad:?}");
    }
}

#[test]
fn window_bits_values() {
    for (s, v) in [
        ("8", Some(8)),
        ("9", Some(9)),
        ("10", Some(10)),
        ("15", Some(15)),
        ("16", None),
        ("7", None),
        ("08", None),
        ("", None),
        ("1", None),
        ("150", None),
    ] {
        assert_eq!(negotiate::window_bits(s.as_bytes()), v, "{s}");
    }
}

#[test]
fn every_level_round_trips() {
    for level in [0, 1, 4, 6, 9, 10, u32::MAX] {
        let mut c = Vec::new();
        Deflater::with_level(level).compress(QUOTE, &mut c);
        assert_eq!(inflate(&c, QUOTE.len()).unwrap(), QUOTE, "{level}");
    }
}
