use proptest::prelude::*;

use super::*;

fn quote(topic: &str) -> ClusterQuote {
    ClusterQuote {
        origin: 7,
        seq: 42,
        sent_ns: 1_700_000_000_000_000_000,
        quote: Quote {
            topic: topic.into(),
            bid: 1.5,
            ask: f64::NAN,
            bid_size: f64::INFINITY,
            ask_size: -0.0,
            last: 2.25,
            volume: 1e9,
            ts: u64::MAX,
        },
    }
}

/// NATS subject matching: `*` one token, `>` one or more trailing tokens.
fn nats_matches(pattern: &str, subject: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), subject.split('.').collect());
    for (i, token) in p.iter().enumerate() {
        match *token {
            ">" => return s.len() > i,
            "*" if i < s.len() => {}
            t if s.get(i) == Some(&t) => {}
            _ => return false,
        }
    }
    p.len() == s.len()
}

fn same_bits(a: &Quote, b: &Quote) -> bool {
    let bits =
        |q: &Quote| [q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume].map(f64::to_bits);
    a.topic == b.topic && a.ts == b.ts && bits(a) == bits(b)
}

#[test]
fn payload_round_trips_non_finite_numbers_exactly() {
    let q = quote("NASDAQ.AAPL");
    let mut bytes = Vec::new();
    encode(&q, &mut bytes);
    let back = decode(&bytes).expect("decodes");
    assert_eq!((back.origin, back.seq, back.sent_ns), (7, 42, q.sent_ns));
    assert!(same_bits(&back.quote, &q.quote));
}

#[test]
fn short_wrong_version_and_bad_topic_are_errors() {
    let mut bytes = Vec::new();
    encode(&quote("AAPL"), &mut bytes);
    assert_eq!(decode(&bytes[..HEADER]), Err(ClusterDecodeError::BadTopic));
    assert_eq!(decode(&bytes[..10]), Err(ClusterDecodeError::Short(10)));
    assert_eq!(decode(&[]), Err(ClusterDecodeError::Short(0)));
    let mut wrong = bytes.clone();
    wrong[0] = 2;
    assert_eq!(decode(&wrong), Err(ClusterDecodeError::Version(2)));
    let mut star = bytes.clone();
    star.push(b'*');
    assert_eq!(decode(&star), Err(ClusterDecodeError::BadTopic));
}

#[test]
fn a_seq_beyond_what_json_clients_can_represent_is_an_error() {
    let encoded = |seq: u64| {
        let mut bytes = Vec::new();
        encode(
            &ClusterQuote {
                seq,
                ..quote("AAPL")
            },
            &mut bytes,
        );
        bytes
    };
    assert_eq!(decode(&encoded(MAX_SEQ)).map(|q| q.seq), Ok(MAX_SEQ));
    for seq in [MAX_SEQ + 1, u64::MAX] {
        assert_eq!(decode(&encoded(seq)), Err(ClusterDecodeError::Seq(seq)));
    }
}

#[test]
fn subjects_keep_dots_as_tokens_and_mark_empty_ones() {
    assert_eq!(topic_subject("tw", "AAPL"), "tw.q.AAPL");
    assert_eq!(topic_subject("tw", "NASDAQ.AAPL"), "tw.q.NASDAQ.AAPL");
    assert_eq!(topic_subject("tw", "A..B."), "tw.q.A.%.B.%");
    assert_eq!(
        subject_topic("tw", "tw.q.A.%.B.%").as_deref(),
        Some("A..B.")
    );
    assert_eq!(subject_topic("tw", "other.q.A"), None);
    assert_eq!(subject_topic("tw", "tw.q.*"), None);
}

#[test]
fn patterns_map_to_the_narrowest_whole_token_wildcard() {
    let sel = |s: &str| Selector::parse(s).expect("valid selector");
    assert_eq!(selector_subject("tw", &sel("*")), "tw.q.>");
    assert_eq!(selector_subject("tw", &sel("NAS*")), "tw.q.>");
    assert_eq!(selector_subject("tw", &sel("NASDAQ.*")), "tw.q.NASDAQ.>");
    assert_eq!(selector_subject("tw", &sel("NASDAQ.AA*")), "tw.q.NASDAQ.>");
    assert_eq!(selector_subject("tw", &sel("AAPL")), "tw.q.AAPL");
}

fn topic_strategy() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:/-]{1,64}"
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn payload_round_trips(topic in topic_strategy(), origin: u64, seq in 0..=MAX_SEQ, sent_ns: u64,
                           nums in proptest::array::uniform6(any::<f64>()), ts: u64) {
        let q = ClusterQuote { origin, seq, sent_ns, quote: Quote {
            topic, bid: nums[0], ask: nums[1], bid_size: nums[2], ask_size: nums[3],
            last: nums[4], volume: nums[5], ts } };
        let mut bytes = Vec::new();
        encode(&q, &mut bytes);
        let back = decode(&bytes).expect("decodes");
        prop_assert_eq!((back.origin, back.seq, back.sent_ns), (origin, seq, sent_ns));
        prop_assert!(same_bits(&back.quote, &q.quote));
    }

    #[test]
    fn subject_mapping_is_one_to_one(topic in topic_strategy()) {
        let subject = topic_subject("tw", &topic);
        prop_assert!(subject.split('.').all(|t| !t.is_empty() && t != "*" && t != ">"));
        prop_assert_eq!(subject_topic("tw", &subject), Some(topic));
    }

    /// A broker subscribed for a selector receives every topic the selector
    /// matches (it may receive more and filters those itself).
    #[test]
    fn selector_subject_covers_every_matching_topic(
        pattern in "[A-Za-z.]{0,6}\\*?", topic in "[A-Za-z.]{1,10}",
    ) {
        let Some(selector) = Selector::parse(&pattern) else { return Ok(()); };
        if selector.matches(&topic) {
            let wanted = selector_subject("tw", &selector);
            prop_assert!(nats_matches(&wanted, &topic_subject("tw", &topic)),
                "{} does not cover {}", wanted, topic);
        }
    }
}

/// Writes the fuzz target's seed corpus (run by hand:
/// `cargo test -p tickwire-protocol write_fuzz_seeds -- --ignored`).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cluster_message");
    for (i, topic) in ["AAPL", "NASDAQ.MSFT", "A..B.", "x/y:z_1-2"]
        .iter()
        .enumerate()
    {
        let mut bytes = Vec::new();
        encode(&quote(topic), &mut bytes);
        std::fs::write(dir.join(format!("seed-{i}")), bytes).expect("write seed");
    }
}
