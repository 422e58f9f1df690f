//! HTTP routes and handshake rules on the WebSocket listener.

use crate::common;

use std::io::Write;
use std::net::TcpStream;

use common::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(path: &str, version_line: &str, extra: &str) -> String {
    format!(
        "GET {path} {version_line}\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

fn status(response: &str) -> &str {
    response.get(9..12).unwrap_or("")
}

/// Every error response carries Content-Length and Connection: close.
fn assert_error_shape(response: &str) {
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("\r\ncontent-length: "), "{response}");
    assert!(lower.contains("\r\nconnection: close\r\n"), "{response}");
}

#[test]
fn healthz_index_and_404() {
    let broker = start();
    let addr = broker.ws_addr();
    let r = http(addr, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status(&r), "200");
    assert!(r.ends_with("\r\n\r\nok"), "{r}");
    let r = http(addr, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status(&r), "200");
    assert!(r.contains("text/html"));
    let r = http(addr, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status(&r), "404");
    assert_error_shape(&r);
}

#[test]
fn other_methods_get_405_with_allow() {
    let broker = start();
    for path in ["/ws", "/healthz", "/nope"] {
        let r = http(
            broker.ws_addr(),
            &format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
        );
        assert_eq!(status(&r), "405", "{path}");
        assert!(r.contains("\r\nAllow: GET\r\n"), "{r}");
        assert_error_shape(&r);
    }
}

#[test]
fn invalid_upgrades_get_400() {
    let broker = start();
    let addr = broker.ws_addr();
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    let cases = [
        ("no version", upgrade_request("/ws", "HTTP/1.1", "")),
        ("http/1.0", upgrade_request("/ws", "HTTP/1.0", v13)),
        ("unknown format", upgrade_request("/ws?format=xml", "HTTP/1.1", v13)),
        ("empty format", upgrade_request("/ws?format=", "HTTP/1.1", v13)),
        (
            "no upgrade header",
            format!("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n{v13}\r\n"),
        ),
        (
            "no connection header",
            format!("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {KEY}\r\n{v13}\r\n"),
        ),
        (
            "no key",
            format!("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{v13}\r\n"),
        ),
        (
            "short key",
            format!(
                "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: c2hvcnQ=\r\n{v13}\r\n"
            ),
        ),
        ("plain GET /ws", "GET /ws HTTP/1.1\r\nHost: t\r\n\r\n".to_owned()),
    ];
    for (name, request) in cases {
        let r = http(addr, &request);
        assert_eq!(status(&r), "400", "{name}: {r}");
        assert_error_shape(&r);
    }
}

#[test]
fn wrong_version_gets_426_naming_13() {
    let broker = start();
    let r = http(
        broker.ws_addr(),
        &upgrade_request("/ws", "HTTP/1.1", "Sec-WebSocket-Version: 8\r\n"),
    );
    assert_eq!(status(&r), "426", "{r}");
    assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{r}");
    assert_error_shape(&r);
}

#[test]
fn request_head_over_8k_gets_431_and_exactly_8k_is_served() {
    let broker = start();
    let addr = broker.ws_addr();
    let base = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: \r\n\r\n";
    let pad = 8192 - base.len();
    let at_limit = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(pad)
    );
    assert_eq!(at_limit.len(), 8192);
    assert_eq!(status(&http(addr, &at_limit)), "200");
    let over = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(pad + 1)
    );
    let r = http(addr, &over);
    assert_eq!(status(&r), "431", "{r}");
    assert_error_shape(&r);
    // A head that never ends is cut off at the limit too.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = s.write_all(format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(20_000)).as_bytes());
    assert!(read_head(&mut s).starts_with("HTTP/1.1 431"));
}

#[test]
fn handshake_not_completed_in_time_is_closed() {
    let mut config = test_config();
    config.server.handshake_timeout_ms = 300;
    let broker = start_with(config);
    let mut s = TcpStream::connect(broker.ws_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\n").unwrap(); // never finished
    assert!(sees_eof(&mut s), "the broker closes a stalled handshake");
}

#[test]
fn bytes_pipelined_after_the_upgrade_are_frames() {
    let broker = start();
    let mut s = TcpStream::connect(broker.ws_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request =
        upgrade_request("/ws", "HTTP/1.1", "Sec-WebSocket-Version: 13\r\n").into_bytes();
    request.extend(client_frame(true, 0x9, b"hi", true)); // ping in the same packet
    s.write_all(&request).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101"));
    assert_eq!(read_server_frame(&mut s), Some((0xA, b"hi".to_vec())));
}

#[test]
fn a_request_followed_at_once_by_fin_still_gets_its_answer() {
    let broker = start();
    for path in ["/healthz", "/metrics", "/nope"] {
        let mut s = std::net::TcpStream::connect(broker.ws_addr()).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        // Request and FIN together, as `nc -N` or a load balancer's health
        // check sends them.
        std::io::Write::write_all(
            &mut s,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut reply);
        assert!(reply.starts_with("HTTP/1.1 "), "{path}: {reply:?}");
    }
}

#[test]
fn origin_allow_list_403_101_and_no_origin() {
    let mut config = test_config();
    config.server.allowed_origins = vec!["https://desk.example.com".into()];
    let broker = start_with(config);
    let upgrade = |origin: Option<&str>| {
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        http(
            broker.ws_addr(),
            &format!(
                "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
            ),
        )
    };
    let denied = upgrade(Some("https://evil.example"));
    assert!(denied.starts_with("HTTP/1.1 403 "), "{denied}");
    assert!(denied.contains("Content-Length: ") && denied.contains("Connection: close"));
    // The http() helper reads to EOF: a 101 keeps the connection open, so
    // take the head only.
    for origin in [Some("https://desk.example.com"), None] {
        let mut s = std::net::TcpStream::connect(broker.ws_addr()).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let origin_line = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        std::io::Write::write_all(
            &mut s,
            format!(
                "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin_line}\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{origin:?}: {head}");
    }
}
