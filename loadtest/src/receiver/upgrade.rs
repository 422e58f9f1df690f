//! The upgrade request of a subscriber (the path with `format` and `delta`,
//! the permessage-deflate offer) and what the 101 response agreed to.

use tickwire_ws::deflate::PERMESSAGE_DEFLATE;
use tickwire_ws::handshake::client_request_with;

use super::config::{Format, RecvConfig};

/// The offer of `--deflate`: the bare extension, no parameters (the broker
/// answers with both `no_context_takeover` parameters on its own).
const DEFLATE_OFFER: (&str, &str) = ("Sec-WebSocket-Extensions", PERMESSAGE_DEFLATE);

/// Path and query of the upgrade request.
pub(super) fn path(cfg: &RecvConfig) -> &'static str {
    match (cfg.format, cfg.delta) {
        (Format::Json, false) => "/ws",
        (Format::Json, true) => "/ws?delta=1",
        (Format::Binary, false) => "/ws?format=binary",
        (Format::Binary, true) => "/ws?format=binary&delta=1",
    }
}

/// The whole upgrade request to `host` with the client key `key`.
pub(super) fn request(cfg: &RecvConfig, host: &str, key: &str) -> Vec<u8> {
    let extra: &[(&str, &str)] = if cfg.deflate { &[DEFLATE_OFFER] } else { &[] };
    client_request_with(host, path(cfg), key, extra)
}

/// Whether a 101 response head (the bytes `parse_client_response` counted
/// as the head) accepts permessage-deflate: a `Sec-WebSocket-Extensions`
/// header (name in any case) whose extension list names it. No such
/// header: the broker declined, and sends nothing compressed.
pub(super) fn deflate_accepted(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1) // the status line
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            let is_ext = name
                .trim_ascii()
                .eq_ignore_ascii_case(b"sec-websocket-extensions");
            is_ext.then(|| value.get(1..).unwrap_or_default())
        })
        .flat_map(|value| value.split(|&b| b == b','))
        .any(|ext| {
            let name = ext.split(|&b| b == b';').next().unwrap_or_default();
            name.trim_ascii()
                .eq_ignore_ascii_case(PERMESSAGE_DEFLATE.as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use super::*;
    use crate::receiver::SlowMode;
    use tickwire_ws::handshake::{accept_key, accept_response};

    fn cfg(format: Format, delta: bool, deflate: bool) -> RecvConfig {
        RecvConfig {
            ws: vec![SocketAddr::from(([127, 0, 0, 1], 1))],
            format,
            delta,
            deflate,
            topics: 1,
            per_sub: 1,
            prefix: "lt.".into(),
            slow_share: 0.0,
            slow_mode: SlowMode::None,
            spread_sources: false,
            max_inflight: 1,
            connect_deadline: Instant::now(),
            tls: None,
            auth: None,
        }
    }

    #[test]
    fn paths_for_every_format_and_delta() {
        assert_eq!(path(&cfg(Format::Json, false, false)), "/ws");
        assert_eq!(path(&cfg(Format::Json, true, false)), "/ws?delta=1");
        assert_eq!(
            path(&cfg(Format::Binary, false, false)),
            "/ws?format=binary"
        );
        assert_eq!(
            path(&cfg(Format::Binary, true, true)),
            "/ws?format=binary&delta=1"
        );
    }

    #[test]
    fn deflate_offer_only_with_deflate() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let text = |c: &RecvConfig| String::from_utf8(request(c, "h:1", key)).unwrap();
        let plain = text(&cfg(Format::Json, true, false));
        assert!(plain.starts_with("GET /ws?delta=1 HTTP/1.1\r\n"), "{plain}");
        assert!(
            !plain.to_ascii_lowercase().contains("extensions"),
            "{plain}"
        );
        let offer = text(&cfg(Format::Binary, false, true));
        assert!(offer.starts_with("GET /ws?format=binary HTTP/1.1\r\n"));
        assert!(
            offer.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
            "{offer}"
        );
    }

    #[test]
    fn deflate_accepted_reads_the_extensions_header() {
        let accept = accept_key("dGhlIHNhbXBsZSBub25jZQ==");
        let answer = tickwire_ws::deflate::RESPONSE;
        assert!(deflate_accepted(&accept_response(&accept, Some(answer))));
        assert!(!deflate_accepted(&accept_response(&accept, None)));
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            sec-websocket-EXTENSIONS:  x-other, PerMessage-Deflate ; server_no_context_takeover\r\n\r\n";
        assert!(deflate_accepted(head));
        let head = b"HTTP/1.1 101 Switching Protocols\r\nX-Note: permessage-deflate\r\n\
            Sec-WebSocket-Extensions: permessage-deflate-not\r\n\r\n";
        assert!(!deflate_accepted(head));
    }
}
