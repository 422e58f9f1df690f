//! The resolved run specification (`LoadSpec`): its checks and the
//! `params` object of the report.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::receiver::{Format, SlowMode};
use crate::Error;

/// Everything one run needs, resolved from the command line.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub scenario: &'static str,
    /// `--ws`: one address or several (subscriber s uses `ws[s % len]`).
    pub ws: Vec<SocketAddr>,
    pub ingest: SocketAddr,
    pub format: Format,
    /// `--delta`: subscribers ask for field deltas.
    pub delta: bool,
    /// `--deflate`: subscribers offer permessage-deflate.
    pub deflate: bool,
    pub subscribers: usize,
    pub topics: usize,
    pub per_sub: usize,
    pub publishers: usize,
    pub rate: f64,
    pub batch: usize,
    pub threads: usize,
    pub duration: Duration,
    pub connect_timeout: Duration,
    pub drain: Duration,
    pub prefix: String,
    pub slow_share: f64,
    pub slow_mode: SlowMode,
    pub inflight: usize,
    pub quiet: bool,
    pub broker_pid: Option<u32>,
    /// Connections scenario: report connect/ack times and use the ack
    /// histogram for --hgrm/--plot.
    pub connection_times: bool,
    /// Subscribers over TLS (`--tls`).
    pub tls: Option<crate::receiver::TlsClient>,
    /// Tokens for a broker with `[auth]` (the soak's `--hs256-secret-file`).
    pub auth: Option<std::sync::Arc<crate::tokens::Tokens>>,
}

impl LoadSpec {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::msg(m.to_owned()));
        if self.ws.is_empty() {
            return bad("--ws needs at least one address");
        }
        if self.topics == 0 {
            return bad("--topics must be at least 1");
        }
        if self.per_sub == 0 || self.per_sub > self.topics {
            return bad("--topics-per-sub must be in 1..=--topics");
        }
        if self.per_sub > 1024 {
            return bad(
                "--topics-per-sub over 1024 exceeds the broker's default subscription limit",
            );
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return bad("--rate must be a finite number >= 0");
        }
        if self.threads == 0 || self.threads > 256 {
            return bad("--threads must be in 1..=256");
        }
        if !(0.0..=1.0).contains(&self.slow_share) {
            return bad("--slow-share must be in 0..=1");
        }
        if self.duration.is_zero() {
            return bad("--duration must be > 0");
        }
        if self.batch == 0 || self.batch > 10_000 {
            return bad("--batch must be in 1..=10000");
        }
        Ok(())
    }

    /// The `--ws` addresses as given back to the operator: `a` or `a,b,…`.
    pub(super) fn ws_list(&self) -> String {
        let all: Vec<String> = self.ws.iter().map(SocketAddr::to_string).collect();
        all.join(",")
    }

    pub(crate) fn params(&self) -> serde_json::Value {
        json!({
            "ws": self.ws_list(),
            "ingest": self.ingest.to_string(),
            "format": self.format,
            "delta": self.delta,
            "deflate": self.deflate,
            "subscribers": self.subscribers,
            "topics": self.topics,
            "topics_per_sub": self.per_sub,
            "publishers": self.publishers,
            "rate": self.rate,
            "batch": self.batch,
            "threads": self.threads,
            "duration_s": self.duration.as_secs_f64(),
            "slow_share": if self.slow_mode == SlowMode::None { 0.0 } else { self.slow_share },
            "slow_mode": format!("{:?}", self.slow_mode).to_lowercase(),
            "topic_prefix": self.prefix,
            "tls": self.tls.is_some(),
            "tls_resume": self.tls.as_ref().map(|t| t.resume),
        })
    }
}
