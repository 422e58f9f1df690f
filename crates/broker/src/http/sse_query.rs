//! The query string of `GET /sse?…` (protocol v1.2, "Server-Sent Events
//! fallback"): the stream's subscribe, validated by the very parser that
//! `/ws` uses ([`parse_request`]), and the token. Pure: text in, a request
//! or an error out.
//!
//! # The query
//! `name=value` pairs separated by `&`; a bare `name` has the value `""`,
//! empty pairs (`a=1&&b=2`, a leading or trailing `&`) are skipped. Names
//! are matched exactly as written, not percent-decoded (as `/ws` matches
//! `format`). Parameters:
//!
//! | name | value |
//! |---|---|
//! | `topics` | required, non-empty: entries separated by `,` (the subscribe syntax) |
//! | `snapshot` | `true` or `false` (default `true`) |
//! | `max_hz` | a decimal number: digits, optionally `.` and more digits (`4`, `0.5`, `0010` = `10`); no sign, no exponent |
//! | `rewind` | digits (`64`) |
//! | `since` | the subscribe's `since` object as JSON (`{"epoch":"…","seqs":{"AAPL":1041}}`) |
//! | `token` | a JWT (the `auth` request's token) |
//!
//! Every value is percent-decoded (`%XX`, hex digits of either case) and
//! must then be UTF-8. `+` stays a literal `+`, not a space: this is an
//! RFC 3986 query, not an HTML form, and no value needs a space (topics and
//! JWTs cannot hold one; JSON needs none between its tokens). Browsers'
//! `encodeURIComponent` produces exactly this; `URLSearchParams` does too
//! as long as no value holds a space. `topics` is split on its raw `,`
//! *before* decoding, so `%2C` is a comma inside an entry (where it is a
//! bad topic), and `FX.%2A` is the pattern `FX.*`.
//!
//! Any other parameter is ignored, whatever it holds (cache busters like
//! `_=123`, `delta=1` which the transport reads itself).
//!
//! # The rules
//! The subscribe is built as the JSON text the WebSocket client would send
//! (`{"op":"subscribe","topics":[…],…,"since":…}`, without `id`) and given
//! to [`parse_request`], so every rule and error code is `/ws`'s: a bad
//! topic (an empty entry, as in `A,,B`, included) → `bad_topic`; `max_hz`
//! outside (0, 1000], `rewind` outside 1..=1024, `rewind` with
//! `snapshot=false`, a malformed `since` (more than 1,024 keys, a key no
//! entry matches, …) → `bad_request`. Before that, this module refuses
//! with `bad_request`: `topics` missing or empty, a parameter of the table
//! given twice, bad percent-encoding (`%` not followed by two hex digits)
//! or a value that is not UTF-8 once decoded (in any parameter of the
//! table), `snapshot` other than `true`/`false`, a `max_hz`/`rewind` that
//! is not in the number syntax above (so `1e3` is refused where `/ws`
//! takes it), `since` that is not one JSON value, a `token` over
//! [`MAX_TOKEN_LEN`] bytes. No error message ever holds the token.
//!
//! # Cost
//! Linear in the query's length (which the request-head limit bounds, 8 KiB
//! by default): one split, each value decoded once, the JSON parsed twice
//! (`since` on its own, then the whole request), and `since` keys matched
//! against the entries in O(keys × 64) (see [`parse_request`]).

// Nothing routes `/sse` through this module yet in the lib build.
#![cfg_attr(not(test), allow(dead_code))]

use serde_json::{Map, Value};
use tickwire_protocol::control::{parse_request, ErrorCode, Request, MAX_TOKEN_LEN};

/// What `/sse?…` asks for: the stream's subscribe, as the WebSocket JSON
/// protocol would carry it (`Request::Subscribe`, `id: None`), and the
/// token if the query has one (`token=` gives `Some("")`, a token that does
/// not verify, as an empty `auth` token).
#[derive(Clone, Debug, PartialEq)]
pub struct SseQuery {
    pub request: Request,
    pub token: Option<String>,
}

/// Why a query is refused: answered with `400` and [`SseQueryError::body`].
/// `code` is `BadRequest` or `BadTopic`; `message` never holds the token.
#[derive(Clone, Debug, PartialEq)]
pub struct SseQueryError {
    pub code: ErrorCode,
    pub message: String,
}

impl SseQueryError {
    /// The small JSON body of the `400`, shaped like the WebSocket `error`
    /// event: `{"type":"error","code":"bad_topic","message":"…"}`.
    pub fn body(&self) -> String {
        serde_json::json!({
            "type": "error",
            "code": self.code.as_str(),
            "message": self.message,
        })
        .to_string()
    }
}

fn bad(message: impl Into<String>) -> SseQueryError {
    SseQueryError {
        code: ErrorCode::BadRequest,
        message: message.into(),
    }
}

/// The raw (still encoded) values of the parameters this module reads.
#[derive(Default)]
struct Raw<'q> {
    topics: Option<&'q str>,
    snapshot: Option<&'q str>,
    max_hz: Option<&'q str>,
    rewind: Option<&'q str>,
    since: Option<&'q str>,
    token: Option<&'q str>,
}

impl<'q> Raw<'q> {
    fn slot(&mut self, name: &str) -> Option<&mut Option<&'q str>> {
        Some(match name {
            "topics" => &mut self.topics,
            "snapshot" => &mut self.snapshot,
            "max_hz" => &mut self.max_hz,
            "rewind" => &mut self.rewind,
            "since" => &mut self.since,
            "token" => &mut self.token,
            _ => return None,
        })
    }

    fn split(query: &'q str) -> Result<Raw<'q>, SseQueryError> {
        let mut raw = Raw::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Unknown parameters are ignored (their names may be anything;
            // only ours are ever quoted in a message).
            let Some(slot) = raw.slot(name) else {
                continue;
            };
            if slot.is_some() {
                return Err(bad(format!("query parameter {name:?} given twice")));
            }
            *slot = Some(value);
        }
        Ok(raw)
    }
}

/// Parses the query of `GET /sse` (the raw part after `?`, `""` when there
/// is none): see the module's documentation for the rules.
pub fn parse_sse_query(query: &str) -> Result<SseQuery, SseQueryError> {
    let raw = Raw::split(query)?;
    let topics = match raw.topics {
        None | Some("") => return Err(bad("missing \"topics\" query parameter")),
        Some(t) => t
            .split(',')
            .map(|entry| decode(entry).map(Value::String))
            .collect::<Option<Vec<Value>>>()
            .ok_or_else(|| not_utf8("topics"))?,
    };
    let mut obj = Map::new();
    obj.insert("op".into(), Value::String("subscribe".into()));
    obj.insert("topics".into(), Value::Array(topics));
    if let Some(v) = raw.snapshot {
        let snapshot = match decode(v).ok_or_else(|| not_utf8("snapshot"))?.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(bad("\"snapshot\" must be true or false")),
        };
        obj.insert("snapshot".into(), Value::Bool(snapshot));
    }
    if let Some(v) = raw.max_hz {
        let text = decode(v).ok_or_else(|| not_utf8("max_hz"))?;
        let n = number(&text, true).ok_or_else(|| {
            bad("\"max_hz\" must be a decimal number in (0, 1000], e.g. 4 or 0.5")
        })?;
        obj.insert("max_hz".into(), Value::Number(n));
    }
    if let Some(v) = raw.rewind {
        let text = decode(v).ok_or_else(|| not_utf8("rewind"))?;
        let n =
            number(&text, false).ok_or_else(|| bad("\"rewind\" must be an integer in 1..=1024"))?;
        obj.insert("rewind".into(), Value::Number(n));
    }
    let token = match raw.token {
        None => None,
        Some(v) => {
            let token = decode(v).ok_or_else(|| not_utf8("token"))?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(bad(format!(
                    "\"token\" must be at most {MAX_TOKEN_LEN} bytes"
                )));
            }
            Some(token)
        }
    };
    let mut text = serde_json::to_string(&obj).map_err(|e| bad(e.to_string()))?;
    if let Some(v) = raw.since {
        let since = decode(v).ok_or_else(|| not_utf8("since"))?;
        // One complete JSON value (surrounding whitespace allowed), so
        // splicing it in as a member cannot change the request's shape.
        // Spliced as text, not re-serialized: `parse_request` reads the
        // order of `since.seqs`' keys from the text.
        serde_json::from_str::<Value>(&since)
            .map_err(|e| bad(format!("\"since\" is not valid JSON: {e}")))?;
        if text.pop() != Some('}') {
            return Err(bad("internal: request is not a JSON object"));
        }
        text.push_str(",\"since\":");
        text.push_str(&since);
        text.push('}');
    }
    match parse_request(&text) {
        Ok(request @ Request::Subscribe { .. }) => Ok(SseQuery { request, token }),
        Ok(_) => Err(bad("internal: not a subscribe")),
        Err(e) => Err(SseQueryError {
            code: e.code,
            message: e.message,
        }),
    }
}

fn not_utf8(name: &str) -> SseQueryError {
    bad(format!(
        "{name:?} is not valid percent-encoded UTF-8 (\"%\" must start \"%XX\")"
    ))
}

/// Percent-decodes `raw` (`%XX`, either case; `+` stays `+`). `None` for a
/// `%` not followed by two hex digits, or bytes that are not UTF-8.
fn decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&h| hex_value(h))?;
            let lo = bytes.get(i + 2).and_then(|&l| hex_value(l))?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `DIGITS` (or `DIGITS.DIGITS` when `fraction`) as the JSON number
/// serde_json reads from the same digits, leading zeros dropped (JSON has
/// none), so the range check in [`parse_request`] sees exactly what `/ws`
/// would. `None` for anything else, and for a number beyond f64.
fn number(text: &str, fraction: bool) -> Option<serde_json::Number> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) if fraction => (int, Some(frac)),
        Some(_) => return None,
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    let int = match int.trim_start_matches('0') {
        "" => "0",
        int => int,
    };
    let json = match frac {
        Some(frac) => format!("{int}.{frac}"),
        None => int.to_owned(),
    };
    serde_json::from_str(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tickwire_protocol::control::{RequestError, Since};

    fn ok(query: &str) -> Request {
        match parse_sse_query(query) {
            Ok(q) => q.request,
            Err(e) => panic!("{query:?}: {e:?}"),
        }
    }

    fn err(query: &str) -> SseQueryError {
        match parse_sse_query(query) {
            Ok(q) => panic!("{query:?} parsed: {q:?}"),
            Err(e) => e,
        }
    }

    fn code(query: &str) -> ErrorCode {
        err(query).code
    }

    fn subscribe(
        topics: &[&str],
        snapshot: bool,
        max_hz: Option<f64>,
        since: Option<Since>,
        rewind: Option<u16>,
    ) -> Request {
        Request::Subscribe {
            id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            snapshot,
            max_hz,
            since,
            rewind,
        }
    }

    /// Percent-encodes every byte but RFC 3986's unreserved ones.
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    #[test]
    fn topics_alone_is_a_default_subscribe() {
        assert_eq!(
            ok("topics=AAPL,FX.*"),
            subscribe(&["AAPL", "FX.*"], true, None, None, None)
        );
        let q = parse_sse_query("topics=AAPL").unwrap();
        assert_eq!(q.token, None);
    }

    #[test]
    fn every_parameter() {
        let since = r#"{"epoch":"9f3b2c71a0d4e815","seqs":{"FX.EURUSD":77,"AAPL":1041}}"#;
        let q = parse_sse_query(&format!(
            "topics=AAPL,FX.*&snapshot=true&max_hz=4&rewind=10&since={}&token=a.b.c",
            enc(since)
        ))
        .unwrap();
        assert_eq!(
            q.request,
            subscribe(
                &["AAPL", "FX.*"],
                true,
                Some(4.0),
                Some(Since {
                    epoch: "9f3b2c71a0d4e815".into(),
                    // As written, not sorted.
                    seqs: vec![("FX.EURUSD".into(), 77), ("AAPL".into(), 1041)],
                }),
                Some(10),
            )
        );
        assert_eq!(q.token.as_deref(), Some("a.b.c"));
        // since written raw (not encoded) works too: only `&` and `%` matter.
        assert!(parse_sse_query(&format!("topics=AAPL,FX.*&since={since}")).is_ok());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            ok("topics=FX.%2A,%41APL"),
            subscribe(&["FX.*", "AAPL"], true, None, None, None)
        );
        assert_eq!(
            ok("topics=fx.%2a"),
            subscribe(&["fx.*"], true, None, None, None)
        );
        // An encoded comma is part of its entry, not a separator.
        let e = err("topics=AAPL%2CMSFT");
        assert_eq!(e.code, ErrorCode::BadTopic);
        assert!(e.message.contains("AAPL,MSFT"), "{}", e.message);
        assert_eq!(code("topics=AAPL,A%2CB"), ErrorCode::BadTopic);
        // '+' is literal (and not a topic byte), never a space.
        let e = err("topics=A+B");
        assert_eq!(e.code, ErrorCode::BadTopic);
        assert!(e.message.contains("A+B"), "{}", e.message);
        let q = parse_sse_query("topics=A&token=x+y%2Bz").unwrap();
        assert_eq!(q.token.as_deref(), Some("x+y+z"));
        // Every parameter of the table is decoded.
        let q = parse_sse_query("topics=A&snapshot=f%61lse&max_hz=0%2E5&rewind=%31").unwrap_err();
        assert_eq!(q.code, ErrorCode::BadRequest); // rewind with snapshot=false
        assert_eq!(
            ok("topics=A&snapshot=tru%65&max_hz=0%2E5&rewind=%31"),
            subscribe(&["A"], true, Some(0.5), None, Some(1))
        );
        // UTF-8 decodes (and is then a bad topic).
        let e = err("topics=%C3%A9");
        assert_eq!(e.code, ErrorCode::BadTopic);
        assert!(e.message.contains('é'), "{}", e.message);
    }

    #[test]
    fn bad_percent_encoding_and_non_utf8() {
        for q in [
            "topics=A%",
            "topics=A%4",
            "topics=A%G1",
            "topics=A%%41",
            "topics=%FF",
            "topics=%C3",
            "topics=%ED%A0%80", // a surrogate
            "topics=A&snapshot=%",
            "topics=A&max_hz=%zz",
            "topics=A&rewind=1%",
            "topics=A&since=%7B%",
            "topics=A&since=%FF",
            "topics=A&token=%FF",
            "topics=A&token=%",
        ] {
            let e = err(q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("percent-encoded"), "{q}: {}", e.message);
        }
        // Unknown parameters are not decoded at all.
        assert!(parse_sse_query("topics=A&x=%&%zz=%FF").is_ok());
    }

    #[test]
    fn empty_and_missing_topics() {
        for q in [
            "",
            "&",
            "&&&",
            "topics",
            "topics=",
            "snapshot=true",
            "token=abc",
            "Topics=A",
            "top%69cs=A",
            "topics%3DA",
        ] {
            let e = err(q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("topics"), "{q}: {}", e.message);
        }
        // An empty entry among others is a bad topic, as "" in a /ws array.
        for q in [
            "topics=,",
            "topics=A,",
            "topics=,A",
            "topics=A,,B",
            "topics=%20",
        ] {
            assert_eq!(code(q), ErrorCode::BadTopic, "{q}");
        }
    }

    #[test]
    fn topic_syntax_is_the_subscribe_one() {
        let long = "A".repeat(64);
        assert!(parse_sse_query(&format!("topics={long}")).is_ok());
        assert_eq!(code(&format!("topics={long}A")), ErrorCode::BadTopic);
        let pat = format!("{}*", "A".repeat(63));
        assert!(parse_sse_query(&format!("topics={pat}")).is_ok());
        assert_eq!(code(&format!("topics=A{pat}")), ErrorCode::BadTopic);
        assert_eq!(
            ok("topics=*,a:b/c_d-e.f,AAPL,AAPL"),
            subscribe(
                &["*", "a:b/c_d-e.f", "AAPL", "AAPL"],
                true,
                None,
                None,
                None
            )
        );
        for q in [
            "topics=A*B",
            "topics=**",
            "topics=A%20B",
            "topics=A%22",
            "topics=A;B",
        ] {
            assert_eq!(code(q), ErrorCode::BadTopic, "{q}");
        }
    }

    #[test]
    fn duplicate_parameters() {
        for q in [
            "topics=A&topics=B",
            "topics=A&topics=A",
            "topics=A&snapshot=true&snapshot=true",
            "topics=A&max_hz=1&max_hz=2",
            "topics=A&rewind=1&rewind=1",
            "topics=A&since={}&since={}",
            "topics=A&token=x&token=y",
            "topics=A&token&token",
            "topics&topics=A",
        ] {
            let e = err(q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("twice"), "{q}: {}", e.message);
        }
        // Unknown ones may repeat.
        assert!(parse_sse_query("topics=A&_=1&_=2&delta=1&delta=1&x").is_ok());
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        assert_eq!(
            ok("_=1732345678901&topics=A&format=json&delta=1&id=7&&x&y=%&=z&"),
            subscribe(&["A"], true, None, None, None)
        );
    }

    #[test]
    fn snapshot() {
        assert_eq!(
            ok("topics=A&snapshot=false"),
            subscribe(&["A"], false, None, None, None)
        );
        assert_eq!(
            ok("topics=A&snapshot=true"),
            subscribe(&["A"], true, None, None, None)
        );
        for v in [
            "",
            "1",
            "0",
            "True",
            "FALSE",
            "yes",
            "true%20",
            "%22true%22",
        ] {
            let q = format!("topics=A&snapshot={v}");
            let e = err(&q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("snapshot"), "{q}: {}", e.message);
        }
        assert_eq!(code("topics=A&snapshot"), ErrorCode::BadRequest);
    }

    #[test]
    fn max_hz_limits() {
        let hz = |v: &str| match ok(&format!("topics=A&max_hz={v}")) {
            Request::Subscribe { max_hz, .. } => max_hz,
            _ => unreachable!(),
        };
        assert_eq!(hz("1000"), Some(1000.0));
        assert_eq!(hz("1000.0"), Some(1000.0));
        assert_eq!(hz("0001000"), Some(1000.0));
        assert_eq!(hz("0.5"), Some(0.5));
        assert_eq!(hz("00.5"), Some(0.5));
        assert_eq!(hz("4"), Some(4.0));
        assert_eq!(hz("0.001"), Some(0.001));
        // What /ws's JSON number gives: rounds to 1000 exactly.
        assert_eq!(hz("1000.00000000000000001"), Some(1000.0));
        for v in [
            "1000.1",
            "1000.0000001",
            "1001",
            "0",
            "0.0",
            "000",
            "-1",
            "+1",
            "1e3",
            "1E3",
            ".5",
            "5.",
            "1.2.3",
            "",
            "inf",
            "NaN",
            "0x10",
            " 1",
            "1%20",
            "\"1\"",
            "1,2",
        ] {
            let q = format!("topics=A&max_hz={v}");
            let e = err(&q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("max_hz"), "{q}: {}", e.message);
        }
        // Beyond f64 and beyond u64.
        assert_eq!(
            code(&format!("topics=A&max_hz={}", "9".repeat(400))),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code("topics=A&max_hz=99999999999999999999999"),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn rewind_limits() {
        let rewind = |v: &str| match ok(&format!("topics=A&rewind={v}")) {
            Request::Subscribe { rewind, .. } => rewind,
            _ => unreachable!(),
        };
        assert_eq!(rewind("1"), Some(1));
        assert_eq!(rewind("1024"), Some(1024));
        assert_eq!(rewind("0064"), Some(64));
        for v in [
            "1025",
            "0",
            "00",
            "-1",
            "1.0",
            "1.5",
            "1e2",
            "",
            "x",
            "65536",
            "18446744073709551616",
            "99999999999999999999999999999999",
        ] {
            let q = format!("topics=A&rewind={v}");
            let e = err(&q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("rewind"), "{q}: {}", e.message);
        }
        // rewind replaces the snapshot: not with snapshot=false, either order.
        for q in [
            "topics=A&rewind=5&snapshot=false",
            "topics=A&snapshot=false&rewind=5",
        ] {
            let e = err(q);
            assert_eq!(e.code, ErrorCode::BadRequest, "{q}");
            assert!(e.message.contains("rewind"), "{q}: {}", e.message);
        }
        assert!(parse_sse_query("topics=A&snapshot=true&rewind=5").is_ok());
    }

    fn since_json(keys: &[String]) -> String {
        let seqs: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
        format!("{{\"epoch\":\"e\",\"seqs\":{{{}}}}}", seqs.join(","))
    }

    #[test]
    fn since_key_limit() {
        let keys = |n: usize| (0..n).map(|i| format!("K{i}")).collect::<Vec<_>>();
        let at = since_json(&keys(1024));
        match ok(&format!("topics=*&since={}", enc(&at))) {
            Request::Subscribe { since, .. } => {
                let since = since.unwrap();
                assert_eq!(since.seqs.len(), 1024);
                assert_eq!(since.seqs[0].0, "K0");
                assert_eq!(since.seqs[1023].0, "K1023");
            }
            _ => unreachable!(),
        }
        // Raw, unencoded JSON works too.
        assert!(parse_sse_query(&format!("topics=K*&since={at}")).is_ok());
        let over = since_json(&keys(1025));
        let e = err(&format!("topics=*&since={}", enc(&over)));
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("1024"), "{}", e.message);
    }

    #[test]
    fn since_rules_are_the_subscribe_ones() {
        let q = |since: &str, extra: &str| format!("topics=AAPL,FX.*{extra}&since={}", enc(since));
        // A key matched by no entry; a pattern key; a bad value; bad shapes.
        for since in [
            r#"{"epoch":"e","seqs":{"MSFT":1}}"#,
            r#"{"epoch":"e","seqs":{"FX.*":1}}"#,
            r#"{"epoch":"e","seqs":{"AAPL":-1}}"#,
            r#"{"epoch":"e","seqs":{"AAPL":1.5}}"#,
            r#"{"epoch":"e","seqs":{"AAPL":9007199254740992}}"#,
            r#"{"epoch":1,"seqs":{}}"#,
            r#"{"seqs":{}}"#,
            r#"{"epoch":"e"}"#,
            r#"{"epoch":"e","seqs":[]}"#,
            r#"[]"#,
            r#"1"#,
            r#""x""#,
            r#"null"#,
        ] {
            let e = err(&q(since, ""));
            assert_eq!(e.code, ErrorCode::BadRequest, "{since}: {}", e.message);
        }
        // Not one JSON value: refused here, before parse_request.
        for since in [
            "",
            " ",
            "{",
            r#"{"epoch":"e","seqs":{}},"topics":["X"]"#,
            r#"{"epoch":"e","seqs":{}}}"#,
            r#"{} {}"#,
            r#"{"epoch":"e","seqs":{}}, "op":"unsubscribe""#,
        ] {
            let e = err(&q(since, ""));
            assert_eq!(e.code, ErrorCode::BadRequest, "{since:?}");
            assert!(e.message.contains("since"), "{since:?}: {}", e.message);
        }
        // Good: keys under the pattern, at MAX_SEQ, whitespace around.
        assert_eq!(
            ok(&q(
                r#" {"epoch":"e","seqs":{"FX.EURUSD":9007199254740991,"AAPL":0}} "#,
                ""
            )),
            subscribe(
                &["AAPL", "FX.*"],
                true,
                None,
                Some(Since {
                    epoch: "e".into(),
                    seqs: vec![("FX.EURUSD".into(), (1 << 53) - 1), ("AAPL".into(), 0)],
                }),
                None
            )
        );
        // since with rewind and max_hz.
        assert!(parse_sse_query(&q(r#"{"epoch":"e","seqs":{}}"#, "&rewind=3&max_hz=2")).is_ok());
        // A bad topic beside a good since is bad_topic.
        assert_eq!(
            code(&format!(
                "topics=A,B!&since={}",
                enc(r#"{"epoch":"e","seqs":{"A":1}}"#)
            )),
            ErrorCode::BadTopic
        );
    }

    #[test]
    fn the_token_is_never_in_a_message() {
        const T: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.SIGNATURE";
        let cases = [
            format!("token={T}"),
            format!("token={T}&topics="),
            format!("token={T}&topics=A&token={T}"),
            format!("topics=A&token={T}&token={T}%"),
            format!("topics=A&token={T}%"),
            format!("topics=A&token={T}%FF"),
            format!("topics=A,B!&token={T}"),
            format!("topics=A&token={T}&max_hz=0"),
            format!("topics=A&token={T}&since=%7B"),
            format!("topics=A&token={}", T.repeat(400)),
        ];
        for q in &cases {
            let e = err(q);
            assert!(!e.message.contains(T), "{q}: {}", e.message);
            assert!(!e.message.contains("SIGNATURE"), "{q}: {}", e.message);
            assert!(!e.body().contains("SIGNATURE"));
        }
        let q = parse_sse_query(&format!("topics=A&token={T}")).unwrap();
        assert_eq!(q.token.as_deref(), Some(T));
        // The empty token is a token (one that does not verify).
        let q = parse_sse_query("topics=A&token=").unwrap();
        assert_eq!(q.token.as_deref(), Some(""));
        let q = parse_sse_query("topics=A&token").unwrap();
        assert_eq!(q.token.as_deref(), Some(""));
        // At the auth request's limit.
        let long = "a".repeat(MAX_TOKEN_LEN);
        assert!(parse_sse_query(&format!("topics=A&token={long}")).is_ok());
    }

    #[test]
    fn error_body() {
        let e = err("topics=A!");
        let body: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["code"], "bad_topic");
        assert!(body["message"].as_str().unwrap().contains("A!"));
        assert_eq!(
            serde_json::from_str::<Value>(&err("").body()).unwrap()["code"],
            "bad_request"
        );
    }

    /// Worst cases at the head limit: 8 KiB of entries, separators or
    /// since keys; linear, so each takes microseconds.
    #[test]
    fn large_queries() {
        let commas = format!("topics={}", ",".repeat(8192));
        assert_eq!(code(&commas), ErrorCode::BadTopic);
        let many = format!("topics={}", vec!["A"; 4096].join(","));
        assert!(parse_sse_query(&many).is_ok());
        let amps = format!("{}topics=A", "&".repeat(8192));
        assert!(parse_sse_query(&amps).is_ok());
        let unknown = format!("{}topics=A", "_=1&".repeat(2048));
        assert!(parse_sse_query(&unknown).is_ok());
        let encoded = format!("topics={}", "%41".repeat(64));
        assert!(parse_sse_query(&encoded).is_ok());
        let nested = format!("topics=A&since={}{}", "[".repeat(4096), "]".repeat(4096));
        assert_eq!(code(&nested), ErrorCode::BadRequest);
    }

    // ---- properties ----

    /// A topic-ish entry: mostly valid topics and patterns, sometimes not.
    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[A-Za-z0-9._:/-]{1,8}",
            2 => "[A-Z.]{0,6}\\*",
            1 => "[A-Za-z0-9._:/*, %+\"é-]{0,6}",
            1 => Just("A".repeat(65)),
        ]
    }

    /// A decimal number as the query writes it and as JSON writes it.
    fn decimal(fraction: bool) -> impl Strategy<Value = (String, String)> {
        (
            prop_oneof![
                0u64..3,
                0u64..1100,
                Just(1000u64),
                Just(1024),
                Just(1025),
                any::<u64>()
            ],
            if fraction {
                proptest::option::of("[0-9]{1,8}").boxed()
            } else {
                Just(None).boxed()
            },
            0usize..3,
        )
            .prop_map(|(int, frac, zeros)| {
                let json = match &frac {
                    Some(f) => format!("{int}.{f}"),
                    None => int.to_string(),
                };
                (format!("{}{json}", "0".repeat(zeros)), json)
            })
    }

    fn since_strategy() -> impl Strategy<Value = (String, Vec<(String, u64)>)> {
        (
            "[0-9a-f]{16}|.{0,4}",
            prop::collection::vec(
                (
                    prop_oneof![4 => "[A-Z.]{1,6}", 1 => "[A-Za-z*é ]{0,3}"],
                    prop_oneof![0u64..100, Just((1 << 53) - 1), Just(1 << 53)],
                ),
                0..6,
            ),
        )
    }

    #[derive(Debug, Clone)]
    struct Input {
        topics: Vec<String>,
        snapshot: Option<bool>,
        max_hz: Option<(String, String)>,
        rewind: Option<(String, String)>,
        since: Option<(String, Vec<(String, u64)>)>,
        token: Option<String>,
        encode_all: bool,
        junk: bool,
    }

    fn input() -> impl Strategy<Value = Input> {
        (
            prop::collection::vec(entry(), 1..5)
                .prop_filter("topics= is missing, not [\"\"]", |t| {
                    !(t.len() == 1 && t[0].is_empty())
                }),
            proptest::option::of(any::<bool>()),
            proptest::option::of(decimal(true)),
            proptest::option::of(decimal(false)),
            proptest::option::of(since_strategy()),
            proptest::option::of("[A-Za-z0-9._=+/-]{0,20}"),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(topics, snapshot, max_hz, rewind, since, token, encode_all, junk)| Input {
                    topics,
                    snapshot,
                    max_hz,
                    rewind,
                    since,
                    token,
                    encode_all,
                    junk,
                },
            )
    }

    /// The query a client would send, and the `/ws` subscribe it stands for.
    fn render(input: &Input) -> (String, String) {
        // Only what must be encoded, or everything but the unreserved bytes.
        let e = |s: &str| {
            if input.encode_all {
                enc(s)
            } else {
                s.replace('%', "%25")
                    .replace('&', "%26")
                    .replace(',', "%2C")
                    .replace('+', "%2B")
            }
        };
        let mut params = Vec::new();
        let mut json = String::from("{\"op\":\"subscribe\",\"topics\":");
        json.push_str(&serde_json::to_string(&input.topics).unwrap());
        let topics: Vec<String> = input.topics.iter().map(|t| e(t)).collect();
        params.push(format!("topics={}", topics.join(",")));
        if let Some(s) = input.snapshot {
            params.push(format!("snapshot={s}"));
            json.push_str(&format!(",\"snapshot\":{s}"));
        }
        if let Some((q, j)) = &input.max_hz {
            params.push(format!("max_hz={q}"));
            json.push_str(&format!(",\"max_hz\":{j}"));
        }
        if let Some((q, j)) = &input.rewind {
            params.push(format!("rewind={q}"));
            json.push_str(&format!(",\"rewind\":{j}"));
        }
        if let Some((epoch, seqs)) = &input.since {
            let mut s = format!(
                "{{\"epoch\":{},\"seqs\":{{",
                serde_json::to_string(epoch).unwrap()
            );
            for (i, (k, v)) in seqs.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!("{}:{v}", serde_json::to_string(k).unwrap()));
            }
            s.push_str("}}");
            params.push(format!("since={}", e(&s)));
            json.push_str(&format!(",\"since\":{s}"));
        }
        if let Some(t) = &input.token {
            params.push(format!("token={}", e(t)));
        }
        if input.junk {
            params.push("_=1732345678901".into());
            params.reverse();
        }
        json.push('}');
        (params.join("&"), json)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_query_never_panics(q in ".{0,200}") {
            let _ = parse_sse_query(&q);
        }

        #[test]
        fn query_like_text_never_panics(q in "([a-z_]{0,7}=?[A-Za-z0-9.*,%{}\":+\\[\\]-]{0,20}&?){0,8}") {
            let _ = parse_sse_query(&q);
            let _ = parse_sse_query(&format!("topics=A&{q}"));
        }

        /// For queries a client would send, the answer is `/ws`'s for the
        /// same subscribe: the same request, or the same error code.
        #[test]
        fn agrees_with_the_websocket_subscribe(input in input()) {
            let (query, json) = render(&input);
            let ws: Result<Request, RequestError> = parse_request(&json);
            match (parse_sse_query(&query), ws) {
                (Ok(sse), Ok(ws)) => {
                    prop_assert_eq!(sse.request, ws);
                    prop_assert_eq!(sse.token, input.token.clone());
                }
                (Err(sse), Err(ws)) => {
                    prop_assert_eq!(sse.code, ws.code, "{} / {}: {} / {}", query, json, sse.message, ws.message);
                }
                (sse, ws) => prop_assert!(false, "{} → {:?}\n{} → {:?}", query, sse, json, ws),
            }
        }

        /// No error message holds the token, whatever else is wrong.
        #[test]
        fn no_message_holds_the_token(q in "([a-z_]{0,7}=?[A-Za-z0-9.*,%{}\":+-]{0,12}&?){0,6}", bad in any::<bool>()) {
            // '~' is not in the generated text: only the token holds it.
            const T: &str = "tok.~SECRET~.sig";
            let token = if bad { format!("{T}%") } else { T.to_owned() };
            for query in [format!("token={token}&{q}"), format!("{q}&token={token}"), format!("token={T}&{q}&token={T}")] {
                if let Err(e) = parse_sse_query(&query) {
                    prop_assert!(!e.message.contains("~SECRET~"), "{}: {}", query, e.message);
                }
            }
        }
    }
}
