//! Where `tickwire tail` connects and how it gets back: the endpoint
//! (WebSocket or SSE, TLS, a proxy's path prefix), what a reconnect resumes
//! from, the backoff, and which failures are worth another try.

use std::time::Duration;

use tickwire_client::{
    sse_target, ws_path, ClientError, Format, ServerMessage, Since, SseSubscriber,
    SubscribeOptions, Subscriber, TlsOptions,
};

use super::tail::SUBSCRIBE_ID;
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

/// Where tail connects and how: `--ws` (resolved again per connection,
/// as a restarted broker may come back elsewhere), TLS, WebSocket or SSE.
pub(super) struct Target<'a> {
    args: &'a TailArgs,
    tls: Option<TlsOptions>,
    /// With --sse: `--path-prefix`, normalised (`""` or `/a/b`).
    path_prefix: String,
}

/// What a reconnect resumes from: the positions (WebSocket's `since`) or
/// the last event id (SSE's `Last-Event-ID`); nothing on the first
/// connection.
#[derive(Default)]
pub(super) struct Resume {
    pub since: Option<Since>,
    pub last_event_id: Option<String>,
}

impl Resume {
    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.last_event_id.is_none()
    }
}

/// An open connection of either kind.
pub(super) enum Conn {
    Ws(Subscriber),
    Sse(SseSubscriber),
}

impl<'a> Target<'a> {
    pub fn new(args: &'a TailArgs, tls: Option<TlsOptions>) -> Result<Target<'a>, String> {
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
    pub fn describe(&self) -> String {
        if self.args.sse {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}{}/sse", self.args.ws, self.path_prefix)
        } else {
            self.args.ws.clone()
        }
    }

    pub fn open(&self, resume: &Resume) -> Result<Conn, ClientError> {
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
        let path = ws_path(format, self.args.delta);
        let mut sub = Subscriber::connect_to(addr, &path, self.tls.as_ref())?;
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
        let mut target = sse_target(&self.path_prefix, topics, options);
        if self.args.delta {
            target.push_str("&delta=1");
        }
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
pub(super) fn path_prefix(text: &str) -> Result<String, String> {
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
pub(super) fn reconnect(target: &Target, resume: &Resume) -> Result<Conn, String> {
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
pub(super) fn worth_retrying(e: &ClientError) -> bool {
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
    pub fn next_message(&mut self) -> Result<Option<(ServerMessage, Option<String>)>, ClientError> {
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
pub(super) fn worth_reconnecting(e: &ClientError) -> bool {
    !matches!(
        e,
        ClientError::Protocol(_)
            | ClientError::Closed {
                code: Some(1002 | 1003 | 1007 | 1009 | 1010),
                ..
            }
    )
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
