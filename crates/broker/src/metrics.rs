//! Counters and gauges shared by all threads.
//!
//! Plain relaxed atomics: threads add per batch or per event (never per
//! delivery: workers keep local tallies and add them once per batch), so
//! there is no lock and little cache-line traffic on the hot path. The
//! `/metrics` exposition reads these.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Why a producer connection was closed (`tickwire_ingest_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    TooLong,
    Decode,
    BadTopic,
    UnexpectedHello,
    Unauthorized,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::TooLong,
        RejectReason::Decode,
        RejectReason::BadTopic,
        RejectReason::UnexpectedHello,
        RejectReason::Unauthorized,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RejectReason::TooLong => "too_long",
            RejectReason::Decode => "decode",
            RejectReason::BadTopic => "bad_topic",
            RejectReason::UnexpectedHello => "unexpected_hello",
            RejectReason::Unauthorized => "unauthorized",
        }
    }
}

/// Close codes the broker sends, in a fixed table so counting needs no map.
pub const CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011];

#[derive(Default)]
pub struct Metrics {
    pub subscriber_connections: AtomicI64,
    pub producer_connections: AtomicI64,
    pub subscriptions: AtomicI64,
    pub topics: AtomicI64,
    pub quotes_in: AtomicU64,
    pub deliveries: AtomicU64,
    pub bytes_out: AtomicU64,
    pub topics_dropped: AtomicU64,
    pub connections_refused: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub conflated: AtomicU64,
    ingest_rejected: [AtomicU64; RejectReason::ALL.len()],
    closes: [AtomicU64; CLOSE_CODES.len()],
    closes_other: AtomicU64,
}

impl Metrics {
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
