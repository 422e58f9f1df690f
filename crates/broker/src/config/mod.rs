//! Broker configuration: one TOML file (`config/tickwire.toml` documents every
//! key), built-in defaults identical to that file, CLI overrides on top.
//!
//! Durations are integer milliseconds: unambiguous in TOML and easy to grep.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

mod auth;
mod cluster;
mod tls;
mod validate;
pub use auth::{AuthConfig, MIN_HS256_SECRET};
pub use cluster::ClusterConfig;
pub use tls::{IngestTlsConfig, TlsConfig};

/// Upper bound on every `*_ms` duration key: a day. Deadlines are computed
/// as `Instant + duration`; an absurd value must be refused at start-up,
/// not overflow (a panic) in a worker hours later.
pub const MAX_DURATION_MS: u64 = 86_400_000;

/// Upper bound on worker threads: the router tracks per-topic interest as a
/// 64-bit mask of workers.
pub const MAX_WORKERS: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub websocket: WebSocketConfig,
    pub subscriber: SubscriberConfig,
    pub ingest: IngestConfig,
    pub demo: DemoConfig,
    pub log: LogConfig,
    /// v1.2: recent quotes kept per topic for resume and rewind.
    pub history: HistoryConfig,
    /// The wss/https listener; absent = none.
    pub tls: Option<TlsConfig>,
    /// Subscriber entitlements (JWT); absent = every topic for everyone.
    pub auth: Option<AuthConfig>,
    /// Several brokers joined through NATS; absent = a single broker.
    pub cluster: Option<ClusterConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP + WebSocket listener (`ws://HOST:PORT/ws`).
    pub ws_addr: String,
    /// Worker threads; 0 = one per CPU core.
    pub workers: usize,
    /// Connections (subscribers + HTTP) accepted at once across all workers.
    pub max_connections: usize,
    /// An HTTP request head or WebSocket handshake must complete within this.
    pub handshake_timeout_ms: u64,
    /// Largest HTTP request head; larger → 431.
    pub max_head_bytes: usize,
    /// On SIGINT/SIGTERM, how long to wait for clients' close replies.
    pub shutdown_grace_ms: u64,
    /// Bounded queue of quote batches from the router to each worker.
    pub worker_queue_batches: usize,
    /// Browser origins allowed to open `/ws` (exact `scheme://host[:port]`);
    /// empty = any. A request without `Origin` is not affected.
    pub allowed_origins: Vec<String>,
    /// Connections at once from one client IP address (both listeners);
    /// past it a new connection gets 503. 0 = no limit.
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Largest client message (all fragments); larger → close 1009.
    pub max_message_bytes: usize,
    /// Silence from a client for this long → the server pings it.
    pub idle_ping_ms: u64,
    /// Further silence after that ping → the TCP connection is closed.
    pub dead_peer_ms: u64,
    /// Once the broker's close frame is written, how long it waits for the peer.
    pub close_timeout_ms: u64,
    /// Accept permessage-deflate (RFC 7692) offers (v1.2).
    pub permessage_deflate: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriberConfig {
    /// Subscription entries per connection; more → `too_many_subscriptions`.
    pub max_subscriptions: usize,
    /// Requests (text frames) per second per connection, on average (token
    /// bucket, full at connect); over it → `rate_limited`. 0 = no limit.
    pub requests_per_second: u32,
    /// Requests a connection may send at once (the bucket's size).
    pub request_burst: u32,
    /// Snapshot quotes per second per connection, on average: a subscribe
    /// asking for snapshots while the connection is over it gets
    /// `rate_limited` (a `*` over many topics is one request but many
    /// snapshots). 0 = no limit.
    pub snapshots_per_second: u32,
    /// Bytes queued for one subscriber and not yet accepted by its socket.
    /// Strict: a quote that would pass it is conflated instead (newest per
    /// topic kept), or the subscriber disconnected under `disconnect`.
    pub outbound_budget_bytes: usize,
    /// What happens to a subscriber over its budget.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// `disconnect` policy: close 1008 "slow consumer" once over budget this long.
    pub disconnect_after_ms: u64,
    /// Either policy: a subscriber that reads nothing for this long while
    /// quotes are pending is closed 1008 "slow consumer". Also how long a
    /// closing connection is kept while its close frame waits behind unread
    /// bytes without progress.
    pub stall_timeout_ms: u64,
    /// SO_SNDBUF for subscriber sockets; 0 = the kernel's autotuning (up to
    /// net.ipv4.tcp_wmem max). Smaller means less stale data waits in the
    /// kernel for a slow reader, so conflation starts sooner and a stalled
    /// reader's socket costs the others less (docs/performance.md).
    /// 64 KiB still carries ~5 Mbit/s at 100 ms RTT.
    pub socket_send_buffer_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Feed producers' TCP listener.
    pub addr: String,
    /// Largest ingest frame payload; larger → the producer is closed.
    pub max_frame_bytes: usize,
    /// When non-empty, a producer's first frame must be `Hello` with one of these.
    pub tokens: Vec<String>,
    /// Producer connections at once.
    pub max_producers: usize,
    /// Distinct topics the broker will track; quotes for new topics past it are dropped.
    pub max_topics: usize,
    /// Producers connect over TLS (mutual TLS with a client CA); absent = plain TCP.
    pub tls: Option<IngestTlsConfig>,
    /// Tokens with their own topic grants (`[[ingest.producers]]`).
    pub producers: Vec<ProducerConfig>,
    /// Opt-out: allow a non-loopback ingest address with neither tokens nor
    /// mutual TLS (anyone who reaches it can publish every topic).
    pub allow_unauthenticated_remote: bool,
}

/// `[[ingest.producers]]`: a producer token and the topics it may publish
/// (exact topics and `PREFIX*` patterns, the subscriber syntax).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    pub token: String,
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Quotes per second, all tickers together, published by `--demo`.
    pub rate: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "tickwire_broker=debug"; RUST_LOG overrides it.
    pub level: String,
    /// A one-line summary (rates, p99) this often; 0 = never.
    pub summary_interval_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ws_addr: "0.0.0.0:8080".into(),
            workers: 0,
            max_connections: 100_000,
            handshake_timeout_ms: 10_000,
            max_head_bytes: 8192,
            shutdown_grace_ms: 2_000,
            worker_queue_batches: 1024,
            allowed_origins: Vec::new(),
            max_connections_per_ip: 0,
        }
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_message_bytes: 65_536,
            idle_ping_ms: 30_000,
            dead_peer_ms: 30_000,
            close_timeout_ms: 2_000,
            permessage_deflate: true,
        }
    }
}

/// `subscriber.slow_consumer_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlowConsumerPolicy {
    /// Keep only the newest pending quote per topic until the reader catches up.
    Conflate,
    /// Close 1008 after `disconnect_after_ms` over budget.
    Disconnect,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            max_subscriptions: 1024,
            requests_per_second: 50,
            request_burst: 100,
            snapshots_per_second: 20_000,
            outbound_budget_bytes: 256 * 1024,
            slow_consumer_policy: SlowConsumerPolicy::Conflate,
            disconnect_after_ms: 2_000,
            stall_timeout_ms: 60_000,
            socket_send_buffer_bytes: 65_536,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            addr: "127.0.0.1:7001".into(),
            max_frame_bytes: 1_048_576,
            tokens: Vec::new(),
            max_producers: 1024,
            max_topics: 100_000,
            tls: None,
            producers: Vec::new(),
            allow_unauthenticated_remote: false,
        }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { rate: 3000 }
    }
}

/// `[history]` (v1.2): the per-topic rings a resume (`since`) replays.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Quotes kept per topic; 0 = no history (every `since` topic is
    /// unrecovered). In a cluster, also JetStream's messages per subject.
    pub size: usize,
    /// Bytes of history over all topics; past it the least recently quoted
    /// topics' oldest quotes go first.
    pub max_bytes: usize,
}

/// Largest `[history] size`: a rewind asks for at most 1,024 quotes.
pub const MAX_HISTORY_SIZE: usize = 1_024;

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            size: 64,
            max_bytes: 256 << 20,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            summary_interval_ms: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        // toml's messages already name the offending key and line.
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string().trim().into()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn ws_addr(&self) -> SocketAddr {
        parse_addr(&self.server.ws_addr).unwrap_or_else(|_| unreachable_addr())
    }

    /// The wss/https listener's address, when `[tls]` is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
            .as_ref()
            .map(|t| parse_addr(&t.addr).unwrap_or_else(|_| unreachable_addr()))
    }

    pub fn ingest_addr(&self) -> SocketAddr {
        parse_addr(&self.ingest.addr).unwrap_or_else(|_| unreachable_addr())
    }

    /// Worker count with `0` resolved to the number of cores.
    pub fn worker_count(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(MAX_WORKERS),
            n => n,
        }
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("must be an IP:port socket address, got {s:?}"))
}

// Only reachable when validate() was skipped; binding then fails loudly.
fn unreachable_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[cfg(test)]
mod tests;
