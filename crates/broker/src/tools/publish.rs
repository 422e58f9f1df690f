//! `tickwire pub`: one quote from flags, or a CSV file of quotes, into the
//! ingest socket.

use std::io::Read;

use tickwire_client::{Publisher, Quote};

use super::format::parse_csv;
use super::{resolve, PubArgs};

/// Quotes per `Batch` frame when publishing a file.
const BATCH: usize = 512;

pub fn run(args: &PubArgs) -> Result<(), String> {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let quotes = match (&args.csv, &args.topic) {
        (Some(path), _) => {
            let mut text = String::new();
            let read = if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|e| format!("--csv {}: {e}", path.display()))?;
            parse_csv(&text, now_ns).map_err(|e| format!("--csv {}: {e}", path.display()))?
        }
        (None, Some(topic)) => {
            if !tickwire_protocol::topic::is_valid_topic(topic) {
                return Err(format!("{topic:?} is not a valid topic"));
            }
            vec![Quote {
                topic: topic.clone(),
                bid: args.bid,
                ask: args.ask,
                bid_size: args.bid_size,
                ask_size: args.ask_size,
                last: args.last,
                volume: args.volume,
                ts: args.ts.unwrap_or(now_ns),
            }]
        }
        (None, None) => return Err("a topic or --csv is needed".into()),
    };
    let addr = resolve("--ingest", &args.ingest)?;
    let mut publisher = match args.tls.options(&args.ingest)? {
        Some(tls) => Publisher::connect_tls(addr, &tls),
        None => Publisher::connect(addr),
    }
    .map_err(|e| format!("cannot connect to {}: {e}", args.ingest))?;
    if let Some(token) = &args.token {
        publisher.hello(token).map_err(|e| e.to_string())?;
    }
    let total = quotes.len();
    let mut rest = quotes;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(BATCH));
        publisher.publish_batch(rest).map_err(|e| e.to_string())?;
        rest = tail;
    }
    publisher.flush().map_err(|e| e.to_string())?;
    eprintln!("published {total} quote(s) to {}", args.ingest);
    Ok(())
}
