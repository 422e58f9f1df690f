//! `[cluster]`: several brokers joined through NATS (docs/cluster.md).
//! Absent = a single broker; no NATS thread is started.

use serde::Deserialize;

/// `[cluster]`: the NATS link.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// One NATS server URL (`nats://host:4222`, `tls://host:4222`).
    pub nats_url: String,
    /// More servers of the same NATS cluster, tried in turn.
    #[serde(default)]
    pub nats_urls: Vec<String>,
    /// Every subject and stream name starts from this (one token or more,
    /// `[A-Za-z0-9_-]` separated by dots): several tickwire clusters can
    /// share one NATS system.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// NATS credentials: a `.creds` file (JWT + nkey), or a token, or a
    /// user and password. At most one kind.
    #[serde(default)]
    pub creds_file: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// CA for a NATS server certificate not in the system store; setting it
    /// (or a `tls://` URL) requires TLS on the link.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Client certificate and key when the NATS server asks for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    /// Quotes waiting for the link; past it (link slow or down) they are
    /// dropped from the cluster feed and counted. Local delivery is unaffected.
    #[serde(default = "default_queue")]
    pub publish_queue: usize,
    /// How long a subscribe that needs the cluster's newest quotes of a
    /// topic this broker was not following waits for them.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_ms: u64,
    /// Longest pause between reconnect attempts (backoff doubles up to it,
    /// with jitter).
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// At start, how long to wait for the link (and the cluster epoch)
    /// before serving alone; the link keeps retrying afterwards.
    #[serde(default = "default_startup_wait")]
    pub startup_wait_ms: u64,
    /// JetStream replicas of the last-value stream and the epoch bucket
    /// (1 for a single NATS server; 3 for a NATS cluster).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Quotes kept per topic in the stream (its `max_messages_per_subject`,
    /// at least 1): the cluster-wide history. Not a `[cluster]` key: set
    /// from `[history] size` at config load.
    #[serde(skip, default = "default_history_size")]
    pub history_size: usize,
}

fn default_prefix() -> String {
    "tickwire".into()
}
fn default_queue() -> usize {
    65_536
}
fn default_fetch_timeout() -> u64 {
    2_000
}
fn default_reconnect_max() -> u64 {
    5_000
}
fn default_startup_wait() -> u64 {
    5_000
}
fn default_replicas() -> usize {
    1
}
fn default_history_size() -> usize {
    64
}

impl ClusterConfig {
    /// A link to `nats_url` with every other key at its default.
    pub fn new(nats_url: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            nats_url: nats_url.into(),
            nats_urls: Vec::new(),
            subject_prefix: default_prefix(),
            creds_file: None,
            token: None,
            user: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            publish_queue: default_queue(),
            fetch_timeout_ms: default_fetch_timeout(),
            reconnect_max_ms: default_reconnect_max(),
            startup_wait_ms: default_startup_wait(),
            replicas: default_replicas(),
            history_size: default_history_size(),
        }
    }

    /// Semantic checks; the error names the key (never a secret's value).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let prefix_ok = !self.subject_prefix.is_empty()
            && self.subject_prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !prefix_ok {
            return Err((
                "cluster.subject_prefix",
                "must be dot-separated tokens of A-Z a-z 0-9 _ -".into(),
            ));
        }
        for url in std::iter::once(&self.nats_url).chain(&self.nats_urls) {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| url.starts_with(s))
                || !url.contains("://");
            if url.is_empty() || !scheme_ok {
                return Err((
                    "cluster.nats_url",
                    format!("{url:?} is not a nats:// or tls:// URL"),
                ));
            }
        }
        let kinds = [
            self.creds_file.is_some(),
            self.token.is_some(),
            self.user.is_some() || self.password.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err((
                "cluster.creds_file",
                "set one of creds_file, token, user/password".into(),
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(("cluster.user", "user and password go together".into()));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err((
                "cluster.cert_file",
                "cert_file and key_file go together".into(),
            ));
        }
        if self.publish_queue == 0 {
            return Err(("cluster.publish_queue", "must be greater than 0".into()));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(("cluster.replicas", "must be 1 to 5".into()));
        }
        let durations = [
            ("cluster.fetch_timeout_ms", self.fetch_timeout_ms),
            ("cluster.reconnect_max_ms", self.reconnect_max_ms),
            ("cluster.startup_wait_ms", self.startup_wait_ms),
        ];
        if let Some((key, _)) = durations.iter().find(|(_, v)| *v > super::MAX_DURATION_MS) {
            return Err((key, "must be at most a day".into()));
        }
        if self.reconnect_max_ms == 0 {
            return Err(("cluster.reconnect_max_ms", "must be greater than 0".into()));
        }
        Ok(())
    }

    /// JetStream names may not contain dots.
    pub fn stream_name(&self) -> String {
        format!("{}_last", self.subject_prefix.replace('.', "_"))
    }

    pub fn bucket_name(&self) -> String {
        format!("{}_meta", self.subject_prefix.replace('.', "_"))
    }
}
