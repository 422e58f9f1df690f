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

use tickwire_client::{ClientError, Deltas, ServerMessage};
use tickwire_protocol::topic::Selector;

use super::connection::{reconnect, worth_reconnecting, Resume, Target};
use super::format::{json_line, table_header, table_row};
use super::positions::{Positions, Seen};
use super::TailArgs;

/// The id of tail's subscribe request on every connection.
pub(super) const SUBSCRIBE_ID: u64 = 1;

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
    // With --delta: the connection's last quote per topic, the base of
    // its next delta (a new connection starts from full quotes).
    let mut deltas = Deltas::default();

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
        let next = sub.next_message().and_then(|m| match m {
            Some((m, id)) => deltas
                .apply(m)
                .map(|m| Some((m, id)))
                .map_err(|e| ClientError::Protocol(e.to_string())),
            None => Ok(None),
        });
        let message = match next {
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
                deltas.clear();
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
            // `Deltas::apply` made every delta a quote.
            ServerMessage::Delta { .. } => {}
        }
    }
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
