//! The HTTP request that opens every connection on the subscriber
//! listeners (plain and TLS): its head is parsed and routed — the
//! dashboard's files, `/metrics`, `/healthz`, or a subscriber stream: an
//! upgrade to WebSocket (`/ws`) or Server-Sent Events (`/sse`). Pure: bytes
//! in, a decision out; the connection (`crate::session`) acts on it.

mod assets;
pub mod event_id;
pub mod sse_query;

use tickwire_ws::deflate::negotiate;
use tickwire_ws::handshake::{validate_upgrade, UpgradeError};
use tickwire_ws::http::{parse_request_head, response, HeadError, HeadParse};

use crate::encodings::Wire;
use crate::messages::Format;
use assets::find_asset;

pub enum HttpOutcome {
    /// Not a complete head yet.
    NeedMore,
    /// `GET /metrics`: the caller renders the current metrics.
    Metrics,
    /// `GET /healthz`: the caller knows whether the broker is degraded.
    Health,
    /// Answer with these bytes, then close.
    Respond(Vec<u8>),
    /// Switch to WebSocket: send the 101 with this accept key; `head_len`
    /// bytes were the request, anything after them is already frames.
    Upgrade {
        accept: String,
        /// The connection's wire: format, `delta=1`, and whether
        /// permessage-deflate was negotiated.
        wire: Wire,
        /// The `Sec-WebSocket-Extensions` answer, when deflate was.
        extensions: Option<String>,
        head_len: usize,
    },
    /// `/sse`: a Server-Sent Events stream of this subscribe (boxed: the
    /// rare, large outcome).
    EventStream(Box<EventStreamRequest>),
}

/// What an `/sse` request asks for, its query already checked by the
/// subscribe rules.
pub struct EventStreamRequest {
    pub query: sse_query::SseQuery,
    /// `Authorization: Bearer <JWT>`, when the query has no `token=`.
    pub bearer: Option<String>,
    /// `Last-Event-ID` as sent (a browser's `EventSource` reconnecting);
    /// the session decides whether it is one of this broker's ids.
    pub last_event_id: Option<Vec<u8>>,
    /// `delta=1`: field deltas (JSON `delta` events).
    pub delta: bool,
}

/// Routes one request head. `allowed_origins`: when non-empty, a `/ws`
/// upgrade whose `Origin` is present and not in the list gets 403 (a
/// request without `Origin`, from a non-browser client, is not affected).
/// `permessage_deflate`: whether a WebSocket upgrade may accept an offer
/// of the extension (`[websocket] permessage_deflate`).
pub fn route(
    buf: &[u8],
    max_head: usize,
    allowed_origins: &[String],
    permessage_deflate: bool,
) -> HttpOutcome {
    let (head, head_len) = match parse_request_head(buf, max_head) {
        Ok(HeadParse::Partial) => return HttpOutcome::NeedMore,
        Ok(HeadParse::Complete { head, len }) => (head, len),
        // Before the path is known: JSON bodies, which an `/sse` client
        // reads like its other errors (and any other client as text).
        Err(HeadError::TooLarge) => {
            return json_error(
                431,
                "Request Header Fields Too Large",
                "bad_request",
                "request head too large",
            )
        }
        Err(HeadError::Malformed) => {
            return json_error(400, "Bad Request", "bad_request", "malformed request")
        }
    };
    if head.method != "GET" {
        return error(
            405,
            "Method Not Allowed",
            &[("Allow", "GET")],
            "only GET is allowed",
        );
    }
    match head.path {
        "/healthz" => HttpOutcome::Health,
        "/metrics" => HttpOutcome::Metrics,
        "/sse" => {
            if !origin_allowed(head.header("origin"), allowed_origins) {
                return json_error(403, "Forbidden", "not_authorized", "origin not allowed");
            }
            let Some(delta) = delta_param(head.query_param("delta")) else {
                return json_error(400, "Bad Request", "bad_request", "delta must be 0 or 1");
            };
            match sse_query::parse_sse_query(head.query.unwrap_or("")) {
                Ok(query) => HttpOutcome::EventStream(Box::new(EventStreamRequest {
                    query,
                    bearer: bearer_token(head.header("authorization")),
                    last_event_id: head.header("last-event-id").map(<[u8]>::to_vec),
                    delta,
                })),
                Err(e) => json_error(400, "Bad Request", e.code.as_str(), &e.message),
            }
        }
        "/ws" => {
            if !origin_allowed(head.header("origin"), allowed_origins) {
                return error(403, "Forbidden", &[], "origin not allowed");
            }
            let format = match head.query_param("format") {
                None | Some("json") => Format::Json,
                Some("binary") => Format::Binary,
                Some(_) => {
                    return error(400, "Bad Request", &[], "format must be json or binary");
                }
            };
            let Some(delta) = delta_param(head.query_param("delta")) else {
                return error(400, "Bad Request", &[], "delta must be 0 or 1");
            };
            let extensions = if permessage_deflate {
                let offers: Vec<&[u8]> = head
                    .headers
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-extensions"))
                    .map(|(_, value)| *value)
                    .collect();
                negotiate(&offers)
            } else {
                None
            };
            let wire = Wire {
                format,
                delta,
                deflate: extensions.is_some(),
            };
            match validate_upgrade(&head) {
                Ok(accept) => HttpOutcome::Upgrade {
                    accept,
                    wire,
                    extensions,
                    head_len,
                },
                Err(UpgradeError::BadRequest(why)) => error(400, "Bad Request", &[], why),
                Err(UpgradeError::UnsupportedVersion) => error(
                    426,
                    "Upgrade Required",
                    &[("Sec-WebSocket-Version", "13")],
                    "only WebSocket version 13 is supported",
                ),
            }
        }
        path => match find_asset(path) {
            Some((content_type, body)) => asset(content_type, body),
            None => error(404, "Not Found", &[], "not found"),
        },
    }
}

/// `delta=`: absent or `0` off, `1` on, anything else refused (None).
pub fn delta_param(value: Option<&str>) -> Option<bool> {
    match value {
        None | Some("0") => Some(false),
        Some("1") => Some(true),
        Some(_) => None,
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(value: Option<&[u8]>) -> Option<String> {
    let value = std::str::from_utf8(value?).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// An error an `/sse` request gets before any event: the WebSocket
/// protocol's `error` object as a small JSON body, then close.
pub fn json_error(status: u16, reason: &str, code: &str, message: &str) -> HttpOutcome {
    HttpOutcome::Respond(json_error_response(status, reason, code, message))
}

/// The bytes of [`json_error`].
pub fn json_error_response(status: u16, reason: &str, code: &str, message: &str) -> Vec<u8> {
    let body = tickwire_protocol::server::json_error_code(code, message);
    response(
        status,
        reason,
        &[],
        "application/json",
        format!("{body}\n").as_bytes(),
    )
}

/// The head of an `/sse` stream: no length, the body runs until the
/// connection closes (also right for an HTTP/1.0 request, which is what
/// nginx's default `proxy_pass` sends); no buffering by proxies.
pub fn event_stream_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\n\
X-Accel-Buffering: no\r\n\
Connection: close\r\n\r\n"
        .to_vec()
}

/// Exact match of the `Origin` header against the allow-list (browsers send
/// `scheme://host[:port]`, lower-case scheme and host, no trailing slash).
fn origin_allowed(origin: Option<&[u8]>, allowed: &[String]) -> bool {
    match origin {
        _ if allowed.is_empty() => true,
        None => true,
        Some(origin) => allowed.iter().any(|a| a.as_bytes() == origin),
    }
}

/// A dashboard asset. `no-cache`: the browser revalidates, so a page and
/// its scripts always come from the same (possibly upgraded) binary.
fn asset(content_type: &str, body: &str) -> HttpOutcome {
    HttpOutcome::Respond(response(
        200,
        "OK",
        &[("Cache-Control", "no-cache")],
        content_type,
        body.as_bytes(),
    ))
}

fn error(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> HttpOutcome {
    let body = format!("{body}\n");
    HttpOutcome::Respond(response(
        status,
        reason,
        headers,
        "text/plain; charset=utf-8",
        body.as_bytes(),
    ))
}

/// `503` for a connection refused at accept (over the per-IP limit),
/// before its request is read: a JSON body, which an `/sse` client reads
/// like its other errors.
pub fn too_many_connections() -> Vec<u8> {
    json_error_response(
        503,
        "Service Unavailable",
        "too_many_connections",
        "too many connections from this address",
    )
}

/// `GET /metrics`: the Prometheus text exposition.
pub fn metrics_response(body: &[u8]) -> Vec<u8> {
    response(200, "OK", &[], crate::metrics::CONTENT_TYPE, body)
}

/// `GET /healthz`: `200 ok`, or `503 degraded: cluster link down` while a
/// configured cluster link is down (the broker still serves its own
/// producers).
pub fn health_response(degraded: bool) -> Vec<u8> {
    let (status, reason, body): (u16, &str, &[u8]) = if degraded {
        (503, "Service Unavailable", b"degraded: cluster link down")
    } else {
        (200, "OK", b"ok")
    };
    response(status, reason, &[], "text/plain; charset=utf-8", body)
}

#[cfg(test)]
mod tests;
