//! Tests of the opening handshake: server validation, client request and
//! response parsing.

use super::*;
use crate::http::{parse_request_head, HeadParse};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn head(raw: &str) -> RequestHead<'_> {
    match parse_request_head(raw.as_bytes(), 8192) {
        Ok(HeadParse::Complete { head, .. }) => head,
        other => panic!("bad test head: {other:?}"),
    }
}

/// A valid request with `replace` substituted into the header block (its
/// text leaked: a head borrows it, and a test's few bytes do not matter).
fn request_with(headers: &str, version: &str) -> RequestHead<'static> {
    let raw = format!("GET /ws {version}\r\nHost: x\r\n{headers}\r\n");
    head(Box::leak(raw.into_boxed_str()))
}

const UPGRADE: &str = "Upgrade: websocket\r\n";
const CONNECTION: &str = "Connection: Upgrade\r\n";
const KEY_HDR: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
const VERSION: &str = "Sec-WebSocket-Version: 13\r\n";

fn bad(reason_part: &str, result: Result<String, UpgradeError>) {
    match result {
        Err(UpgradeError::BadRequest(reason)) => {
            assert!(reason.contains(reason_part), "{reason} vs {reason_part}")
        }
        other => panic!("expected BadRequest({reason_part}), got {other:?}"),
    }
}

#[test]
fn rfc_sample_accept_key() {
    assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn valid_upgrade_returns_accept() {
    let h = request_with(
        &format!("{UPGRADE}{CONNECTION}{KEY_HDR}{VERSION}"),
        "HTTP/1.1",
    );
    assert_eq!(
        validate_upgrade(&h).unwrap(),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    // Case and list variations are accepted.
    let h = request_with(
        &format!("upgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n{KEY_HDR}{VERSION}"),
        "HTTP/1.1",
    );
    assert!(validate_upgrade(&h).is_ok());
}

#[test]
fn http10_is_400() {
    let h = request_with(
        &format!("{UPGRADE}{CONNECTION}{KEY_HDR}{VERSION}"),
        "HTTP/1.0",
    );
    bad("HTTP/1.1", validate_upgrade(&h));
}

#[test]
fn missing_or_invalid_upgrade_is_400() {
    let h = request_with(&format!("{CONNECTION}{KEY_HDR}{VERSION}"), "HTTP/1.1");
    bad("Upgrade", validate_upgrade(&h));
    let h = request_with(
        &format!("Upgrade: h2c\r\n{CONNECTION}{KEY_HDR}{VERSION}"),
        "HTTP/1.1",
    );
    bad("Upgrade", validate_upgrade(&h));
}

#[test]
fn missing_or_invalid_connection_is_400() {
    let h = request_with(&format!("{UPGRADE}{KEY_HDR}{VERSION}"), "HTTP/1.1");
    bad("Connection", validate_upgrade(&h));
    let h = request_with(
        &format!("{UPGRADE}Connection: close\r\n{KEY_HDR}{VERSION}"),
        "HTTP/1.1",
    );
    bad("Connection", validate_upgrade(&h));
}

#[test]
fn missing_or_invalid_key_is_400() {
    let h = request_with(&format!("{UPGRADE}{CONNECTION}{VERSION}"), "HTTP/1.1");
    bad("Key", validate_upgrade(&h));
    for key in [
        "not base64!!",
        "AAAAAAAAAAAAAAAAAAAAAAA=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "dGhlIHNhbXBsZSBub25jZQ",
    ] {
        let h = request_with(
            &format!("{UPGRADE}{CONNECTION}Sec-WebSocket-Key: {key}\r\n{VERSION}"),
            "HTTP/1.1",
        );
        bad("Key", validate_upgrade(&h));
    }
}

#[test]
fn missing_version_is_400() {
    let h = request_with(&format!("{UPGRADE}{CONNECTION}{KEY_HDR}"), "HTTP/1.1");
    bad("Version", validate_upgrade(&h));
}

#[test]
fn other_version_is_426() {
    for v in ["8", "12", "14", ""] {
        let h = request_with(
            &format!("{UPGRADE}{CONNECTION}{KEY_HDR}Sec-WebSocket-Version: {v}\r\n"),
            "HTTP/1.1",
        );
        assert_eq!(
            validate_upgrade(&h),
            Err(UpgradeError::UnsupportedVersion),
            "version {v:?}"
        );
    }
}

#[test]
fn accept_response_shape() {
    let text = String::from_utf8(accept_response("abc", None)).unwrap();
    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(text.contains("\r\nUpgrade: websocket\r\n"));
    assert!(text.contains("\r\nConnection: Upgrade\r\n"));
    assert!(text.ends_with("\r\nSec-WebSocket-Accept: abc\r\n\r\n"));
    let with = accept_response("abc", Some("permessage-deflate"));
    assert_eq!(
        String::from_utf8(with).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: abc\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
}

#[test]
fn client_server_round_trip() {
    let req = client_request("example.com:80", "/ws?token=t", KEY);
    let h = match parse_request_head(&req, 8192) {
        Ok(HeadParse::Complete { head, len }) => {
            assert_eq!(len, req.len());
            head
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(h.method, "GET");
    assert_eq!(h.path, "/ws");
    assert_eq!(h.query_param("token"), Some("t"));
    assert_eq!(h.header("Host"), Some(&b"example.com:80"[..]));
    let accept = validate_upgrade(&h).unwrap();
    let mut resp = accept_response(&accept, None);
    let head_len = resp.len();
    for cut in 0..head_len {
        assert_eq!(
            parse_client_response(&resp[..cut], KEY, 8192),
            Ok(ResponseParse::Partial)
        );
    }
    resp.extend_from_slice(&[0x81, 0x00]); // a frame right behind the head
    assert_eq!(
        parse_client_response(&resp, KEY, 8192),
        Ok(ResponseParse::Complete { len: head_len })
    );
}

#[test]
fn client_request_with_extra_headers() {
    let plain = client_request("h:1", "/ws", KEY);
    assert_eq!(client_request_with("h:1", "/ws", KEY, &[]), plain);
    let req = client_request_with(
        "h:1",
        "/ws?delta=1",
        KEY,
        &[
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
            ("X-Bad", "a\r\nX-Injected: 1"),
            ("X-Also\nBad", "v"),
            ("X-Other", "two"),
        ],
    );
    let h = match parse_request_head(&req, 8192) {
        Ok(HeadParse::Complete { head, len }) => {
            assert_eq!(len, req.len());
            head
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(h.query_param("delta"), Some("1"));
    assert_eq!(
        h.header("Sec-WebSocket-Extensions"),
        Some(&b"permessage-deflate"[..])
    );
    assert_eq!(h.header("X-Other"), Some(&b"two"[..]));
    assert_eq!(h.header("X-Bad"), None);
    assert_eq!(h.header("X-Injected"), None);
    assert!(validate_upgrade(&h).is_ok());
    let text = String::from_utf8(req).unwrap();
    assert!(text.ends_with("\r\nX-Other: two\r\n\r\n"), "{text}");
}

#[test]
fn client_rejects_wrong_accept_and_status() {
    let resp = accept_response(&accept_key("AAAAAAAAAAAAAAAAAAAAAA=="), None);
    assert_eq!(
        parse_client_response(&resp, KEY, 8192),
        Err(ClientHandshakeError::BadAccept)
    );
    let resp =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert_eq!(
        parse_client_response(resp, KEY, 8192),
        Err(ClientHandshakeError::BadAccept)
    );
    let resp = crate::http::response(
        426,
        "Upgrade Required",
        &[("Sec-WebSocket-Version", "13")],
        "text/plain",
        b"",
    );
    assert_eq!(
        parse_client_response(&resp, KEY, 8192),
        Err(ClientHandshakeError::NotSwitching(426))
    );
    assert_eq!(
        parse_client_response(b"\x00garbage\r\n\r\n", KEY, 8192),
        Err(ClientHandshakeError::Malformed)
    );
    let mut long = b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: ".to_vec();
    long.resize(100, b'a');
    assert_eq!(
        parse_client_response(&long, KEY, 99),
        Err(ClientHandshakeError::TooLarge)
    );
    assert_eq!(
        parse_client_response(&long, KEY, 100),
        Ok(ResponseParse::Partial)
    );
}

#[test]
fn client_key_is_base64_of_the_nonce() {
    // RFC 6455's sample: the nonce "the sample nonce".
    assert_eq!(client_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
}
