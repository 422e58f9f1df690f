//! `GET /sse` (v1.2) end to end: a raw HTTP client over plain TCP and TLS
//! reads the event stream as a browser's `EventSource` would — events,
//! ids, `Last-Event-ID` resume, and the errors before any event.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common;
use crate::entitlements::{start_auth, token, unix_now};
use common::*;

/// One server-sent event: its `id:` (if any) and its `data:` JSON.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    data: Value,
}

/// An open stream: the response head, then events read one at a time.
struct Stream {
    s: Raw,
    head: String,
    buf: Vec<u8>,
}

impl Stream {
    fn open(target: &Target, query: &str, headers: &str) -> Stream {
        Stream::open_version(target, query, headers, "1.1")
    }

    fn open_version(target: &Target, query: &str, headers: &str, version: &str) -> Stream {
        let mut s = target.stream();
        write!(s, "GET /sse?{query} HTTP/{version}\r\nHost: t\r\nAccept: text/event-stream\r\n{headers}\r\n").unwrap();
        s.flush().unwrap();
        let head = read_head(&mut s);
        Stream {
            s,
            head,
            buf: Vec::new(),
        }
    }

    /// The next event (comments skipped); None at the end of the stream.
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                let (mut id, mut data) = (None, None);
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).expect("JSON data"));
                    }
                }
                match data {
                    Some(data) => return Some(Event { id, data }),
                    None => continue, // a comment
                }
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn quote(&mut self) -> Event {
        let e = self.next().expect("an event");
        assert_eq!(e.data["type"], "quote", "{e:?}");
        e
    }
}

/// The whole response to a request refused before any event.
fn refused(target: &Target, query: &str, headers: &str) -> (u16, Value) {
    let mut s = target.stream();
    write!(s, "GET /sse?{query} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").unwrap();
    s.flush().unwrap();
    let head = read_head(&mut s);
    // A stream would not end (its keepalive resets any read timeout).
    assert!(!head.starts_with("HTTP/1.1 200"), "not refused: {query}");
    assert!(
        head.contains("Content-Length:") && head.contains("Connection: close"),
        "{head}"
    );
    assert!(head.contains("application/json"), "{head}");
    let mut body = Vec::new();
    let _ = s.read_to_end(&mut body);
    let status = head[9..12].parse().unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    (
        status,
        serde_json::from_str(body.trim()).expect("a JSON body"),
    )
}

#[test]
fn events_are_the_websocket_json_with_ids_over_plain_and_tls_and_http_1_0() {
    for over in BOTH {
        for version in ["1.1", "1.0"] {
            let target = Target::start(over);
            let mut stream =
                Stream::open_version(&target, "topics=E.A,E.%2A&max_hz=1000", "", version);
            let head = &stream.head;
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            for h in [
                "Content-Type: text/event-stream",
                "Cache-Control: no-cache",
                "X-Accel-Buffering: no",
            ] {
                assert!(head.contains(h), "{h} in {head}");
            }
            assert!(
                !head.contains("Content-Length") && !head.contains("chunked"),
                "{head}"
            );
            let ack = stream.next().expect("the ack");
            assert_eq!(ack.data["type"], "subscribed");
            assert_eq!(ack.data["topics"], json!(["E.A", "E.*"]));
            assert!(ack.id.is_none());
            let mut p = publisher(&target.broker);
            publish(&mut p, quote("E.A", 10.0));
            publish(&mut p, quote("E.B", 11.0));
            let (a, b) = (stream.quote(), stream.quote());
            assert_eq!(
                (a.data["topic"].as_str(), a.data["seq"].as_u64()),
                (Some("E.A"), Some(1))
            );
            assert_eq!(b.data["topic"], "E.B");
            let (ida, idb) = (a.id.expect("an id"), b.id.expect("an id"));
            assert!(ida.len() <= 64 && ida != idb, "{ida} {idb}");
            assert!(wait_until(|| metric(
                &target.broker,
                "tickwire_connections{kind=\"sse\"}"
            ) == 1.0));
            drop(stream);
            assert!(
                wait_until(|| metric(&target.broker, "tickwire_connections{kind=\"sse\"}") == 0.0),
                "{over:?} {version}"
            );
        }
    }
}

/// `Last-Event-ID` (a browser's `EventSource` reconnecting by itself)
/// resumes every topic of the stream: exactly the quotes after that event,
/// then live ones; an id of another broker gets every topic unrecovered.
#[test]
fn last_event_id_resumes_every_topic_without_gap_or_duplicate() {
    let target = Target::start(Over::Plain);
    let mut p = publisher(&target.broker);
    let mut first = Stream::open(&target, "topics=L.*&snapshot=false", "");
    assert_eq!(first.next().unwrap().data["type"], "subscribed");
    for i in 0..6 {
        publish(&mut p, quote(["L.A", "L.B"][i % 2], i as f64));
    }
    let mut last_id = None;
    for _ in 0..6 {
        last_id = first.quote().id;
    }
    drop(first); // cut after L.A 3, L.B 3
    for i in 0..10 {
        publish(&mut p, quote(["L.A", "L.B", "L.C"][i % 3], i as f64));
    }
    assert!(wait_until(|| metric(
        &target.broker,
        "tickwire_quotes_in_total"
    ) == 16.0));
    let id = last_id.expect("an id");
    let mut second = Stream::open(
        &target,
        "topics=L.*&snapshot=false",
        &format!("Last-Event-ID: {id}\r\n"),
    );
    let ack = second.next().unwrap().data;
    assert_eq!(
        (ack["type"].as_str(), ack["recovered"].as_bool()),
        (Some("subscribed"), Some(true)),
        "{ack}"
    );
    let mut got: Vec<(String, u64)> = Vec::new();
    for _ in 0..10 {
        let q = second.quote().data;
        got.push((
            q["topic"].as_str().unwrap().to_owned(),
            q["seq"].as_u64().unwrap(),
        ));
    }
    got.sort();
    let want: Vec<(String, u64)> = [
        ("L.A", 4),
        ("L.A", 5),
        ("L.A", 6),
        ("L.A", 7),
        ("L.B", 4),
        ("L.B", 5),
        ("L.B", 6),
        ("L.C", 1),
        ("L.C", 2),
        ("L.C", 3),
    ]
    .iter()
    .map(|(t, s)| (t.to_string(), *s))
    .collect();
    assert_eq!(got, want);
    publish(&mut p, quote("L.B", 1.0));
    let live = second.quote();
    assert_eq!(live.data["seq"], 7);
    assert!(live.id.is_some());

    // Another broker's id: every topic of the stream unrecovered, snapshots.
    let other = "0123456789abcdef.0123456789abcdef.10";
    let mut third = Stream::open(
        &target,
        "topics=L.A",
        &format!("Last-Event-ID: {other}\r\n"),
    );
    let ack = third.next().unwrap().data;
    assert_eq!(ack["unrecovered"], json!(["L.A"]), "{ack}");
    assert_eq!(third.quote().data["seq"], 7);
}

#[test]
fn a_refused_request_gets_its_status_and_a_json_error_before_any_event() {
    let target = Target::start(Over::Plain);
    for (query, status, code) in [
        ("topics=BAD%20TOPIC", 400, "bad_topic"),
        ("", 400, "bad_request"),
        ("topics=A&rewind=5&snapshot=false", 400, "bad_request"),
        ("topics=A&since=%7B%22epoch%22%3A1%7D", 400, "bad_request"),
        ("topics=A&max_hz=0", 400, "bad_request"),
    ] {
        let (got, body) = refused(&target, query, "");
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    let mut config = test_config();
    config.server.allowed_origins = vec!["https://desk.example".into()];
    let strict = Target::start_with(Over::Plain, config);
    let (status, _) = refused(&strict, "topics=A", "Origin: https://evil.example\r\n");
    assert_eq!(status, 403);
    let ok = Stream::open(&strict, "topics=A", "Origin: https://desk.example\r\n");
    assert!(ok.head.starts_with("HTTP/1.1 200"), "{}", ok.head);
}

/// Entitlements as on `/ws`: a token in the query or a Bearer header; none
/// or one that does not cover the topics is 403; `exp` ends the stream
/// with an `error` event.
#[test]
fn tokens_entitle_the_stream_and_its_expiry_ends_it() {
    let target = Target {
        broker: start_auth(),
        over: Over::Plain,
        pki: None,
    };
    let (status, body) = refused(&target, "topics=AAPL", "");
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_authorized"))
    );
    let narrow = token(unix_now() + 600, &["MSFT"]);
    let (status, _) = refused(&target, &format!("topics=AAPL&token={narrow}"), "");
    assert_eq!(status, 403);
    let (status, body) = refused(&target, "topics=AAPL&token=not.a.jwt", "");
    assert_eq!(status, 403);
    assert!(!body.to_string().contains("not.a.jwt"));

    let good = token(unix_now() + 600, &["AAPL"]);
    let mut by_header = Stream::open(
        &target,
        "topics=AAPL",
        &format!("Authorization: Bearer {good}\r\n"),
    );
    assert_eq!(by_header.next().unwrap().data["type"], "subscribed");

    let soon = token(unix_now() + 2, &["AAPL"]);
    let mut expiring = Stream::open(&target, &format!("topics=AAPL&token={soon}"), "");
    assert_eq!(expiring.next().unwrap().data["type"], "subscribed");
    let end = loop {
        let e = expiring.next().expect("the error event before the end");
        if e.data["type"] == "error" {
            break e;
        }
    };
    assert_eq!(end.data["code"], "token_expired");
    assert!(expiring.next().is_none(), "the stream ends");
}

/// A client that stops reading is ended as a slow consumer like a
/// WebSocket one: an `error` event, then the end; memory stays bounded.
#[test]
fn a_reader_that_stops_is_ended_as_a_slow_consumer() {
    let mut config = test_config();
    config.subscriber.stall_timeout_ms = 500;
    let broker = start_with(config);
    let mut s = raw_small_rcvbuf(broker.ws_addr());
    write!(s, "GET /sse?topics=SLOW HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut p = publisher(&broker);
    let mut sent = 0;
    while metric(&broker, "tickwire_slow_consumer_closes_total") < 1.0 && sent < 200_000 {
        for _ in 0..500 {
            p.publish(quote("SLOW", sent as f64)).unwrap();
            sent += 1;
        }
        p.flush().unwrap();
    }
    assert!(
        wait_until(|| metric(&broker, "tickwire_slow_consumer_closes_total") == 1.0),
        "closed as slow"
    );
    // Reading now: the events queued, then the error event, then the end.
    let mut all = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.contains(r#""code":"slow_consumer""#),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
}

/// The limits of `/ws` answer `/sse` with their status and a JSON error:
/// a query past the head limit (431), the per-IP cap (503, refused at
/// accept, before the request is read).
#[test]
fn limits_refuse_a_stream_with_their_status_and_a_json_error() {
    let mut config = test_config();
    config.server.max_connections_per_ip = 2;
    let target = Target::start_with(Over::Plain, config);
    let long = format!("topics={}", "A,".repeat(5_000));
    let (status, body) = refused(&target, &long, "");
    assert_eq!((status, body["code"].as_str()), (431, Some("bad_request")));

    let mut first = Stream::open(&target, "topics=R.1", "");
    assert_eq!(first.next().unwrap().data["type"], "subscribed");
    let mut second = Stream::open(&target, "topics=R.2", "");
    assert_eq!(second.next().unwrap().data["type"], "subscribed");
    let (status, body) = refused(&target, "topics=R.3", "");
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("too_many_connections"))
    );
}

/// A stream of topics its worker already follows is answered by the
/// worker (no router round trip), with the same events: the ack, each
/// topic's newest quote (no `id:`, as any catch-up), then live quotes.
#[test]
fn a_stream_of_followed_topics_is_answered_by_the_worker() {
    let target = Target::start_with(Over::Plain, one_worker(test_config()));
    let mut ws = target.connect();
    subscribe(&mut ws, &["E.A"], true);
    let mut p = publisher(&target.broker);
    publish(&mut p, quote("E.A", 10.0));
    publish(&mut p, quote("E.A", 11.0));
    for seq in [1, 2] {
        assert_eq!(next_quote(&mut ws)["seq"], seq);
    }
    let mut stream = Stream::open(&target, "topics=E.A", "");
    assert_eq!(stream.next().expect("the ack").data["type"], "subscribed");
    let snapshot = stream.quote();
    assert_eq!(snapshot.data["seq"], 2, "{snapshot:?}");
    assert!(snapshot.id.is_none(), "{snapshot:?}");
    publish(&mut p, quote("E.A", 12.0));
    let live = stream.quote();
    assert_eq!(live.data["seq"], 3);
    assert!(live.id.is_some());
    let by_worker = "tickwire_subscribes_total{answered=\"worker\"}";
    assert_eq!(metric(&target.broker, by_worker), 1.0);
}
