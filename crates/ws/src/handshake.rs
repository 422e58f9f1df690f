//! The WebSocket opening handshake (RFC 6455 section 4), server and client.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::http::{has_token, RequestHead};

/// GUID appended to the client key before hashing (RFC 6455 section 1.3).
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UpgradeError {
    /// Answer 400 with this reason text.
    BadRequest(&'static str),
    /// Answer 426 with `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
}

/// Validates an upgrade request and returns the `Sec-WebSocket-Accept`
/// value. Method and path are not checked: the caller routes first.
pub fn validate_upgrade(head: &RequestHead) -> Result<String, UpgradeError> {
    if head.minor_version != 1 {
        return Err(UpgradeError::BadRequest("HTTP/1.1 required"));
    }
    if !head.header_has_token("Upgrade", "websocket") {
        return Err(UpgradeError::BadRequest(
            "missing or invalid Upgrade header",
        ));
    }
    if !head.header_has_token("Connection", "upgrade") {
        return Err(UpgradeError::BadRequest(
            "missing or invalid Connection header",
        ));
    }
    let key = head
        .header("Sec-WebSocket-Key")
        .and_then(|k| std::str::from_utf8(k.trim_ascii()).ok())
        .filter(|k| STANDARD.decode(k).is_ok_and(|raw| raw.len() == 16))
        .ok_or(UpgradeError::BadRequest(
            "missing or invalid Sec-WebSocket-Key header",
        ))?;
    let version = head
        .header("Sec-WebSocket-Version")
        .ok_or(UpgradeError::BadRequest(
            "missing Sec-WebSocket-Version header",
        ))?;
    if version.trim_ascii() != b"13" {
        return Err(UpgradeError::UnsupportedVersion);
    }
    Ok(accept_key(key))
}

/// `base64(sha1(key + GUID))`, the value proving the server understood the
/// WebSocket handshake.
/// The client's `Sec-WebSocket-Key` for a 16-byte nonce (the caller picks
/// the nonce: this crate has no randomness).
pub fn client_key(nonce: [u8; 16]) -> String {
    STANDARD.encode(nonce)
}

pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// The server's `101 Switching Protocols` response, with the negotiated
/// `Sec-WebSocket-Extensions` when there is one.
pub fn accept_response(accept: &str, extensions: Option<&str>) -> Vec<u8> {
    let extensions = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extensions}\r\n"
    )
    .into_bytes()
}

/// The client's upgrade request.
pub fn client_request(host: &str, path_and_query: &str, key_b64: &str) -> Vec<u8> {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key_b64}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Values of every response header named `name` (case-insensitive).
fn response_header_values<'h, 'b>(
    headers: &'h [httparse::Header<'b>],
    name: &'h str,
) -> impl Iterator<Item = &'b [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Result of feeding a (possibly partial) server response to
/// [`parse_client_response`].
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseParse {
    /// Not complete yet; read more and call again.
    Partial,
    /// Handshake accepted; the first `len` bytes were the response head and
    /// anything after them is already WebSocket frame data.
    Complete { len: usize },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientHandshakeError {
    #[error("handshake response head too large")]
    TooLarge,
    #[error("malformed handshake response")]
    Malformed,
    #[error("server did not switch protocols (status {0})")]
    NotSwitching(u16),
    #[error("server sent a wrong or missing Sec-WebSocket-Accept")]
    BadAccept,
}

/// Parses the server's response head; checks status 101 and that
/// `Sec-WebSocket-Accept` matches `key_b64`.
pub fn parse_client_response(
    buf: &[u8],
    key_b64: &str,
    max_head: usize,
) -> Result<ResponseParse, ClientHandshakeError> {
    // Same bounded-window approach as the request parser.
    let window = buf.get(..max_head).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err(ClientHandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(ResponseParse::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ClientHandshakeError::TooLarge),
        Err(_) => return Err(ClientHandshakeError::Malformed),
    };
    let status = resp.code.ok_or(ClientHandshakeError::Malformed)?;
    if status != 101 {
        return Err(ClientHandshakeError::NotSwitching(status));
    }
    let headers = &*resp.headers;
    let header_values = |name: &'static str| response_header_values(headers, name);
    // A 101 to something other than WebSocket is not a usable connection.
    if !has_token(header_values("Upgrade"), "websocket")
        || !has_token(header_values("Connection"), "upgrade")
    {
        return Err(ClientHandshakeError::Malformed);
    }
    let expected = accept_key(key_b64);
    let got = header_values("Sec-WebSocket-Accept").next();
    if got.map(<[u8]>::trim_ascii) == Some(expected.as_bytes()) {
        Ok(ResponseParse::Complete { len })
    } else {
        Err(ClientHandshakeError::BadAccept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request_head, HeadParse};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn head(raw: &str) -> RequestHead {
        match parse_request_head(raw.as_bytes(), 8192) {
            Ok(HeadParse::Complete { head, .. }) => head,
            other => panic!("bad test head: {other:?}"),
        }
    }

    /// A valid request with `replace` substituted into the header block.
    fn request_with(headers: &str, version: &str) -> RequestHead {
        head(&format!("GET /ws {version}\r\nHost: x\r\n{headers}\r\n"))
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
    fn client_rejects_wrong_accept_and_status() {
        let resp = accept_response(&accept_key("AAAAAAAAAAAAAAAAAAAAAA=="), None);
        assert_eq!(
            parse_client_response(&resp, KEY, 8192),
            Err(ClientHandshakeError::BadAccept)
        );
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
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
}

#[cfg(test)]
mod client_key_tests {
    #[test]
    fn client_key_is_base64_of_the_nonce() {
        // RFC 6455's sample: the nonce "the sample nonce".
        assert_eq!(
            super::client_key(*b"the sample nonce"),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
    }
}
