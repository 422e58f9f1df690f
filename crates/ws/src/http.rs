//! Minimal HTTP/1.x request-head parsing and response building.
//!
//! The broker only needs enough HTTP to route `/ws` upgrades and answer a few
//! plain endpoints, so this wraps `httparse` with a hard size limit and
//! produces self-contained responses that always close the connection.

/// Maximum number of headers accepted; more is treated as an oversized head.
const MAX_HEADERS: usize = 64;

/// A parsed request line plus headers.
#[derive(Debug, Clone, PartialEq, Eq)]
///
/// It borrows the bytes it was parsed from: a head is routed at once, and
/// copying it out cost ~20 allocations per connection in a reconnect storm.
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The request target without the query string.
    pub path: &'a str,
    /// The part after the first `?`, if any (not percent-decoded).
    pub query: Option<&'a str>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header names as sent; values as raw bytes (HTTP allows non-UTF-8).
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl RequestHead<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Whether any header named `name` contains `token` in its
    /// comma-separated list (trimmed, case-insensitive). Needed because
    /// e.g. `Connection: keep-alive, Upgrade` is a valid upgrade request.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        has_token(
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v),
            token,
        )
    }

    /// The value of the first `name=value` pair in the query string;
    /// a bare `name` yields `Some("")`. No percent-decoding is done.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// Whether any of `values` contains `token` as a comma-separated element.
pub(crate) fn has_token<'a>(values: impl IntoIterator<Item = &'a [u8]>, token: &str) -> bool {
    values.into_iter().any(|value| {
        value
            .split(|&b| b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Result of feeding a (possibly partial) buffer to [`parse_request_head`].
#[derive(Debug)]
pub enum HeadParse<'a> {
    /// The head is not complete yet; read more bytes and call again.
    Partial,
    /// A complete head; `len` bytes (including the final CRLFCRLF) belong to
    /// it, anything after is body or pipelined data.
    Complete { head: RequestHead<'a>, len: usize },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    /// Answer with 431.
    #[error("request head too large")]
    TooLarge,
    /// Answer with 400.
    #[error("malformed request head")]
    Malformed,
}

/// Parses an HTTP/1.x request head from the start of `buf`.
///
/// Returns `TooLarge` if the head is not complete within `max_head` bytes or
/// has more than 64 headers. Only the first `max_head` bytes are examined so a
/// client trickling an endless head costs bounded work per call.
pub fn parse_request_head(buf: &[u8], max_head: usize) -> Result<HeadParse<'_>, HeadError> {
    let window = buf.get(..max_head).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => {
            let head = borrowed_head(&req).ok_or(HeadError::Malformed)?;
            Ok(HeadParse::Complete { head, len })
        }
        // The window was cut at max_head and still holds no complete head.
        Ok(httparse::Status::Partial) if buf.len() > max_head => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(HeadParse::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// A fully parsed httparse request as a [`RequestHead`] over the same bytes.
fn borrowed_head<'b>(req: &httparse::Request<'_, 'b>) -> Option<RequestHead<'b>> {
    let target = req.path?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Some(RequestHead {
        method: req.method?,
        path,
        query,
        minor_version: req.version?,
        headers: req.headers.iter().map(|h| (h.name, h.value)).collect(),
    })
}

/// Builds a complete response that carries `Content-Length` and
/// `Connection: close`, so the peer knows where it ends and that the
/// connection will not be reused (we never keep HTTP connections alive).
/// `extra_headers` are appended verbatim as `name: value` lines.
pub fn response(
    status: u16,
    reason: &str,
    extra_headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8192;

    fn complete(buf: &[u8]) -> (RequestHead<'_>, usize) {
        match parse_request_head(buf, MAX) {
            Ok(HeadParse::Complete { head, len }) => (head, len),
            other => panic!("expected complete head, got {other:?}"),
        }
    }

    #[test]
    fn parses_simple_request() {
        let raw = b"GET /ws?token=abc&x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\nEXTRA";
        let (head, len) = complete(raw);
        assert_eq!(len, raw.len() - 5);
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query, Some("token=abc&x"));
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.header("host"), Some(&b"a"[..]));
        assert!(head.header_has_token("CONNECTION", "upgrade"));
        assert!(!head.header_has_token("Connection", "close"));
    }

    #[test]
    fn partial_at_every_prefix() {
        let raw = b"GET / HTTP/1.0\r\nHost: a\r\n\r\n";
        for cut in 0..raw.len() {
            assert!(
                matches!(parse_request_head(&raw[..cut], MAX), Ok(HeadParse::Partial)),
                "prefix {cut}"
            );
        }
        let (head, len) = complete(raw);
        assert_eq!((head.minor_version, len), (0, raw.len()));
    }

    /// Builds a head of exactly `size` bytes by padding one header value.
    fn head_of_size(size: usize) -> Vec<u8> {
        let start = b"GET / HTTP/1.1\r\nX-Pad: ";
        let end = b"\r\n\r\n";
        let mut raw = start.to_vec();
        raw.resize(size - end.len(), b'a');
        raw.extend_from_slice(end);
        assert_eq!(raw.len(), size);
        raw
    }

    #[test]
    fn head_exactly_at_limit_is_accepted() {
        let raw = head_of_size(MAX);
        let (_, len) = complete(&raw);
        assert_eq!(len, MAX);
    }

    #[test]
    fn head_over_limit_is_too_large() {
        let raw = head_of_size(MAX + 1);
        assert_eq!(
            parse_request_head(&raw, MAX).unwrap_err(),
            HeadError::TooLarge
        );
        // Also when the end has not arrived yet but the limit is exceeded.
        let incomplete = vec![b'a'; MAX + 1];
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.extend_from_slice(&incomplete);
        assert_eq!(
            parse_request_head(&raw, MAX).unwrap_err(),
            HeadError::TooLarge
        );
        // Exactly max_head bytes without an end is still Partial.
        assert!(matches!(
            parse_request_head(&raw[..MAX], MAX),
            Ok(HeadParse::Partial)
        ));
    }

    #[test]
    fn too_many_headers_is_too_large() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_request_head(&raw, MAX).unwrap_err(),
            HeadError::TooLarge
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(
            parse_request_head(b"GET / HTTP/9.9\r\n\r\n", MAX).unwrap_err(),
            HeadError::Malformed
        );
        assert_eq!(
            parse_request_head(b"\x00\x01\x02 junk\r\n\r\n", MAX).unwrap_err(),
            HeadError::Malformed
        );
    }

    #[test]
    fn query_param_rules() {
        let (head, _) = complete(b"GET /ws?a=1&flag&b=2&a=3&c= HTTP/1.1\r\n\r\n");
        assert_eq!(head.query_param("a"), Some("1"));
        assert_eq!(head.query_param("b"), Some("2"));
        assert_eq!(head.query_param("flag"), Some(""));
        assert_eq!(head.query_param("c"), Some(""));
        assert_eq!(head.query_param("missing"), None);
        assert_eq!(head.query_param("fla"), None);
        let (head, _) = complete(b"GET /ws HTTP/1.1\r\n\r\n");
        assert_eq!(head.query, None);
        assert_eq!(head.query_param("a"), None);
    }

    #[test]
    fn token_search_spans_repeated_headers() {
        let (head, _) =
            complete(b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nconnection:  Upgrade \r\n\r\n");
        assert!(head.header_has_token("Connection", "upgrade"));
        assert_eq!(head.header("connection"), Some(&b"keep-alive"[..]));
        assert!(!head.header_has_token("Connection", "upgrad"));
    }

    #[test]
    fn response_has_length_and_close() {
        let out = response(
            431,
            "Request Header Fields Too Large",
            &[("X-A", "b")],
            "text/plain",
            b"too big",
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.contains("\r\nContent-Length: 7\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.contains("\r\nContent-Type: text/plain\r\n"));
        assert!(text.contains("\r\nX-A: b\r\n"));
        assert!(text.ends_with("\r\n\r\ntoo big"));
    }
}
