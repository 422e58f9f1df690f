//! v1.2 `since` / `rewind` on subscribe: parsing rules, limits, client-side
//! encoding.

use tickwire_protocol::control::{
    encode_subscribe, encode_subscribe_resume, parse_request, ErrorCode, Request, RequestError,
    Since, MAX_REWIND, MAX_SINCE_KEYS,
};
use tickwire_protocol::MAX_SEQ;

fn err(text: &str) -> RequestError {
    parse_request(text).expect_err(text)
}

fn bad_request(text: &str, id: Option<u64>) -> String {
    let e = err(text);
    assert_eq!(e.code, ErrorCode::BadRequest, "{text}: {e:?}");
    assert_eq!(e.id, id, "{text}: {e:?}");
    e.message
}

/// The `since` and `rewind` of an accepted subscribe.
fn resume_of(text: &str) -> (Option<Since>, Option<u16>) {
    match parse_request(text) {
        Ok(Request::Subscribe { since, rewind, .. }) => (since, rewind),
        other => panic!("{text}: {other:?}"),
    }
}

fn since_of(text: &str) -> Since {
    resume_of(text).0.expect("since")
}

fn since(epoch: &str, seqs: &[(&str, u64)]) -> Since {
    Since {
        epoch: epoch.into(),
        seqs: seqs.iter().map(|(t, s)| (t.to_string(), *s)).collect(),
    }
}

/// `{"op":"subscribe","topics":TOPICS,"id":9,"since":SINCE}`
fn with_since(topics: &str, since: &str) -> String {
    format!(r#"{{"op":"subscribe","topics":{topics},"id":9,"since":{since}}}"#)
}

/// `{"op":"subscribe","topics":["*"],"id":9,"since":{"epoch":"e","seqs":SEQS}}`
fn with_seqs(seqs: &str) -> String {
    with_since(r#"["*"]"#, &format!(r#"{{"epoch":"e","seqs":{seqs}}}"#))
}

/// `{"A0":0,"A1":1,...}` with `n` distinct keys.
fn many_seqs(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!(r#""A{i}":{i}"#)).collect();
    format!("{{{}}}", items.join(","))
}

#[test]
fn contract_example() {
    let text = r#"{"op":"subscribe","topics":["AAPL","FX.*"],"id":5,
 "since":{"epoch":"9f3b2c71a0d4e815","seqs":{"AAPL":1041,"FX.EURUSD":77}}}"#;
    assert_eq!(
        parse_request(text),
        Ok(Request::Subscribe {
            id: Some(5),
            topics: vec!["AAPL".into(), "FX.*".into()],
            snapshot: true,
            max_hz: None,
            since: Some(since(
                "9f3b2c71a0d4e815",
                &[("AAPL", 1041), ("FX.EURUSD", 77)]
            )),
            rewind: None,
        })
    );
}

#[test]
fn v1_requests_have_neither() {
    assert_eq!(
        resume_of(r#"{"op":"subscribe","topics":["A"],"snapshot":false,"max_hz":2}"#),
        (None, None)
    );
}

#[test]
fn seqs_keep_the_written_order() {
    assert_eq!(
        since_of(&with_seqs(r#"{"B":1,"A":2,"C":3}"#)).seqs,
        since("e", &[("B", 1), ("A", 2), ("C", 3)]).seqs
    );
    // Escapes decode the same in both passes.
    assert_eq!(
        since_of(&with_seqs(r#"{"B":1,"\u0041":2}"#)).seqs,
        since("e", &[("B", 1), ("A", 2)]).seqs
    );
    // Other fields before and after, nested objects among them, do not
    // disturb the order; epoch may come after seqs.
    let text = r#"{"x":{"since":{"seqs":{"Q":1}}},"op":"subscribe","since":{"seqs":{"Z":5,"Y":6},"x":[{"seqs":{}}],"epoch":""},"topics":["*"],"y":{"seqs":1}}"#;
    assert_eq!(since_of(text), since("", &[("Z", 5), ("Y", 6)]));
}

#[test]
fn duplicate_keys_collapse_last_wins() {
    // A key written twice: one entry, at its first place, with the last value.
    assert_eq!(
        since_of(&with_seqs(r#"{"A":1,"B":2,"A":3}"#)).seqs,
        since("e", &[("A", 3), ("B", 2)]).seqs
    );
    // So does a duplicated `since` or `seqs`: the last one counts.
    let text = r#"{"op":"subscribe","topics":["*"],"since":5,"since":{"epoch":"e","seqs":{"X":1},"seqs":{"D":4,"C":3}}}"#;
    assert_eq!(since_of(text), since("e", &[("D", 4), ("C", 3)]));
    let text =
        r#"{"op":"subscribe","topics":["*"],"since":{"epoch":"e","seqs":{}},"since":[],"id":1}"#;
    bad_request(text, Some(1));
    // A bad value overwritten by a good one is fine, and the reverse is not.
    assert_eq!(
        since_of(&with_seqs(r#"{"A":-1,"A":2}"#)).seqs,
        since("e", &[("A", 2)]).seqs
    );
    bad_request(&with_seqs(r#"{"A":2,"A":-1}"#), Some(9));
}

#[test]
fn empty_seqs_and_any_epoch_string() {
    assert_eq!(since_of(&with_seqs("{}")), since("e", &[]));
    let text = with_since(r#"["A"]"#, r#"{"epoch":"","seqs":{}}"#);
    assert_eq!(since_of(&text), since("", &[]));
    let text = with_since(r#"["A"]"#, r#"{"epoch":"é \" x","seqs":{"A":0}}"#);
    assert_eq!(since_of(&text), since("é \" x", &[("A", 0)]));
}

#[test]
fn since_shape_errors() {
    for s in [
        "null",
        "1",
        "\"x\"",
        "true",
        "[]",
        r#"[{"epoch":"e","seqs":{}}]"#,
        // epoch missing or not a string
        r#"{"seqs":{}}"#,
        r#"{"epoch":null,"seqs":{}}"#,
        r#"{"epoch":1,"seqs":{}}"#,
        r#"{"epoch":["e"],"seqs":{}}"#,
        r#"{"epoch":{},"seqs":{}}"#,
        // seqs missing or not an object
        r#"{"epoch":"e"}"#,
        r#"{"epoch":"e","seqs":null}"#,
        r#"{"epoch":"e","seqs":[]}"#,
        r#"{"epoch":"e","seqs":[["A",1]]}"#,
        r#"{"epoch":"e","seqs":"A"}"#,
        r#"{"epoch":"e","seqs":7}"#,
    ] {
        bad_request(&with_since(r#"["*"]"#, s), Some(9));
    }
    assert_eq!(
        bad_request(&with_since(r#"["*"]"#, r#"{"seqs":{}}"#), Some(9)),
        "\"since.epoch\" must be a string"
    );
}

#[test]
fn key_count_limit() {
    assert_eq!(MAX_SINCE_KEYS, 1024);
    assert_eq!(
        since_of(&with_seqs(&many_seqs(1024))).seqs.len(),
        MAX_SINCE_KEYS
    );
    let m = bad_request(&with_seqs(&many_seqs(1025)), Some(9));
    assert!(m.contains("1024"), "{m}");
    // Keys are counted once collapsed: 1025 written, 1024 distinct.
    let seqs = many_seqs(1024).replacen('{', r#"{"A0":5,"#, 1);
    let s = since_of(&with_seqs(&seqs));
    assert_eq!(s.seqs.len(), 1024);
    assert_eq!(s.seqs[0], ("A0".to_string(), 0));
    assert_eq!(s.seqs[1023], ("A1023".to_string(), 1023));
}

#[test]
fn key_syntax_is_bad_request() {
    for key in ["FX.*", "*", "A*B", "", "A B", "Ä", "a\\u0000"] {
        let m = bad_request(&with_seqs(&format!(r#"{{"{key}":1}}"#)), Some(9));
        assert!(m.contains("since"), "{m}");
    }
    // Also when an entry is exactly that pattern.
    bad_request(
        &with_since(r#"["FX.*"]"#, r#"{"epoch":"e","seqs":{"FX.*":1}}"#),
        Some(9),
    );
    let key64 = "K".repeat(64);
    assert_eq!(
        since_of(&with_seqs(&format!(r#"{{"{key64}":1}}"#))).seqs,
        vec![(key64.clone(), 1)]
    );
    bad_request(&with_seqs(&format!(r#"{{"{key64}K":1}}"#)), Some(9));
}

#[test]
fn seq_values_in_range() {
    let max = MAX_SEQ.to_string();
    assert_eq!(MAX_SEQ, 9_007_199_254_740_991);
    for (v, seq) in [("0", 0), ("1", 1), (max.as_str(), MAX_SEQ)] {
        assert_eq!(
            since_of(&with_seqs(&format!(r#"{{"A":{v}}}"#))).seqs,
            vec![("A".to_string(), seq)],
            "{v}"
        );
    }
    for v in [
        "9007199254740992",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "-0",
        "1.0",
        "1.5",
        "1e3",
        "0e0",
        "\"5\"",
        "null",
        "true",
        "[1]",
        "{}",
    ] {
        bad_request(&with_seqs(&format!(r#"{{"A":{v}}}"#)), Some(9));
    }
}

#[test]
fn every_key_must_be_matched_by_an_entry() {
    let ok = |topics: &str, key: &str| {
        let text = with_since(topics, &format!(r#"{{"epoch":"e","seqs":{{"{key}":3}}}}"#));
        assert_eq!(since_of(&text).seqs, vec![(key.to_string(), 3)], "{text}");
    };
    let refused = |topics: &str, key: &str| {
        let text = with_since(topics, &format!(r#"{{"epoch":"e","seqs":{{"{key}":3}}}}"#));
        let m = bad_request(&text, Some(9));
        assert!(m.contains(key), "{m}");
    };
    ok(r#"["AAPL"]"#, "AAPL");
    ok(r#"["FX.*"]"#, "FX.EURUSD");
    ok(r#"["FX.*"]"#, "FX.");
    ok(r#"["*"]"#, "anything");
    ok(r#"["AAPL","F*","FX.*"]"#, "FX.EURUSD");
    ok(r#"["X","X.*","Y*","AAPL"]"#, "AAPL");
    refused(r#"["AAPL"]"#, "MSFT");
    refused(r#"["AAPL"]"#, "AAPL.X");
    refused(r#"["AAPL"]"#, "aapl");
    refused(r#"["AAPL"]"#, "AAP");
    refused(r#"["FX.*"]"#, "FXEURUSD");
    refused(r#"["FX.*"]"#, "FX");
    refused(r#"["FX.*","AAPL","B*"]"#, "C");
    // The first unmatched key (as written) is named.
    let text = with_since(
        r#"["A*"]"#,
        r#"{"epoch":"e","seqs":{"A1":1,"Z2":1,"Y3":1}}"#,
    );
    assert!(bad_request(&text, Some(9)).contains("\"Z2\""));
}

#[test]
fn matching_scales_with_many_entries() {
    // 4,000 entries and 1,024 keys, each key matched by the last entry
    // only: stays cheap (hash lookups per key prefix, not keys × entries).
    let mut topics: Vec<String> = (0..4000).map(|i| format!("\"P{i}.*\"")).collect();
    topics.push("\"K*\"".into());
    let seqs: Vec<String> = (0..1024).map(|i| format!(r#""K{i}":{i}"#)).collect();
    let text = with_since(
        &format!("[{}]", topics.join(",")),
        &format!(r#"{{"epoch":"e","seqs":{{{}}}}}"#, seqs.join(",")),
    );
    assert_eq!(since_of(&text).seqs.len(), 1024);
}

#[test]
fn error_order_type_then_topic_syntax_then_coverage() {
    // A since shape error and a bad topic: the type error first.
    let e = err(&with_since(r#"["A B"]"#, "1"));
    assert_eq!((e.code, e.id), (ErrorCode::BadRequest, Some(9)));
    // A bad key (syntax) and a bad topic: bad_request first too.
    let e = err(&with_since(
        r#"["A B"]"#,
        r#"{"epoch":"e","seqs":{"X*":1}}"#,
    ));
    assert_eq!((e.code, e.id), (ErrorCode::BadRequest, Some(9)));
    // An unmatched key and a bad topic: the topic (coverage needs entries).
    let e = err(&with_since(r#"["A B"]"#, r#"{"epoch":"e","seqs":{"X":1}}"#));
    assert_eq!((e.code, e.id), (ErrorCode::BadTopic, Some(9)));
    // The id is not echoed when it is itself bad.
    let e = err(r#"{"op":"subscribe","topics":["A"],"id":-1,"since":1}"#);
    assert_eq!((e.code, e.id), (ErrorCode::BadRequest, None));
    // No id: none echoed.
    let e = err(r#"{"op":"subscribe","topics":["A"],"rewind":0}"#);
    assert_eq!((e.code, e.id), (ErrorCode::BadRequest, None));
}

#[test]
fn rewind_rules() {
    assert_eq!(MAX_REWIND, 1024);
    let req = |v: &str| format!(r#"{{"op":"subscribe","topics":["A"],"rewind":{v},"id":3}}"#);
    for (v, n) in [("1", 1), ("50", 50), ("1024", 1024)] {
        assert_eq!(resume_of(&req(v)), (None, Some(n)), "{v}");
    }
    for v in [
        "1025",
        "0",
        "-1",
        "1.0",
        "1e1",
        "1E1",
        "5.5",
        "\"5\"",
        "null",
        "true",
        "[5]",
        "{}",
        "65536",
        "65537",
        "4294967297",
    ] {
        let m = bad_request(&req(v), Some(3));
        assert!(m.contains("rewind"), "{v}: {m}");
    }
    // Not with snapshot:false; with an explicit true it is fine.
    let m = bad_request(
        r#"{"op":"subscribe","topics":["A"],"rewind":5,"snapshot":false,"id":3}"#,
        Some(3),
    );
    assert!(m.contains("snapshot"), "{m}");
    assert_eq!(
        resume_of(r#"{"op":"subscribe","topics":["A"],"rewind":5,"snapshot":true}"#),
        (None, Some(5))
    );
    // With since and max_hz.
    let text = r#"{"op":"subscribe","topics":["A","B*"],"rewind":10,"max_hz":2,"since":{"epoch":"e","seqs":{"B1":4}}}"#;
    assert_eq!(
        parse_request(text),
        Ok(Request::Subscribe {
            id: None,
            topics: vec!["A".into(), "B*".into()],
            snapshot: true,
            max_hz: Some(2.0),
            since: Some(since("e", &[("B1", 4)])),
            rewind: Some(10),
        })
    );
}

#[test]
fn since_without_rewind_may_have_snapshot_false() {
    let text = r#"{"op":"subscribe","topics":["A"],"snapshot":false,"since":{"epoch":"e","seqs":{"A":1}}}"#;
    assert_eq!(resume_of(text), (Some(since("e", &[("A", 1)])), None));
}

#[test]
fn ignored_on_unsubscribe() {
    for extra in [
        r#","since":1"#,
        r#","since":{"epoch":"e","seqs":{"B":1}}"#,
        r#","since":{"seqs":{"*":-1}}"#,
        r#","rewind":0"#,
        r#","rewind":5,"snapshot":false"#,
    ] {
        assert_eq!(
            parse_request(&format!(
                r#"{{"op":"unsubscribe","topics":["A"],"id":1{extra}}}"#
            )),
            Ok(Request::Unsubscribe {
                id: Some(1),
                topics: vec!["A".into()]
            }),
            "{extra}"
        );
    }
}

#[test]
fn client_encoding() {
    let s = since("9f3b2c71a0d4e815", &[("AAPL", 1041), ("FX.EURUSD", 77)]);
    assert_eq!(
        encode_subscribe_resume(&["AAPL", "FX.*"], Some(5), None, None, Some(&s), None),
        r#"{"op":"subscribe","topics":["AAPL","FX.*"],"id":5,"since":{"epoch":"9f3b2c71a0d4e815","seqs":{"AAPL":1041,"FX.EURUSD":77}}}"#
    );
    assert_eq!(
        encode_subscribe_resume(&["AAPL"], None, Some(true), Some(0.5), None, Some(50)),
        r#"{"op":"subscribe","topics":["AAPL"],"snapshot":true,"max_hz":0.5,"rewind":50}"#
    );
    // The v1 encoder is the same function with neither field.
    assert_eq!(
        encode_subscribe(&["A"], Some(1), Some(false), Some(4.0)),
        encode_subscribe_resume(&["A"], Some(1), Some(false), Some(4.0), None, None)
    );
    assert_eq!(
        encode_subscribe(&["A"], None, None, None),
        r#"{"op":"subscribe","topics":["A"]}"#
    );
    // Odd epochs and keys are escaped (the server then refuses the key).
    let odd = since("a\"b\\\n", &[("x\"y", 1)]);
    let text = encode_subscribe_resume(&["*"], Some(2), None, None, Some(&odd), None);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["since"]["epoch"], "a\"b\\\n");
    assert_eq!(v["since"]["seqs"]["x\"y"], 1);
    bad_request(&text, Some(2));
    // An empty since round-trips.
    let empty = since("e", &[]);
    let text = encode_subscribe_resume(&["A"], None, None, None, Some(&empty), None);
    assert_eq!(
        text,
        r#"{"op":"subscribe","topics":["A"],"since":{"epoch":"e","seqs":{}}}"#
    );
    assert_eq!(since_of(&text), empty);
}

#[test]
fn since_seq_lookup() {
    let s = since("e", &[("A", 1), ("B", 2)]);
    assert_eq!(s.seq("B"), Some(2));
    assert_eq!(s.seq("C"), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const TOPIC_CHARS: &str = "[A-Za-z0-9._:/-]";

    /// An entry: an exact topic or a pattern.
    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::string::string_regex(&format!("{TOPIC_CHARS}{{1,24}}")).unwrap(),
            proptest::string::string_regex(&format!("{TOPIC_CHARS}{{0,24}}\\*")).unwrap(),
        ]
    }

    /// Entries, plus keys each matched by one of them (distinct, in the
    /// order generated).
    fn request_parts() -> impl Strategy<Value = (Vec<String>, Vec<(String, u64)>)> {
        prop::collection::vec(entry(), 1..6).prop_flat_map(|topics| {
            let n = topics.len();
            let key = (
                0..n,
                proptest::string::string_regex(&format!("{TOPIC_CHARS}{{0,24}}")).unwrap(),
                0..=MAX_SEQ,
            );
            (Just(topics), prop::collection::vec(key, 0..12)).prop_map(|(topics, picks)| {
                let mut seqs: Vec<(String, u64)> = Vec::new();
                for (i, suffix, seq) in picks {
                    let t = &topics[i];
                    let key = match t.strip_suffix('*') {
                        Some(p) if p.is_empty() && suffix.is_empty() => "X".to_string(),
                        Some(p) => format!("{p}{suffix}"),
                        None => t.clone(),
                    };
                    if !seqs.iter().any(|(k, _)| *k == key) {
                        seqs.push((key, seq));
                    }
                }
                (topics, seqs)
            })
        })
    }

    /// Arbitrary JSON values, nested a few levels.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[A-Z*.]{0,4}".prop_map(Value::from),
            Just(Value::from(MAX_SEQ)),
            Just(Value::from(MAX_SEQ + 1)),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("epoch".to_string()),
                            Just("seqs".to_string()),
                            "[A-Z*.]{0,4}"
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_parse_round_trips(
            (topics, seqs) in request_parts(),
            epoch in any::<String>(),
            with_since in any::<bool>(),
            rewind in prop::option::of(1..=MAX_REWIND),
            snapshot in prop::option::of(any::<bool>()),
            max_hz in prop::option::of(0.001f64..=1000.0),
            id in prop::option::of(0..=(1u64 << 53) - 1),
        ) {
            // rewind with snapshot:false is refused; keep snapshot then.
            let snapshot = if rewind.is_some() { snapshot.filter(|s| *s) } else { snapshot };
            let since = with_since.then_some(Since { epoch, seqs });
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            let text = encode_subscribe_resume(&refs, id, snapshot, max_hz, since.as_ref(), rewind);
            prop_assert_eq!(
                parse_request(&text),
                Ok(Request::Subscribe {
                    id,
                    topics: topics.iter().map(|t| t.clone().into()).collect(),
                    snapshot: snapshot.unwrap_or(true),
                    max_hz,
                    since,
                    rewind,
                })
            );
        }

        #[test]
        fn since_and_rewind_of_any_shape_never_panic(
            since in json_value(),
            rewind in json_value(),
            topics in prop::collection::vec("[A-Z.]{0,3}\\*?", 1..4),
        ) {
            let topics = serde_json::to_string(&topics).unwrap();
            for text in [
                format!(r#"{{"op":"subscribe","topics":{topics},"since":{since}}}"#),
                format!(r#"{{"op":"subscribe","topics":{topics},"rewind":{rewind},"since":{{"epoch":"e","seqs":{since}}}}}"#),
                format!(r#"{{"op":"subscribe","topics":{topics},"since":{{"epoch":{rewind},"seqs":{since}}},"since":{since}}}"#),
                format!(r#"{{"op":"unsubscribe","topics":{topics},"since":{since},"rewind":{rewind}}}"#),
            ] {
                check_invariants(&text)?;
            }
        }

        #[test]
        fn json_ish_since_never_panics(s in r#"[{}\[\]":,AB*0-9.e-]{0,60}"#) {
            let text = format!(r#"{{"op":"subscribe","topics":["A*","B"],"since":{{"epoch":"e","seqs":{s}}}}}"#);
            check_invariants(&text)?;
            let text = format!(r#"{{"op":"subscribe","topics":["*"],"since":{s},"rewind":{s}}}"#);
            check_invariants(&text)?;
        }
    }

    /// Parses without panicking; an accepted subscribe keeps the rules.
    fn check_invariants(text: &str) -> Result<(), TestCaseError> {
        if let Ok(Request::Subscribe {
            topics,
            snapshot,
            since,
            rewind,
            ..
        }) = parse_request(text)
        {
            if let Some(n) = rewind {
                prop_assert!((1..=MAX_REWIND).contains(&n));
                prop_assert!(snapshot);
            }
            if let Some(since) = since {
                prop_assert!(since.seqs.len() <= MAX_SINCE_KEYS);
                for (i, (key, seq)) in since.seqs.iter().enumerate() {
                    prop_assert!(*seq <= MAX_SEQ);
                    prop_assert!(tickwire_protocol::topic::is_valid_topic(key));
                    let matched = topics.iter().any(|t| {
                        tickwire_protocol::Selector::parse(t).is_some_and(|s| s.matches(key))
                    });
                    prop_assert!(matched);
                    prop_assert!(!since.seqs[..i].iter().any(|(k, _)| k == key));
                }
            }
        }
        Ok(())
    }
}
