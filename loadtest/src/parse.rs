//! Cheap quote parsing on the receive path: fixed offsets for binary frames,
//! a byte scan for JSON (no serde `Value`, no allocation). Field deltas
//! (`--delta`) carry the same three fields a full quote does and count the
//! same: a delivery, its latency, its seq.

use tickwire_protocol::server::{
    ALL_FIELDS, BINARY_DELTA, BINARY_DELTA_HEADER_LEN, BINARY_QUOTE, BINARY_QUOTE_HEADER_LEN,
};

/// The three fields the load generator needs from a quote or a delta.
#[derive(Debug, PartialEq, Eq)]
pub struct QuoteRef<'a> {
    pub topic: &'a [u8],
    pub seq: u64,
    pub ts: u64,
}

/// Binary quote: type 1, topic length at 1, seq at 2, ts at 10, topic at
/// 66; or binary delta: type 2, the same up to ts, mask at 18, topic at
/// 19 + 8·popcount(mask). Any other type, a mask naming no field, or a
/// frame too short for its topic: None.
#[inline]
pub fn binary_quote(p: &[u8]) -> Option<QuoteRef<'_>> {
    let topic_at = match *p.first()? {
        BINARY_QUOTE => BINARY_QUOTE_HEADER_LEN,
        BINARY_DELTA => {
            let mask = *p.get(BINARY_DELTA_HEADER_LEN - 1)?;
            if mask & !ALL_FIELDS != 0 {
                return None;
            }
            BINARY_DELTA_HEADER_LEN + 8 * mask.count_ones() as usize
        }
        _ => return None,
    };
    let len = usize::from(*p.get(1)?);
    let topic = p.get(topic_at..topic_at + len)?;
    let seq = u64::from_le_bytes(p.get(2..10)?.try_into().ok()?);
    let ts = u64::from_le_bytes(p.get(10..18)?.try_into().ok()?);
    Some(QuoteRef { topic, seq, ts })
}

/// What a server text frame is, from its `"type"` (always the first key).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TextKind {
    /// A quote or a delta (`"type":"delta"`): both are deliveries.
    Quote,
    Subscribed,
    Unsubscribed,
    /// The reply to an `auth` request (`--hs256-secret-file`).
    Authed,
    Error,
    Other,
}

const TYPE_PREFIX: &[u8] = b"{\"type\":\"";

#[inline]
pub fn text_kind(p: &[u8]) -> TextKind {
    let Some(rest) = p.strip_prefix(TYPE_PREFIX) else {
        return TextKind::Other;
    };
    if rest.starts_with(b"quote\"") || rest.starts_with(b"delta\"") {
        TextKind::Quote
    } else if rest.starts_with(b"subscribed\"") {
        TextKind::Subscribed
    } else if rest.starts_with(b"unsubscribed\"") {
        TextKind::Unsubscribed
    } else if rest.starts_with(b"authed\"") {
        TextKind::Authed
    } else if rest.starts_with(b"error\"") {
        TextKind::Error
    } else {
        TextKind::Other
    }
}

#[inline]
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let h = hay.get(from..)?;
    h.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from + needle.len())
}

#[inline]
fn digits(p: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut i = at;
    while let Some(&b) = p.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        i += 1;
    }
    (i > at).then_some((v, i))
}

/// JSON quote or delta: scans for `"topic":"`, `"seq":` and `"ts":` (in
/// that order in both: `type`, `topic`, `seq`, `ts`, then the fields).
/// Topics cannot contain `"` or `\` (protocol syntax), so the topic ends at
/// the next `"`.
#[inline]
pub fn json_quote(p: &[u8]) -> Option<QuoteRef<'_>> {
    let t0 = find(p, b"\"topic\":\"", TYPE_PREFIX.len())?;
    let tlen = p.get(t0..)?.iter().position(|&b| b == b'"')?;
    let topic = p.get(t0..t0 + tlen)?;
    let s0 = find(p, b"\"seq\":", t0 + tlen)?;
    let (seq, after) = digits(p, s0)?;
    let ts0 = find(p, b"\"ts\":", after)?;
    let (ts, _) = digits(p, ts0)?;
    Some(QuoteRef { topic, seq, ts })
}

/// Index of a load-test topic `PREFIX<n>`; None for other topics.
#[inline]
pub fn topic_index(topic: &[u8], prefix: &[u8]) -> Option<usize> {
    let rest = topic.strip_prefix(prefix)?;
    if rest.is_empty() || rest.len() > 9 {
        return None;
    }
    let mut v = 0usize;
    for &b in rest {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + usize::from(b - b'0');
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_protocol::server::{
        binary_delta, binary_quote as encode_binary, json_delta, json_quote as encode_json,
    };
    use tickwire_protocol::Quote;

    fn q(topic: &str, ts: u64) -> Quote {
        Quote {
            topic: topic.into(),
            bid: 1.5,
            ask: f64::NAN,
            bid_size: 100.0,
            ask_size: 2e9,
            last: -0.0,
            volume: 1e-7,
            ts,
        }
    }

    #[test]
    fn parses_what_the_broker_encodes() {
        for (topic, seq, ts) in [
            ("lt.0", 1, 1),
            ("AAPL", 42, 1_732_345_678_901_234_567),
            ("x", u64::MAX, u64::MAX),
        ] {
            let quote = q(topic, ts);
            let mut bin = Vec::new();
            encode_binary(&quote, seq, &mut bin);
            let want = QuoteRef {
                topic: topic.as_bytes(),
                seq,
                ts,
            };
            assert_eq!(binary_quote(&bin), Some(want));
            let mut json = Vec::new();
            encode_json(&quote, seq, &mut json);
            assert_eq!(text_kind(&json), TextKind::Quote);
            let want = QuoteRef {
                topic: topic.as_bytes(),
                seq,
                ts,
            };
            assert_eq!(
                json_quote(&json),
                Some(want),
                "{}",
                String::from_utf8_lossy(&json)
            );
        }
    }

    #[test]
    fn parses_deltas_with_any_mask() {
        let values = [1.5, f64::NAN, 100.0, 2e9, -0.0, 1e-7];
        for (topic, seq, ts) in [
            ("lt.0", 2, 1),
            ("AAPL", 43, 1_732_345_678_901_234_999),
            ("x", u64::MAX, u64::MAX),
        ] {
            let want = || QuoteRef {
                topic: topic.as_bytes(),
                seq,
                ts,
            };
            for mask in 0..=ALL_FIELDS {
                let mut bin = Vec::new();
                binary_delta(topic, seq, ts, &values, mask, &mut bin);
                assert_eq!(binary_quote(&bin), Some(want()), "mask {mask:#b}");
                // One byte short: the topic does not fit.
                assert_eq!(binary_quote(&bin[..bin.len() - 1]), None);
                let mut json = Vec::new();
                json_delta(topic, seq, ts, &values, mask, &mut json);
                let text = String::from_utf8_lossy(&json);
                assert_eq!(text_kind(&json), TextKind::Quote, "{text}");
                assert_eq!(json_quote(&json), Some(want()), "{text}");
            }
        }
        // A mask bit that names no field; an unknown binary type.
        let mut bin = Vec::new();
        binary_delta("a", 1, 1, &values, 1, &mut bin);
        bin[BINARY_DELTA_HEADER_LEN - 1] = 0x41;
        assert_eq!(binary_quote(&bin), None);
        bin[0] = 3;
        assert_eq!(binary_quote(&bin), None);
        assert_eq!(binary_quote(&[BINARY_DELTA, 1]), None);
    }

    #[test]
    fn kinds_and_garbage() {
        assert_eq!(
            text_kind(br#"{"type":"subscribed","id":1,"topics":["a"],"epoch":"x"}"#),
            TextKind::Subscribed
        );
        assert_eq!(
            text_kind(br#"{"type":"error","code":"bad_topic","message":"m"}"#),
            TextKind::Error
        );
        assert_eq!(
            text_kind(br#"{"type":"authed","id":2,"exp":1795414651}"#),
            TextKind::Authed
        );
        assert_eq!(text_kind(b"nonsense"), TextKind::Other);
        assert_eq!(json_quote(br#"{"type":"quote","topic":"a","seq":"#), None);
        assert_eq!(binary_quote(&[1, 5, 0]), None);
        assert_eq!(binary_quote(&[]), None);
    }

    #[test]
    fn topic_indices() {
        assert_eq!(topic_index(b"lt.17", b"lt."), Some(17));
        assert_eq!(topic_index(b"lt.", b"lt."), None);
        assert_eq!(topic_index(b"AAPL", b"lt."), None);
        assert_eq!(topic_index(b"lt.1x", b"lt."), None);
    }
}
