//! `--demo`: a simulated feed for ~50 realistic tickers (equities, crypto,
//! FX) doing a random walk, published through the real ingest socket with
//! the client crate, exactly as an external producer would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tickwire_client::{Publisher, Quote};

/// (ticker, starting price, typical size)
const TICKERS: &[(&str, f64, f64)] = &[
    ("AAPL", 189.0, 100.0),
    ("MSFT", 415.0, 100.0),
    ("NVDA", 880.0, 100.0),
    ("AMZN", 178.0, 100.0),
    ("GOOGL", 152.0, 100.0),
    ("META", 495.0, 100.0),
    ("TSLA", 175.0, 100.0),
    ("AVGO", 1320.0, 50.0),
    ("AMD", 160.0, 100.0),
    ("NFLX", 610.0, 50.0),
    ("INTC", 31.0, 500.0),
    ("ORCL", 125.0, 100.0),
    ("CRM", 290.0, 100.0),
    ("ADBE", 505.0, 50.0),
    ("CSCO", 48.0, 500.0),
    ("QCOM", 165.0, 100.0),
    ("JPM", 198.0, 100.0),
    ("BAC", 37.0, 1000.0),
    ("GS", 455.0, 50.0),
    ("MS", 94.0, 200.0),
    ("V", 275.0, 100.0),
    ("MA", 460.0, 50.0),
    ("WMT", 60.0, 300.0),
    ("KO", 61.0, 300.0),
    ("PEP", 170.0, 100.0),
    ("XOM", 118.0, 200.0),
    ("CVX", 158.0, 100.0),
    ("JNJ", 152.0, 100.0),
    ("PFE", 28.0, 1000.0),
    ("UNH", 490.0, 50.0),
    ("DIS", 112.0, 200.0),
    ("BA", 185.0, 100.0),
    ("SPY", 520.0, 200.0),
    ("QQQ", 440.0, 200.0),
    ("BTC-USD", 67000.0, 0.5),
    ("ETH-USD", 3500.0, 5.0),
    ("SOL-USD", 170.0, 50.0),
    ("XRP-USD", 0.52, 20000.0),
    ("ADA-USD", 0.45, 20000.0),
    ("DOGE-USD", 0.16, 50000.0),
    ("AVAX-USD", 36.0, 200.0),
    ("LTC-USD", 84.0, 100.0),
    ("EURUSD", 1.085, 1_000_000.0),
    ("GBPUSD", 1.27, 1_000_000.0),
    ("USDJPY", 151.5, 1_000_000.0),
    ("AUDUSD", 0.655, 1_000_000.0),
    ("USDCAD", 1.36, 1_000_000.0),
    ("USDCHF", 0.905, 1_000_000.0),
    ("EURGBP", 0.855, 1_000_000.0),
    ("XAUUSD", 2330.0, 100.0),
];

/// Publishing ticks per second; each tick sends one batch.
const TICKS_PER_SEC: u32 = 100;

struct Instrument {
    topic: &'static str,
    mid: f64,
    size: f64,
    open: f64,
    volume: f64,
}

/// Starts the feed thread; it stops when `stop` is set.
pub fn spawn(
    ingest_addr: SocketAddr,
    rate: u32,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let addr = connectable(ingest_addr);
    std::thread::Builder::new()
        .name("demo-feed".into())
        .spawn(move || run(addr, rate, &stop))
}

/// A wildcard listen address is not something to connect to.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

fn run(addr: SocketAddr, rate: u32, stop: &AtomicBool) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut instruments: Vec<Instrument> = TICKERS
        .iter()
        .map(|&(topic, mid, size)| Instrument {
            topic,
            mid,
            size,
            open: mid,
            volume: 0.0,
        })
        .collect();
    // Whole quotes per tick, carrying the remainder so the rate is exact.
    let per_tick = f64::from(rate) / f64::from(TICKS_PER_SEC);
    let mut owed = 0.0;
    let tick = Duration::from_secs(1) / TICKS_PER_SEC;
    let mut publisher: Option<Publisher> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        next += tick;
        if publisher.is_none() {
            match Publisher::connect(addr) {
                Ok(p) => {
                    tracing::info!(%addr, rate, tickers = instruments.len(), "demo feed publishing");
                    publisher = Some(p);
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "demo feed cannot connect; retrying in 1 s");
                    next = Instant::now() + Duration::from_secs(1);
                    continue;
                }
            }
        }
        owed += per_tick;
        let count = owed.floor() as usize;
        owed -= count as f64;
        let batch: Vec<Quote> = (0..count)
            .map(|_| step(&mut instruments, &mut rng))
            .collect();
        if let Some(p) = publisher.as_mut() {
            if let Err(e) = p.publish_batch(batch).and_then(|_| p.flush()) {
                tracing::warn!(error = %e, "demo feed lost its connection; reconnecting");
                publisher = None;
            }
        }
    }
}

/// Moves one random instrument and returns its new quote.
fn step(instruments: &mut [Instrument], rng: &mut Rng) -> Quote {
    let i = (rng.next() % instruments.len() as u64) as usize;
    let inst = &mut instruments[i];
    // Geometric random walk, ~2 bp per tick, pulled gently back to the open.
    let shock = (rng.unit() - 0.5) * 0.0004;
    let pull = (inst.open - inst.mid) / inst.open * 0.001;
    inst.mid *= 1.0 + shock + pull;
    let spread = inst.mid * 0.0001 * (1.0 + rng.unit());
    let trade = inst.size * (1.0 + (rng.unit() * 9.0).floor());
    inst.volume += trade;
    let bid = inst.mid - spread / 2.0;
    let ask = inst.mid + spread / 2.0;
    Quote {
        topic: inst.topic.to_owned(),
        bid: round_price(bid),
        ask: round_price(ask),
        bid_size: inst.size * (1.0 + (rng.unit() * 20.0).floor()),
        ask_size: inst.size * (1.0 + (rng.unit() * 20.0).floor()),
        last: round_price(if rng.unit() < 0.5 { bid } else { ask }),
        volume: inst.volume,
        ts: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

/// Price increments like real books: cents for stocks, finer below $10.
fn round_price(p: f64) -> f64 {
    // Divide (not multiply by 0.01) so the result is the double nearest the
    // decimal price and prints as e.g. 189.13, not 189.13000000000002.
    let per_unit = if p >= 10.0 { 100.0 } else { 100_000.0 };
    (p * per_unit).round() / per_unit
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast, good enough for a demo walk.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
