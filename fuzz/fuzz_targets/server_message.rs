//! What a client decodes from a broker (`tickwire_protocol::server`): JSON
//! and binary messages, quotes and field deltas, then the delta rebuild of
//! `tickwire_client::Deltas`. The first byte picks binary (odd) or JSON
//! (even); the rest is the message. Never a panic; a decoded message
//! delta encodes back to its bytes; a delta is rebuilt as a quote of its
//! topic and seq, or refused (no base), never passed on.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use tickwire_client::{Deltas, ServerMessage};
use tickwire_protocol::server::{binary_delta, decode_binary, decode_json};

thread_local! {
    // Kept across inputs, as a connection keeps it across messages.
    static DELTAS: RefCell<Deltas> = RefCell::new(Deltas::default());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let decoded = if mode & 1 == 1 {
        decode_binary(rest)
    } else {
        match std::str::from_utf8(rest) {
            Ok(text) => decode_json(text),
            Err(_) => return,
        }
    };
    let Ok(message) = decoded else {
        return;
    };
    if let (
        true,
        ServerMessage::Delta {
            topic,
            seq,
            ts,
            changes,
        },
    ) = (mode & 1 == 1, &message)
    {
        let mut again = Vec::new();
        binary_delta(topic, *seq, *ts, &changes.values, changes.mask, &mut again);
        assert_eq!(again, rest, "a binary delta re-encodes to its bytes");
    }
    DELTAS.with(|d| {
        let mut d = d.borrow_mut();
        let delta = match &message {
            ServerMessage::Delta { topic, seq, .. } => Some((topic.clone(), *seq)),
            _ => None,
        };
        match (d.apply(message), delta) {
            // Rebuilt: the same topic and seq as the delta.
            (Ok(ServerMessage::Quote { quote, seq }), Some((topic, want))) => {
                assert_eq!((quote.topic, seq), (topic, want));
            }
            (Ok(ServerMessage::Delta { .. }), _) => panic!("a delta passed through"),
            _ => {}
        }
    });
});
