//! A message from another broker (NATS payload) on arbitrary bytes: never a
//! panic; what decodes re-encodes to the same bytes, and its topic maps to
//! a subject and back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_protocol::cluster::{decode, encode, subject_topic, topic_subject};

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = decode(data) {
        let mut again = Vec::new();
        encode(&q, &mut again);
        assert_eq!(again, data);
        let subject = topic_subject("tw", &q.quote.topic);
        assert_eq!(subject_topic("tw", &subject).as_deref(), Some(q.quote.topic.as_str()));
    }
});
