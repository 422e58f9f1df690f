//! `tickwire tail`: subscribe and print every quote as it arrives.
//!
//! When the connection drops after the first ack (a broker restart, a
//! network cut, a slow-consumer close), tail reconnects with backoff and
//! subscribes again with its position (v1.2 `since`): the epoch of its last
//! ack and the last seq it printed per topic. Recovered topics continue with
//! exactly the quotes it missed, so each quote is printed once, in seq
//! order; what the broker could not recover is said on stderr, as is any
//! seq gap. `--no-resume` ends tail with the connection instead.

use std::io::Write;
use std::time::Duration;

use tickwire_client::{
    ClientError, Format, ServerMessage, Since, SubscribeOptions, Subscriber, TlsOptions,
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
    let format = if args.binary {
        Format::Binary
    } else {
        Format::Json
    };
    let tls = args.tls.options(&args.ws)?;
    let selectors: Vec<Selector> = args
        .topics
        .iter()
        .filter_map(|t| Selector::parse(t))
        .collect();
    // The first connection must work (a wrong address fails at once).
    let mut sub = open(args, format, tls.as_ref(), None)?;
    let mut positions = Positions::default();
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
        let message = match next_message(&mut sub) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) if args.no_resume || !worth_reconnecting(&e) => {
                return Err(format!("connection ended: {e}"))
            }
            Err(e) => {
                eprintln!("connection lost ({e}); reconnecting");
                let since = positions.since(&selectors);
                awaiting = Awaiting::Resume {
                    keys: since.as_ref().map_or(0, |s| s.seqs.len()),
                };
                sub = reconnect(args, format, tls.as_ref(), since);
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
                if id == Some(SUBSCRIBE_ID) {
                    let changed = positions.on_ack(&epoch);
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

/// Connects, authenticates (with `--token`) and subscribes, with `since`
/// when resuming.
fn open(
    args: &TailArgs,
    format: Format,
    tls: Option<&TlsOptions>,
    since: Option<Since>,
) -> Result<Subscriber, String> {
    let addr = resolve("--ws", &args.ws)?;
    let mut sub = match tls {
        Some(tls) => Subscriber::connect_tls(addr, format, tls),
        None => Subscriber::connect(addr, format),
    }
    .map_err(|e| format!("cannot connect to {}: {e}", args.ws))?;
    if let Some(token) = &args.token {
        let auth = serde_json::json!({"op": "auth", "id": 0, "token": token});
        sub.send_text(&auth.to_string())
            .map_err(|e| e.to_string())?;
    }
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let options = SubscribeOptions {
        id: Some(SUBSCRIBE_ID),
        snapshot: Some(!args.no_snapshot),
        max_hz: args.max_hz,
        since,
        rewind: None,
    };
    sub.subscribe(&topics, options).map_err(|e| e.to_string())?;
    Ok(sub)
}

/// Tries again until the broker is back (Ctrl-C still ends tail), waiting
/// 100 ms, doubling to 2 s, between attempts.
fn reconnect(
    args: &TailArgs,
    format: Format,
    tls: Option<&TlsOptions>,
    since: Option<Since>,
) -> Subscriber {
    let mut wait = FIRST_BACKOFF;
    loop {
        std::thread::sleep(wait);
        if let Ok(sub) = open(args, format, tls, since.clone()) {
            return sub;
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

/// The next message, `Ok(None)` after a quiet poll. A broker silent for
/// `PING_AFTER` is pinged; one silent for `DEAD_AFTER` counts as gone.
fn next_message(sub: &mut Subscriber) -> Result<Option<ServerMessage>, ClientError> {
    if let Some(message) = sub.next(POLL)? {
        return Ok(Some(message));
    }
    let idle = sub.idle_for();
    if idle >= DEAD_AFTER {
        return Err(ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("nothing from the broker for {} s", idle.as_secs()),
        )));
    }
    if idle >= PING_AFTER {
        sub.ping()?;
    }
    Ok(None)
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
        Awaiting::Resume { keys } => *keys,
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
