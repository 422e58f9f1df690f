//! Counters and gauges shared by all threads.
//!
//! Plain relaxed atomics: threads add per batch or per event (never per
//! delivery: workers keep local tallies and add them once per batch), so
//! there is no lock and little cache-line traffic on the hot path. The
//! `/metrics` exposition reads these.

mod cluster;
mod exposition;
mod latency;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tickwire_protocol::control::ErrorCode;

use crate::encodings::Encoding;

pub use cluster::ClusterMetrics;
pub use exposition::{render, CONTENT_TYPE};
pub use latency::{LatencyRecorder, LatencyWindow, Quantiles};

/// Sliding window for latency quantiles, in slots.
const WINDOW: Duration = Duration::from_secs(60);
const WINDOW_SLOTS: usize = 6;

/// Why a producer connection was closed (`tickwire_ingest_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    TooLong,
    Decode,
    BadTopic,
    UnexpectedHello,
    Unauthorized,
    /// The TLS handshake failed or timed out (no or a wrong client
    /// certificate under mutual TLS, not TLS at all, too slow).
    Tls,
    /// A quote outside the producer token's topic grants.
    NotAuthorized,
}

impl RejectReason {
    pub const ALL: [RejectReason; 7] = [
        RejectReason::TooLong,
        RejectReason::Decode,
        RejectReason::BadTopic,
        RejectReason::UnexpectedHello,
        RejectReason::Unauthorized,
        RejectReason::Tls,
        RejectReason::NotAuthorized,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RejectReason::TooLong => "too_long",
            RejectReason::Decode => "decode",
            RejectReason::BadTopic => "bad_topic",
            RejectReason::UnexpectedHello => "unexpected_hello",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::Tls => "tls",
            RejectReason::NotAuthorized => "not_authorized",
        }
    }
}

/// Close codes the broker sends, in a fixed table so counting needs no map.
pub const CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011];

/// Error replies to subscribers, by code (a fixed table, like close codes).
pub const ERROR_CODES: [ErrorCode; 5] = [
    ErrorCode::BadRequest,
    ErrorCode::BadTopic,
    ErrorCode::TooManySubscriptions,
    ErrorCode::NotAuthorized,
    ErrorCode::RateLimited,
];

/// How a TLS handshake on the wss/https listener ended
/// (`tickwire_tls_handshakes_total{result}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsHandshake {
    Full,
    Resumed,
    Failed,
}

impl TlsHandshake {
    pub const ALL: [TlsHandshake; 3] = [
        TlsHandshake::Full,
        TlsHandshake::Resumed,
        TlsHandshake::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TlsHandshake::Full => "full",
            TlsHandshake::Resumed => "resumed",
            TlsHandshake::Failed => "failed",
        }
    }
}

pub struct Metrics {
    /// WebSocket subscribers (`kind="subscriber"`).
    pub subscriber_connections: AtomicI64,
    /// Server-Sent Events streams (`kind="sse"`).
    pub sse_connections: AtomicI64,
    pub producer_connections: AtomicI64,
    pub subscriptions: AtomicI64,
    pub topics: AtomicI64,
    pub quotes_in: AtomicU64,
    pub deliveries: AtomicU64,
    /// By `encodings::Encoding` (its discriminant is the index).
    pub bytes_out: [AtomicU64; Encoding::ALL.len()],
    pub topics_dropped: AtomicU64,
    /// Router rounds that left producers' bytes unread (its read budget
    /// spent): the router is saturated by the feed.
    pub ingest_backlog_rounds: AtomicU64,
    pub connections_refused: AtomicU64,
    /// Connections answered 503: over `max_connections_per_ip`.
    pub ip_limit_refused: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub conflated: AtomicU64,
    /// Subscribes answered by the router, and by their worker from the
    /// newest quotes it holds (`worker::following`).
    pub subscribes_routed: AtomicU64,
    pub subscribes_answered_by_worker: AtomicU64,
    /// Topics of `since` requests, recovered and not (v1.2 resume).
    pub resume_recovered: AtomicU64,
    pub resume_unrecovered: AtomicU64,
    /// Quotes and bytes held in history, sampled by the router.
    pub history_quotes: AtomicU64,
    pub history_bytes: AtomicU64,
    ingest_rejected: [AtomicU64; RejectReason::ALL.len()],
    closes: [AtomicU64; CLOSE_CODES.len()],
    closes_other: AtomicU64,
    request_errors: [AtomicU64; ERROR_CODES.len()],
    tls_handshakes: [AtomicU64; TlsHandshake::ALL.len()],
    pub frames_out: AtomicU64,
    pub socket_writes: AtomicU64,
    /// Batches waiting in each router → worker queue, sampled by the worker.
    pub worker_queue_depth: Vec<AtomicU64>,
    /// Ingest decode → bytes handed to the subscriber's socket.
    pub delivery_latency: Mutex<LatencyWindow>,
    /// Ingest decode → the router numbers the batch (on the same thread:
    /// the commands it handles first).
    pub ingest_router_latency: Mutex<LatencyWindow>,
    /// Router sends a batch → the worker picks it up.
    pub router_worker_latency: Mutex<LatencyWindow>,
    pub cluster: ClusterMetrics,
    pub started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(1)
    }
}

impl Metrics {
    pub fn new(workers: usize) -> Metrics {
        let now = Instant::now();
        let window = || Mutex::new(LatencyWindow::new(WINDOW, WINDOW_SLOTS, now));
        Metrics {
            subscriber_connections: AtomicI64::new(0),
            sse_connections: AtomicI64::new(0),
            producer_connections: AtomicI64::new(0),
            subscriptions: AtomicI64::new(0),
            topics: AtomicI64::new(0),
            quotes_in: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            bytes_out: Default::default(),
            topics_dropped: AtomicU64::new(0),
            ingest_backlog_rounds: AtomicU64::new(0),
            resume_recovered: AtomicU64::new(0),
            resume_unrecovered: AtomicU64::new(0),
            history_quotes: AtomicU64::new(0),
            history_bytes: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            ip_limit_refused: AtomicU64::new(0),
            slow_consumer_closes: AtomicU64::new(0),
            conflated: AtomicU64::new(0),
            subscribes_routed: AtomicU64::new(0),
            subscribes_answered_by_worker: AtomicU64::new(0),
            ingest_rejected: Default::default(),
            closes: Default::default(),
            closes_other: AtomicU64::new(0),
            request_errors: Default::default(),
            tls_handshakes: Default::default(),
            frames_out: AtomicU64::new(0),
            socket_writes: AtomicU64::new(0),
            worker_queue_depth: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            delivery_latency: window(),
            ingest_router_latency: window(),
            router_worker_latency: window(),
            cluster: ClusterMetrics::new(now),
            started: now,
        }
    }

    pub fn request_error(&self, code: ErrorCode) {
        if let Some(i) = ERROR_CODES.iter().position(|&c| c == code) {
            self.request_errors[i].fetch_add(1, Relaxed);
        }
    }

    pub fn request_errors(&self, code: ErrorCode) -> u64 {
        ERROR_CODES
            .iter()
            .position(|&c| c == code)
            .map_or(0, |i| self.request_errors[i].load(Relaxed))
    }

    pub fn tls_handshake(&self, result: TlsHandshake) {
        self.tls_handshakes[result as usize].fetch_add(1, Relaxed);
    }

    pub fn tls_handshakes(&self, result: TlsHandshake) -> u64 {
        self.tls_handshakes[result as usize].load(Relaxed)
    }

    pub fn reject(&self, reason: RejectReason) {
        self.ingest_rejected[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.ingest_rejected[reason as usize].load(Relaxed)
    }

    pub fn close_sent(&self, code: u16) {
        match CLOSE_CODES.iter().position(|&c| c == code) {
            Some(i) => self.closes[i].fetch_add(1, Relaxed),
            None => self.closes_other.fetch_add(1, Relaxed),
        };
    }

    pub fn closes_sent(&self, code: u16) -> u64 {
        CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .map_or(0, |i| self.closes[i].load(Relaxed))
    }
}

pub fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.fetch_add(n, Relaxed);
    }
}

pub fn gauge_add(gauge: &AtomicI64, n: i64) {
    if n != 0 {
        gauge.fetch_add(n, Relaxed);
    }
}

/// Logs one line per `every`: rates since the last line and the delivery
/// p99 over the window. Runs until `stop` is set.
pub fn log_summaries(m: &Metrics, stop: &std::sync::atomic::AtomicBool, every: Duration) {
    let tick = Duration::from_millis(100).min(every);
    let mut last = (
        Instant::now(),
        m.quotes_in.load(Relaxed),
        m.deliveries.load(Relaxed),
    );
    while !stop.load(Relaxed) {
        std::thread::sleep(tick);
        let now = Instant::now();
        let elapsed = now.duration_since(last.0);
        if elapsed < every {
            continue;
        }
        let (quotes, deliveries) = (m.quotes_in.load(Relaxed), m.deliveries.load(Relaxed));
        let secs = elapsed.as_secs_f64();
        let q = m.delivery_latency.lock().quantiles(now);
        tracing::info!(
            quotes_per_s = ((quotes - last.1) as f64 / secs).round(),
            deliveries_per_s = ((deliveries - last.2) as f64 / secs).round(),
            p99_us = (q.p99 * 1e6).round(),
            subscribers = m.subscriber_connections.load(Relaxed),
            producers = m.producer_connections.load(Relaxed),
            "summary"
        );
        last = (now, quotes, deliveries);
    }
}

/// `/metrics` and `/healthz` read the broker's counters through this.
impl crate::session::BrokerStatus for Metrics {
    fn metrics_text(&self) -> String {
        render(self)
    }

    fn degraded(&self) -> bool {
        self.cluster.degraded()
    }
}
