//! The `text/event-stream` format (the HTML standard's "Server-sent
//! events" parsing rules), incrementally: bytes in as they arrive, events
//! out as each completes. Pure: no socket.
//!
//! Lines end with CRLF, LF or a lone CR (a CR at the end of the bytes fed
//! so far is a line end; an LF that then arrives first is its second half).
//! A leading UTF-8 BOM is skipped. A line starting with `:` is a comment.
//! `field: value` (one space after the colon dropped) sets `data` (lines
//! joined with `\n`), `event`, `id` (ignored when it holds a NUL) or
//! `retry` (digits only); other fields are ignored, and a line without a
//! colon is a field with an empty value. A blank line ends the event: with
//! no `data` line it dispatches nothing (its `id` still counts). Bytes that
//! are not UTF-8 become U+FFFD. An event still incomplete when the stream
//! ends is never dispatched.
//!
//! Memory is bounded: an event whose lines (its data and the line being
//! read, comments included) pass the parser's limit is an error.

use std::fmt;

/// The default bound on one event (its data and any one line).
pub const MAX_EVENT: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `"message"` when the event has none.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The stream's last event id when this event was dispatched (what a
    /// browser's `MessageEvent.lastEventId` shows and a reconnect sends as
    /// `Last-Event-ID`): the latest `id:` so far, this event's or an
    /// earlier one's; `None` while empty.
    pub id: Option<String>,
}

/// The event being read is over the parser's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTooLarge {
    pub limit: usize,
}

impl fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a server-sent event over {} bytes", self.limit)
    }
}

impl std::error::Error for EventTooLarge {}

/// An incremental `text/event-stream` parser: [`EventParser::feed`] the
/// bytes read, then take events with [`EventParser::next_event`] until it
/// says `None` (only then is more input needed). After an error the parser
/// keeps answering that error.
pub struct EventParser {
    limit: usize,
    /// Bytes fed and not yet consumed (from `pos`).
    pending: Vec<u8>,
    pos: usize,
    /// How far past `pos` the search for a line end already looked.
    scanned: usize,
    /// The last line ended with CR: an LF that comes next belongs to it.
    after_cr: bool,
    /// No line read yet (where a BOM may be).
    first_line: bool,
    data: String,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
    retry: Option<u64>,
    failed: bool,
}

impl Default for EventParser {
    fn default() -> Self {
        EventParser::new(MAX_EVENT)
    }
}

impl EventParser {
    /// A parser refusing events (or lines) over `limit` bytes.
    pub fn new(limit: usize) -> EventParser {
        EventParser {
            limit,
            pending: Vec::new(),
            pos: 0,
            scanned: 0,
            after_cr: false,
            first_line: true,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            failed: false,
        }
    }

    /// Appends bytes of the stream. Take the events they complete before
    /// feeding much more: the bytes are kept until then.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.pos > 0 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete event; `Ok(None)` when the bytes fed so far hold
    /// no more.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLarge> {
        if self.failed {
            return Err(self.too_large());
        }
        loop {
            let rest = &self.pending[self.pos..];
            if self.after_cr {
                let Some(&first) = rest.first() else {
                    return Ok(None);
                };
                self.after_cr = false;
                if first == b'\n' {
                    self.pos += 1;
                    continue;
                }
            }
            let from = self.scanned.min(rest.len());
            let Some(end) = rest[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map(|i| from + i)
            else {
                self.scanned = rest.len();
                if rest.len().saturating_add(self.data.len()) > self.limit {
                    return Err(self.fail());
                }
                return Ok(None);
            };
            if end.saturating_add(self.data.len()) > self.limit {
                return Err(self.fail());
            }
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            self.after_cr = rest[end] == b'\r';
            self.pos += end + 1;
            self.scanned = 0;
            if let Some(event) = self.line(&line)? {
                return Ok(Some(event));
            }
        }
    }

    /// The stream's last event id: the latest `id:` of a completed event
    /// (what a reconnect sends as `Last-Event-ID`); `None` while empty.
    pub fn last_event_id(&self) -> Option<&str> {
        Some(self.last_event_id.as_str()).filter(|id| !id.is_empty())
    }

    /// The reconnection time the server asked for (`retry:`, ms), if any.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    fn line(&mut self, line: &str) -> Result<Option<SseEvent>, EventTooLarge> {
        let line = if std::mem::take(&mut self.first_line) {
            line.strip_prefix('\u{FEFF}').unwrap_or(line)
        } else {
            line
        };
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                if self.data.len() > self.limit {
                    return Err(self.fail());
                }
            }
            "event" => value.clone_into(&mut self.event_type),
            "id" if !value.contains('\0') => value.clone_into(&mut self.id_buffer),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits beyond u64 are not a time anyone means: ignored.
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        self.last_event_id.clone_from(&self.id_buffer);
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        Some(SseEvent {
            event: if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type
            },
            data,
            id: self.last_event_id().map(str::to_owned),
        })
    }

    fn fail(&mut self) -> EventTooLarge {
        self.failed = true;
        self.pending = Vec::new();
        self.pos = 0;
        self.data = String::new();
        self.too_large()
    }

    fn too_large(&self) -> EventTooLarge {
        EventTooLarge { limit: self.limit }
    }
}

#[cfg(test)]
mod tests {
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
}
