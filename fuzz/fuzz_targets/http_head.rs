//! The HTTP request-head parser and the WebSocket upgrade validation on
//! arbitrary bytes: never a panic, never a head longer than the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_ws::handshake::validate_upgrade;
use tickwire_ws::http::{parse_request_head, HeadParse};

fuzz_target!(|data: &[u8]| {
    if let Ok(HeadParse::Complete { head, len }) = parse_request_head(data, 8192) {
        assert!(len <= data.len());
        let _ = validate_upgrade(&head);
        let _ = head.query_param("format");
        let _ = head.header("origin");
    }
});
