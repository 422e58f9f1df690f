//! Counters of the NATS cluster link (docs/cluster.md); rendered only when
//! `[cluster]` is configured.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;

use super::exposition::{counter, gauge, summary};
use super::{LatencyWindow, WINDOW, WINDOW_SLOTS};

pub struct ClusterMetrics {
    pub enabled: AtomicBool,
    /// Connected to NATS with the stream and the epoch set up.
    pub up: AtomicBool,
    pub published: AtomicU64,
    /// Quotes not published: the link was down or its queue full.
    pub publish_dropped: AtomicU64,
    pub received: AtomicU64,
    /// Received quotes the router had no room for.
    pub receive_dropped: AtomicU64,
    /// Messages on our subjects that did not decode.
    pub invalid: AtomicU64,
    /// A quote from another broker for a topic this broker ingested in the
    /// last few seconds: two brokers publish one topic.
    pub conflicts: AtomicU64,
    /// Received quotes not newer than what the broker has (duplicates of
    /// overlapping subscriptions, late fetches, the losing side of a conflict).
    pub stale: AtomicU64,
    /// Stored quotes newer than a topic this broker ingests: its numbering
    /// moved on to continue another broker's (a feed moved here, or two
    /// publish it).
    pub seq_adopted: AtomicU64,
    /// Times the link went down.
    pub disconnects: AtomicU64,
    /// Publisher's wall clock at publish → this broker's at receipt.
    pub lag: Mutex<LatencyWindow>,
}

impl ClusterMetrics {
    pub fn new(now: Instant) -> ClusterMetrics {
        ClusterMetrics {
            enabled: AtomicBool::new(false),
            up: AtomicBool::new(false),
            published: AtomicU64::new(0),
            publish_dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
            receive_dropped: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            seq_adopted: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            lag: Mutex::new(LatencyWindow::new(WINDOW, WINDOW_SLOTS, now)),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Configured and not connected: `/healthz` answers 503.
    pub fn degraded(&self) -> bool {
        self.enabled.load(Relaxed) && !self.is_up()
    }
}

pub fn render(o: &mut String, c: &ClusterMetrics, now: Instant) {
    if !c.enabled.load(Relaxed) {
        return;
    }
    gauge(
        o,
        "tickwire_cluster_link_up",
        "1 while the NATS cluster link is connected and set up, else 0.",
        u8::from(c.is_up()),
    );
    let counters: [(&str, &str, &AtomicU64); 9] = [
        ("tickwire_cluster_published_total", "Quotes published to the cluster.", &c.published),
        ("tickwire_cluster_publish_dropped_total", "Quotes not published to the cluster: link down or its queue full (local delivery unaffected).", &c.publish_dropped),
        ("tickwire_cluster_received_total", "Quotes received from other brokers.", &c.received),
        ("tickwire_cluster_receive_dropped_total", "Quotes received from the cluster that the router had no room for.", &c.receive_dropped),
        ("tickwire_cluster_invalid_total", "Messages on the cluster's subjects that did not decode.", &c.invalid),
        ("tickwire_cluster_conflicts_total", "Quotes from another broker for a topic this broker ingested in the last few seconds.", &c.conflicts),
        ("tickwire_cluster_stale_total", "Received quotes no newer than the broker's own (not delivered).", &c.stale),
        ("tickwire_cluster_seq_adopted_total", "Stored quotes that moved the seq of a topic this broker ingests on to continue another broker's numbering.", &c.seq_adopted),
        ("tickwire_cluster_disconnects_total", "Times the cluster link went down.", &c.disconnects),
    ];
    for (name, help, value) in counters {
        counter(o, name, help, value.load(Relaxed));
    }
    summary(
        o,
        "tickwire_cluster_lag_seconds",
        "Publishing broker's clock at publish to this broker's at receipt (includes clock skew between hosts); quantiles over the last 60 s.",
        &c.lag,
        now,
    );
}
