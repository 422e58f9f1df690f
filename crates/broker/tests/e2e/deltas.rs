//! v1.2 "fewer bytes per quote" end to end: field deltas (`delta=1`)
//! rebuilt by a client give exactly the plain stream, and permessage-deflate
//! is negotiated, compressed both ways and bounded (tungstenite and raw
//! frames as the independent clients).

use std::io::Write;

use tickwire_broker::Broker;
use tickwire_client::{Deltas, ServerMessage};
use tickwire_protocol::server::{decode_binary, decode_json};
use tickwire_protocol::Quote;
use tickwire_ws::deflate::{deflate_message, Inflater, RSV1};
use tungstenite::Message;

use crate::common;
use common::*;

/// A feed where each update changes one or two fields (and some carry
/// NaN, -0.0 and infinities), as a real book does.
fn feed(topic: &str, n: usize) -> Vec<Quote> {
    let mut q = quote(topic, 100.0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        match i % 7 {
            0 => q.bid += 0.01,
            1 => q.ask_size = 300.0 + i as f64,
            2 => {
                q.last = q.bid;
                q.volume += 100.0;
            }
            3 => q.bid_size = -0.0,
            4 => q.ask = f64::NAN,
            5 => q.ask = f64::INFINITY,
            _ => q.bid_size = 0.0,
        }
        q.ts += 1;
        out.push(q.clone());
    }
    out
}

fn message(msg: Message) -> Option<ServerMessage> {
    match msg {
        Message::Text(t) => Some(decode_json(t.as_str()).expect("valid JSON")),
        Message::Binary(b) => Some(decode_binary(&b).expect("valid binary")),
        _ => None,
    }
}

/// The quotes a subscriber hands its application (deltas rebuilt), with
/// each field's bits, and how many came as deltas.
fn stream(ws: &mut Ws, n: usize) -> (Vec<(u64, [u64; 6], u64)>, usize) {
    let mut deltas = Deltas::default();
    let (mut out, mut delta_count) = (Vec::new(), 0);
    while out.len() < n {
        let Some(m) = message(recv(ws)) else { continue };
        delta_count += usize::from(matches!(m, ServerMessage::Delta { .. }));
        if let ServerMessage::Quote { quote, seq } = deltas.apply(m).expect("a delta's base") {
            let bits = [
                quote.bid,
                quote.ask,
                quote.bid_size,
                quote.ask_size,
                quote.last,
                quote.volume,
            ]
            .map(f64::to_bits);
            out.push((seq, bits, quote.ts));
        }
    }
    (out, delta_count)
}

#[test]
fn a_delta_subscriber_rebuilds_exactly_the_plain_stream() {
    let broker = start();
    for format in ["json", "binary"] {
        let topic = format!("DELTA.{format}");
        let mut plain = connect_path(broker.ws_addr(), &format!("/ws?format={format}"));
        let mut delta = connect_path(broker.ws_addr(), &format!("/ws?format={format}&delta=1"));
        for ws in [&mut plain, &mut delta] {
            send_json(
                ws,
                serde_json::json!({"op": "subscribe", "id": 1, "topics": [topic]}),
            );
            recv_type(ws, "subscribed");
        }
        let quotes = feed(&topic, 200);
        let mut p = publisher(&broker);
        for q in &quotes {
            p.publish(q.clone()).unwrap();
        }
        p.flush().unwrap();
        let (want, plain_deltas) = stream(&mut plain, quotes.len());
        let (got, delta_count) = stream(&mut delta, quotes.len());
        assert_eq!(plain_deltas, 0, "{format}: deltas only when asked for");
        if format == "binary" {
            assert_eq!(got, want, "{format}: bit for bit");
        } else {
            // JSON carries a non-finite number as null (NaN to a client),
            // in a quote and in a delta alike: the streams still agree.
            assert_eq!(got, want, "{format}");
        }
        // The first quote of the connection is full, every later one
        // follows its seq - 1 here (nothing conflated on loopback).
        assert_eq!(delta_count, quotes.len() - 1, "{format}");
    }
}

/// A raw upgrade offering `extensions`; the 101's head and the stream.
fn upgrade_offering(
    broker: &Broker,
    path: &str,
    extensions: &str,
) -> (String, std::net::TcpStream) {
    let mut s = std::net::TcpStream::connect(broker.ws_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (head, s)
}

/// The next server frame: (RSV1 set, opcode, payload inflated if it was).
fn read_frame(s: &mut impl std::io::Read) -> (bool, u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => panic!("no quote is that long"),
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    let compressed = h[0] & RSV1 != 0;
    if compressed {
        let mut out = Vec::new();
        Inflater::new()
            .inflate(&payload, 1 << 20, &mut out)
            .unwrap();
        payload = out;
    }
    (compressed, h[0] & 0x0f, payload)
}

/// A masked text frame, compressed (RSV1) when `compress`.
fn text_frame(text: &str, compress: bool) -> Vec<u8> {
    if !compress {
        return client_frame(true, 0x1, text.as_bytes(), true);
    }
    let mut data = Vec::new();
    deflate_message(text.as_bytes(), &mut data);
    let mut frame = client_frame(true, 0x1, &data, true);
    frame[0] |= RSV1;
    frame
}

#[test]
fn deflate_is_negotiated_and_every_json_message_from_64_bytes_comes_compressed() {
    let broker = start();
    let (head, mut s) = upgrade_offering(
        &broker,
        "/ws?delta=1",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    );
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
        "{head}"
    );
    // The request itself goes compressed; the ack (over 64 bytes) comes so.
    let subscribe = r#"{"op":"subscribe","id":1,"topics":["Z.A","Z.B"]}"#;
    s.write_all(&text_frame(subscribe, true)).unwrap();
    let (compressed, opcode, ack) = read_frame(&mut s);
    assert_eq!((compressed, opcode), (true, 1));
    assert!(String::from_utf8(ack)
        .unwrap()
        .contains(r#""type":"subscribed""#));
    let mut p = publisher(&broker);
    for q in feed("Z.A", 5) {
        p.publish(q).unwrap();
    }
    p.flush().unwrap();
    let mut kinds = Vec::new();
    for _ in 0..5 {
        let (compressed, _, payload) = read_frame(&mut s);
        let text = String::from_utf8(payload).unwrap();
        assert_eq!(compressed, text.len() >= 64, "{text}");
        kinds.push(
            decode_json(&text)
                .map(|m| matches!(m, ServerMessage::Delta { .. }))
                .unwrap(),
        );
    }
    assert_eq!(kinds, [false, true, true, true, true]);
    assert!(wait_until(|| metric(
        &broker,
        "tickwire_bytes_out_total{encoding=\"json+deflate\"}"
    ) > 0.0));
}

#[test]
fn offers_the_broker_cannot_meet_are_declined_and_the_stream_stays_plain() {
    let broker = start();
    let declined = [
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate; frobnicate\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover\r\n",
        "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n",
    ];
    for offer in declined {
        let (head, mut s) = upgrade_offering(&broker, "/ws", offer);
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions"),
            "{offer}: {head}"
        );
        s.write_all(&text_frame(
            r#"{"op":"subscribe","id":1,"topics":["Y.A"]}"#,
            false,
        ))
        .unwrap();
        let (compressed, _, ack) = read_frame(&mut s);
        assert!(!compressed, "{offer}");
        assert!(String::from_utf8(ack).unwrap().contains("subscribed"));
        // RSV1 without the extension is a protocol error.
        s.write_all(&text_frame(r#"{"op":"ping"}"#, true)).unwrap();
        assert_eq!(read_close_code(&mut s), Some(1002), "{offer}");
    }
    // Two offers: the first cannot be met, the second is taken.
    let (head, _) = upgrade_offering(
        &broker,
        "/ws",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9, permessage-deflate\r\n",
    );
    assert!(
        head.contains("permessage-deflate; server_no_context_takeover"),
        "{head}"
    );
    // Turned off in the config: never accepted.
    let mut config = test_config();
    config.websocket.permessage_deflate = false;
    let off = start_with(config);
    let (head, _) = upgrade_offering(
        &off,
        "/ws",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
}

#[test]
fn bad_compressed_client_messages_close_the_connection_with_their_codes() {
    let broker = start();
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    // Does not inflate: 1007.
    let (_, mut s) = upgrade_offering(&broker, "/ws", offer);
    let mut frame = client_frame(true, 0x1, &[0xff, 0xfe, 0xfd, 0x00], true);
    frame[0] |= RSV1;
    s.write_all(&frame).unwrap();
    assert_eq!(read_close_code(&mut s), Some(1007));
    // RSV1 on a control frame: 1002.
    let (_, mut s) = upgrade_offering(&broker, "/ws", offer);
    let mut ping = client_frame(true, 0x9, b"x", true);
    ping[0] |= RSV1;
    s.write_all(&ping).unwrap();
    assert_eq!(read_close_code(&mut s), Some(1002));
    // RSV1 on a continuation frame: 1002.
    let (_, mut s) = upgrade_offering(&broker, "/ws", offer);
    let mut first = client_frame(false, 0x1, b"{\"op\":", true);
    first[0] |= RSV1;
    let mut rest = client_frame(true, 0x0, b"1}", true);
    rest[0] |= RSV1;
    s.write_all(&[first, rest].concat()).unwrap();
    assert_eq!(read_close_code(&mut s), Some(1002));
}

#[test]
fn ten_megabytes_of_compressed_zeros_are_closed_1009_without_inflating_them() {
    let broker = start();
    let mut bomb = Vec::new();
    deflate_message(&vec![0u8; 10 << 20], &mut bomb);
    assert!(
        bomb.len() < 64 << 10,
        "fits the message limit: {}",
        bomb.len()
    );
    let mut frame = client_frame(true, 0x1, &bomb, true);
    frame[0] |= RSV1;
    let before = rss_bytes();
    // Eight of them: 80 MB if the broker inflated them.
    for _ in 0..8 {
        let (_, mut s) = upgrade_offering(
            &broker,
            "/ws",
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        );
        s.write_all(&frame).unwrap();
        assert_eq!(read_close_code(&mut s), Some(1009));
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 32 << 20, "RSS grew {grown} bytes");
    // The broker still serves.
    let mut ws = connect(&broker);
    subscribe(&mut ws, &["AFTER.BOMB"], true);
}

#[test]
fn sse_streams_take_deltas_too() {
    let broker = start();
    let mut s = std::net::TcpStream::connect(broker.ws_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET /sse?topics=S.D&delta=1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut p = publisher(&broker);
    let quotes = feed("S.D", 4);
    for q in &quotes {
        p.publish(q.clone()).unwrap();
    }
    p.flush().unwrap();
    let mut deltas = Deltas::default();
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let mut chunk = [0u8; 4096];
        let n = std::io::Read::read(&mut s, &mut chunk).unwrap();
        assert!(n > 0, "stream ended");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8(block).unwrap();
            let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let m = decode_json(data).unwrap();
            if matches!(m, ServerMessage::Subscribed { .. }) {
                continue;
            }
            let kind = matches!(m, ServerMessage::Delta { .. });
            let ServerMessage::Quote { quote, .. } = deltas.apply(m).unwrap() else {
                continue;
            };
            seen.push((kind, quote.bid.to_bits(), quote.ts));
        }
    }
    let want: Vec<_> = quotes
        .iter()
        .enumerate()
        .map(|(i, q)| (i > 0, q.bid.to_bits(), q.ts))
        .collect();
    assert_eq!(seen, want);
    // An unknown delta value is refused like a bad query.
    let response = http(
        broker.ws_addr(),
        "GET /sse?topics=S.D&delta=yes HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}
