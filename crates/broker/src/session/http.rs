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
    /// `GET /healthz`: the caller knows whether the broker is degraded.
    Health,
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

// The dashboard (`GET /`), embedded in the binary: no build step, no files
// to deploy. The page is built on the JavaScript client (clients/js), served
// as is with its decoder (the one documented in docs/protocol.md), so the
// page, the client package and the docs can never disagree.
const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const STYLE_CSS: &str = include_str!("../dashboard/style.css");
const CLIENT_JS: &str = include_str!("../../../../clients/js/src/tickwire-client.js");
const DECODER_JS: &str = include_str!("../../../../clients/js/src/tickwire-decoder.js");

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Routes one request head. `allowed_origins`: when non-empty, a `/ws`
/// upgrade whose `Origin` is present and not in the list gets 403 (a
/// request without `Origin`, from a non-browser client, is not affected).
pub fn route(buf: &[u8], max_head: usize, allowed_origins: &[String]) -> HttpOutcome {
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
        "/healthz" => HttpOutcome::Health,
        "/metrics" => HttpOutcome::Metrics,
        "/" => asset(HTML, INDEX_HTML),
        "/app.js" => asset(JAVASCRIPT, APP_JS),
        "/style.css" => asset(CSS, STYLE_CSS),
        "/tickwire-client.js" => asset(JAVASCRIPT, CLIENT_JS),
        "/tickwire-decoder.js" => asset(JAVASCRIPT, DECODER_JS),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        match route(request.as_bytes(), 8192, &[]) {
            HttpOutcome::Respond(bytes) => String::from_utf8(bytes).unwrap(),
            _ => panic!("{path}: expected a plain response"),
        }
    }

    fn body(response: &str) -> &str {
        &response[response.find("\r\n\r\n").unwrap() + 4..]
    }

    #[test]
    fn dashboard_assets_are_served_with_their_types() {
        for (path, content_type, content) in [
            ("/", HTML, INDEX_HTML),
            ("/app.js", JAVASCRIPT, APP_JS),
            ("/style.css", CSS, STYLE_CSS),
            ("/tickwire-client.js", JAVASCRIPT, CLIENT_JS),
            ("/tickwire-decoder.js", JAVASCRIPT, DECODER_JS),
        ] {
            let r = get(path);
            assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {r}");
            assert!(
                r.contains(&format!("\r\nContent-Type: {content_type}\r\n")),
                "{path}"
            );
            assert!(r.contains("\r\nCache-Control: no-cache\r\n"), "{path}");
            assert_eq!(body(&r), content, "{path}");
        }
    }

    #[test]
    fn the_page_uses_the_documented_decoder() {
        // The served client and decoder are clients/js's files themselves
        // (docs/js/tickwire-decoder.js re-exports the decoder); the page
        // imports the client, and the client the decoder, by relative URL.
        assert!(DECODER_JS.contains("export function decodeMessage"));
        assert!(CLIENT_JS.contains("export class TickwireClient"));
        assert!(CLIENT_JS.contains("from \"./tickwire-decoder.js\""));
        assert!(APP_JS.contains("from \"./tickwire-client.js\""));
        assert!(INDEX_HTML.contains("src=\"./app.js\""));
        assert!(INDEX_HTML.contains("href=\"./style.css\""));
    }

    #[test]
    fn origin_allow_list_applies_to_upgrades_with_an_origin() {
        let allowed = vec!["https://desk.example.com".to_string()];
        let upgrade = |origin: Option<&str>| {
            let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
            let request = format!(
                "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
            );
            route(request.as_bytes(), 8192, &allowed)
        };
        assert!(matches!(
            upgrade(Some("https://desk.example.com")),
            HttpOutcome::Upgrade { .. }
        ));
        assert!(
            matches!(upgrade(None), HttpOutcome::Upgrade { .. }),
            "no Origin: not a browser"
        );
        for bad in [
            "https://evil.example",
            "https://desk.example.com/",
            "http://desk.example.com",
            "null",
        ] {
            match upgrade(Some(bad)) {
                HttpOutcome::Respond(r) => {
                    let r = String::from_utf8(r).unwrap();
                    assert!(r.starts_with("HTTP/1.1 403 "), "{bad}: {r}");
                    assert!(r.contains("Content-Length: ") && r.contains("Connection: close"));
                }
                _ => panic!("{bad}: expected 403"),
            }
        }
        // Other routes are not gated (the dashboard page itself, /healthz).
        let r = "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n";
        assert!(matches!(
            route(r.as_bytes(), 8192, &allowed),
            HttpOutcome::Health
        ));
    }

    #[test]
    fn asset_paths_are_exact() {
        for path in [
            "/app.js/",
            "/index.html",
            "/style.css.map",
            "/docs/js/tickwire-decoder.js",
            "/clients/js/src/tickwire-client.js",
            "/tickwire-client.d.ts",
        ] {
            assert!(get(path).starts_with("HTTP/1.1 404 "), "{path}");
        }
    }
}
