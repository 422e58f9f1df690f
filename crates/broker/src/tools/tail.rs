//! `tickwire tail`: subscribe and print every quote as it arrives.

use std::io::Write;
use std::time::Duration;

use tickwire_client::{Format, ServerMessage, SubscribeOptions, Subscriber};

use super::format::{json_line, table_header, table_row};
use super::{resolve, TailArgs};

/// How long a read waits before checking again (no quotes is not an error).
const POLL: Duration = Duration::from_secs(1);

pub fn run(args: &TailArgs) -> Result<(), String> {
    let addr = resolve("--ws", &args.ws)?;
    let format = if args.binary {
        Format::Binary
    } else {
        Format::Json
    };
    let mut sub = match args.tls.options(&args.ws)? {
        Some(tls) => Subscriber::connect_tls(addr, format, &tls),
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
        id: Some(1),
        snapshot: Some(!args.no_snapshot),
        max_hz: args.max_hz,
    };
    sub.subscribe(&topics, options).map_err(|e| e.to_string())?;

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
        let message = match sub.next(POLL) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return Err(format!("connection ended: {e}")),
        };
        match message {
            ServerMessage::Quote { quote, seq } => {
                let line = if args.json {
                    json_line(&quote, seq)
                } else {
                    table_row(&quote, seq)
                };
                write_line(&mut out, &line)?;
                printed += 1;
            }
            ServerMessage::Subscribed { epoch, topics, .. } => {
                eprintln!("subscribed to {} (epoch {epoch})", topics.join(", "));
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

/// A line, flushed at once (tail is read live, often through a pipe).
fn write_line(out: &mut impl Write, line: &str) -> Result<(), String> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}
