use super::*;
use proptest::prelude::*;

fn event(data: &str, id: Option<&str>) -> SseEvent {
    SseEvent {
        event: "message".into(),
        data: data.into(),
        id: id.map(str::to_owned),
    }
}

/// Every event of `input` fed in one piece.
fn parse_all(input: &[u8]) -> Vec<SseEvent> {
    let mut p = EventParser::default();
    p.feed(input);
    drain(&mut p)
}

fn drain(p: &mut EventParser) -> Vec<SseEvent> {
    let mut out = Vec::new();
    while let Some(e) = p.next_event().expect("within the limit") {
        out.push(e);
    }
    out
}

/// What the broker sends: an ack, then quotes with ids, and a comment.
const BROKER: &str = "data: {\"type\":\"subscribed\",\"topics\":[\"A\"],\"epoch\":\"e\"}\n\n\
                      id: e.i.1\ndata: {\"type\":\"quote\",\"seq\":1}\n\n\
                      :\n\n\
                      id: e.i.2\ndata: {\"type\":\"quote\",\"seq\":2}\n\n";

#[test]
fn broker_events_with_ids_and_a_comment() {
    let events = parse_all(BROKER.as_bytes());
    assert_eq!(
        events,
        [
            event(r#"{"type":"subscribed","topics":["A"],"epoch":"e"}"#, None),
            event(r#"{"type":"quote","seq":1}"#, Some("e.i.1")),
            event(r#"{"type":"quote","seq":2}"#, Some("e.i.2")),
        ]
    );
}

#[test]
fn the_same_events_whatever_the_split() {
    let input = format!(
        "\u{FEFF}{}data: a\r\ndata:b\r\n\r\nevent: x\rdata:  c\r\rdata\n\nid: 9\n\n: note\ndata: é\n\n",
        BROKER
    );
    let input = input.as_bytes();
    let whole = parse_all(input);
    assert_eq!(whole.len(), 7, "{whole:?}");
    for cut in 0..=input.len() {
        let mut p = EventParser::default();
        p.feed(&input[..cut]);
        let mut got = drain(&mut p);
        p.feed(&input[cut..]);
        got.extend(drain(&mut p));
        assert_eq!(got, whole, "split at {cut}");
    }
    // And one byte at a time.
    let mut p = EventParser::default();
    let mut got = Vec::new();
    for b in input {
        p.feed(std::slice::from_ref(b));
        got.extend(drain(&mut p));
    }
    assert_eq!(got, whole);
    assert_eq!(p.last_event_id(), Some("9"));
}

#[test]
fn line_ends_multi_line_data_fields_and_types() {
    let events = parse_all(b"data: a\r\ndata:b\r\n\r\nevent: x\rdata:  c\r\rdata\n\n");
    assert_eq!(
        events,
        [
            event("a\nb", None),
            SseEvent {
                event: "x".into(),
                data: " c".into(),
                id: None
            },
            event("", None),
        ]
    );
    // CR LF split across feeds is one line end, not two.
    let mut p = EventParser::default();
    p.feed(b"data: a\r");
    assert_eq!(drain(&mut p), []);
    p.feed(b"\ndata: b\r\n\r\n");
    assert_eq!(drain(&mut p), [event("a\nb", None)]);
}

#[test]
fn ids_last_until_changed_and_nul_ids_are_ignored() {
    let events = parse_all(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0\ndata: c\n\nid\ndata: d\n\n");
    let ids: Vec<Option<String>> = events.into_iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [Some("1".into()), Some("1".into()), Some("1".into()), None]
    );
    // An id in an event without data still counts at its blank line.
    let mut p = EventParser::default();
    p.feed(b"id: 7\n\n");
    assert_eq!(drain(&mut p), []);
    assert_eq!(p.last_event_id(), Some("7"));
    // But not before: an incomplete event's id is not the stream's yet.
    p.feed(b"id: 8\ndata: x");
    assert_eq!(drain(&mut p), []);
    assert_eq!(p.last_event_id(), Some("7"));
}

#[test]
fn comments_unknown_fields_retry_and_a_trailing_incomplete_event() {
    let mut p = EventParser::default();
    p.feed(b": hello\nfoo: bar\nretry: 2500\nretry: x\ndata: a\n\ndata: incomplete\n");
    assert_eq!(drain(&mut p), [event("a", None)]);
    assert_eq!(p.retry(), Some(2500));
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let events = parse_all(b"data: \xff\xfe ok\n\n");
    assert_eq!(events, [event("\u{FFFD}\u{FFFD} ok", None)]);
}

#[test]
fn an_event_over_the_limit_is_an_error_and_stays_one() {
    let mut p = EventParser::new(16);
    p.feed(b"data: 0123456789\n\n");
    assert_eq!(drain(&mut p), [event("0123456789", None)]);
    // Many data lines adding up.
    p.feed(b"data: 0123456\ndata: 0123456\n");
    assert_eq!(p.next_event(), Err(EventTooLarge { limit: 16 }));
    assert_eq!(p.next_event(), Err(EventTooLarge { limit: 16 }));
    // One endless line (a comment included), without its end.
    let mut p = EventParser::new(16);
    p.feed(b": 0123456789");
    assert_eq!(p.next_event(), Ok(None));
    p.feed(b"0123456789");
    assert!(p.next_event().is_err());
}

#[test]
fn a_long_line_fed_in_pieces_is_scanned_once() {
    // A line arriving in many reads: each read's bytes are searched
    // for a line end once, not the whole line again per read.
    let mut p = EventParser::default();
    p.feed(b"data: ");
    let piece = [b'x'; 1024];
    for _ in 0..1000 {
        p.feed(&piece);
        assert_eq!(p.next_event(), Ok(None));
    }
    p.feed(b"\n\n");
    let e = p.next_event().unwrap().unwrap();
    assert_eq!(e.data.len(), 1024 * 1000);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
        limit in 0usize..48,
    ) {
        let mut p = EventParser::new(limit);
        for chunk in &chunks {
            p.feed(chunk);
            while let Ok(Some(e)) = p.next_event() {
                prop_assert!(e.data.len() <= limit);
            }
        }
    }

    #[test]
    fn event_like_input_parses_the_same_in_any_split(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(&b"data: "[..]), Just(&b"id: "[..]), Just(&b":"[..]),
                Just(&b"\r"[..]), Just(&b"\n"[..]), Just(&b"\r\n"[..]),
                Just(&b"x"[..]), Just(&b"\xc3\xa9"[..]), Just(&b"event"[..]),
            ],
            0..40,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let input: Vec<u8> = parts.concat();
        let whole = {
            let mut p = EventParser::default();
            p.feed(&input);
            drain(&mut p)
        };
        let cut = cut.index(input.len() + 1);
        let mut p = EventParser::default();
        p.feed(&input[..cut]);
        let mut got = drain(&mut p);
        p.feed(&input[cut..]);
        got.extend(drain(&mut p));
        prop_assert_eq!(got, whole);
    }
}
