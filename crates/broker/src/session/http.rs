//! Routing of the HTTP request that opens every connection on the WebSocket
//! listener. Pure: bytes in, decision out.

use tickwire_ws::handshake::{validate_upgrade, UpgradeError};
use tickwire_ws::http::{parse_request_head, response, HeadError, HeadParse};

use crate::messages::Format;
use std::time::Instant;

use super::Phase;

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
// page, the client package and the docs can never disagree. Both are ES
// modules that import each other by relative URL: every file is served at
// `/` + its name.
const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const STYLE_CSS: &str = include_str!("../dashboard/style.css");
const CLIENT_JS: &str = include_str!("../../../../clients/js/src/tickwire-client.js");
const DECODER_JS: &str = include_str!("../../../../clients/js/src/tickwire-decoder.js");

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A module of the dashboard (crates/broker/src/dashboard), at `/` + its name.
macro_rules! dashboard_js {
    ($name:literal) => {
        (
            concat!("/", $name),
            JAVASCRIPT,
            include_str!(concat!("../dashboard/", $name)),
        )
    };
}

/// A module of the JavaScript client (clients/js/src), at `/` + its name.
macro_rules! client_js {
    ($name:literal) => {
        (
            concat!("/", $name),
            JAVASCRIPT,
            include_str!(concat!("../../../../clients/js/src/", $name)),
        )
    };
}

/// The dashboard's and the JavaScript client's files, by exact path.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, INDEX_HTML),
    ("/style.css", CSS, STYLE_CSS),
    // The dashboard: app.js (loaded by index.html) and its modules.
    ("/app.js", JAVASCRIPT, APP_JS),
    dashboard_js!("format.js"),
    dashboard_js!("latency.js"),
    dashboard_js!("page.js"),
    dashboard_js!("settings.js"),
    dashboard_js!("table.js"),
    dashboard_js!("watchlist.js"),
    // The client: tickwire-client.js (the entry point), its parts, the decoder.
    ("/tickwire-client.js", JAVASCRIPT, CLIENT_JS),
    ("/tickwire-decoder.js", JAVASCRIPT, DECODER_JS),
    client_js!("tickwire-emitter.js"),
    client_js!("tickwire-errors.js"),
    client_js!("tickwire-gaps.js"),
    client_js!("tickwire-requests.js"),
    client_js!("tickwire-session.js"),
    client_js!("tickwire-socket.js"),
    client_js!("tickwire-subscriptions.js"),
];

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
        path => match ASSETS.iter().find(|(p, _, _)| *p == path) {
            Some(&(_, content_type, body)) => asset(content_type, body),
            None => error(404, "Not Found", &[], "not found"),
        },
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

/// The answers to the plain HTTP routes the shell renders (`/metrics`,
/// `/healthz`).
impl super::Connection {
    /// The rendering of `/metrics` asked for by [`Action::ServeMetrics`].
    pub fn on_metrics(&mut self, body: &[u8], now: Instant) {
        if matches!(self.phase, Phase::Http { .. }) {
            let response = response(200, "OK", &[], crate::metrics::CONTENT_TYPE, body);
            self.out.push_priority(response);
            self.start_closing(now);
        }
    }

    /// The answer to `/healthz` asked for by [`Action::ServeHealth`]: `200
    /// ok`, or `503 degraded: cluster link down` while a configured cluster
    /// link is down (the broker still serves its own producers).
    pub fn on_health(&mut self, cluster_down: bool, now: Instant) {
        if matches!(self.phase, Phase::Http { .. }) {
            let (status, reason, body): (u16, &str, &[u8]) = if cluster_down {
                (503, "Service Unavailable", b"degraded: cluster link down")
            } else {
                (200, "OK", b"ok")
            };
            let response = response(status, reason, &[], "text/plain; charset=utf-8", body);
            self.out.push_priority(response);
            self.start_closing(now);
        }
    }
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

    /// The body served at `path` by the asset table.
    fn served(path: &str) -> &'static str {
        match ASSETS.iter().find(|(p, _, _)| *p == path) {
            Some(&(_, _, body)) => body,
            None => panic!("{path}: not an asset"),
        }
    }

    #[test]
    fn dashboard_assets_are_served_with_their_types() {
        let listed = [
            ("/", HTML),
            ("/style.css", CSS),
            ("/app.js", JAVASCRIPT),
            ("/format.js", JAVASCRIPT),
            ("/latency.js", JAVASCRIPT),
            ("/page.js", JAVASCRIPT),
            ("/settings.js", JAVASCRIPT),
            ("/table.js", JAVASCRIPT),
            ("/watchlist.js", JAVASCRIPT),
            ("/tickwire-client.js", JAVASCRIPT),
            ("/tickwire-decoder.js", JAVASCRIPT),
            ("/tickwire-emitter.js", JAVASCRIPT),
            ("/tickwire-errors.js", JAVASCRIPT),
            ("/tickwire-gaps.js", JAVASCRIPT),
            ("/tickwire-requests.js", JAVASCRIPT),
            ("/tickwire-session.js", JAVASCRIPT),
            ("/tickwire-socket.js", JAVASCRIPT),
            ("/tickwire-subscriptions.js", JAVASCRIPT),
        ];
        assert_eq!(listed.len(), ASSETS.len(), "an asset is not listed here");
        for (path, content_type) in listed {
            let r = get(path);
            assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {r}");
            assert!(
                r.contains(&format!("\r\nContent-Type: {content_type}\r\n")),
                "{path}"
            );
            assert!(r.contains("\r\nCache-Control: no-cache\r\n"), "{path}");
            assert!(!body(&r).is_empty(), "{path}");
            assert_eq!(body(&r), served(path), "{path}");
        }
        assert_eq!(served("/"), INDEX_HTML);
        assert_eq!(served("/app.js"), APP_JS);
        assert_eq!(served("/style.css"), STYLE_CSS);
        assert_eq!(served("/tickwire-client.js"), CLIENT_JS);
        assert_eq!(served("/tickwire-decoder.js"), DECODER_JS);
    }

    #[test]
    fn every_module_file_is_served_as_is() {
        // A new module in either folder needs its route in ASSETS: the
        // page and the client import their modules by relative URL.
        let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in [
            crate_dir.join("src/dashboard"),
            crate_dir.join("../../clients/js/src"),
        ] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let file = entry.unwrap().path();
                let name = file.file_name().unwrap().to_str().unwrap().to_string();
                if !name.ends_with(".js") {
                    continue;
                }
                let path = format!("/{name}");
                let r = get(&path);
                assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: no route");
                let on_disk = std::fs::read_to_string(&file).unwrap();
                assert_eq!(body(&r), on_disk, "{path}");
                seen += 1;
            }
        }
        assert_eq!(seen + 2, ASSETS.len(), "a route without its file");
    }

    #[test]
    fn relative_imports_resolve_to_served_modules() {
        for &(path, content_type, source) in ASSETS {
            if content_type != JAVASCRIPT {
                continue;
            }
            let mut imports = 0;
            for (i, _) in source.match_indices("from \"./") {
                let rest = &source[i + "from \"./".len()..];
                let target = &rest[..rest.find('"').unwrap()];
                let r = get(&format!("/{target}"));
                assert!(
                    r.starts_with("HTTP/1.1 200 OK\r\n"),
                    "{path} imports ./{target}"
                );
                imports += 1;
            }
            if path == "/app.js" || path == "/tickwire-client.js" {
                assert!(imports > 0, "{path}");
            }
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
            "/clients/js/src/tickwire-gaps.js",
            "/dashboard/table.js",
            "/table.js/",
            "/tickwire-client.d.ts",
            "/tickwire-decoder.d.ts",
        ] {
            assert!(get(path).starts_with("HTTP/1.1 404 "), "{path}");
        }
    }
}
