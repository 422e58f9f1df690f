//! The fast path of [`super::parse_request`]: the common, well-formed
//! subscribe or unsubscribe (`op`, `topics`, and `id`, `snapshot`,
//! `max_hz`) deserialized straight into borrowed fields, with no JSON tree
//! and no allocation but the topic list (the topics borrow the text).
//! Anything else — another field, a duplicate key, an escaped string, a
//! `null`, a value out of range, an invalid topic — is `None`, and the
//! general path decides, with its errors. So the fast path only ever
//! answers what the general one would (a property test and the
//! `control_json` fuzz target hold it to that).
//!
//! Why: a reconnect storm parses one subscribe per connection, and the JSON
//! tree (a map, its keys, a value per topic) was ~7% of the broker's CPU.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use super::{Request, MAX_HZ, MAX_ID};
use crate::topic::Selector;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    #[serde(borrow)]
    op: &'a str,
    #[serde(default, deserialize_with = "present")]
    id: Option<u64>,
    #[serde(borrow, deserialize_with = "topic_list")]
    topics: Vec<&'a str>,
    #[serde(default, deserialize_with = "present")]
    snapshot: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    max_hz: Option<f64>,
}

/// A field that is there: `null` is not a value of it (the general path
/// refuses `"id":null`; `Option`'s own rule would read it as absent).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The topics array, its vector sized for a dashboard's request at once
/// (JSON gives no length up front; grown by doubling it took three
/// allocations for ten topics).
fn topic_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'de str>, D::Error> {
    struct Topics;
    impl<'de> serde::de::Visitor<'de> for Topics {
        type Value = Vec<&'de str>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of topic strings")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut topics = Vec::with_capacity(seq.size_hint().unwrap_or(0).max(16));
            while let Some(topic) = seq.next_element()? {
                topics.push(topic);
            }
            Ok(topics)
        }
    }
    d.deserialize_seq(Topics)
}

/// The request, when it is of the common kind and valid; `None` otherwise.
pub(super) fn parse(text: &str) -> Option<Request<'_>> {
    // A derived struct reads a JSON array too (its fields in order): the
    // general path refuses those, so only an object comes here.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return None;
    }
    let fields: Fields<'_> = serde_json::from_str(text).ok()?;
    if fields.id.is_some_and(|id| id > MAX_ID)
        || fields.topics.is_empty()
        || !fields.topics.iter().all(|t| Selector::is_valid(t))
    {
        return None;
    }
    let topics = fields.topics.into_iter().map(Cow::Borrowed).collect();
    match fields.op {
        "subscribe" => {
            let max_hz = match fields.max_hz {
                Some(hz) if hz > 0.0 && hz <= MAX_HZ => Some(hz),
                Some(_) => return None,
                None => None,
            };
            Some(Request::Subscribe {
                id: fields.id,
                topics,
                snapshot: fields.snapshot.unwrap_or(true),
                max_hz,
                since: None,
                rewind: None,
            })
        }
        // Whatever `snapshot` and `max_hz` say (typed, as read above).
        "unsubscribe" => Some(Request::Unsubscribe {
            id: fields.id,
            topics,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::parse_any_request;
    use super::parse;

    #[test]
    fn the_common_requests_take_the_fast_path() {
        for text in [
            r#"{"op":"subscribe","topics":["AAPL","FX.*"],"id":1}"#,
            r#"{"topics":["*"],"op":"subscribe","snapshot":false,"max_hz":2.5}"#,
            r#"{"op":"unsubscribe","topics":["AAPL"],"snapshot":true}"#,
        ] {
            let fast = parse(text).expect(text);
            assert_eq!(Ok(fast), parse_any_request(text), "{text}");
        }
        // Left to the general path, which answers them (or refuses them).
        for text in [
            r#"{"op":"subscribe","topics":["AAPL"],"id":null}"#,
            r#"{"op":"subscribe","topics":["AAPL"],"op":"unsubscribe"}"#,
            r#"{"op":"subscribe","topics":["A\u0041PL"]}"#,
            r#"{"op":"subscribe","topics":["AAPL"],"rewind":5}"#,
            r#"{"op":"subscribe","topics":["AAPL"],"extra":1}"#,
            r#"{"op":"subscribe","topics":["AAPL"],"max_hz":0}"#,
            r#"{"op":"subscribe","topics":["AA PL"]}"#,
            r#"{"op":"auth","token":"x"}"#,
            r#"["subscribe",1,["AAPL"]]"#,
            r#" ["unsubscribe",null,["A"],true,2.0]"#,
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    /// Values good, bad, null and escaped.
    fn value() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "1",
            "0",
            "-1",
            "-0",
            "2.5",
            "1e2",
            "1e-50",
            "9007199254740992",
            "9007199254740991",
            "1001",
            "true",
            "false",
            "null",
            r#""subscribe""#,
            r#""unsubscribe""#,
            r#""auth""#,
            r#""sub\u0073cribe""#,
            "[]",
            r#"["AAPL"]"#,
            r#"["AAPL","AAPL","FX.*","*"]"#,
            r#"["A B"]"#,
            r#"["A\u0041"]"#,
            r#"["AAPL",1]"#,
            r#"{"epoch":"e","seqs":{"AAPL":1}}"#,
        ])
        .prop_map(str::to_owned)
    }

    /// Pieces of a request: fields the fast path reads and some it does
    /// not, in any order, some twice.
    fn field() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "op", "topics", "id", "snapshot", "max_hz", "rewind", "since", "token", "other",
        ]);
        (key, value()).prop_map(|(k, v)| format!(r#""{k}":{v}"#))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the fast path answers, the general path answers the
        /// same.
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            fields in prop::collection::vec(field(), 0..7),
            op in prop::sample::select(vec!["subscribe", "unsubscribe"]),
            topics in prop::sample::select(vec![r#"["AAPL"]"#, r#"["FX.*","B"]"#, "[]"]),
        ) {
            // Every text starts from a good base, so the fast path is
            // often taken.
            let mut parts = vec![format!(r#""op":"{op}""#), format!(r#""topics":{topics}"#)];
            parts.extend(fields);
            let text = format!("{{{}}}", parts.join(","));
            if let Some(fast) = parse(&text) {
                prop_assert_eq!(Ok(fast), parse_any_request(&text), "{}", text);
            }
        }

        /// A JSON array is never a request, whatever it holds (a derived
        /// struct would read one).
        #[test]
        fn an_array_never_takes_the_fast_path(values in prop::collection::vec(value(), 0..7)) {
            let text = format!("[{}]", values.join(","));
            prop_assert_eq!(parse(&text), None, "{}", text);
            prop_assert!(parse_any_request(&text).is_err());
        }
    }
}
