//! The parts of the broker's configuration a connection obeys, resolved
//! once per broker and shared by every connection of a worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Entitlements;
use crate::config::{ms, Config, SlowConsumerPolicy};

/// The parts of the config a connection obeys, resolved once.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub max_head_bytes: usize,
    pub handshake_timeout: Duration,
    pub max_message_bytes: usize,
    /// `[websocket] permessage_deflate`.
    pub permessage_deflate: bool,
    pub idle_ping: Duration,
    pub dead_peer: Duration,
    pub close_timeout: Duration,
    pub max_subscriptions: usize,
    pub requests_per_second: u32,
    pub request_burst: u32,
    pub snapshots_per_second: u32,
    pub outbound_budget_bytes: usize,
    pub slow_consumer_policy: SlowConsumerPolicy,
    pub disconnect_after: Duration,
    pub stall_timeout: Duration,
    /// Sent in every `subscribed` ack.
    pub epoch: Arc<crate::epoch::Epoch>,
    /// `[server] allowed_origins`: empty = any Origin.
    pub allowed_origins: Vec<String>,
    /// `[auth]`: subscriber entitlements; None = every topic for everyone.
    pub auth: Option<Arc<Entitlements>>,
    /// Maps `Instant`s to Unix time (token expiry is in Unix seconds).
    pub wall: WallClock,
    /// What `GET /metrics` and `GET /healthz` answer.
    pub status: Arc<dyn BrokerStatus>,
    /// This broker process, in SSE event ids: a `Last-Event-ID` with
    /// another one came from another broker (or before a restart).
    pub sse_instance: u64,
}

/// What the plain HTTP routes report, read when one is asked for: shared
/// counters behind it, no I/O (the broker's `Metrics`; a fixed answer in
/// tests).
pub trait BrokerStatus: Send + Sync {
    /// The Prometheus text exposition of every metric.
    fn metrics_text(&self) -> String;
    /// True while a configured cluster link is down (`/healthz` says
    /// `degraded`; the broker still serves its own producers).
    fn degraded(&self) -> bool;
}

impl std::fmt::Debug for dyn BrokerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerStatus")
    }
}

/// An `Instant` and the Unix time it corresponds to: the connection's clock
/// is `Instant`s passed in; JWT `exp` is Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub at: Instant,
    pub unix: Duration,
}

impl WallClock {
    pub fn now() -> WallClock {
        WallClock {
            at: Instant::now(),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// Unix seconds at `now`.
    pub fn unix_secs(&self, now: Instant) -> u64 {
        (self.unix + now.saturating_duration_since(self.at)).as_secs()
    }
}

impl SessionConfig {
    pub fn from_config(
        c: &Config,
        epoch: Arc<crate::epoch::Epoch>,
        auth: Option<Arc<Entitlements>>,
        status: Arc<dyn BrokerStatus>,
    ) -> SessionConfig {
        SessionConfig {
            max_head_bytes: c.server.max_head_bytes,
            handshake_timeout: ms(c.server.handshake_timeout_ms),
            max_message_bytes: c.websocket.max_message_bytes,
            permessage_deflate: c.websocket.permessage_deflate,
            idle_ping: ms(c.websocket.idle_ping_ms),
            dead_peer: ms(c.websocket.dead_peer_ms),
            close_timeout: ms(c.websocket.close_timeout_ms),
            max_subscriptions: c.subscriber.max_subscriptions,
            requests_per_second: c.subscriber.requests_per_second,
            request_burst: c.subscriber.request_burst,
            snapshots_per_second: c.subscriber.snapshots_per_second,
            outbound_budget_bytes: c.subscriber.outbound_budget_bytes,
            slow_consumer_policy: c.subscriber.slow_consumer_policy,
            disconnect_after: ms(c.subscriber.disconnect_after_ms),
            stall_timeout: ms(c.subscriber.stall_timeout_ms),
            epoch,
            allowed_origins: c.server.allowed_origins.clone(),
            auth,
            wall: WallClock::now(),
            status,
            sse_instance: crate::epoch::random_u64(),
        }
    }
}
