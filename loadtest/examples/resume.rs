//! How long a resume takes (issue 21): `--topics` topics get `--quotes`
//! quotes each (the history's size by default: 64), then a client resumes
//! every topic from seq 0 — the broker replays all of them — and the time
//! from sending the subscribe to the last replayed quote is printed, with
//! a bystander's latency for live quotes meanwhile.
//!
//! ```sh
//! cargo run --release --example resume -p tickwire-loadtest -- \
//!     --ws 127.0.0.1:8080 --ingest 127.0.0.1:7001 --topics 1000 --quotes 64
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tickwire_client::{
    Format, Publisher, Quote, ServerMessage, Since, SubscribeOptions, Subscriber,
};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn quote(topic: String) -> Quote {
    Quote {
        topic,
        bid: 100.0,
        ask: 100.5,
        bid_size: 10.0,
        ask_size: 12.0,
        last: 100.25,
        volume: 1000.0,
        ts: now_ns(),
    }
}

fn main() {
    let ws: SocketAddr = arg("--ws", "127.0.0.1:8080".parse().unwrap());
    let ingest: SocketAddr = arg("--ingest", "127.0.0.1:7001".parse().unwrap());
    let topics: usize = arg("--topics", 1000);
    let quotes: usize = arg("--quotes", 64);
    assert!(
        ws.ip().is_loopback() && ingest.ip().is_loopback(),
        "loopback only"
    );
    let names: Vec<String> = (0..topics).map(|i| format!("RESUME.{i:05}")).collect();

    // The epoch, and a witness that every quote reached the router.
    let mut witness = Subscriber::connect(ws, Format::Json).expect("connects");
    let last = format!("RESUME.{:05}", topics - 1);
    witness
        .subscribe(&[&last], SubscribeOptions::default())
        .expect("subscribe");
    let epoch = loop {
        if let Ok(Some(ServerMessage::Subscribed { epoch, .. })) =
            witness.next(Duration::from_secs(10))
        {
            break epoch;
        }
    };
    let mut p = Publisher::connect(ingest).expect("ingest");
    for _ in 0..quotes {
        for name in &names {
            p.publish(quote(name.clone())).expect("publish");
        }
        p.flush().expect("flush");
    }
    let mut seen = 0;
    while seen < quotes {
        if let Ok(Some(ServerMessage::Quote { .. })) = witness.next(Duration::from_secs(10)) {
            seen += 1;
        }
    }

    // A bystander gets a live quote every millisecond meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let bystander = {
        let stop = stop.clone();
        std::thread::spawn(move || bystand(ws, ingest, &stop))
    };
    std::thread::sleep(Duration::from_millis(500));

    let mut client = Subscriber::connect(ws, Format::Json).expect("connects");
    let since = Since {
        epoch,
        seqs: names.iter().map(|n| (n.clone(), 0)).collect(),
    };
    let start = Instant::now();
    client
        .subscribe(
            &["RESUME.*"],
            SubscribeOptions {
                since: Some(since),
                ..Default::default()
            },
        )
        .expect("subscribe");
    let mut replayed = 0;
    let mut recovered = None;
    while replayed < topics * quotes {
        match client.next(Duration::from_secs(30)) {
            Ok(Some(ServerMessage::Quote { .. })) => replayed += 1,
            Ok(Some(ServerMessage::Subscribed { recovered: r, .. })) => recovered = r,
            Ok(Some(_)) => {}
            other => panic!("resume stalled after {replayed}: {other:?}"),
        }
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let hist = bystander.join().expect("bystander");
    println!(
        "resume of {topics} topics x {quotes} quotes: recovered {recovered:?}, {replayed} quotes in {:.1} ms ({:.0} quotes/s)",
        took.as_secs_f64() * 1e3,
        replayed as f64 / took.as_secs_f64()
    );
    println!(
        "bystander live latency over the run: p50 {} us, p99 {} us, max {} us ({} quotes)",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max(),
        hist.len()
    );
}

/// Publishes one quote a millisecond and records its delivery latency.
fn bystand(ws: SocketAddr, ingest: SocketAddr, stop: &AtomicBool) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut sub = Subscriber::connect(ws, Format::Json).expect("connects");
    sub.subscribe(&["BYSTANDER"], SubscribeOptions::default())
        .expect("subscribe");
    let mut p = Publisher::connect(ingest).expect("ingest");
    while !stop.load(Ordering::Relaxed) {
        p.publish(quote("BYSTANDER".into())).expect("publish");
        p.flush().expect("flush");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match sub.next(deadline.saturating_duration_since(Instant::now())) {
                Ok(Some(ServerMessage::Quote { quote, .. })) => {
                    let us = now_ns().saturating_sub(quote.ts) / 1_000;
                    let _ = hist.record(us);
                    break;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    hist
}
