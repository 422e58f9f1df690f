//! Publishers: plain TCP ingest connections writing bincode `Batch` frames,
//! paced (a schedule of send times) or as fast as the broker takes them.
//!
//! Paced quotes carry their *scheduled* send time as `ts`, not the actual
//! one: if the publisher (or the broker's TCP window) stalls, the quotes
//! sent late show the stall as latency instead of hiding it (coordinated
//! omission correction). At max rate `ts` is the time the batch is built.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::ingest::{begin_batch, end_batch, push_quote, QuoteFields};
use crate::sys;

#[derive(Clone, Debug)]
pub struct PubConfig {
    pub ingest: SocketAddr,
    pub publishers: usize,
    pub topics: usize,
    pub prefix: String,
    /// Total quotes/s over all publishers; 0 = as fast as possible.
    pub rate: f64,
    /// Most quotes in one Batch frame.
    pub batch: usize,
}

#[derive(Debug, Default)]
pub struct PubResult {
    pub sent: u64,
    /// Quotes the schedule called for by the end (paced only).
    pub scheduled: u64,
    pub error: Option<String>,
    pub busy_share: f64,
}

/// How long a blocked write may wait before the deadline is checked again.
const WRITE_SLICE: Duration = Duration::from_millis(100);
/// After the end of the run, give up on a write the broker does not take.
const WRITE_GRACE: Duration = Duration::from_secs(2);

impl PubResult {
    /// Adds the figures of another connection of the same publisher (a
    /// reconnect): counts summed, the first error kept, the busier share.
    pub fn add(&mut self, o: &PubResult) {
        self.sent += o.sent;
        self.scheduled += o.scheduled;
        if self.error.is_none() {
            self.error.clone_from(&o.error);
        }
        self.busy_share = self.busy_share.max(o.busy_share);
    }
}

/// Runs publisher `p` on one connection from `start` (an Instant plus the
/// matching wall-clock ns) until `end`. `first` numbers its first quote:
/// quote `q` goes to the publisher's topic `q mod topics`, so a publisher
/// that reconnects passes the quotes it sent so far and carries on with the
/// next topic in turn (the pacing starts afresh at `start`).
pub fn run(
    cfg: &PubConfig,
    p: usize,
    start: Instant,
    start_ns: u64,
    end: Instant,
    first: u64,
) -> PubResult {
    let cpu0 = sys::thread_cpu();
    let mut res = PubResult::default();
    let topics: Vec<Vec<u8>> = (0..cfg.topics)
        .filter(|i| i % cfg.publishers == p)
        .map(|i| format!("{}{i}", cfg.prefix).into_bytes())
        .collect();
    if topics.is_empty() {
        return res;
    }
    let mut stream = match TcpStream::connect_timeout(&cfg.ingest, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            res.error = Some(format!("ingest connect {}: {e}", cfg.ingest));
            return res;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_SLICE));

    let rate = cfg.rate / cfg.publishers as f64;
    let interval_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
    let batch = cfg.batch.max(1) as u64;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut k: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let n = if rate > 0.0 {
            let due = ((now - start).as_secs_f64() * rate) as u64 + 1;
            if due <= k {
                // Sleep until the next quote is due (or the end).
                let next = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
                let wake = next.min(end);
                if wake > now {
                    std::thread::sleep(wake - now);
                }
                continue;
            }
            (due - k).min(batch)
        } else {
            batch
        };
        buf.clear();
        let frame = begin_batch(&mut buf);
        let now_ns = sys::wall_ns();
        for i in 0..n {
            let ts = if rate > 0.0 {
                start_ns + ((k + i) as f64 * interval_ns) as u64
            } else {
                now_ns
            };
            let q = first + k + i;
            let topic = &topics[(q % topics.len() as u64) as usize];
            push_quote(
                &mut buf,
                &QuoteFields {
                    topic,
                    price: 100.0 + (q % 1000) as f64 * 0.01,
                    volume: q as f64,
                    ts,
                },
            );
        }
        end_batch(&mut buf, frame, n);
        if let Err(e) = write_bounded(&mut stream, &buf, end + WRITE_GRACE) {
            res.error = Some(format!("ingest write: {e}"));
            break;
        }
        k += n;
        res.sent += n;
    }
    if rate > 0.0 {
        res.scheduled = ((end - start).as_secs_f64() * rate) as u64;
    }
    let wall = start.elapsed().as_secs_f64();
    if wall > 0.0 {
        res.busy_share = sys::thread_cpu().saturating_sub(cpu0).as_secs_f64() / wall;
    }
    res
}

/// `write_all` with a deadline: a broker that stops reading cannot hold the
/// publisher past `deadline`.
fn write_bounded(stream: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        ErrorKind::TimedOut,
                        "broker did not take the data before the deadline",
                    ));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
