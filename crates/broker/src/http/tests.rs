//! The routes: the asset table, Origin, exact paths.

use super::assets::ASSETS;
use super::*;

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn get(path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    match route(request.as_bytes(), 8192, &[], true) {
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
        ("/tickwire-sse.js", JAVASCRIPT),
        ("/tickwire-sse-protocol.js", JAVASCRIPT),
        ("/tickwire-sse-reader.js", JAVASCRIPT),
        ("/tickwire-urls.js", JAVASCRIPT),
        ("/tickwire-ws-probe.js", JAVASCRIPT),
        ("/tickwire-quotes.js", JAVASCRIPT),
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
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, file) in [
        ("/", "assets/dashboard/index.html"),
        ("/app.js", "assets/dashboard/app.js"),
        ("/style.css", "assets/dashboard/style.css"),
        (
            "/tickwire-client.js",
            "../../clients/js/src/tickwire-client.js",
        ),
        (
            "/tickwire-decoder.js",
            "../../clients/js/src/tickwire-decoder.js",
        ),
    ] {
        let on_disk = std::fs::read_to_string(crate_dir.join(file)).unwrap();
        assert_eq!(served(path), on_disk, "{path}");
    }
}

#[test]
fn every_module_file_is_served_as_is() {
    // A new module in either folder needs its route in ASSETS: the
    // page and the client import their modules by relative URL.
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in [
        crate_dir.join("assets/dashboard"),
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
    assert!(served("/tickwire-decoder.js").contains("export function decodeMessage"));
    let client = served("/tickwire-client.js");
    assert!(client.contains("export class TickwireClient"));
    assert!(client.contains("from \"./tickwire-decoder.js\""));
    assert!(served("/app.js").contains("from \"./tickwire-client.js\""));
    assert!(served("/").contains("src=\"./app.js\""));
    assert!(served("/").contains("href=\"./style.css\""));
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
        route(request.as_bytes(), 8192, &allowed, true)
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
        route(r.as_bytes(), 8192, &allowed, true),
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
