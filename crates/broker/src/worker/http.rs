//! Routing of the HTTP request that opens every connection on the WebSocket
//! listener. Pure: bytes in, decision out.

use tickwire_ws::handshake::{validate_upgrade, UpgradeError};
use tickwire_ws::http::{parse_request_head, response, HeadError, HeadParse};

use crate::messages::Format;

pub enum HttpOutcome {
    /// Not a complete head yet.
    NeedMore,
    /// `GET /metrics`: the caller renders the current metrics.
    Metrics,
    /// Answer with these bytes, then close.
    Respond(Vec<u8>),
    /// Switch to WebSocket: send the 101 with this accept key; `head_len`
    /// bytes were the request, anything after them is already frames.
    Upgrade {
        accept: String,
        format: Format,
        head_len: usize,
    },
}

const INDEX_HTML: &str = include_str!("index.html");

pub fn route(buf: &[u8], max_head: usize) -> HttpOutcome {
    let (head, head_len) = match parse_request_head(buf, max_head) {
        Ok(HeadParse::Partial) => return HttpOutcome::NeedMore,
        Ok(HeadParse::Complete { head, len }) => (head, len),
        Err(HeadError::TooLarge) => {
            return error(
                431,
                "Request Header Fields Too Large",
                &[],
                "request head too large",
            )
        }
        Err(HeadError::Malformed) => return error(400, "Bad Request", &[], "malformed request"),
    };
    if head.method != "GET" {
        return error(
            405,
            "Method Not Allowed",
            &[("Allow", "GET")],
            "only GET is allowed",
        );
    }
    match head.path.as_str() {
        "/healthz" => ok("text/plain; charset=utf-8", b"ok"),
        "/metrics" => HttpOutcome::Metrics,
        "/" => ok("text/html; charset=utf-8", INDEX_HTML.as_bytes()),
        "/ws" => {
            let format = match head.query_param("format") {
                None | Some("json") => Format::Json,
                Some("binary") => Format::Binary,
                Some(_) => {
                    return error(400, "Bad Request", &[], "format must be json or binary");
                }
            };
            match validate_upgrade(&head) {
                Ok(accept) => HttpOutcome::Upgrade {
                    accept,
                    format,
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
        _ => error(404, "Not Found", &[], "not found"),
    }
}

fn ok(content_type: &str, body: &[u8]) -> HttpOutcome {
    HttpOutcome::Respond(response(200, "OK", &[], content_type, body))
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
