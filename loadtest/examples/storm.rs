//! A `*` subscribe storm over many topics, and what it costs another client.
//!
//! Against a running broker (loopback): creates `--topics` topics (one quote
//! each), then a steady subscriber receives one topic at `--rate` quotes/s
//! while, for the second half of the run, storm clients send `*`
//! subscribes as fast as the broker lets them (reading and discarding what
//! comes back). Prints the steady client's end-to-end latency before and
//! during the storm.
//!
//! ```sh
//! cargo run --release --example storm -p tickwire-loadtest -- \
//!     --ws 127.0.0.1:8080 --ingest 127.0.0.1:7001 --topics 100000 --secs 5 --snapshot false
//! ```
//!
//! On a small machine the storm clients compete with the steady one for the
//! CPU, which shows up as the steady client's own scheduling delay. Run them
//! as a second, niced process instead: `--stormers 0` here, and
//! `nice -n 19 storm --storm-only --stormers 4 --secs 5 …` started at the
//! same time (it waits `--delay` seconds, default 2 + secs, then storms for
//! `--secs`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tickwire_client::{Format, Publisher, Quote, ServerMessage, SubscribeOptions, Subscriber};

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

fn quote(topic: String, ts: u64) -> Quote {
    Quote {
        topic,
        bid: 1.0,
        ask: 1.1,
        bid_size: 1.0,
        ask_size: 1.0,
        last: 1.05,
        volume: 1.0,
        ts,
    }
}

fn main() {
    let ws: SocketAddr = arg("--ws", "127.0.0.1:8080".parse().unwrap());
    let ingest: SocketAddr = arg("--ingest", "127.0.0.1:7001".parse().unwrap());
    let topics: usize = arg("--topics", 100_000);
    let secs: u64 = arg("--secs", 5);
    let rate: u64 = arg("--rate", 1000);
    let stormers: usize = arg("--stormers", 1);
    let snapshot: bool = arg("--snapshot", false);
    let storm_only = std::env::args().any(|a| a == "--storm-only");
    assert!(
        ws.ip().is_loopback() && ingest.ip().is_loopback(),
        "loopback only"
    );

    if storm_only {
        let delay: f64 = arg("--delay", 2.0 + secs as f64);
        let stop = Arc::new(AtomicBool::new(false));
        let storming = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let threads = spawn_stormers(ws, stormers, snapshot, &stop, &storming, &count);
        std::thread::sleep(Duration::from_secs_f64(delay));
        storming.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        println!(
            "storm: {} `*` subscribes sent",
            count.load(Ordering::Relaxed)
        );
        return;
    }

    // The topics, in batches.
    let mut p = Publisher::connect(ingest).expect("ingest");
    for chunk in (0..topics).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|i| quote(format!("S.{i}"), now_ns()))
            .collect();
        p.publish_batch(batch).expect("publish");
    }
    p.flush().expect("flush");

    let mut steady = Subscriber::connect(ws, Format::Json).expect("steady connects");
    steady
        .subscribe(
            &["STEADY"],
            SubscribeOptions {
                snapshot: Some(false),
                ..Default::default()
            },
        )
        .expect("subscribe");
    let _ack = steady.next(Duration::from_secs(10));

    let stop = Arc::new(AtomicBool::new(false));
    let storming = Arc::new(AtomicBool::new(false));
    let storm_requests = Arc::new(AtomicU64::new(0));
    let threads = spawn_stormers(ws, stormers, snapshot, &stop, &storming, &storm_requests);
    let publisher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut p = Publisher::connect(ingest).expect("ingest");
            let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                p.publish(quote("STEADY".into(), now_ns()))
                    .expect("publish");
                p.flush().expect("flush");
                next += gap;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
        })
    };

    let mut before = Histogram::<u64>::new(3).unwrap();
    let mut during = Histogram::<u64>::new(3).unwrap();
    // Warm-up: let the topic creation backlog drain before measuring.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(2) {
        let _ = steady.next(Duration::from_millis(100));
    }
    let start = Instant::now();
    let half = Duration::from_secs(secs);
    while start.elapsed() < 2 * half {
        let in_storm = start.elapsed() >= half;
        storming.store(in_storm, Ordering::Relaxed);
        if let Ok(Some(ServerMessage::Quote { quote, .. })) =
            steady.next(Duration::from_millis(100))
        {
            let us = now_ns().saturating_sub(quote.ts) / 1000;
            let h = if in_storm { &mut during } else { &mut before };
            let _ = h.record(us.max(1));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    for t in threads {
        let _ = t.join();
    }
    let row = |name: &str, h: &Histogram<u64>| {
        println!(
            "{name:<14} n={:<7} p50 {:>8.3} ms  p99 {:>8.3} ms  p99.9 {:>8.3} ms  max {:>8.3} ms",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    };
    println!("topics {topics}, steady {rate} quotes/s, {stormers} stormer(s), snapshot {snapshot}");
    row("before storm", &before);
    row("during storm", &during);
    println!(
        "storm: {} `*` subscribes sent",
        storm_requests.load(Ordering::Relaxed)
    );
}

/// Storm clients: once `storming`, each sends `*` subscribes back to back,
/// waiting for each answer, until `stop`.
fn spawn_stormers(
    ws: SocketAddr,
    stormers: usize,
    snapshot: bool,
    stop: &Arc<AtomicBool>,
    storming: &Arc<AtomicBool>,
    storm_requests: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for _ in 0..stormers {
        let (stop, storming, count) = (stop.clone(), storming.clone(), storm_requests.clone());
        threads.push(std::thread::spawn(move || {
            let mut s = Subscriber::connect(ws, Format::Json).expect("stormer connects");
            while !storming.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            while !stop.load(Ordering::Relaxed) {
                let options = SubscribeOptions {
                    snapshot: Some(snapshot),
                    ..Default::default()
                };
                if s.subscribe(&["*"], options).is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
                // Read up to this request's answer (skipping quotes): the
                // next request goes as soon as the broker has answered.
                loop {
                    match s.next(Duration::from_secs(5)) {
                        Ok(Some(ServerMessage::Quote { .. })) => continue,
                        Ok(Some(_)) | Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    threads
}
