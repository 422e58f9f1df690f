//! What every receiving thread is told (`RecvConfig`, shared by all of
//! them) and the counters the controlling thread watches (`Shared`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize};
use std::time::Instant;

pub const PHASE_CONNECT: u8 = 0;
pub const PHASE_MEASURE: u8 = 1;
pub const PHASE_STOP: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Binary,
}

/// What to do with the subscribers designated slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowMode {
    /// No subscriber is slow.
    None,
    /// Slow subscribers connect and subscribe, then never read again.
    Park,
    /// Slow subscribers are not opened at all (baseline for comparison).
    Skip,
}

/// Everything a receiving thread needs to know; shared by all of them.
#[derive(Clone, Debug)]
pub struct RecvConfig {
    /// Broker WebSocket listeners (`--ws`, at least one); subscriber `s`
    /// connects to `ws[s % ws.len()]`.
    pub ws: Vec<SocketAddr>,
    pub format: Format,
    /// Ask for field deltas (`--delta`: `delta=1` in the upgrade path).
    pub delta: bool,
    /// Offer permessage-deflate in the upgrade request (`--deflate`).
    pub deflate: bool,
    pub topics: usize,
    pub per_sub: usize,
    pub prefix: String,
    pub slow_share: f64,
    pub slow_mode: SlowMode,
    /// Bind sources over 127.0.0.0/8 (see `sys::spread_source`) when
    /// connecting to a loopback address.
    pub spread_sources: bool,
    /// Connections being set up at once per thread.
    pub max_inflight: usize,
    pub connect_deadline: Instant,
    /// Subscribers speak TLS (`--tls`).
    pub tls: Option<TlsClient>,
    /// A broker with `[auth]`: each subscriber sends `auth` with a fresh
    /// token before its subscribe, and again every `refresh_every` while
    /// it streams (soak `--hs256-secret-file`).
    pub auth: Option<std::sync::Arc<crate::tokens::Tokens>>,
}

/// What a TLS subscriber needs: one config shared by all (one session
/// cache, so reconnects resume) and the name to verify.
#[derive(Clone)]
pub struct TlsClient {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
    /// Session resumption on (off: `--no-resume`, every handshake full).
    pub resume: bool,
    /// Streaming connections send a TLS 1.3 KeyUpdate (asking the broker
    /// for one back) this often: the soak's `--tls-key-update-every`.
    pub key_update_every: Option<std::time::Duration>,
}

impl TlsClient {
    /// The same config (and session cache) for the blocking client: the
    /// soak's churn connections and its metrics scrapes.
    pub fn client_options(&self) -> tickwire_client::TlsOptions {
        tickwire_client::TlsOptions::with_config(self.config.clone(), &self.name.to_str())
    }
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsClient({:?})", self.name)
    }
}

impl RecvConfig {
    /// Topic indices of subscriber `s`: K consecutive topics (mod T)
    /// starting at `s·K mod T`, so topics are covered evenly.
    pub fn topics_of(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        let first = (s * self.per_sub) % self.topics;
        (0..self.per_sub).map(move |j| (first + j) % self.topics)
    }

    pub fn topic_name(&self, idx: usize) -> String {
        format!("{}{idx}", self.prefix)
    }

    /// Subscriber `s` is slow when `⌊(s+1)·share⌋ > ⌊s·share⌋`: spreads the
    /// slow ones evenly (every 10th for 0.1).
    pub fn is_slow(&self, s: usize) -> bool {
        self.slow_mode != SlowMode::None
            && ((s + 1) as f64 * self.slow_share).floor() > (s as f64 * self.slow_share).floor()
    }

    /// Index into `ws` of the address subscriber `s` connects to.
    pub fn ws_of(&self, s: usize) -> usize {
        s % self.ws.len().max(1)
    }

    /// Latency is also kept per address (more than one `--ws`).
    pub fn per_ws(&self) -> bool {
        self.ws.len() > 1
    }
}

/// Counters the controlling thread watches while the run goes on.
#[derive(Default)]
pub struct Shared {
    pub phase: AtomicU8,
    pub deliveries: AtomicU64,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    pub settled_threads: AtomicUsize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_round_robin_over_ws_addresses() {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut cfg = RecvConfig {
            ws: vec![addr(1), addr(2), addr(3)],
            format: Format::Json,
            delta: false,
            deflate: false,
            topics: 1,
            per_sub: 1,
            prefix: "lt.".into(),
            slow_share: 0.0,
            slow_mode: SlowMode::None,
            spread_sources: false,
            max_inflight: 1,
            connect_deadline: Instant::now(),
            tls: None,
            auth: None,
        };
        assert!(cfg.per_ws());
        let picked: Vec<usize> = (0..7).map(|s| cfg.ws_of(s)).collect();
        assert_eq!(picked, [0, 1, 2, 0, 1, 2, 0]);
        cfg.ws.truncate(1);
        assert!(!cfg.per_ws());
        assert!((0..7).all(|s| cfg.ws_of(s) == 0));
    }
}
