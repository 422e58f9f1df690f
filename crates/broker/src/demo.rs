//! `--demo`: a simulated feed for ~50 realistic tickers (equities, crypto,
//! FX, gold), published through the real ingest socket with the client
//! crate, exactly as an external producer would.
//!
//! Each update moves the book the way a real feed does, one event at a
//! time: a size change on one side (~45%), one side's price level moving
//! (~35%), or a trade that sets `last` and adds to `volume` (~20%). Every
//! field the event does not touch stays bit-identical to the ticker's
//! previous quote, so field deltas see one or two changed fields. Prices
//! live on each instrument's tick grid (kept as integer ticks) and follow
//! a hidden fair value doing a mean-reverting random walk around the open,
//! so a long demo never runs away.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tickwire_client::{Publisher, Quote};

#[cfg(test)]
mod tests;

use Class::{Crypto, Equity, Fx, Metal};

/// (ticker, starting price, lot, price decimals (the tick is 10^-decimals:
/// cents for stocks, crypto and gold, pipettes for FX), asset class)
const TICKERS: &[(&str, f64, f64, i32, Class)] = &[
    ("AAPL", 189.0, 100.0, 2, Equity),
    ("MSFT", 415.0, 100.0, 2, Equity),
    ("NVDA", 880.0, 100.0, 2, Equity),
    ("AMZN", 178.0, 100.0, 2, Equity),
    ("GOOGL", 152.0, 100.0, 2, Equity),
    ("META", 495.0, 100.0, 2, Equity),
    ("TSLA", 175.0, 100.0, 2, Equity),
    ("AVGO", 1320.0, 50.0, 2, Equity),
    ("AMD", 160.0, 100.0, 2, Equity),
    ("NFLX", 610.0, 50.0, 2, Equity),
    ("INTC", 31.0, 500.0, 2, Equity),
    ("ORCL", 125.0, 100.0, 2, Equity),
    ("CRM", 290.0, 100.0, 2, Equity),
    ("ADBE", 505.0, 50.0, 2, Equity),
    ("CSCO", 48.0, 500.0, 2, Equity),
    ("QCOM", 165.0, 100.0, 2, Equity),
    ("JPM", 198.0, 100.0, 2, Equity),
    ("BAC", 37.0, 1000.0, 2, Equity),
    ("GS", 455.0, 50.0, 2, Equity),
    ("MS", 94.0, 200.0, 2, Equity),
    ("V", 275.0, 100.0, 2, Equity),
    ("MA", 460.0, 50.0, 2, Equity),
    ("WMT", 60.0, 300.0, 2, Equity),
    ("KO", 61.0, 300.0, 2, Equity),
    ("PEP", 170.0, 100.0, 2, Equity),
    ("XOM", 118.0, 200.0, 2, Equity),
    ("CVX", 158.0, 100.0, 2, Equity),
    ("JNJ", 152.0, 100.0, 2, Equity),
    ("PFE", 28.0, 1000.0, 2, Equity),
    ("UNH", 490.0, 50.0, 2, Equity),
    ("DIS", 112.0, 200.0, 2, Equity),
    ("BA", 185.0, 100.0, 2, Equity),
    ("SPY", 520.0, 200.0, 2, Equity),
    ("QQQ", 440.0, 200.0, 2, Equity),
    ("BTC-USD", 67000.0, 0.5, 2, Crypto),
    ("ETH-USD", 3500.0, 5.0, 2, Crypto),
    ("SOL-USD", 170.0, 50.0, 2, Crypto),
    ("XRP-USD", 0.52, 20000.0, 4, Crypto),
    ("ADA-USD", 0.45, 20000.0, 4, Crypto),
    ("DOGE-USD", 0.16, 50000.0, 5, Crypto),
    ("AVAX-USD", 36.0, 200.0, 2, Crypto),
    ("LTC-USD", 84.0, 100.0, 2, Crypto),
    ("EURUSD", 1.085, 1_000_000.0, 5, Fx),
    ("GBPUSD", 1.27, 1_000_000.0, 5, Fx),
    ("USDJPY", 151.5, 1_000_000.0, 3, Fx),
    ("AUDUSD", 0.655, 1_000_000.0, 5, Fx),
    ("USDCAD", 1.36, 1_000_000.0, 5, Fx),
    ("USDCHF", 0.905, 1_000_000.0, 5, Fx),
    ("EURGBP", 0.855, 1_000_000.0, 5, Fx),
    ("XAUUSD", 2330.0, 100.0, 2, Metal),
];

/// How an asset class moves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Equity,
    Crypto,
    Fx,
    Metal,
}

impl Class {
    /// (largest fair-value shock per price move, typical spread), both as
    /// fractions of the price. A shock is uniform in ±the first, so its
    /// standard deviation is that over √3.
    fn params(self) -> (f64, f64) {
        match self {
            Equity => (0.0001, 0.0001),
            Crypto => (0.0002, 0.0001),
            Fx => (0.00005, 0.00005),
            Metal => (0.0001, 0.00015),
        }
    }
}

/// Update mix: the share of size changes, then of price moves; the rest are
/// trades.
const SIZE_SHARE: f64 = 0.45;
const PRICE_SHARE: f64 = 0.35;
/// Pull of the fair value back to the open per price move (a fraction of
/// the distance): the walk's memory is ~1/REVERSION price moves, and its
/// typical distance from the open is shock / √(6 · REVERSION).
const REVERSION: f64 = 0.0005;
/// A side's size, in lots, stays within 1..=MAX_LOTS.
const MAX_LOTS: u32 = 40;

/// Publishing ticks per second; each tick sends one batch.
const TICKS_PER_SEC: u32 = 100;

/// One instrument's book. Prices are kept as integer ticks; the published
/// `f64` fields change only when the event writes them.
struct Instrument {
    topic: &'static str,
    /// Ticks per unit of price (10^decimals): a price is `ticks / per_unit`,
    /// the double nearest the decimal price (it prints as e.g. 189.13).
    per_unit: f64,
    lot: f64,
    /// Largest fair-value shock per price move, a fraction.
    shock: f64,
    /// Half the typical spread, in ticks.
    half_spread: f64,
    /// Where the fair value reverts to, and the fair value, in ticks.
    open: f64,
    fair: f64,
    bid_ticks: i64,
    ask_ticks: i64,
    bid_lots: u32,
    ask_lots: u32,
    /// The fields as last published.
    bid: f64,
    ask: f64,
    bid_size: f64,
    ask_size: f64,
    last: f64,
    volume: f64,
}

impl Instrument {
    fn new(
        (topic, price, lot, decimals, class): (&'static str, f64, f64, i32, Class),
        rng: &mut Rng,
    ) -> Instrument {
        let per_unit = 10f64.powi(decimals);
        let (shock, spread) = class.params();
        let open = (price * per_unit).round();
        let half_spread = (open * spread / 2.0).max(0.5);
        let bid_ticks = (open - half_spread).round() as i64;
        let ask_ticks = ((open + half_spread).round() as i64).max(bid_ticks + 1);
        let bid_lots = 1 + rng.below(20) as u32;
        let ask_lots = 1 + rng.below(20) as u32;
        let mut inst = Instrument {
            topic,
            per_unit,
            lot,
            shock,
            half_spread,
            open,
            fair: open,
            bid_ticks,
            ask_ticks,
            bid_lots,
            ask_lots,
            bid: 0.0,
            ask: 0.0,
            bid_size: lot * f64::from(bid_lots),
            ask_size: lot * f64::from(ask_lots),
            last: 0.0,
            volume: 0.0,
        };
        inst.bid = inst.price(bid_ticks);
        inst.ask = inst.price(ask_ticks);
        inst.last = inst.price(if rng.unit() < 0.5 {
            bid_ticks
        } else {
            ask_ticks
        });
        inst
    }

    fn price(&self, ticks: i64) -> f64 {
        ticks as f64 / self.per_unit
    }

    /// One side's size goes up or down a few lots, now and then to a fresh
    /// level (a large order arrives, a level is taken out).
    fn change_size(&mut self, rng: &mut Rng) {
        let bid_side = rng.unit() < 0.5;
        let lots = if bid_side {
            self.bid_lots
        } else {
            self.ask_lots
        };
        let lots = if rng.unit() < 0.2 {
            let fresh = 1 + rng.below(20) as u32;
            if fresh == lots {
                fresh % 20 + 1
            } else {
                fresh
            }
        } else {
            let by = 1 + rng.below(3) as u32;
            let up = rng.unit() < 0.5;
            // Within 1..=MAX_LOTS one direction always fits (MAX_LOTS > 6).
            if (up && lots + by <= MAX_LOTS) || lots <= by {
                lots + by
            } else {
                lots - by
            }
        };
        let size = self.lot * f64::from(lots);
        if bid_side {
            self.bid_lots = lots;
            self.bid_size = size;
        } else {
            self.ask_lots = lots;
            self.ask_size = size;
        }
    }

    /// The fair value takes a step; the side further from where the fair
    /// value puts it moves there (never locking or crossing the other
    /// side). If both already sit there, one side flickers by a tick.
    fn move_price(&mut self, rng: &mut Rng) {
        let shock = (2.0 * rng.unit() - 1.0) * self.shock;
        let pull = (self.open - self.fair) / self.open * REVERSION;
        self.fair *= 1.0 + shock + pull;
        let half = self.half_spread * (0.5 + rng.unit());
        let want_bid = ((self.fair - half).round() as i64).max(1);
        let want_ask = ((self.fair + half).round() as i64).max(want_bid + 1);
        // One of the two is always allowed: if the bid may not move there
        // (it would reach the ask), then want_ask > want_bid >= ask > bid.
        let bid_gap = if want_bid < self.ask_ticks {
            (want_bid - self.bid_ticks).abs()
        } else {
            0
        };
        let ask_gap = if want_ask > self.bid_ticks {
            (want_ask - self.ask_ticks).abs()
        } else {
            0
        };
        let coin = rng.unit() < 0.5;
        let (bid_ticks, ask_ticks) = if bid_gap == 0 && ask_gap == 0 {
            let spread = self.ask_ticks - self.bid_ticks;
            match (coin, spread > 1) {
                (true, true) => (self.bid_ticks + 1, self.ask_ticks),
                (false, true) => (self.bid_ticks, self.ask_ticks - 1),
                (true, false) if self.bid_ticks > 1 => (self.bid_ticks - 1, self.ask_ticks),
                _ => (self.bid_ticks, self.ask_ticks + 1),
            }
        } else if bid_gap > ask_gap || (bid_gap == ask_gap && coin) {
            (want_bid, self.ask_ticks)
        } else {
            (self.bid_ticks, want_ask)
        };
        if bid_ticks != self.bid_ticks {
            self.bid_ticks = bid_ticks;
            self.bid = self.price(bid_ticks);
        } else {
            self.ask_ticks = ask_ticks;
            self.ask = self.price(ask_ticks);
        }
    }

    /// A trade: mostly at the bid or the ask, sometimes inside the spread.
    fn trade(&mut self, rng: &mut Rng) {
        let spread = self.ask_ticks - self.bid_ticks;
        let u = rng.unit();
        let at = if u < 0.1 && spread > 1 {
            self.bid_ticks + 1 + rng.below(spread as u64 - 1) as i64
        } else if u < 0.55 {
            self.bid_ticks
        } else {
            self.ask_ticks
        };
        self.last = self.price(at);
        self.volume += self.lot * (1 + rng.below(9)) as f64;
    }
}

/// The simulated market: every instrument's book and the random source.
/// Public for the benchmarks (bytes per delivery on this feed).
pub struct Feed {
    instruments: Vec<Instrument>,
    rng: Rng,
}

impl Feed {
    pub fn new(seed: u64) -> Feed {
        let mut rng = Rng::new(seed);
        let instruments = TICKERS
            .iter()
            .map(|&row| Instrument::new(row, &mut rng))
            .collect();
        Feed { instruments, rng }
    }

    /// One event on one random instrument, and that instrument's new quote.
    pub fn step(&mut self, ts: u64) -> Quote {
        let rng = &mut self.rng;
        let inst = &mut self.instruments[rng.below(TICKERS.len() as u64) as usize];
        let event = rng.unit();
        if event < SIZE_SHARE {
            inst.change_size(rng);
        } else if event < SIZE_SHARE + PRICE_SHARE {
            inst.move_price(rng);
        } else {
            inst.trade(rng);
        }
        Quote {
            topic: inst.topic.to_owned(),
            bid: inst.bid,
            ask: inst.ask,
            bid_size: inst.bid_size,
            ask_size: inst.ask_size,
            last: inst.last,
            volume: inst.volume,
            ts,
        }
    }
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
    let mut feed = Feed::new(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
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
                    tracing::info!(%addr, rate, tickers = feed.instruments.len(), "demo feed publishing");
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
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let batch: Vec<Quote> = (0..count).map(|_| feed.step(ts)).collect();
        if let Some(p) = publisher.as_mut() {
            if let Err(e) = p.publish_batch(batch).and_then(|_| p.flush()) {
                tracing::warn!(error = %e, "demo feed lost its connection; reconnecting");
                publisher = None;
            }
        }
    }
}

struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed` (any seed, 0 included).
    fn new(seed: u64) -> Rng {
        // splitmix64 scrambles the seed; xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

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

    /// Uniform in 0..n (n > 0), by the high bits of a 64×64 product.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}
