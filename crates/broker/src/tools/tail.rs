//! `tickwire tail`: subscribe and print every quote as it arrives.
//!
//! When the connection drops after the first ack (a broker restart, a
//! network cut, a slow-consumer close), tail reconnects with backoff and
//! subscribes again with its position (v1.2 `since`): the epoch of its last
//! ack and the last seq it printed per topic. Recovered topics continue with
//! exactly the quotes it missed, so each quote is printed once, in seq
//! order; what the broker could not recover is said on stderr, as is any
//! seq gap. `--no-resume` ends tail with the connection instead.
//!
//! `--sse` reads the same messages from `GET /sse` (Server-Sent Events,
//! v1.2) instead, optionally under a proxy's `--path-prefix`; a reconnect
//! resumes every topic with `Last-Event-ID`, the id of the last event
//! received, and otherwise goes as above.

use std::io::Write;
use std::time::Duration;

use tickwire_client::{
    sse_target, ClientError, Format, ServerMessage, Since, SseSubscriber, SubscribeOptions,
    Subscriber, TlsOptions,
};
use tickwire_protocol::topic::Selector;

use super::format::{json_line, table_header, table_row};
use super::positions::{Positions, Seen};
use super::{resolve, TailArgs};

/// How long a read waits before checking again (no quotes is not an error).
const POLL: Duration = Duration::from_secs(1);
/// The wait before the first reconnect attempt; it doubles per failed
/// attempt up to `MAX_BACKOFF`, and tail retries until the broker is back.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A broker silent this long gets a ping (its pong shows the link is up)…
const PING_AFTER: Duration = Duration::from_secs(15);
/// …and one silent this long is taken for gone (a cut without a reset).
const DEAD_AFTER: Duration = Duration::from_secs(45);
/// The id of tail's subscribe request on every connection.
const SUBSCRIBE_ID: u64 = 1;

pub fn run(args: &TailArgs) -> Result<(), String> {
    let tls = args.tls.options(&args.ws)?;
    let target = Target::new(args, tls)?;
    let selectors: Vec<Selector> = args
        .topics
        .iter()
        .filter_map(|t| Selector::parse(t))
        .collect();
    // The first connection must work (a wrong address fails at once).
    let mut sub = target
        .open(&Resume::default())
        .map_err(|e| format!("cannot connect to {}: {e}", target.describe()))?;
    let mut positions = Positions::default();
    // With --sse: the id of the last event received (what a reconnect's
    // `Last-Event-ID` resumes from).
    let mut last_event_id: Option<String> = None;
    // What the next ack answers: the first subscribe, or a resume.
    let mut awaiting = Awaiting::First;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    if !args.json {
        write_line(&mut out, &table_header())?;
    }
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        let message = match sub.next_message() {
            Ok(Some((m, id))) => {
                if id.is_some() {
                    last_event_id = id;
                }
                m
            }
            Ok(None) => continue,
            Err(e) if args.no_resume || !worth_reconnecting(&e) => {
                return Err(format!("connection ended: {e}"))
            }
            Err(e) => {
                eprintln!("connection lost ({e}); reconnecting");
                let since = positions.since(&selectors);
                let keys = since.as_ref().map_or(0, |s| s.seqs.len());
                let resume = if args.sse {
                    Resume {
                        since: None,
                        last_event_id: last_event_id.clone(),
                    }
                } else {
                    Resume {
                        since,
                        last_event_id: None,
                    }
                };
                awaiting = Awaiting::Resume {
                    keys: if resume.is_empty() { 0 } else { keys },
                };
                sub = reconnect(&target, &resume)?;
                continue;
            }
        };
        match message {
            ServerMessage::Quote { quote, seq } => {
                match positions.observe(&quote.topic, seq) {
                    Seen::Duplicate => continue,
                    Seen::Gap { last } if args.max_hz.is_none() => eprintln!(
                        "gap: {} seq {last} -> {seq} ({} missed)",
                        quote.topic,
                        seq - last - 1
                    ),
                    Seen::Gap { .. } | Seen::Next => {}
                }
                let line = if args.json {
                    json_line(&quote, seq)
                } else {
                    table_row(&quote, seq)
                };
                write_line(&mut out, &line)?;
                printed += 1;
            }
            ServerMessage::Subscribed {
                id,
                epoch,
                topics,
                recovered,
                unrecovered,
                ..
            } => {
                // An `/sse` stream's one ack has no request id.
                if id == Some(SUBSCRIBE_ID) || args.sse {
                    let changed = positions.on_ack(&epoch);
                    if changed {
                        // Another broker's id resumes nothing here.
                        last_event_id = None;
                    }
                    report_ack(&awaiting, &epoch, &topics, changed, recovered, &unrecovered);
                    awaiting = Awaiting::Nothing;
                }
            }
            ServerMessage::Authed { sub, exp, .. } => {
                eprintln!(
                    "authenticated as {} until {exp}",
                    sub.as_deref().unwrap_or("-")
                );
            }
            ServerMessage::Unsubscribed { topics, reason, .. } => {
                eprintln!(
                    "unsubscribed from {} ({})",
                    topics.join(", "),
                    reason.as_deref().unwrap_or("requested")
                );
            }
            ServerMessage::Error { code, message, .. } => {
                return Err(format!("broker refused: {code}: {message}"));
            }
        }
    }
}

/// Where tail connects and how: `--ws` (resolved again per connection,
/// as a restarted broker may come back elsewhere), TLS, WebSocket or SSE.
struct Target<'a> {
    args: &'a TailArgs,
    tls: Option<TlsOptions>,
    /// With --sse: `--path-prefix`, normalised (`""` or `/a/b`).
    path_prefix: String,
}

/// What a reconnect resumes from: the positions (WebSocket's `since`) or
/// the last event id (SSE's `Last-Event-ID`); nothing on the first
/// connection.
#[derive(Default)]
struct Resume {
    since: Option<Since>,
    last_event_id: Option<String>,
}

impl Resume {
    fn is_empty(&self) -> bool {
        self.since.is_none() && self.last_event_id.is_none()
    }
}

/// An open connection of either kind.
enum Conn {
    Ws(Subscriber),
    Sse(SseSubscriber),
}

impl<'a> Target<'a> {
    fn new(args: &'a TailArgs, tls: Option<TlsOptions>) -> Result<Target<'a>, String> {
        let path_prefix = match &args.path_prefix {
            None => String::new(),
            Some(p) => path_prefix(p)?,
        };
        Ok(Target {
            args,
            tls,
            path_prefix,
        })
    }

    /// The endpoint, for messages: `127.0.0.1:8080`, or the SSE URL.
    fn describe(&self) -> String {
        if self.args.sse {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}{}/sse", self.args.ws, self.path_prefix)
        } else {
            self.args.ws.clone()
        }
    }

    fn open(&self, resume: &Resume) -> Result<Conn, ClientError> {
        let addr = resolve("--ws", &self.args.ws)
            .map_err(|e| ClientError::Io(std::io::Error::other(e)))?;
        let topics: Vec<&str> = self.args.topics.iter().map(String::as_str).collect();
        let options = SubscribeOptions {
            id: Some(SUBSCRIBE_ID),
            snapshot: Some(!self.args.no_snapshot),
            max_hz: self.args.max_hz,
            since: resume.since.clone(),
            rewind: None,
        };
        if self.args.sse {
            return self.open_sse(addr, &topics, &options, resume);
        }
        let format = if self.args.binary {
            Format::Binary
        } else {
            Format::Json
        };
        let mut sub = match &self.tls {
            Some(tls) => Subscriber::connect_tls(addr, format, tls),
            None => Subscriber::connect(addr, format),
        }?;
        if let Some(token) = &self.args.token {
            let auth = serde_json::json!({"op": "auth", "id": 0, "token": token});
            sub.send_text(&auth.to_string())?;
        }
        sub.subscribe(&topics, options)?;
        Ok(Conn::Ws(sub))
    }

    /// `GET {prefix}/sse?…`, the token as a Bearer header (proxies log
    /// query strings), `Last-Event-ID` when resuming.
    fn open_sse(
        &self,
        addr: std::net::SocketAddr,
        topics: &[&str],
        options: &SubscribeOptions,
        resume: &Resume,
    ) -> Result<Conn, ClientError> {
        let target = sse_target(&self.path_prefix, topics, options);
        let bearer = self.args.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        if let Some(id) = &resume.last_event_id {
            headers.push(("Last-Event-ID", id));
        }
        SseSubscriber::connect(addr, &self.args.ws, &target, self.tls.as_ref(), &headers)
            .map(Conn::Sse)
    }
}

/// `--path-prefix`: `/` and then path segments; a missing leading `/` is
/// added and a trailing one dropped (`tickwire/` is `/tickwire`).
fn path_prefix(text: &str) -> Result<String, String> {
    let trimmed = text.trim_matches('/');
    if trimmed
        .bytes()
        .any(|b| b.is_ascii_control() || b" ?#\\".contains(&b) || !b.is_ascii())
    {
        return Err(format!(
            "--path-prefix {text:?}: a URL path of ASCII, without spaces, ? or #"
        ));
    }
    Ok(if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    })
}

/// Tries again until the broker is back (Ctrl-C still ends tail), waiting
/// 100 ms, doubling to 2 s, between attempts. An HTTP refusal that would
/// only happen again (a bad token, a wrong path: see `worth_retrying`)
/// ends tail.
fn reconnect(target: &Target, resume: &Resume) -> Result<Conn, String> {
    let mut wait = FIRST_BACKOFF;
    loop {
        std::thread::sleep(wait);
        match target.open(resume) {
            Ok(conn) => return Ok(conn),
            Err(e) if !worth_retrying(&e) => {
                return Err(format!("cannot reconnect to {}: {e}", target.describe()))
            }
            Err(_) => {}
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

/// A failed connect is tried again unless it is an HTTP status that would
/// only come again: any but 429 (too many requests) and 5xx (a proxy whose
/// broker is away, the per-IP cap).
fn worth_retrying(e: &ClientError) -> bool {
    match e {
        ClientError::Http { status, .. } => *status == 429 || *status >= 500,
        _ => true,
    }
}

impl Conn {
    /// The next message (and with SSE the stream's last event id),
    /// `Ok(None)` after a quiet poll. A broker silent for `PING_AFTER` is
    /// pinged; one silent for `DEAD_AFTER` counts as gone. An SSE stream
    /// cannot be pinged, but the broker sends a comment every 15 s. Its
    /// `slow_consumer` error event ends it like a close would.
    fn next_message(&mut self) -> Result<Option<(ServerMessage, Option<String>)>, ClientError> {
        let idle = match self {
            Conn::Ws(sub) => {
                if let Some(message) = sub.next(POLL)? {
                    return Ok(Some((message, None)));
                }
                sub.idle_for()
            }
            Conn::Sse(sub) => {
                if let Some(m) = sub.next(POLL)? {
                    return match m.message {
                        ServerMessage::Error { code, message, .. } if code == "slow_consumer" => {
                            Err(ClientError::Closed {
                                code: None,
                                reason: format!("{code}: {message}"),
                            })
                        }
                        message => Ok(Some((message, m.id))),
                    };
                }
                sub.idle_for()
            }
        };
        if idle >= DEAD_AFTER {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("nothing from the broker for {} s", idle.as_secs()),
            )));
        }
        if let (Conn::Ws(sub), true) = (&mut *self, idle >= PING_AFTER) {
            sub.ping()?;
        }
        Ok(None)
    }
}

/// A dropped connection is worth another try; a close for something tail
/// sent wrong (1002, 1003, 1007, 1009, 1010) or a message it cannot
/// decode would only happen again.
fn worth_reconnecting(e: &ClientError) -> bool {
    !matches!(
        e,
        ClientError::Protocol(_)
            | ClientError::Closed {
                code: Some(1002 | 1003 | 1007 | 1009 | 1010),
                ..
            }
    )
}

enum Awaiting {
    First,
    /// A reconnect's subscribe, with this many `since` keys.
    Resume {
        keys: usize,
    },
    Nothing,
}

/// One stderr line per ack: the first one as before; a reconnect's says
/// what was recovered.
fn report_ack(
    awaiting: &Awaiting,
    epoch: &str,
    topics: &[String],
    epoch_changed: bool,
    recovered: Option<bool>,
    unrecovered: &[String],
) {
    let keys = match awaiting {
        Awaiting::First => {
            eprintln!("subscribed to {} (epoch {epoch})", topics.join(", "));
            return;
        }
        // An SSE resume names no topics: the broker's `unrecovered` may
        // hold ones tail had no position for.
        Awaiting::Resume { keys } => (*keys).max(unrecovered.len()),
        Awaiting::Nothing => return,
    };
    let restarted = if epoch_changed {
        "; new epoch: seq numbering restarted"
    } else {
        ""
    };
    match recovered {
        _ if keys == 0 => eprintln!("reconnected (epoch {epoch}): nothing to resume yet"),
        Some(true) => eprintln!("reconnected (epoch {epoch}): recovered {}", count(keys)),
        Some(false) => eprintln!(
            "reconnected (epoch {epoch}{restarted}): unrecovered {} of {}: {}; \
             their quotes in between are missing",
            unrecovered.len(),
            count(keys),
            names(unrecovered)
        ),
        None => eprintln!(
            "reconnected (epoch {epoch}{restarted}): the broker did not answer the resume \
             (before v1.2?); quotes in between may be missing"
        ),
    }
}

fn count(topics: usize) -> String {
    match topics {
        1 => "1 topic".into(),
        n => format!("{n} topics"),
    }
}

/// At most 20 names, then how many more.
fn names(topics: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = topics[..topics.len().min(SHOWN)].join(", ");
    if topics.len() > SHOWN {
        text.push_str(&format!(" and {} more", topics.len() - SHOWN));
    }
    text
}

/// A line, flushed at once (tail is read live, often through a pipe).
fn write_line(out: &mut impl Write, line: &str) -> Result<(), String> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tail: TailArgs,
    }

    fn parse(args: &[&str]) -> Result<TailArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("tail").chain(args.iter().copied())).map(|c| c.tail)
    }

    #[test]
    fn sse_takes_a_path_prefix_and_refuses_binary() {
        let args = parse(&["--sse", "--path-prefix", "tickwire/", "A"]).unwrap();
        let target = Target::new(&args, None).unwrap();
        assert_eq!(target.path_prefix, "/tickwire");
        assert_eq!(target.describe(), "http://127.0.0.1:8080/tickwire/sse");
        assert!(parse(&["--sse", "--binary", "A"]).is_err());
        assert!(
            parse(&["--path-prefix", "/p", "A"]).is_err(),
            "only with --sse"
        );
        let ws = parse(&["--ws", "h:1", "A"]).unwrap();
        assert_eq!(Target::new(&ws, None).unwrap().describe(), "h:1");
    }

    #[test]
    fn path_prefixes_are_normalised_or_refused() {
        assert_eq!(path_prefix("/a/b").unwrap(), "/a/b");
        assert_eq!(path_prefix("a/b/").unwrap(), "/a/b");
        assert_eq!(path_prefix("/").unwrap(), "");
        assert_eq!(path_prefix("/x%20y").unwrap(), "/x%20y");
        for bad in ["/a b", "/a?b", "/a#b", "/é", "/a\r"] {
            assert!(path_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_that_would_come_again_end_the_retries() {
        let http = |status| ClientError::Http {
            status,
            code: String::new(),
            message: String::new(),
        };
        assert!(!worth_retrying(&http(403)));
        assert!(!worth_retrying(&http(404)));
        assert!(!worth_retrying(&http(302)));
        assert!(worth_retrying(&http(429)));
        assert!(worth_retrying(&http(502)));
        assert!(worth_retrying(&http(503)));
        assert!(worth_retrying(&ClientError::Handshake("closed".into())));
    }
}
