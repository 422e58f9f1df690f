//! The terminal tools of the `tickwire` binary against a real broker:
//! `tickwire tail` prints the demo feed's updating quotes; `tickwire pub`
//! publishes a CSV file and a single quote that `tail --json` then shows.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use common::*;
use tickwire_broker::demo;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_tickwire");

/// A tool process this test started; killed (by its PID) if still running
/// when the test ends, so a failing assertion leaves nothing behind.
pub(crate) struct Tool(pub Child);

impl Drop for Tool {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(crate) fn run_tool(args: &[&str]) -> (Tool, Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the tickwire binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Tool(child), rx)
}

/// The tool's stdout lines until it exits (bounded by PATIENCE); and its
/// exit code.
pub(crate) fn lines_until_exit(
    mut tool: Tool,
    lines: Receiver<String>,
) -> (Vec<String>, Option<i32>) {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        out.push(line);
    }
    // Stdout closes a moment before the process can be reaped.
    let mut code = None;
    while code.is_none() && Instant::now() < deadline {
        match tool.0.try_wait() {
            Ok(Some(status)) => code = status.code(),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    (out, code)
}

#[test]
fn tail_prints_the_demo_feeds_updating_quotes() {
    let broker = start();
    let stop = Arc::new(AtomicBool::new(false));
    let feed = demo::spawn(broker.ingest_addr(), 500, stop.clone()).expect("demo feed");
    let ws = broker.ws_addr().to_string();
    let (tool, lines) = run_tool(&["tail", "--ws", &ws, "--count", "5", "AAPL"]);
    let (out, code) = lines_until_exit(tool, lines);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = feed.join();
    assert_eq!(code, Some(0), "exits after --count quotes: {out:?}");
    assert!(out[0].starts_with("time "), "a header first: {out:?}");
    let rows: Vec<Vec<&str>> = out[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 5, "{out:?}");
    let mut last_seq = 0;
    for row in &rows {
        assert_eq!(row[1], "AAPL");
        let seq: u64 = row[2].parse().expect("seq column");
        assert!(seq > last_seq, "updating: seq rises, {out:?}");
        last_seq = seq;
        let (bid, ask): (f64, f64) = (row[3].parse().unwrap(), row[4].parse().unwrap());
        assert!(bid < ask, "{row:?}");
    }
}

#[test]
fn pub_sends_a_csv_file_and_a_single_quote_that_tail_shows_as_json() {
    let broker = start();
    let ingest = broker.ingest_addr().to_string();
    let csv = std::env::temp_dir().join(format!("tickwire-pub-{}.csv", std::process::id()));
    let mut file = std::fs::File::create(&csv).unwrap();
    writeln!(file, "topic,bid,ask,bid_size,ask_size,last,volume,ts").unwrap();
    writeln!(file, "CSV.A,1.5,1.6,10,20,,1000,7").unwrap();
    writeln!(file, "CSV.B,2.5,2.6,10,20,2.55,0,8").unwrap();
    drop(file);
    let csv_arg = csv.to_str().unwrap().to_owned();
    let (tool, lines) = run_tool(&["pub", "--ingest", &ingest, "--csv", &csv_arg]);
    assert_eq!(lines_until_exit(tool, lines).1, Some(0));
    let (tool, lines) = run_tool(&[
        "pub", "--ingest", &ingest, "CSV.C", "--bid", "3", "--ask", "4", "--ts", "9",
    ]);
    assert_eq!(lines_until_exit(tool, lines).1, Some(0));
    let _ = std::fs::remove_file(&csv);

    // Snapshots of all three, as JSON lines.
    let ws = broker.ws_addr().to_string();
    let (tool, lines) = run_tool(&["tail", "--ws", &ws, "--json", "--count", "3", "CSV.*"]);
    let (out, code) = lines_until_exit(tool, lines);
    assert_eq!(code, Some(0), "{out:?}");
    let mut quotes: Vec<serde_json::Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    quotes.sort_by_key(|q| q["ts"].as_u64());
    let topics: Vec<&str> = quotes
        .iter()
        .map(|q| q["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["CSV.A", "CSV.B", "CSV.C"]);
    assert_eq!(quotes[0]["bid"], 1.5);
    assert!(quotes[0]["last"].is_null(), "an empty cell is no price");
    assert_eq!(quotes[1]["last"], 2.55);
    assert_eq!(
        (quotes[2]["ask"].as_f64(), quotes[2]["ts"].as_u64()),
        (Some(4.0), Some(9))
    );
}

#[test]
fn a_bad_csv_is_refused_naming_its_line() {
    let broker = start();
    let ingest = broker.ingest_addr().to_string();
    let csv = std::env::temp_dir().join(format!("tickwire-bad-{}.csv", std::process::id()));
    std::fs::write(
        &csv,
        "topic,bid,ask,bid_size,ask_size,last,volume\nX,oops,1,1,1,1,1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["pub", "--ingest", &ingest, "--csv", csv.to_str().unwrap()])
        .output()
        .expect("runs");
    let _ = std::fs::remove_file(&csv);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("oops"), "{err}");
}
