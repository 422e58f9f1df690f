//! The subscriber control-request parser on arbitrary text: never a panic;
//! the fast path answers exactly what the general one does; an accepted
//! request's topics all parse as selectors; an accepted
//! subscribe keeps the v1.2 `since`/`rewind` rules and survives a trip
//! through the client-side encoder unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_protocol::control::{
    encode_subscribe_resume, parse_any_request, parse_request, Request, MAX_REWIND, MAX_SINCE_KEYS,
};
use tickwire_protocol::topic::is_valid_topic;
use tickwire_protocol::{Selector, MAX_SEQ};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_request(text);
    assert_eq!(parsed, parse_any_request(text), "{text}");
    match &parsed {
        Ok(Request::Subscribe { topics, .. }) | Ok(Request::Unsubscribe { topics, .. }) => {
            assert!(!topics.is_empty());
            assert!(topics.iter().all(|t| Selector::parse(t).is_some()));
        }
        Ok(Request::Auth { token, .. }) => assert!(!token.is_empty()),
        Err(_) => {}
    }
    let Ok(Request::Subscribe {
        id,
        topics,
        snapshot,
        max_hz,
        since,
        rewind,
    }) = parsed.clone()
    else {
        return;
    };
    if let Some(n) = rewind {
        assert!((1..=MAX_REWIND).contains(&n));
        assert!(snapshot, "rewind with snapshot:false accepted");
    }
    if let Some(since) = &since {
        assert!(since.seqs.len() <= MAX_SINCE_KEYS);
        for (i, (key, seq)) in since.seqs.iter().enumerate() {
            assert!(*seq <= MAX_SEQ);
            assert!(is_valid_topic(key), "since key {key:?}");
            assert!(
                topics
                    .iter()
                    .filter_map(|t| Selector::parse(t))
                    .any(|s| s.matches(key)),
                "since key {key:?} matched by no entry"
            );
            assert!(!since.seqs[..i].iter().any(|(k, _)| k == key), "duplicate");
        }
    }
    let refs: Vec<&str> = topics.iter().map(|t| &**t).collect();
    let again = encode_subscribe_resume(&refs, id, Some(snapshot), max_hz, since.as_ref(), rewind);
    assert_eq!(parse_request(&again), parsed, "{again}");
});
