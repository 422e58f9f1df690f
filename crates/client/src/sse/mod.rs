//! Subscriber over Server-Sent Events (`GET /sse`, protocol v1.2): one
//! subscribe per stream, given in the query; the same JSON messages as the
//! WebSocket JSON mode, each as one event, quotes with an `id:` that
//! resumes the whole stream when sent back as `Last-Event-ID`.
//!
//! For networks (and proxies) that pass plain HTTP but not WebSocket: the
//! request target is the caller's (a proxy may serve the broker under a
//! path prefix, see [`sse_target`]), and the response body may be framed
//! by the broker (until the connection closes) or re-framed by a proxy
//! (chunked, or a length).

mod body;
pub mod event;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tickwire_protocol::control::Since;
use tickwire_protocol::server::{decode_json, ServerMessage};

use self::body::{parse_head, Body};
pub use self::event::{EventParser, EventTooLarge, SseEvent, MAX_EVENT};
use crate::stream::{Stream, TlsOptions};
use crate::subscriber::SubscribeOptions;
use crate::{ClientError, Result};

/// How long the response head (or a refusal's body) may take.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of a refusal's body read (the broker's are small JSON).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// One message of the stream and the stream's last event id when it came
/// (see [`SseEvent::id`]): a quote's own id, what to resume from.
#[derive(Debug, Clone, PartialEq)]
pub struct SseMessage {
    pub message: ServerMessage,
    pub id: Option<String>,
}

/// The request target of a stream: `{path_prefix}/sse?topics=…` with the
/// options of `options` that `/sse` takes (`snapshot`, `max_hz`, `rewind`,
/// `since`; `id` has no place in it), every value percent-encoded.
/// `path_prefix` is where a proxy serves the broker (`""` for the broker
/// itself, `"/tickwire"` for `http://proxy/tickwire/sse`), used as given.
/// A token is best sent as an `Authorization: Bearer` header rather than
/// in the query, which proxies tend to log.
pub fn sse_target(path_prefix: &str, topics: &[&str], options: &SubscribeOptions) -> String {
    let mut target = format!("{}/sse?topics=", path_prefix.trim_end_matches('/'));
    for (i, topic) in topics.iter().enumerate() {
        if i > 0 {
            target.push(',');
        }
        target.push_str(&percent_encode(topic));
    }
    if let Some(snapshot) = options.snapshot {
        target.push_str(if snapshot {
            "&snapshot=true"
        } else {
            "&snapshot=false"
        });
    }
    if let Some(hz) = options.max_hz {
        // `Display` of an f64 never uses an exponent, which `/sse` refuses.
        target.push_str(&format!("&max_hz={}", percent_encode(&hz.to_string())));
    }
    if let Some(rewind) = options.rewind {
        target.push_str(&format!("&rewind={rewind}"));
    }
    if let Some(since) = &options.since {
        target.push_str("&since=");
        target.push_str(&percent_encode(&since_json(since)));
    }
    target
}

/// `since` as the JSON object of a subscribe (keys in `seqs` order).
fn since_json(since: &Since) -> String {
    let string = |s: &str| serde_json::Value::from(s).to_string();
    let seqs: Vec<String> = since
        .seqs
        .iter()
        .map(|(topic, seq)| format!("{}:{seq}", string(topic)))
        .collect();
    format!(
        "{{\"epoch\":{},\"seqs\":{{{}}}}}",
        string(&since.epoch),
        seqs.join(",")
    )
}

/// RFC 3986 percent-encoding of a query value: everything but the
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) as `%XX`, so `*`, `,`,
/// `&`, `+` and `/` all arrive as written.
pub fn percent_encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// An open event stream.
pub struct SseSubscriber {
    stream: Stream,
    body: Body,
    parser: EventParser,
    /// When bytes last arrived (the broker sends a comment after 15 s
    /// without an event, so a longer silence means a dead link).
    last_read: Instant,
}

impl SseSubscriber {
    /// Sends `GET {target}` to `addr` (over TLS with `tls`), with `Host:
    /// {host}` (what a proxy routes by: the name and port the user gave),
    /// `Accept: text/event-stream` and `headers` (`Last-Event-ID`,
    /// `Authorization`), and reads the response head. `target` is a path
    /// and query, e.g. from [`sse_target`].
    ///
    /// A status other than 200 is [`ClientError::Http`], with the code and
    /// message of the broker's JSON error body (`code` is empty when the
    /// body is not one, e.g. a proxy's page); a 200 that is not an event
    /// stream is [`ClientError::Handshake`].
    pub fn connect(
        addr: SocketAddr,
        host: &str,
        target: &str,
        tls: Option<&TlsOptions>,
        headers: &[(&str, &str)],
    ) -> Result<SseSubscriber> {
        let unsafe_text = |s: &str| s.bytes().any(|b| b.is_ascii_control());
        if unsafe_text(host) || unsafe_text(target) || target.contains(' ') {
            return Err(ClientError::Handshake(
                "the host or request target holds a space or control character".into(),
            ));
        }
        let mut request = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
             Cache-Control: no-cache\r\nUser-Agent: tickwire-client\r\n"
        );
        for (name, value) in headers {
            if unsafe_text(name) || name.contains([' ', ':']) || unsafe_text(value) {
                return Err(ClientError::Handshake(format!(
                    "request header {name:?}: a control character or a bad name"
                )));
            }
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");

        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        let mut stream = match tls {
            Some(tls) => Stream::tls(sock, tls)?,
            None => Stream::Plain(sock),
        };
        stream.write_all(request.as_bytes())?;
        stream.flush()?;
        let deadline = Instant::now() + HEAD_TIMEOUT;
        let mut buf = Vec::new();
        let head = loop {
            match parse_head(&buf).map_err(ClientError::Handshake)? {
                Some(head) => break head,
                None => {
                    if read_some(&mut stream, &mut buf, deadline)? == 0 {
                        return Err(ClientError::Handshake(
                            "the connection closed before a response".into(),
                        ));
                    }
                }
            }
        };
        let mut sub = SseSubscriber {
            stream,
            body: head.body,
            parser: EventParser::default(),
            last_read: Instant::now(),
        };
        let rest = &buf[head.len..];
        if head.status != 200 {
            return Err(sub.refusal(head.status, &head.reason, rest, deadline));
        }
        let content_type = head.content_type.unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("text/event-stream") {
            return Err(ClientError::Handshake(format!(
                "expected Content-Type text/event-stream, got {content_type:?}"
            )));
        }
        let SseSubscriber { body, parser, .. } = &mut sub;
        body.decode(rest, &mut |b| parser.feed(b))
            .map_err(ClientError::Protocol)?;
        Ok(sub)
    }

    /// The error of a response other than 200, from its (bounded) body.
    fn refusal(
        &mut self,
        status: u16,
        reason: &str,
        rest: &[u8],
        deadline: Instant,
    ) -> ClientError {
        let mut body = Vec::new();
        let mut raw = rest.to_vec();
        loop {
            let _ = self.body.decode(&raw, &mut |b| body.extend_from_slice(b));
            raw.clear();
            if self.body.is_done() || body.len() >= MAX_ERROR_BODY {
                break;
            }
            match read_some(&mut self.stream, &mut raw, deadline) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        body.truncate(MAX_ERROR_BODY);
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let (code, message) = match (field("code"), field("message")) {
            (Some(code), message) => (code, message.unwrap_or_default()),
            _ => {
                // Not the broker's JSON: a proxy's page, say. Its first
                // line, or the reason phrase.
                let text = String::from_utf8_lossy(&body);
                let line = text.lines().map(str::trim).find(|l| !l.is_empty());
                let mut message = line.unwrap_or(reason).to_owned();
                if message.len() > 200 {
                    let mut end = 200;
                    while !message.is_char_boundary(end) {
                        end -= 1;
                    }
                    message.truncate(end);
                }
                (String::new(), message)
            }
        };
        ClientError::Http {
            status,
            code,
            message,
        }
    }

    /// The next message; `Ok(None)` when none came within `timeout`.
    /// Events of a type other than `message` are skipped (the broker sends
    /// none). The end of the stream is [`ClientError::Closed`], after the
    /// events before it; an event that is not a server message, or one over
    /// [`MAX_EVENT`], is [`ClientError::Protocol`].
    pub fn next(&mut self, timeout: Duration) -> Result<Option<SseMessage>> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(event) = self.next_event(deadline)? else {
                return Ok(None);
            };
            if event.event != "message" {
                continue;
            }
            let message =
                decode_json(&event.data).map_err(|e| ClientError::Protocol(e.to_string()))?;
            return Ok(Some(SseMessage {
                message,
                id: event.id,
            }));
        }
    }

    /// The next raw event (comments skipped); `Ok(None)` at `deadline`.
    pub fn next_event(&mut self, deadline: Instant) -> Result<Option<SseEvent>> {
        let mut raw = Vec::new();
        loop {
            if let Some(event) = self
                .parser
                .next_event()
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return Ok(Some(event));
            }
            if self.body.is_done() {
                return Err(ended("the response body ended"));
            }
            raw.clear();
            match read_some(&mut self.stream, &mut raw, deadline) {
                Ok(0) => {
                    return Err(ended(match self.body {
                        Body::UntilClose => "the server closed the stream",
                        _ => "the connection closed inside the response body",
                    }))
                }
                Ok(_) => {
                    self.last_read = Instant::now();
                    let SseSubscriber { body, parser, .. } = self;
                    body.decode(&raw, &mut |b| parser.feed(b))
                        .map_err(ClientError::Protocol)?;
                }
                Err(ClientError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The stream's last event id (a reconnect's `Last-Event-ID`); `None`
    /// before any event with an id.
    pub fn last_event_id(&self) -> Option<&str> {
        self.parser.last_event_id()
    }

    /// How long since bytes (events or comments) last arrived.
    pub fn idle_for(&self) -> Duration {
        self.last_read.elapsed()
    }

    /// The TCP socket (plain or under TLS).
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }
}

fn ended(reason: &str) -> ClientError {
    ClientError::Closed {
        code: None,
        reason: reason.to_owned(),
    }
}

/// One read into `buf` before `deadline`: its length (0 at the end of the
/// stream); `WouldBlock`/`TimedOut` when the deadline passes first.
fn read_some(stream: &mut Stream, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ClientError::Io(ErrorKind::TimedOut.into()));
        }
        stream.tcp().set_read_timeout(Some(deadline - now))?;
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            // A timed read is not restarted after a stop/continue.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // TLS without close_notify: the end of the stream all the same.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_percent_encode_every_value() {
        let options = SubscribeOptions {
            id: Some(7),
            snapshot: Some(false),
            max_hz: Some(0.5),
            rewind: None,
            since: Some(Since {
                epoch: "9f3b".into(),
                seqs: vec![("FX.EURUSD".into(), 77), ("AAPL".into(), 1041)],
            }),
        };
        assert_eq!(
            sse_target("/tickwire/", &["AAPL", "FX.*", "a/b:c"], &options),
            "/tickwire/sse?topics=AAPL,FX.%2A,a%2Fb%3Ac&snapshot=false&max_hz=0.5\
             &since=%7B%22epoch%22%3A%229f3b%22%2C%22seqs%22%3A%7B%22FX.EURUSD%22%3A77%2C%22AAPL%22%3A1041%7D%7D"
        );
        let plain = SubscribeOptions {
            rewind: Some(64),
            max_hz: Some(1000.0),
            ..Default::default()
        };
        assert_eq!(
            sse_target("", &["*"], &plain),
            "/sse?topics=%2A&max_hz=1000&rewind=64"
        );
        assert_eq!(percent_encode("a b+c&d,é~"), "a%20b%2Bc%26d%2C%C3%A9~");
    }
}
