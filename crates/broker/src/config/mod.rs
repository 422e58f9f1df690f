//! Broker configuration: one TOML file (`config/tickwire.toml` documents every
//! key), built-in defaults identical to that file, CLI overrides on top.
//!
//! Durations are integer milliseconds: unambiguous in TOML and easy to grep.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

mod auth;
mod tls;
pub use auth::{AuthConfig, MIN_HS256_SECRET};
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
    /// The wss/https listener; absent = none.
    pub tls: Option<TlsConfig>,
    /// Subscriber entitlements (JWT); absent = every topic for everyone.
    pub auth: Option<AuthConfig>,
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
    /// Bounded queue of decoded batches from ingest to the router. When it is
    /// full, ingest stops reading and producers feel TCP back-pressure.
    pub queue_batches: usize,
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
            queue_batches: 1024,
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

    /// Semantic checks serde cannot express; each error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                problem: problem.into(),
            }
        }
        parse_addr(&self.server.ws_addr).map_err(|p| invalid("server.ws_addr", p))?;
        parse_addr(&self.ingest.addr).map_err(|p| invalid("ingest.addr", p))?;
        if let Some(tls) = &self.tls {
            parse_addr(&tls.addr).map_err(|p| invalid("tls.addr", p))?;
        }
        if self.server.workers > MAX_WORKERS {
            return Err(invalid(
                "server.workers",
                format!("must be at most {MAX_WORKERS} (0 = one per core)"),
            ));
        }
        let positive: [(&'static str, u64); 12] = [
            ("server.max_connections", self.server.max_connections as u64),
            (
                "server.handshake_timeout_ms",
                self.server.handshake_timeout_ms,
            ),
            (
                "server.worker_queue_batches",
                self.server.worker_queue_batches as u64,
            ),
            ("websocket.idle_ping_ms", self.websocket.idle_ping_ms),
            ("websocket.dead_peer_ms", self.websocket.dead_peer_ms),
            (
                "subscriber.stall_timeout_ms",
                self.subscriber.stall_timeout_ms,
            ),
            (
                "subscriber.max_subscriptions",
                self.subscriber.max_subscriptions as u64,
            ),
            ("ingest.max_producers", self.ingest.max_producers as u64),
            ("ingest.max_topics", self.ingest.max_topics as u64),
            ("ingest.queue_batches", self.ingest.queue_batches as u64),
            ("ingest.max_frame_bytes", self.ingest.max_frame_bytes as u64),
            ("demo.rate", self.demo.rate as u64),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(key, "must be greater than 0"));
        }
        let durations: [(&'static str, u64); 8] = [
            (
                "server.handshake_timeout_ms",
                self.server.handshake_timeout_ms,
            ),
            ("server.shutdown_grace_ms", self.server.shutdown_grace_ms),
            ("websocket.idle_ping_ms", self.websocket.idle_ping_ms),
            ("websocket.dead_peer_ms", self.websocket.dead_peer_ms),
            (
                "websocket.close_timeout_ms",
                self.websocket.close_timeout_ms,
            ),
            (
                "subscriber.disconnect_after_ms",
                self.subscriber.disconnect_after_ms,
            ),
            (
                "subscriber.stall_timeout_ms",
                self.subscriber.stall_timeout_ms,
            ),
            ("log.summary_interval_ms", self.log.summary_interval_ms),
        ];
        if let Some((key, _)) = durations.iter().find(|(_, v)| *v > MAX_DURATION_MS) {
            return Err(invalid(
                key,
                format!("must be at most {MAX_DURATION_MS} (a day)"),
            ));
        }
        if self.subscriber.requests_per_second > 0 && self.subscriber.request_burst == 0 {
            return Err(invalid(
                "subscriber.request_burst",
                "must be at least 1 when requests_per_second is set",
            ));
        }
        if self.server.max_head_bytes < 256 {
            return Err(invalid("server.max_head_bytes", "must be at least 256"));
        }
        if self.websocket.max_message_bytes < 125 {
            return Err(invalid(
                "websocket.max_message_bytes",
                "must be at least 125 (the control-frame size)",
            ));
        }
        if self.ingest.max_frame_bytes > u32::MAX as usize {
            return Err(invalid(
                "ingest.max_frame_bytes",
                "must fit the 4-byte length prefix",
            ));
        }
        if self.subscriber.outbound_budget_bytes < 4096 {
            return Err(invalid(
                "subscriber.outbound_budget_bytes",
                "must be at least 4096",
            ));
        }
        let sndbuf = self.subscriber.socket_send_buffer_bytes;
        if sndbuf != 0 && sndbuf < 4096 {
            return Err(invalid(
                "subscriber.socket_send_buffer_bytes",
                "must be 0 (kernel default) or at least 4096",
            ));
        }
        if self.ingest.tokens.iter().any(|t| t.is_empty()) {
            return Err(invalid("ingest.tokens", "must not contain an empty token"));
        }
        self.validate_producers()?;
        if let Some(auth) = &self.auth {
            auth.check()
                .map_err(|(key, problem)| invalid(key, problem))?;
        }
        Ok(())
    }

    /// `[[ingest.producers]]` and the exposed-ingest rule.
    fn validate_producers(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, problem: String| ConfigError::Invalid { key, problem };
        let mut seen = std::collections::HashSet::new();
        for t in &self.ingest.tokens {
            seen.insert(t.as_str());
        }
        for (i, p) in self.ingest.producers.iter().enumerate() {
            if p.token.is_empty() {
                return Err(invalid(
                    "ingest.producers.token",
                    format!("entry {i}: must not be empty"),
                ));
            }
            if !seen.insert(p.token.as_str()) {
                // Never print a token: say which entry.
                return Err(invalid(
                    "ingest.producers.token",
                    format!("entry {i}: the same token is configured twice"),
                ));
            }
            if p.topics.is_empty() {
                return Err(invalid(
                    "ingest.producers.topics",
                    format!("entry {i}: must grant at least one topic or pattern"),
                ));
            }
            if let Some(bad) = p
                .topics
                .iter()
                .find(|t| tickwire_protocol::Selector::parse(t).is_none())
            {
                return Err(invalid(
                    "ingest.producers.topics",
                    format!("entry {i}: invalid topic or pattern {bad:?}"),
                ));
            }
        }
        let addr = parse_addr(&self.ingest.addr).map_err(|p| invalid("ingest.addr", p))?;
        let authenticated = !self.ingest.tokens.is_empty()
            || !self.ingest.producers.is_empty()
            || self
                .ingest
                .tls
                .as_ref()
                .is_some_and(|t| t.client_ca_file.is_some());
        if !addr.ip().is_loopback() && !authenticated && !self.ingest.allow_unauthenticated_remote {
            return Err(invalid(
                "ingest.addr",
                format!(
                    "{addr} is reachable from other hosts, and with neither producer tokens \
                     ([ingest] tokens, [[ingest.producers]]) nor mutual TLS ([ingest.tls] \
                     client_ca_file) anyone who reaches it could publish prices; configure one, \
                     or set ingest.allow_unauthenticated_remote = true"
                ),
            ));
        }
        Ok(())
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
mod tests {
    use super::*;

    #[test]
    fn shipped_file_equals_builtin_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tickwire.toml");
        let from_file = Config::from_file(&path).expect("shipped config parses");
        assert_eq!(from_file, Config::default());
    }

    #[test]
    fn tls_sections_are_optional_and_need_both_files() {
        assert_eq!(Config::default().tls, None);
        let c = Config::from_toml("[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n").unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.addr, "0.0.0.0:8443");
        assert_eq!(tls.cert_file, "c.pem");
        let err = Config::from_toml("[tls]\ncert_file = \"c.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("key_file"), "{err}");
        let err = Config::from_toml("[tls]\naddr = \"x\"\ncert_file = \"c\"\nkey_file = \"k\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("tls.addr"), "{err}");
        let c = Config::from_toml(
            "[ingest.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n",
        )
        .unwrap();
        assert_eq!(c.ingest.tls.unwrap().client_ca_file.as_deref(), Some("ca"));
    }

    #[test]
    fn an_exposed_ingest_needs_tokens_or_mutual_tls_or_an_explicit_opt_out() {
        let err = Config::from_toml("[ingest]\naddr = \"0.0.0.0:7001\"\n").unwrap_err();
        assert!(err.to_string().contains("ingest.addr"), "{err}");
        for ok in [
            "[ingest]\naddr = \"127.0.0.1:7001\"\n",
            "[ingest]\naddr = \"0.0.0.0:7001\"\ntokens = [\"t\"]\n",
            "[ingest]\naddr = \"0.0.0.0:7001\"\nallow_unauthenticated_remote = true\n",
            "[ingest]\naddr = \"0.0.0.0:7001\"\n[[ingest.producers]]\ntoken = \"p\"\ntopics = [\"A*\"]\n",
            "[ingest]\naddr = \"0.0.0.0:7001\"\n[ingest.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n",
        ] {
            assert!(Config::from_toml(ok).is_ok(), "{ok}");
        }
        // TLS without client certificates is not authentication.
        let err = Config::from_toml(
            "[ingest]\naddr = \"0.0.0.0:7001\"\n[ingest.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ingest.addr"), "{err}");
    }

    #[test]
    fn producer_entries_are_checked_without_printing_tokens() {
        let err = Config::from_toml(
            "[[ingest.producers]]\ntoken = \"sekrit\"\ntopics = [\"BAD TOPIC\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ingest.producers.topics") && !err.contains("sekrit"),
            "{err}"
        );
        let err = Config::from_toml(
            "[ingest]\ntokens = [\"sekrit\"]\n[[ingest.producers]]\ntoken = \"sekrit\"\ntopics = [\"A\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ingest.producers.token") && !err.contains("sekrit"),
            "{err}"
        );
        let err =
            Config::from_toml("[[ingest.producers]]\ntoken = \"x\"\ntopics = []\n").unwrap_err();
        assert!(err.to_string().contains("ingest.producers.topics"), "{err}");
    }

    #[test]
    fn auth_needs_exactly_one_key_and_valid_grants() {
        let secret = "s".repeat(32);
        assert!(Config::from_toml(&format!("[auth]\njwt_hs256_secret = \"{secret}\"\n")).is_ok());
        let err = Config::from_toml("[auth]\nissuer = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("`auth`"), "{err}");
        let err = Config::from_toml(&format!(
            "[auth]\njwt_hs256_secret = \"{secret}\"\njwt_public_key_file = \"k.pem\"\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        let err = Config::from_toml("[auth]\njwt_hs256_secret = \"short\"\n").unwrap_err();
        assert!(
            err.to_string().contains("auth.jwt_hs256_secret")
                && !err.to_string().contains("short\""),
            "{err}"
        );
        let err = Config::from_toml(&format!(
            "[auth]\njwt_hs256_secret = \"{secret}\"\nanonymous_topics = [\"BAD TOPIC\"]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("auth.anonymous_topics"), "{err}");
    }

    #[test]
    fn the_hardened_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hardened.toml");
        let c = Config::from_file(&path).expect("config/hardened.toml parses");
        assert!(c.tls.is_some() && c.auth.is_some() && c.ingest.tls.is_some());
        assert_eq!(c.ingest.producers.len(), 1);
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[server]\nworkerz = 3\n").unwrap_err();
        assert!(err.to_string().contains("workerz"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::from_toml("[server]\nworkers = \"many\"\n").unwrap_err();
        assert!(err.to_string().contains("workers"), "{err}");
    }

    #[test]
    fn every_duration_is_bounded_by_a_day() {
        for key in [
            "server.handshake_timeout_ms",
            "server.shutdown_grace_ms",
            "websocket.idle_ping_ms",
            "websocket.dead_peer_ms",
            "websocket.close_timeout_ms",
            "subscriber.disconnect_after_ms",
            "subscriber.stall_timeout_ms",
            "log.summary_interval_ms",
        ] {
            let (section, name) = key.split_once('.').unwrap();
            let at = format!("[{section}]\n{name} = {MAX_DURATION_MS}\n");
            assert!(Config::from_toml(&at).is_ok(), "{key} at the bound");
            let past = format!("[{section}]\n{name} = {}\n", MAX_DURATION_MS + 1);
            let err = Config::from_toml(&past).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("at most"), "{key}: {err}");
            let huge = format!("[{section}]\n{name} = {}\n", i64::MAX);
            assert!(Config::from_toml(&huge).is_err(), "{key}: i64::MAX");
        }
    }

    #[test]
    fn send_buffer_is_zero_or_at_least_4096() {
        let with = |n: usize| {
            Config::from_toml(&format!("[subscriber]\nsocket_send_buffer_bytes = {n}\n"))
        };
        assert!(with(0).is_ok());
        assert!(with(4096).is_ok());
        let err = with(4095).unwrap_err();
        assert!(
            err.to_string()
                .contains("subscriber.socket_send_buffer_bytes"),
            "{err}"
        );
    }

    #[test]
    fn semantic_error_names_key() {
        let err = Config::from_toml("[ingest]\naddr = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("ingest.addr"), "{err}");
        let err = Config::from_toml("[server]\nworkers = 65\n").unwrap_err();
        assert!(err.to_string().contains("server.workers"), "{err}");
        let err = Config::from_toml("[demo]\nrate = 0\n").unwrap_err();
        assert!(err.to_string().contains("demo.rate"), "{err}");
    }
}
