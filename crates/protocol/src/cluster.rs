//! What brokers of one cluster send each other over NATS: a numbered quote
//! per message, on a subject per topic. Pure: bytes and strings in and out.
//!
//! Payload (little-endian, fixed layout, then the topic):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version (1) |
//! | 8 | origin: the publishing broker's id |
//! | 8 | seq: the topic's cluster-wide sequence number, at most [`MAX_SEQ`] |
//! | 8 | sent_ns: publisher's wall clock at publish (ns since the Unix epoch) |
//! | 6 × 8 | bid, ask, bid_size, ask_size, last, volume (IEEE 754 bits) |
//! | 8 | ts: the producer's timestamp |
//! | rest | topic, 1..=64 topic bytes |
//!
//! Subjects: `{prefix}.q.{topic}`. A topic's dots are the subject's token
//! separators, so a pattern ending in `.` maps to a NATS `>` wildcard. NATS
//! forbids empty tokens, which topics such as `A..B` or `.A` have: an empty
//! token is written `%`, a byte no topic contains, so the mapping is one to
//! one.

use crate::topic::{is_valid_topic, Selector};
use crate::{Quote, MAX_SEQ};

pub const VERSION: u8 = 1;
const HEADER: usize = 1 + 8 * 3 + 8 * 6 + 8;
/// The token standing for an empty topic segment.
const EMPTY_TOKEN: &str = "%";

/// A quote as it travels between brokers.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterQuote {
    pub origin: u64,
    pub seq: u64,
    pub sent_ns: u64,
    pub quote: Quote,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterDecodeError {
    #[error("cluster message of {0} bytes is too short")]
    Short(usize),
    #[error("cluster message version {0} is not supported")]
    Version(u8),
    #[error("cluster message has an invalid topic")]
    BadTopic,
    /// Above [`MAX_SEQ`]: no JSON client could tell it from its neighbours,
    /// and adopting it would leave the topic no room to count on.
    #[error("cluster message seq {0} is above 2^53 - 1")]
    Seq(u64),
}

/// Appends the payload of `q` to `out`.
pub fn encode(q: &ClusterQuote, out: &mut Vec<u8>) {
    encode_parts(q.origin, q.seq, q.sent_ns, &q.quote, out)
}

/// [`encode`] without building a `ClusterQuote` (no copy of the topic).
pub fn encode_parts(origin: u64, seq: u64, sent_ns: u64, quote: &Quote, out: &mut Vec<u8>) {
    out.reserve(HEADER + quote.topic.len());
    out.push(VERSION);
    for n in [origin, seq, sent_ns] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for f in [
        quote.bid,
        quote.ask,
        quote.bid_size,
        quote.ask_size,
        quote.last,
        quote.volume,
    ] {
        out.extend_from_slice(&f.to_bits().to_le_bytes());
    }
    out.extend_from_slice(&quote.ts.to_le_bytes());
    out.extend_from_slice(quote.topic.as_bytes());
}

/// Decodes one payload; hostile input gets an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<ClusterQuote, ClusterDecodeError> {
    let (header, topic) = match bytes.split_at_checked(HEADER) {
        Some(parts) => parts,
        None => return Err(ClusterDecodeError::Short(bytes.len())),
    };
    let mut words = [0u64; 10];
    let (version, rest) = header
        .split_first()
        .ok_or(ClusterDecodeError::Short(bytes.len()))?;
    if *version != VERSION {
        return Err(ClusterDecodeError::Version(*version));
    }
    for (word, chunk) in words.iter_mut().zip(rest.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(chunk);
        *word = u64::from_le_bytes(le);
    }
    let topic = std::str::from_utf8(topic).map_err(|_| ClusterDecodeError::BadTopic)?;
    if !is_valid_topic(topic) {
        return Err(ClusterDecodeError::BadTopic);
    }
    let [origin, seq, sent_ns, bid, ask, bid_size, ask_size, last, volume, ts] = words;
    if seq > MAX_SEQ {
        return Err(ClusterDecodeError::Seq(seq));
    }
    Ok(ClusterQuote {
        origin,
        seq,
        sent_ns,
        quote: Quote {
            topic: topic.to_owned(),
            bid: f64::from_bits(bid),
            ask: f64::from_bits(ask),
            bid_size: f64::from_bits(bid_size),
            ask_size: f64::from_bits(ask_size),
            last: f64::from_bits(last),
            volume: f64::from_bits(volume),
            ts,
        },
    })
}

/// `{prefix}.q.{topic}`, empty segments written as `%`.
pub fn topic_subject(prefix: &str, topic: &str) -> String {
    let mut subject = format!("{prefix}.q");
    for token in topic.split('.') {
        subject.push('.');
        subject.push_str(if token.is_empty() { EMPTY_TOKEN } else { token });
    }
    subject
}

/// The topic a subject of `prefix` carries, if it is one.
pub fn subject_topic(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix(".q.")?;
    let topic = rest
        .split('.')
        .map(|t| if t == EMPTY_TOKEN { "" } else { t })
        .collect::<Vec<_>>()
        .join(".");
    is_valid_topic(&topic).then_some(topic)
}

/// Every quote subject of the cluster: `{prefix}.q.>`.
pub fn all_subjects(prefix: &str) -> String {
    format!("{prefix}.q.>")
}

/// The NATS subject (possibly a `>` wildcard) a broker subscribes to for
/// `selector`. A pattern is cut back to its last `.`, since NATS wildcards
/// match whole tokens only: `NASDAQ.*` is exactly `q.NASDAQ.>`, while
/// `NASDAQ.AA*` becomes `q.NASDAQ.>` and the broker filters the rest (it
/// routes by its own interest anyway).
pub fn selector_subject(prefix: &str, selector: &Selector) -> String {
    match selector {
        Selector::Exact(topic) => topic_subject(prefix, topic),
        Selector::Prefix(p) => match p.rfind('.') {
            // "A.B." → tokens "A", "B" then ">": everything under A.B.
            Some(cut) => {
                let parent = p.get(..cut).unwrap_or_default();
                format!("{}.>", topic_subject(prefix, parent))
            }
            None => all_subjects(prefix),
        },
    }
}

#[cfg(test)]
mod tests;
