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
pub fn validate_upgrade(head: &RequestHead<'_>) -> Result<String, UpgradeError> {
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
    // Written piece by piece into one buffer sized up front: `format!`
    // (twice, with the extensions) was ~800 instructions of every
    // connection's handshake in a reconnect storm.
    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    const EXTENSIONS: &[u8] = b"Sec-WebSocket-Extensions: ";
    let extensions_len = extensions.map_or(0, |e| EXTENSIONS.len() + e.len() + 2);
    let mut out = Vec::with_capacity(HEAD.len() + accept.len() + 4 + extensions_len);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(e) = extensions {
        out.extend_from_slice(EXTENSIONS);
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The client's upgrade request.
pub fn client_request(host: &str, path_and_query: &str, key_b64: &str) -> Vec<u8> {
    client_request_with(host, path_and_query, key_b64, &[])
}

/// The client's upgrade request with `extra_headers` (name, value) after
/// the standard ones, in order, e.g. `("Sec-WebSocket-Extensions",
/// "permessage-deflate")`. A header whose name or value contains CR or LF
/// would end the head or start another header: it is left out.
pub fn client_request_with(
    host: &str,
    path_and_query: &str,
    key_b64: &str,
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key_b64}\r\nSec-WebSocket-Version: 13\r\n"
    );
    let breaks_line = |s: &str| s.contains(['\r', '\n']);
    for (name, value) in extra_headers {
        if !breaks_line(name) && !breaks_line(value) {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
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
mod tests;
