//! Unit tests for the decoder rules: one test per close-code rule, each
//! asserting the exact code, plus encoder checks.

use super::*;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn server() -> FrameDecoder {
    FrameDecoder::new(Role::Server, DecoderLimits::default())
}

/// A masked frame with a raw first byte (so tests can set RSV bits,
/// reserved opcodes and FIN freely).
fn raw_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, OpCode::Continuation, false, payload, MASK);
    out[0] = b0;
    out
}

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, opcode, fin, payload, MASK);
    out
}

/// Decodes every frame in `bytes`, returning events or the first error.
fn decode_all(dec: &mut FrameDecoder, bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
    let mut events = Vec::new();
    let mut pos = 0;
    loop {
        let (n, ev) = dec.decode(&bytes[pos..])?;
        if n == 0 {
            assert!(ev.is_none());
            return Ok(events);
        }
        pos += n;
        events.extend(ev);
    }
}

fn code_of(dec: &mut FrameDecoder, bytes: &[u8]) -> u16 {
    match decode_all(dec, bytes) {
        Err(e) => e.code,
        Ok(evs) => panic!("expected an error, got {evs:?}"),
    }
}

#[test]
fn masked_text_frame_decodes() {
    let mut dec = server();
    let bytes = frame(OpCode::Text, true, b"hello");
    assert_eq!(
        dec.decode(&bytes),
        Ok((bytes.len(), Some(Event::Text("hello".into()))))
    );
    assert!(dec.is_idle());
}

#[test]
fn rfc_sample_masked_hello() {
    // RFC 6455 section 5.7: a single-frame masked text message "Hello".
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        server().decode(&bytes),
        Ok((11, Some(Event::Text("Hello".into()))))
    );
    let mut ours = Vec::new();
    encode_masked_frame(&mut ours, OpCode::Text, true, b"Hello", MASK);
    assert_eq!(ours, bytes);
}

#[test]
fn unmasked_client_frame_is_1002() {
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, OpCode::Text, b"hi");
    // Header alone is enough.
    assert_eq!(
        server().decode(&bytes[..2]).unwrap_err().code,
        close::PROTOCOL_ERROR
    );
}

#[test]
fn masked_server_frame_is_1002_for_client_role() {
    let mut dec = FrameDecoder::new(Role::Client, DecoderLimits::default());
    assert_eq!(code_of(&mut dec, &frame(OpCode::Text, true, b"hi")), 1002);
}

#[test]
fn rsv_bits_are_1002() {
    for rsv in [0x40, 0x20, 0x10] {
        let bytes = raw_frame(0x80 | rsv | 0x1, b"x");
        assert_eq!(
            server().decode(&bytes[..1]).unwrap_err().code,
            1002,
            "rsv {rsv:#x}"
        );
    }
}

#[test]
fn reserved_opcodes_are_1002() {
    for op in (3..=7).chain(0xB..=0xF) {
        let bytes = raw_frame(0x80 | op, b"");
        assert_eq!(
            server().decode(&bytes).unwrap_err().code,
            1002,
            "opcode {op:#x}"
        );
    }
}

#[test]
fn fragmented_control_frame_is_1002() {
    for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
        let bytes = frame(op, false, b"");
        assert_eq!(code_of(&mut server(), &bytes), 1002, "{op:?}");
    }
}

#[test]
fn control_frame_over_125_is_1002() {
    let payload = vec![0u8; 126];
    let bytes = frame(OpCode::Ping, true, &payload);
    // Refused from the two first header bytes alone.
    assert_eq!(server().decode(&bytes[..2]).unwrap_err().code, 1002);
    // 125 is fine.
    let ok = frame(OpCode::Ping, true, &payload[..125]);
    assert_eq!(
        server().decode(&ok),
        Ok((ok.len(), Some(Event::Ping(payload[..125].to_vec()))))
    );
}

#[test]
fn continuation_without_start_is_1002() {
    assert_eq!(
        code_of(&mut server(), &frame(OpCode::Continuation, true, b"x")),
        1002
    );
    assert_eq!(
        code_of(&mut server(), &frame(OpCode::Continuation, false, b"x")),
        1002
    );
}

#[test]
fn new_data_frame_mid_message_is_1002() {
    let limits = DecoderLimits {
        accept_binary: true,
        ..DecoderLimits::default()
    };
    for op in [OpCode::Text, OpCode::Binary] {
        let mut dec = FrameDecoder::new(Role::Server, limits);
        let mut bytes = frame(OpCode::Text, false, b"ab");
        bytes.extend(frame(op, true, b"cd"));
        assert_eq!(code_of(&mut dec, &bytes), 1002, "{op:?}");
    }
}

#[test]
fn payload_length_msb_set_is_1002() {
    let limits = DecoderLimits {
        max_message: usize::MAX,
        accept_binary: true,
        deflate: false,
    };
    let mut dec = FrameDecoder::new(Role::Server, limits);
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
    assert_eq!(dec.decode(&bytes).unwrap_err().code, 1002);
}

#[test]
fn invalid_utf8_single_frame_is_1007() {
    assert_eq!(
        code_of(&mut server(), &frame(OpCode::Text, true, b"ab\xFFcd")),
        1007
    );
    // A truncated char at the end of a final frame is invalid too.
    assert_eq!(
        code_of(&mut server(), &frame(OpCode::Text, true, b"ab\xE2\x82")),
        1007
    );
}

#[test]
fn invalid_utf8_in_first_fragment_fails_before_final() {
    let mut dec = server();
    let first = frame(OpCode::Text, false, b"ok\xC0\xAF");
    assert_eq!(dec.decode(&first).unwrap_err().code, 1007);
}

#[test]
fn invalid_utf8_completed_in_later_fragment_is_1007() {
    let mut dec = server();
    let mut bytes = frame(OpCode::Text, false, b"a\xE2");
    bytes.extend(frame(OpCode::Continuation, false, b"\x28")); // not a continuation byte
    let first_len = frame(OpCode::Text, false, b"a\xE2").len();
    assert_eq!(dec.decode(&bytes), Ok((first_len, None)));
    assert_eq!(dec.decode(&bytes[first_len..]).unwrap_err().code, 1007);
}

#[test]
fn truncated_char_at_end_of_fragmented_message_is_1007() {
    let mut bytes = frame(OpCode::Text, false, b"a");
    bytes.extend(frame(OpCode::Continuation, true, b"\xE2\x82"));
    assert_eq!(code_of(&mut server(), &bytes), 1007);
}

#[test]
fn utf8_char_split_across_fragments_is_accepted() {
    let text = "€uro 😀";
    let raw = text.as_bytes();
    for split in 0..=raw.len() {
        for split2 in split..=raw.len() {
            let mut bytes = frame(OpCode::Text, false, &raw[..split]);
            bytes.extend(frame(OpCode::Continuation, false, &raw[split..split2]));
            bytes.extend(frame(OpCode::Continuation, true, &raw[split2..]));
            let events = decode_all(&mut server(), &bytes).unwrap();
            assert_eq!(
                events,
                vec![Event::Text(text.into())],
                "splits {split} {split2}"
            );
        }
    }
}

#[test]
fn binary_is_1003_at_header_time() {
    let bytes = frame(OpCode::Binary, true, b"data");
    assert_eq!(server().decode(&bytes[..2]).unwrap_err().code, 1003);
    // Non-final binary fragment too.
    assert_eq!(
        server()
            .decode(&frame(OpCode::Binary, false, b"d"))
            .unwrap_err()
            .code,
        1003
    );
    // Accepted when allowed.
    let limits = DecoderLimits {
        accept_binary: true,
        ..DecoderLimits::default()
    };
    let mut dec = FrameDecoder::new(Role::Server, limits);
    assert_eq!(
        dec.decode(&bytes),
        Ok((bytes.len(), Some(Event::Binary(b"data".to_vec()))))
    );
}

#[test]
fn limit_single_frame_exactly_65536_accepted() {
    let payload = "a".repeat(65_536);
    let bytes = frame(OpCode::Text, true, payload.as_bytes());
    assert_eq!(
        server().decode(&bytes),
        Ok((bytes.len(), Some(Event::Text(payload))))
    );
}

#[test]
fn limit_single_frame_65537_refused_from_header() {
    let bytes = frame(OpCode::Text, true, &vec![b'a'; 65_537]);
    let header = &bytes[..header_len(65_537, true)];
    assert_eq!(header.len(), 14);
    assert_eq!(server().decode(header).unwrap_err().code, 1009);
    // Even before the mask key arrives (length bytes suffice).
    assert_eq!(server().decode(&header[..10]).unwrap_err().code, 1009);
    // The header of an acceptable frame just waits.
    let ok = frame(OpCode::Text, true, &vec![b'a'; 65_536]);
    assert_eq!(server().decode(&ok[..14]), Ok((0, None)));
}

#[test]
fn limit_across_fragments() {
    let first = frame(OpCode::Text, false, &vec![b'a'; 65_000]);
    // 65_000 + 536 = 65_536: accepted.
    let mut dec = server();
    assert_eq!(dec.decode(&first), Ok((first.len(), None)));
    let last = frame(OpCode::Continuation, true, &vec![b'b'; 536]);
    let (n, ev) = dec.decode(&last).unwrap();
    assert_eq!(n, last.len());
    match ev {
        Some(Event::Text(t)) => assert_eq!(t.len(), 65_536),
        other => panic!("{other:?}"),
    }
    // 65_000 + 537 = 65_537: refused from the continuation header alone.
    let mut dec = server();
    assert_eq!(dec.decode(&first), Ok((first.len(), None)));
    let last = frame(OpCode::Continuation, true, &vec![b'b'; 537]);
    assert_eq!(
        dec.decode(&last[..header_len(537, true)]).unwrap_err().code,
        1009
    );
}

#[test]
fn custom_limit_respected() {
    let limits = DecoderLimits {
        max_message: 10,
        accept_binary: false,
        deflate: false,
    };
    let mut dec = FrameDecoder::new(Role::Server, limits);
    assert!(dec.decode(&frame(OpCode::Text, true, &[b'a'; 10])).is_ok());
    assert_eq!(
        dec.decode(&frame(OpCode::Text, true, &[b'a'; 11]))
            .unwrap_err()
            .code,
        1009
    );
}

fn close_frame(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Close, true, payload)
}

#[test]
fn close_empty_is_none() {
    let bytes = close_frame(b"");
    assert_eq!(
        server().decode(&bytes),
        Ok((bytes.len(), Some(Event::Close(None))))
    );
}

#[test]
fn close_valid_codes_returned() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        let bytes = close_frame(&payload);
        assert_eq!(
            server().decode(&bytes),
            Ok((
                bytes.len(),
                Some(Event::Close(Some((code, "bye ✓".into()))))
            )),
            "code {code}"
        );
    }
}

#[test]
fn close_one_byte_payload_is_1002() {
    assert_eq!(code_of(&mut server(), &close_frame(&[0x03])), 1002);
}

#[test]
fn close_invalid_codes_are_1002() {
    for code in [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        assert_eq!(
            code_of(&mut server(), &close_frame(&code.to_be_bytes())),
            1002,
            "code {code}"
        );
    }
}

#[test]
fn close_reason_not_utf8_is_1007() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"\xFF\xFE");
    assert_eq!(code_of(&mut server(), &close_frame(&payload)), 1007);
}

#[test]
fn control_frames_between_fragments() {
    let mut bytes = frame(OpCode::Text, false, b"hel");
    bytes.extend(frame(OpCode::Ping, true, b"p1"));
    bytes.extend(frame(OpCode::Continuation, false, b"lo "));
    bytes.extend(frame(OpCode::Pong, true, b""));
    bytes.extend(frame(OpCode::Close, true, &1000u16.to_be_bytes()));
    bytes.extend(frame(OpCode::Continuation, true, b"world"));
    let mut dec = server();
    let events = decode_all(&mut dec, &bytes).unwrap();
    assert_eq!(
        events,
        vec![
            Event::Ping(b"p1".to_vec()),
            Event::Pong(vec![]),
            Event::Close(Some((1000, String::new()))),
            Event::Text("hello world".into()),
        ]
    );
    assert!(dec.is_idle());
}

#[test]
fn is_idle_tracks_fragmented_message() {
    let mut dec = server();
    assert!(dec.is_idle());
    dec.decode(&frame(OpCode::Text, false, b"a")).unwrap();
    assert!(!dec.is_idle());
    dec.decode(&frame(OpCode::Ping, true, b"")).unwrap();
    assert!(!dec.is_idle());
    dec.decode(&frame(OpCode::Continuation, true, b"b"))
        .unwrap();
    assert!(dec.is_idle());
}

#[test]
fn error_is_sticky() {
    let mut dec = server();
    assert_eq!(
        dec.decode(&frame(OpCode::Continuation, true, b""))
            .unwrap_err()
            .code,
        1002
    );
    // Even a valid frame afterwards reports the original failure.
    assert_eq!(
        dec.decode(&frame(OpCode::Text, true, b"ok"))
            .unwrap_err()
            .code,
        1002
    );
}

#[test]
fn incomplete_input_consumes_nothing() {
    let bytes = frame(OpCode::Text, true, &[b'x'; 300]);
    let mut dec = server();
    for cut in 0..bytes.len() {
        assert_eq!(dec.decode(&bytes[..cut]), Ok((0, None)), "cut {cut}");
    }
    assert_eq!(dec.decode(&bytes).unwrap().0, bytes.len());
}

#[test]
fn header_len_matches_write_header() {
    for len in [0, 125, 126, 65_535, 65_536, 1 << 20] {
        for mask in [None, Some(MASK)] {
            let mut out = Vec::new();
            write_header(&mut out, OpCode::Binary, true, len, mask);
            assert_eq!(out.len(), header_len(len, mask.is_some()), "len {len}");
        }
    }
    assert_eq!(header_len(125, false), 2);
    assert_eq!(header_len(126, false), 4);
    assert_eq!(header_len(65_536, true), 14);
}

#[test]
fn server_frames_decode_as_client() {
    let mut out = Vec::new();
    encode_frame(&mut out, OpCode::Text, "x".repeat(70_000).as_bytes());
    let limits = DecoderLimits {
        max_message: 100_000,
        accept_binary: false,
        deflate: false,
    };
    let mut dec = FrameDecoder::new(Role::Client, limits);
    assert_eq!(
        dec.decode(&out),
        Ok((out.len(), Some(Event::Text("x".repeat(70_000)))))
    );
}

#[test]
fn encode_close_truncates_at_char_boundary() {
    let reason = "é".repeat(100); // 200 bytes, 2 per char
    let mut out = Vec::new();
    encode_close(&mut out, 1001, &reason);
    // 2 code bytes + 122 reason bytes (61 chars; 123 would split a char).
    assert_eq!(out[1] as usize, 124);
    assert_eq!(out.len(), 2 + 124);
    let mut dec = FrameDecoder::new(Role::Client, DecoderLimits::default());
    assert_eq!(
        dec.decode(&out),
        Ok((out.len(), Some(Event::Close(Some((1001, "é".repeat(61)))))))
    );
    let mut masked = Vec::new();
    encode_masked_close(&mut masked, 1000, "short", MASK);
    assert_eq!(
        server().decode(&masked),
        Ok((
            masked.len(),
            Some(Event::Close(Some((1000, "short".into()))))
        ))
    );
}

#[test]
fn huge_announced_length_without_limit_just_waits() {
    let limits = DecoderLimits {
        max_message: usize::MAX,
        accept_binary: true,
        deflate: false,
    };
    let mut dec = FrameDecoder::new(Role::Server, limits);
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
    bytes.extend_from_slice(&MASK);
    assert_eq!(dec.decode(&bytes), Ok((0, None)));
}
