use super::*;
use proptest::prelude::*;
use tickwire_protocol::control::{RequestError, Since};

fn ok(query: &str) -> Request<'_> {
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
) -> Request<'static> {
    Request::Subscribe {
        id: None,
        topics: topics.iter().map(|t| t.to_string().into()).collect(),
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
        assert!(!refusal_body(&e).contains("SIGNATURE"));
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
    let body: Value = serde_json::from_str(&refusal_body(&e)).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["code"], "bad_topic");
    assert!(body["message"].as_str().unwrap().contains("A!"));
    assert_eq!(
        serde_json::from_str::<Value>(&refusal_body(&err(""))).unwrap()["code"],
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
        prop::collection::vec(entry(), 1..5).prop_filter("topics= is missing, not [\"\"]", |t| {
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

/// The body the broker answers a refused query with (`http::json_error`).
fn refusal_body(e: &SseQueryError) -> String {
    tickwire_protocol::server::json_error_code(e.code.as_str(), &e.message)
}
