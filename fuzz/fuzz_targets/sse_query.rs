//! The `/sse` query string and the `Last-Event-ID` resume token on
//! arbitrary bytes: never a panic; a query that parses is a subscribe that
//! `/ws` reads back the same from the client's own JSON encoding; an event
//! id that parses is exactly what `EventId::write` makes of it.
#![no_main]

// The broker's `http` module is private: its two pure parsers are compiled
// in here from their files (they name only `tickwire_protocol` and
// `serde_json`).
#[path = "../../crates/broker/src/http/event_id.rs"]
mod event_id;
#[path = "../../crates/broker/src/http/sse_query.rs"]
mod sse_query;

use event_id::{epoch_bits, EventId, MAX_EVENT_ID_LEN};
use libfuzzer_sys::fuzz_target;
use sse_query::parse_sse_query;
use tickwire_protocol::control::{encode_subscribe_resume, parse_request, ErrorCode, Request};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_sse_query(&text) {
        Ok(q) => {
            let Request::Subscribe {
                id,
                ref topics,
                snapshot,
                max_hz,
                ref since,
                rewind,
            } = q.request
            else {
                panic!("not a subscribe: {:?}", q.request);
            };
            assert_eq!(id, None);
            let topics: Vec<&str> = topics.iter().map(|t| &**t).collect();
            let json = encode_subscribe_resume(
                &topics,
                None,
                Some(snapshot),
                max_hz,
                since.as_ref(),
                rewind,
            );
            assert_eq!(parse_request(&json).as_ref(), Ok(&q.request), "{json}");
        }
        Err(e) => {
            assert!(matches!(
                e.code,
                ErrorCode::BadRequest | ErrorCode::BadTopic
            ));
            assert!(!e.message.is_empty());
        }
    }

    if let Some(id) = EventId::parse(data) {
        let mut out = Vec::new();
        id.write(&mut out);
        assert!(out.len() <= MAX_EVENT_ID_LEN);
        assert_eq!(out.as_slice(), data.trim_ascii());
        assert_eq!(EventId::parse(&out), Some(id));
    }
    if let Some(bits) = epoch_bits(&text) {
        assert_eq!(format!("{bits:016x}"), text);
    }
});
