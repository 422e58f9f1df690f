//! The broker's own view, from `GET /metrics` on its WebSocket listener
//! (HTTP, or HTTPS with `--tls`; one connection per scrape, closed by the
//! broker): queue
//! depths, open subscriber connections, slow-consumer closes and resumed
//! topics (docs/protocol.md section 7).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tickwire_client::{Stream, TlsOptions};

/// Longest a scrape may take, connect and read each.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest response read.
const MAX_BYTES: u64 = 8 << 20;

/// The figures of one scrape the soak follows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    /// `tickwire_queue_depth{queue=...}`: batches waiting, by queue.
    pub queues: BTreeMap<String, f64>,
    /// `tickwire_connections{kind="subscriber"}`.
    pub subscribers: Option<f64>,
    /// `tickwire_slow_consumer_closes_total`.
    pub slow_consumer_closes: Option<f64>,
    /// `tickwire_resume_topics_total{result="recovered"}` / `"unrecovered"`.
    pub resumed_recovered: Option<f64>,
    pub resumed_unrecovered: Option<f64>,
}

/// Where the soak scrapes: the first `--ws` listener, over TLS when the
/// soak's subscribers use it.
#[derive(Clone)]
pub struct MetricsAt {
    pub ws: SocketAddr,
    pub tls: Option<TlsOptions>,
}

impl MetricsAt {
    /// Scrapes once.
    pub fn scrape(&self) -> Result<Scrape, String> {
        scrape(self.ws, self.tls.as_ref())
    }
}

/// Scrapes `ws` once (through TLS with `tls`).
fn scrape(ws: SocketAddr, tls: Option<&TlsOptions>) -> Result<Scrape, String> {
    let sock = TcpStream::connect_timeout(&ws, TIMEOUT).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| sock.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut stream = match tls {
        Some(tls) => Stream::tls(sock, tls).map_err(|e| e.to_string())?,
        None => Stream::Plain(sock),
    };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {ws}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| e.to_string())?;
    let response = read_to_close(stream.take(MAX_BYTES)).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("no complete HTTP response")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("GET /metrics: {status}"));
    }
    // A response cut short would parse into wrong figures (a count cut
    // mid-number): its length must be the one announced.
    if let Some(announced) = content_length(head) {
        if announced != body.len() {
            return Err(format!(
                "GET /metrics: {} of {announced} bytes of the body",
                body.len()
            ));
        }
    }
    Ok(parse(body))
}

/// The `Content-Length` of a response head, if it has one.
fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// Reads until the server closes. Over TLS a close without `close_notify`
/// is an error to rustls; after some of a response it is the end of the
/// response all the same (its length is checked against its
/// `Content-Length`).
fn read_to_close(mut from: impl Read) -> std::io::Result<Vec<u8>> {
    let mut response = Vec::new();
    match from.read_to_end(&mut response) {
        Ok(_) => Ok(response),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !response.is_empty() => Ok(response),
        Err(e) => Err(e),
    }
}

/// The value of `label` in a `{a="x",b="y"}` label set.
fn label<'a>(labels: &'a str, label: &str) -> Option<&'a str> {
    let at = labels.find(&format!("{label}=\""))? + label.len() + 2;
    let rest = &labels[at..];
    Some(&rest[..rest.find('"')?])
}

/// Reads the followed series out of a Prometheus text exposition.
pub fn parse(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            "tickwire_queue_depth" => {
                if let Some(q) = label(labels, "queue") {
                    s.queues.insert(q.to_owned(), value);
                }
            }
            "tickwire_connections" if label(labels, "kind") == Some("subscriber") => {
                s.subscribers = Some(value)
            }
            "tickwire_slow_consumer_closes_total" => s.slow_consumer_closes = Some(value),
            "tickwire_resume_topics_total" => match label(labels, "result") {
                Some("recovered") => s.resumed_recovered = Some(value),
                Some("unrecovered") => s.resumed_unrecovered = Some(value),
                _ => {}
            },
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_followed_series() {
        let text = "# HELP tickwire_queue_depth Batches waiting.\n\
            # TYPE tickwire_queue_depth gauge\n\
            tickwire_queue_depth{queue=\"ingest\"} 0\n\
            tickwire_queue_depth{queue=\"worker-0\"} 3\n\
            tickwire_queue_depth{queue=\"worker-1\"} 1.5\n\
            tickwire_connections{kind=\"producer\"} 2\n\
            tickwire_connections{kind=\"subscriber\"} 17\n\
            tickwire_slow_consumer_closes_total 4\n\
            tickwire_resume_topics_total{result=\"recovered\"} 40\n\
            tickwire_resume_topics_total{result=\"unrecovered\"} 2\n\
            tickwire_delivery_latency_seconds{quantile=\"0.5\"} NaN\n\
            garbage line\n";
        let s = parse(text);
        assert_eq!(s.queues.len(), 3);
        assert_eq!(s.queues["worker-0"], 3.0);
        assert_eq!(s.queues["worker-1"], 1.5);
        assert_eq!(s.subscribers, Some(17.0));
        assert_eq!(s.slow_consumer_closes, Some(4.0));
        assert_eq!(s.resumed_recovered, Some(40.0));
        assert_eq!(s.resumed_unrecovered, Some(2.0));
        assert_eq!(parse(""), Scrape::default());
    }

    #[test]
    fn the_body_length_is_read_from_the_head() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 17";
        assert_eq!(content_length(head), Some(17));
        assert_eq!(content_length("HTTP/1.1 200 OK\r\nServer: x"), None);
        assert_eq!(content_length("HTTP/1.1 200 OK\r\ncontent-length: x"), None);
        // The status line is not a header.
        assert_eq!(content_length("Content-Length: 5"), None);
    }
}
