//! Semantic checks of a parsed config that serde cannot express; each
//! error names its key (never a secret's value).

use super::{parse_addr, Config, ConfigError, MAX_DURATION_MS, MAX_WORKERS};

impl Config {
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
        let positive: [(&'static str, u64); 11] = [
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
        if self.history.size > super::MAX_HISTORY_SIZE {
            return Err(invalid(
                "history.size",
                "must be at most 1024 (0 = no history)",
            ));
        }
        self.validate_producers()?;
        if let Some(auth) = &self.auth {
            auth.check()
                .map_err(|(key, problem)| invalid(key, problem))?;
        }
        if let Some(cluster) = &self.cluster {
            cluster
                .check()
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
}
