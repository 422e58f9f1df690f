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
mod tests;
