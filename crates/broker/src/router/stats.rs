//! The router's own numbers: quotes in, the ingest → router latency and the
//! history's size. Latency samples stay in a thread-local recorder
//! and are merged into the shared window once per [`PUBLISH_INTERVAL`], so
//! the window's lock is taken once a second, never per batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::messages::IngestBatch;
use crate::metrics::{self, LatencyRecorder, Metrics};

/// How often local latency samples are merged into the shared window.
pub(super) const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Stats {
    metrics: Arc<Metrics>,
    /// Ingest decode → the router numbering it, merged into `metrics`
    /// periodically.
    hop_latency: LatencyRecorder,
    last_publish: Instant,
}

impl Stats {
    pub fn new(metrics: Arc<Metrics>) -> Stats {
        Stats {
            metrics,
            hop_latency: LatencyRecorder::default(),
            last_publish: Instant::now(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Counts a batch handed over by ingest (one latency sample per quote,
    /// all stamped with the batch's decode time).
    pub fn batch_in(&mut self, batch: &IngestBatch) {
        let quotes = batch.quotes.len() as u64;
        metrics::add(&self.metrics.quotes_in, quotes);
        self.hop_latency
            .record_n(batch.decoded_at.elapsed(), quotes);
    }

    /// Counts a subscribe's resumed topics: those of its `since` less the
    /// unrecovered ones (`None`: no `since` reached the router).
    pub fn resumed(&self, unrecovered: Option<&[Arc<str>]>, resumed: usize) {
        let Some(unrecovered) = unrecovered else {
            return;
        };
        let m = &self.metrics;
        metrics::add(&m.resume_unrecovered, unrecovered.len() as u64);
        metrics::add(
            &m.resume_recovered,
            resumed.saturating_sub(unrecovered.len()) as u64,
        );
    }

    /// At most once per interval: the history's size and the latency
    /// samples go to the shared metrics. Returns whether it published.
    pub fn publish(
        &mut self,
        now: Instant,
        (history_quotes, history_bytes): (usize, usize),
    ) -> bool {
        if now.duration_since(self.last_publish) < PUBLISH_INTERVAL {
            return false;
        }
        self.last_publish = now;
        let m = &self.metrics;
        m.history_quotes
            .store(history_quotes as u64, Ordering::Relaxed);
        m.history_bytes
            .store(history_bytes as u64, Ordering::Relaxed);
        self.metrics
            .ingest_router_latency
            .lock()
            .absorb(&mut self.hop_latency, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::router::tests::quote;

    #[test]
    fn counts_batches_and_publishes_once_per_interval() {
        let mut stats = Stats::new(Arc::new(Metrics::default()));
        let start = stats.last_publish;
        stats.batch_in(&IngestBatch {
            quotes: vec![quote("A"), quote("B")],
            decoded_at: Instant::now(),
        });
        assert_eq!(stats.metrics.quotes_in.load(Relaxed), 2);
        let latency = |stats: &Stats, now| {
            stats
                .metrics
                .ingest_router_latency
                .lock()
                .quantiles(now)
                .count
        };

        let soon = start + PUBLISH_INTERVAL / 2;
        assert!(!stats.publish(soon, (3, 300)));
        assert_eq!(latency(&stats, soon), 0, "samples stay local until then");
        assert_eq!(stats.metrics.history_quotes.load(Relaxed), 0);

        let later = start + PUBLISH_INTERVAL;
        assert!(stats.publish(later, (3, 300)));
        assert_eq!(stats.metrics.history_quotes.load(Relaxed), 3);
        assert_eq!(stats.metrics.history_bytes.load(Relaxed), 300);
        assert_eq!(latency(&stats, later), 2);
        assert!(!stats.publish(later + PUBLISH_INTERVAL / 2, (0, 0)));
        assert_eq!(stats.metrics.history_quotes.load(Relaxed), 3);
    }
}
