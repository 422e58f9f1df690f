//! The subscriber control-request parser on arbitrary text: never a panic;
//! an accepted request's topics all parse as selectors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_protocol::control::{parse_request, Request};
use tickwire_protocol::Selector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_request(text) {
        Ok(Request::Subscribe { topics, .. }) | Ok(Request::Unsubscribe { topics, .. }) => {
            assert!(!topics.is_empty());
            assert!(topics.iter().all(|t| Selector::parse(t).is_some()));
        }
        Ok(Request::Auth { token, .. }) => assert!(!token.is_empty()),
        Err(_) => {}
    }
});
