//! What the broker follows over NATS: one subscription per subject its
//! subscribers' selectors map to (counted, so overlapping selectors share
//! one), each read by a task that hands quotes to the router in batches;
//! and the fetch of stored quotes when a selector is first followed.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::Client;
use futures_util::{FutureExt, StreamExt};
use tickwire_protocol::cluster::{self, ClusterQuote};
use tokio::task::JoinHandle;

use super::link::{send_patiently, send_stored, Shared, RECEIVE_BATCH};
use super::store::Store;
use super::{to_router, LinkEvent};
use crate::metrics::{self, LatencyRecorder};

struct Watched {
    count: usize,
    task: JoinHandle<()>,
}

/// Subject → its subscription's reading task and how many selectors use it.
#[derive(Default)]
pub struct Watches(HashMap<String, Watched>);

impl Watches {
    pub async fn watch(&mut self, client: &Client, subject: &str, shared: &Arc<Shared>) {
        if let Some(w) = self.0.get_mut(subject) {
            w.count += 1;
            return;
        }
        // While disconnected the client queues the SUB and sends it (like
        // every subscription) when it reconnects.
        let subscriber = match client.subscribe(subject.to_owned()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "cluster link cannot subscribe");
                return;
            }
        };
        let shared = shared.clone();
        let task = tokio::spawn(forward(shared, subscriber));
        self.0
            .insert(subject.to_owned(), Watched { count: 1, task });
    }

    /// One selector fewer for `subject`; the last one unsubscribes.
    pub fn unwatch(&mut self, subject: &str) {
        if let Some(w) = self.0.get_mut(subject) {
            w.count -= 1;
            if w.count == 0 {
                if let Some(w) = self.0.remove(subject) {
                    // Dropping the subscriber unsubscribes.
                    w.task.abort();
                }
            }
        }
    }

    pub fn abort_all(&mut self) {
        for (_, w) in self.0.drain() {
            w.task.abort();
        }
    }
}

/// Fetches the newest stored quote under each subject in the background,
/// then reports the ticket (also on failure: the router stops waiting).
pub fn fetch(store: Option<Store>, subjects: Vec<String>, ticket: u64, shared: &Arc<Shared>) {
    let shared = shared.clone();
    let store = store.filter(|_| shared.metrics.cluster.is_up());
    tokio::spawn(async move {
        if let Some(store) = store {
            for subject in &subjects {
                let mut batches = Vec::new();
                let result = store
                    .newest_per_topic(subject, |quotes| batches.push(quotes))
                    .await;
                for quotes in batches {
                    send_stored(&shared, quotes).await;
                }
                if let Err(problem) = result {
                    tracing::warn!(%subject, %problem, "cluster fetch of stored quotes failed");
                }
            }
        }
        send_patiently(&shared, LinkEvent::Fetched { ticket }).await;
    });
}

/// Reads one subscription and hands its quotes to the router in batches of
/// what is already there.
async fn forward(shared: Arc<Shared>, mut subscriber: async_nats::Subscriber) {
    let mut lag = LatencyRecorder::default();
    while let Some(first) = subscriber.next().await {
        let mut quotes = Vec::new();
        let mut message = Some(first);
        while let Some(m) = message {
            match cluster::decode(&m.payload) {
                Ok(q) => {
                    lag.record(lag_of(&q));
                    quotes.push(q);
                }
                Err(e) => {
                    if shared.metrics.cluster.invalid.fetch_add(1, Relaxed) == 0 {
                        tracing::warn!(subject = %m.subject, error = %e, "cluster message does not decode (first of its kind; counted)");
                    }
                }
            }
            message = match quotes.len() < RECEIVE_BATCH {
                true => subscriber.next().now_or_never().flatten(),
                false => None,
            };
        }
        if !quotes.is_empty() {
            let now = std::time::Instant::now();
            shared.metrics.cluster.lag.lock().absorb(&mut lag, now);
            metrics::add(&shared.metrics.cluster.received, quotes.len() as u64);
            to_router(
                &shared.events,
                &shared.metrics,
                LinkEvent::Quotes {
                    quotes,
                    stored: false,
                },
            );
        }
    }
}

fn lag_of(q: &ClusterQuote) -> Duration {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Duration::from_nanos(now_ns.saturating_sub(q.sent_ns))
}
