//! The contract's WebSocket rules, each with the close code it names,
//! driven over a raw byte stream (a client library would refuse to send
//! these) — every rule on the plain listener and on the TLS one.

use crate::common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::*;

fn open(over: Over) -> (Target, Raw) {
    let target = Target::start(over);
    let s = target.raw_upgrade("/ws");
    (target, s)
}

/// Sends `bytes` on a fresh connection; returns the close code received.
fn close_code_for_over(over: Over, bytes: &[u8]) -> Option<u16> {
    let (_target, mut s) = open(over);
    s.write_all(bytes).unwrap();
    s.flush().unwrap();
    let code = read_close_code(&mut s);
    assert!(sees_eof(&mut s), "{over:?}: closed after the close frame");
    code
}

#[test]
fn unmasked_client_frame_is_1002() {
    for over in BOTH {
        assert_eq!(
            close_code_for_over(over, &client_frame(true, 0x1, b"{}", false)),
            Some(1002)
        );
    }
}

#[test]
fn rsv_bits_and_reserved_opcodes_are_1002() {
    for over in BOTH {
        let mut rsv = client_frame(true, 0x1, b"{}", true);
        rsv[0] |= 0x40;
        assert_eq!(close_code_for_over(over, &rsv), Some(1002));
        for opcode in [0x3, 0x7, 0xB, 0xF] {
            assert_eq!(
                close_code_for_over(over, &client_frame(true, opcode, b"", true)),
                Some(1002),
                "opcode {opcode}"
            );
        }
    }
}

#[test]
fn bad_control_frames_and_fragment_order_are_1002() {
    for over in BOTH {
        // Fragmented ping.
        assert_eq!(
            close_code_for_over(over, &client_frame(false, 0x9, b"x", true)),
            Some(1002)
        );
        // Ping over 125 bytes.
        assert_eq!(
            close_code_for_over(over, &client_frame(true, 0x9, &[b'x'; 126], true)),
            Some(1002)
        );
        // Continuation without a start.
        assert_eq!(
            close_code_for_over(over, &client_frame(true, 0x0, b"x", true)),
            Some(1002)
        );
        // A new data frame inside a fragmented message.
        let mut two = client_frame(false, 0x1, b"{", true);
        two.extend(client_frame(true, 0x1, b"}", true));
        assert_eq!(close_code_for_over(over, &two), Some(1002));
    }
}

#[test]
fn invalid_utf8_is_1007_also_across_fragments() {
    for over in BOTH {
        assert_eq!(
            close_code_for_over(over, &client_frame(true, 0x1, &[0xff, 0xfe], true)),
            Some(1007)
        );
        // "é" = C3 A9 split across fragments is fine...
        let (_b, mut s) = open(over);
        let mut ok = client_frame(false, 0x1, b"{\"op\":\"x\xC3", true);
        ok.extend(client_frame(true, 0x0, b"\xA9\"}", true));
        s.write_all(&ok).unwrap();
        let (opcode, payload) = read_server_frame(&mut s).unwrap();
        assert_eq!(opcode, 0x1, "a text reply (error: unknown op), not a close");
        assert!(String::from_utf8(payload).unwrap().contains("bad_request"));
        // ...an invalid continuation byte split across fragments is not.
        let mut bad = client_frame(false, 0x1, b"{\xC3", true);
        bad.extend(client_frame(true, 0x0, b"\x28}", true));
        assert_eq!(close_code_for_over(over, &bad), Some(1007));
    }
}

#[test]
fn binary_data_from_a_client_is_1003() {
    for over in BOTH {
        assert_eq!(
            close_code_for_over(over, &client_frame(true, 0x2, b"\x01\x02", true)),
            Some(1003)
        );
    }
}

#[test]
fn message_size_limit_exactly_65536_accepted_65537_is_1009() {
    for over in BOTH {
        let (_b, mut s) = open(over);
        // A 65,536-byte text message (valid JSON padded with spaces) is handled.
        let mut body = br#"{"op":"subscribe","topics":["BIG"],"id":1}"#.to_vec();
        body.resize(65_536, b' ');
        s.write_all(&client_frame(true, 0x1, &body, true)).unwrap();
        let (opcode, payload) = read_server_frame(&mut s).unwrap();
        assert_eq!(opcode, 0x1);
        assert!(String::from_utf8(payload)
            .unwrap()
            .contains("\"subscribed\""));

        // One byte more, across two fragments → 1009.
        let mut frags = client_frame(false, 0x1, &[b' '; 40_000], true);
        frags.extend(client_frame(true, 0x0, &[b' '; 25_537], true));
        assert_eq!(close_code_for_over(over, &frags), Some(1009));

        // A header announcing too much is refused before its payload arrives.
        let header = &client_frame(true, 0x1, &vec![b' '; 65_537], true)[..14];
        assert_eq!(close_code_for_over(over, header), Some(1009));
    }
}

#[test]
fn close_frames_valid_codes_echoed_invalid_refused() {
    for over in BOTH {
        let close =
            |payload: &[u8]| close_code_for_over(over, &client_frame(true, 0x8, payload, true));
        assert_eq!(close(&1000u16.to_be_bytes()), Some(1000));
        assert_eq!(close(&4000u16.to_be_bytes()), Some(4000));
        let mut with_reason = 3001u16.to_be_bytes().to_vec();
        with_reason.extend_from_slice(b"bye");
        assert_eq!(close(&with_reason), Some(3001));
        assert_eq!(close(b"\x03"), Some(1002), "1-byte payload");
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(close(&code.to_be_bytes()), Some(1002), "code {code}");
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(&[0xff]);
        assert_eq!(close(&bad_reason), Some(1007));
    }
}

#[test]
fn ping_gets_pong_with_the_same_payload() {
    for over in BOTH {
        let (_b, mut s) = open(over);
        s.write_all(&client_frame(true, 0x9, b"are you there", true))
            .unwrap();
        assert_eq!(
            read_server_frame(&mut s),
            Some((0xA, b"are you there".to_vec()))
        );
    }
}

#[test]
fn idle_client_is_pinged_then_dropped_if_silent() {
    for over in BOTH {
        let mut config = test_config();
        config.websocket.idle_ping_ms = 200;
        config.websocket.dead_peer_ms = 300;
        let target = Target::start_with(over, config);
        let mut s = target.raw_upgrade("/ws");
        let (opcode, _) = read_server_frame(&mut s).expect("a ping after the idle time");
        assert_eq!(opcode, 0x9);
        // We never answer: the TCP connection is closed.
        assert!(sees_eof(&mut s));

        // A client that answers the ping stays connected and is pinged again.
        let mut s = target.raw_upgrade("/ws");
        for _ in 0..3 {
            let (opcode, payload) = read_server_frame(&mut s).expect("ping");
            assert_eq!(opcode, 0x9);
            s.write_all(&client_frame(true, 0xA, &payload, true))
                .unwrap();
        }
    }
}

#[test]
fn close_codes_are_counted() {
    for over in BOTH {
        let (target, mut s) = open(over);
        let broker = &target.broker;
        s.write_all(&client_frame(true, 0x2, b"x", true)).unwrap();
        assert_eq!(read_close_code(&mut s), Some(1003));
        assert!(wait_until(|| broker.metrics().closes_sent(1003) == 1));
        assert!(wait_until(|| broker
            .metrics()
            .subscriber_connections
            .load(Ordering::Relaxed)
            == 0));
    }
}

/// A reader far behind (its socket full; over TLS rustls holds records
/// too) sends its close and FIN: once it reads again it gets everything
/// queued before, then the echo — the broker does not drop it while its
/// last bytes still wait.
#[test]
fn a_reader_behind_that_closes_with_fin_still_gets_the_echo() {
    for over in BOTH {
        let target = Target::start(over);
        let mut s = target.raw_upgrade_small_rcvbuf("/ws");
        let request = serde_json::json!({"op": "subscribe", "topics": ["T"], "snapshot": false});
        s.write_all(&client_frame(
            true,
            0x1,
            request.to_string().as_bytes(),
            true,
        ))
        .unwrap();
        s.flush().unwrap();
        let (_, ack) = read_server_frame(&mut s).expect("the ack");
        assert!(String::from_utf8_lossy(&ack).contains("subscribed"));
        // Publish until the broker conflates for it: its socket is full.
        let conflated = || target.broker.metrics().conflated.load(Ordering::Relaxed) > 0;
        let mut p = publisher(&target.broker);
        let deadline = Instant::now() + PATIENCE;
        let mut price = 0.0;
        while !conflated() {
            assert!(Instant::now() < deadline, "{over:?}: never conflated");
            for _ in 0..1_000 {
                price += 1.0;
                p.publish(quote("T", price)).unwrap();
            }
            p.flush().unwrap();
        }
        s.write_all(&client_frame(true, 0x8, &1000u16.to_be_bytes(), true))
            .unwrap();
        s.flush().unwrap();
        s.tcp().shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_close_code(&mut s), Some(1000), "{over:?}");
    }
}

#[test]
fn a_close_followed_at_once_by_fin_is_still_echoed() {
    for over in BOTH {
        let (_target, mut s) = open(over);
        s.write_all(&client_frame(true, 0x8, &1000u16.to_be_bytes(), true))
            .unwrap();
        s.flush().unwrap();
        s.tcp().shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_close_code(&mut s), Some(1000), "{over:?}");
    }
}
