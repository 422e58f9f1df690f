//! Control request parsing rules and client-side encoding.

use tickwire_protocol::control::{
    encode_auth, encode_subscribe, encode_unsubscribe, parse_request, ErrorCode, Request,
    RequestError,
};

fn err(text: &str) -> RequestError {
    parse_request(text).expect_err(text)
}

fn bad_request(text: &str, id: Option<u64>) {
    let e = err(text);
    assert_eq!(e.code, ErrorCode::BadRequest, "{text}: {e:?}");
    assert_eq!(e.id, id, "{text}: {e:?}");
}

fn sub(id: Option<u64>, topics: &[&str], snapshot: bool, max_hz: Option<f64>) -> Request<'static> {
    Request::Subscribe {
        id,
        topics: topics.iter().map(|s| s.to_string().into()).collect(),
        snapshot,
        max_hz,
        since: None,
        rewind: None,
    }
}

#[test]
fn contract_examples() {
    assert_eq!(
        parse_request(r#"{"op":"subscribe","topics":["AAPL","MSFT"],"id":1}"#),
        Ok(sub(Some(1), &["AAPL", "MSFT"], true, None))
    );
    assert_eq!(
        parse_request(
            r#"{"op":"subscribe","topics":["BTC-USD"],"snapshot":false,"max_hz":4,"id":2}"#
        ),
        Ok(sub(Some(2), &["BTC-USD"], false, Some(4.0)))
    );
    assert_eq!(
        parse_request(r#"{"op":"unsubscribe","topics":["AAPL"],"id":3}"#),
        Ok(Request::Unsubscribe {
            id: Some(3),
            topics: vec!["AAPL".into()]
        })
    );
}

#[test]
fn id_optional_and_bounded() {
    assert_eq!(
        parse_request(r#"{"op":"subscribe","topics":["A"]}"#),
        Ok(sub(None, &["A"], true, None))
    );
    assert_eq!(
        parse_request(r#"{"op":"subscribe","topics":["A"],"id":0}"#),
        Ok(sub(Some(0), &["A"], true, None))
    );
    assert_eq!(
        parse_request(r#"{"op":"subscribe","topics":["A"],"id":9007199254740991}"#),
        Ok(sub(Some(9_007_199_254_740_991), &["A"], true, None))
    );
    for id in [
        "9007199254740992",
        "18446744073709551616",
        "-1",
        "1.5",
        "1e3",
        "\"1\"",
        "null",
        "true",
        "[1]",
    ] {
        bad_request(
            &format!(r#"{{"op":"subscribe","topics":["A"],"id":{id}}}"#),
            None,
        );
    }
}

#[test]
fn id_echoed_on_other_errors() {
    bad_request(r#"{"id":7}"#, Some(7));
    bad_request(r#"{"op":"nope","topics":["A"],"id":7}"#, Some(7));
    bad_request(r#"{"op":"subscribe","id":7}"#, Some(7));
    bad_request(
        r#"{"op":"subscribe","topics":["A"],"max_hz":0,"id":7}"#,
        Some(7),
    );
    let e = err(r#"{"op":"subscribe","topics":["A B"],"id":7}"#);
    assert_eq!((e.code, e.id), (ErrorCode::BadTopic, Some(7)));
    // Not echoed when the id itself is bad, even with other problems.
    bad_request(r#"{"op":"nope","id":-7}"#, None);
}

#[test]
fn unparseable_non_object_or_bad_op() {
    for text in [
        "",
        "{",
        "not json",
        "[]",
        "1",
        "\"subscribe\"",
        "null",
        r#"{"topics":["A"]}"#,
        r#"{"op":null,"topics":["A"]}"#,
        r#"{"op":1,"topics":["A"]}"#,
        r#"{"op":"Subscribe","topics":["A"]}"#,
        r#"{"op":"subscribe","topics":["A"]} x"#,
    ] {
        bad_request(text, None);
    }
}

#[test]
fn snapshot_rules() {
    assert_eq!(
        parse_request(r#"{"op":"subscribe","topics":["A"],"snapshot":true}"#),
        Ok(sub(None, &["A"], true, None))
    );
    for v in ["null", "1", "\"false\"", "0"] {
        bad_request(
            &format!(r#"{{"op":"subscribe","topics":["A"],"snapshot":{v},"id":1}}"#),
            Some(1),
        );
    }
}

#[test]
fn max_hz_rules() {
    let ok = |v: &str, hz: f64| {
        assert_eq!(
            parse_request(&format!(
                r#"{{"op":"subscribe","topics":["A"],"max_hz":{v}}}"#
            )),
            Ok(sub(None, &["A"], true, Some(hz))),
            "{v}"
        );
    };
    ok("1000", 1000.0);
    ok("1000.0", 1000.0);
    ok("0.5", 0.5);
    ok("4", 4.0);
    ok("1e-3", 0.001);
    for v in [
        "0",
        "0.0",
        "-0.0",
        "-1",
        "1000.0001",
        "1e9",
        "1e-400",
        "\"4\"",
        "null",
        "true",
    ] {
        bad_request(
            &format!(r#"{{"op":"subscribe","topics":["A"],"max_hz":{v},"id":2}}"#),
            Some(2),
        );
    }
    assert_eq!(
        err(r#"{"op":"subscribe","topics":["A"],"max_hz":0,"id":2}"#).message,
        "max_hz must be > 0"
    );
}

#[test]
fn max_hz_and_snapshot_ignored_on_unsubscribe() {
    for extra in [
        r#","max_hz":0"#,
        r#","max_hz":"x""#,
        r#","max_hz":null"#,
        r#","snapshot":1"#,
    ] {
        assert_eq!(
            parse_request(&format!(r#"{{"op":"unsubscribe","topics":["A"]{extra}}}"#)),
            Ok(Request::Unsubscribe {
                id: None,
                topics: vec!["A".into()]
            }),
            "{extra}"
        );
    }
}

#[test]
fn topics_rules() {
    for topics in [
        "[]",
        "\"A\"",
        "null",
        "{}",
        "[1]",
        "[\"A\",null]",
        "[[\"A\"]]",
    ] {
        for op in ["subscribe", "unsubscribe"] {
            bad_request(
                &format!(r#"{{"op":"{op}","topics":{topics},"id":5}}"#),
                Some(5),
            );
        }
    }
    bad_request(r#"{"op":"subscribe"}"#, None);
    // Duplicates and patterns are kept as sent.
    assert_eq!(
        parse_request(r#"{"op":"subscribe","topics":["A","A","NASDAQ.*","*"]}"#),
        Ok(sub(None, &["A", "A", "NASDAQ.*", "*"], true, None))
    );
}

#[test]
fn bad_topic_names_the_first_bad_one() {
    let e = err(r#"{"op":"subscribe","topics":["AAPL","A B","C*D"],"id":4}"#);
    assert_eq!(e.code, ErrorCode::BadTopic);
    assert_eq!(e.id, Some(4));
    assert_eq!(e.message, r#"invalid topic "A B""#);
    let e = err(r#"{"op":"unsubscribe","topics":["*A"]}"#);
    assert_eq!((e.code, e.id), (ErrorCode::BadTopic, None));
    assert!(e.message.contains("\"*A\""), "{}", e.message);
    let long = "a".repeat(65);
    let e = err(&format!(r#"{{"op":"subscribe","topics":["{long}"]}}"#));
    assert_eq!(e.code, ErrorCode::BadTopic);
    let e = err(r#"{"op":"subscribe","topics":[""]}"#);
    assert_eq!(e.code, ErrorCode::BadTopic);
    assert_eq!(e.message, r#"invalid topic """#);
}

#[test]
fn unknown_fields_ignored() {
    assert_eq!(
        parse_request(r#"{"x":{"deep":[1,2]},"op":"subscribe","topics":["A"],"extra":null}"#),
        Ok(sub(None, &["A"], true, None))
    );
}

#[test]
fn error_code_strings() {
    assert_eq!(ErrorCode::BadRequest.as_str(), "bad_request");
    assert_eq!(ErrorCode::BadTopic.as_str(), "bad_topic");
    assert_eq!(
        ErrorCode::TooManySubscriptions.as_str(),
        "too_many_subscriptions"
    );
    assert_eq!(ErrorCode::NotAuthorized.as_str(), "not_authorized");
}

#[test]
fn client_encoding_round_trips() {
    assert_eq!(
        encode_subscribe(&["AAPL", "MSFT"], Some(1), None, None),
        r#"{"op":"subscribe","topics":["AAPL","MSFT"],"id":1}"#
    );
    assert_eq!(
        encode_unsubscribe(&["AAPL"], Some(3)),
        r#"{"op":"unsubscribe","topics":["AAPL"],"id":3}"#
    );
    let text = encode_subscribe(&["BTC-USD"], Some(2), Some(false), Some(4.0));
    assert_eq!(
        parse_request(&text),
        Ok(sub(Some(2), &["BTC-USD"], false, Some(4.0)))
    );
    let text = encode_subscribe(&["X.*"], None, Some(true), Some(0.25));
    assert_eq!(
        parse_request(&text),
        Ok(sub(None, &["X.*"], true, Some(0.25)))
    );
    assert_eq!(
        parse_request(&encode_unsubscribe(&["A"], None)),
        Ok(Request::Unsubscribe {
            id: None,
            topics: vec!["A".into()]
        })
    );
    // Odd input is escaped, then refused as a topic.
    let e = err(&encode_subscribe(&["a\"b"], Some(9), None, None));
    assert_eq!((e.code, e.id), (ErrorCode::BadTopic, Some(9)));
    assert_eq!(
        parse_request(&encode_auth("a.b.c\"", Some(7))),
        Ok(Request::Auth {
            id: Some(7),
            token: "a.b.c\"".into()
        })
    );
}

#[test]
fn auth_requests_need_a_token_string() {
    assert_eq!(
        parse_request(r#"{"op":"auth","token":"x.y.z"}"#),
        Ok(Request::Auth {
            id: None,
            token: "x.y.z".into()
        })
    );
    bad_request(r#"{"op":"auth","id":4}"#, Some(4));
    // An empty token is a request (it fails verification in the broker).
    assert_eq!(
        parse_request(r#"{"op":"auth","token":"","id":4}"#),
        Ok(Request::Auth {
            id: Some(4),
            token: String::new()
        })
    );
    bad_request(r#"{"op":"auth","token":7}"#, None);
    let long = "t".repeat(tickwire_protocol::control::MAX_TOKEN_LEN + 1);
    bad_request(&format!(r#"{{"op":"auth","token":"{long}"}}"#), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = parse_request(&s);
        }

        #[test]
        fn json_ish_never_panics(s in r#"[{}\[\]":,a-z0-9.* -]{0,80}"#) {
            let _ = parse_request(&s);
        }

        #[test]
        fn deep_nesting_never_panics(depth in 0usize..5000) {
            let s = format!(r#"{{"op":"subscribe","topics":["A"],"x":{}{}}}"#,
                "[".repeat(depth), "]".repeat(depth));
            let _ = parse_request(&s);
            // Inside the v1.2 fields too (their key order is read in a
            // second pass over the text).
            let s = format!(r#"{{"op":"subscribe","topics":["A"],"since":{{"epoch":"e","seqs":{{"A":1,"x":{}{}}}}}}}"#,
                "{\"a\":[".repeat(depth), "]}".repeat(depth));
            let _ = parse_request(&s);
            let s = format!(r#"{{"op":"subscribe","topics":["*"],"since":{{"seqs":{{"A":1,"B":{}{}}},"epoch":"e"}},"rewind":{}{}}}"#,
                "[".repeat(depth), "]".repeat(depth), "[".repeat(depth), "]".repeat(depth));
            let _ = parse_request(&s);
        }

        #[test]
        fn json_ish_with_v12_fields_never_panics(
            s in r#"[{}\[\]":,a-z0-9.* -]{0,40}"#,
            key in prop_oneof![Just("since"), Just("rewind"), Just("seqs"), Just("epoch")],
        ) {
            for text in [
                format!(r#"{{"op":"subscribe","topics":["*"],"{key}":{s}}}"#),
                format!(r#"{{"op":"subscribe","topics":["a*"],"since":{{"epoch":"e","{key}":{s}}}}}"#),
                format!(r#"{{"op":"subscribe","topics":["a"],"since":{{"epoch":"e","seqs":{{"a":1,"{key}":{s}}}}}}}"#),
                format!(r#"{{"op":"subscribe","topics":["a"],"since":{s}"#),
            ] {
                let _ = parse_request(&text);
            }
        }

        #[test]
        fn any_valid_id_round_trips(id in 0u64..=(1u64 << 53) - 1, hz in 0.001f64..=1000.0) {
            let text = encode_subscribe(&["A"], Some(id), None, Some(hz));
            prop_assert_eq!(parse_request(&text), Ok(sub(Some(id), &["A"], true, Some(hz))));
        }

        #[test]
        fn ids_over_the_limit_rejected(id in (1u64 << 53)..=u64::MAX) {
            let e = parse_request(&encode_subscribe(&["A"], Some(id), None, None)).unwrap_err();
            prop_assert_eq!((e.code, e.id), (ErrorCode::BadRequest, None));
        }
    }
}
