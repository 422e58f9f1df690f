//! What the router holds for one worker whose queue is full.
//!
//! Quotes are kept newest-per-topic (a later quote of a topic replaces the
//! earlier one in place, counted as conflated), so the outbox is bounded by
//! the number of topics however long the worker lags. Activations wait
//! behind the quotes in order: a worker must never see an activation before
//! a quote that was numbered ahead of it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use crate::messages::{SharedQuote, WorkerMsg};
use crate::metrics::Metrics;

#[derive(Default)]
pub struct Outbox {
    quotes: Vec<Arc<SharedQuote>>,
    by_topic: HashMap<Arc<str>, usize>,
    after: VecDeque<WorkerMsg>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.quotes.is_empty() && self.after.is_empty()
    }

    /// Adds a message the worker's queue could not take.
    pub fn put(&mut self, msg: WorkerMsg, metrics: &Metrics) {
        match msg {
            WorkerMsg::Quotes { quotes, .. } => {
                let mut replaced = 0;
                for quote in quotes {
                    match self.by_topic.get(&quote.topic) {
                        Some(&i) => {
                            self.quotes[i] = quote;
                            replaced += 1;
                        }
                        None => {
                            self.by_topic.insert(quote.topic.clone(), self.quotes.len());
                            self.quotes.push(quote);
                        }
                    }
                }
                if replaced > 0 {
                    metrics.conflated.fetch_add(replaced, Relaxed);
                }
            }
            activate @ WorkerMsg::Activate { .. } => self.after.push_back(activate),
        }
    }

    /// The next message to try: all held quotes as one batch, then the
    /// activations in order.
    pub fn take_next(&mut self) -> Option<WorkerMsg> {
        if !self.quotes.is_empty() {
            self.by_topic.clear();
            return Some(WorkerMsg::Quotes {
                quotes: std::mem::take(&mut self.quotes),
                sent_at: Instant::now(),
            });
        }
        self.after.pop_front()
    }

    /// Returns a message `take_next` gave out that the queue refused.
    pub fn put_back(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Quotes { quotes, .. } => {
                self.by_topic = quotes
                    .iter()
                    .enumerate()
                    .map(|(i, q)| (q.topic.clone(), i))
                    .collect();
                self.quotes = quotes;
            }
            activate @ WorkerMsg::Activate { .. } => self.after.push_front(activate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ConnId;

    fn quote(topic: &str, body: u8) -> Arc<SharedQuote> {
        Arc::new(SharedQuote {
            topic: topic.into(),
            json_frame: vec![body].into(),
            binary_frame: vec![body].into(),
            decoded_at: Instant::now(),
        })
    }

    fn quotes(msg: &WorkerMsg) -> Vec<(String, u8)> {
        match msg {
            WorkerMsg::Quotes { quotes, .. } => quotes
                .iter()
                .map(|q| (q.topic.to_string(), q.json_frame[0]))
                .collect(),
            WorkerMsg::Activate { .. } => Vec::new(),
        }
    }

    #[test]
    fn keeps_the_newest_per_topic_and_activations_behind_the_quotes() {
        let metrics = Metrics::default();
        let mut outbox = Outbox::default();
        let batch = |qs: Vec<Arc<SharedQuote>>| WorkerMsg::Quotes {
            quotes: qs,
            sent_at: Instant::now(),
        };
        outbox.put(batch(vec![quote("A", 1), quote("B", 1)]), &metrics);
        let conn = ConnId { slot: 0, serial: 1 };
        outbox.put(
            WorkerMsg::Activate {
                conn,
                request: 7,
                snapshots: vec![],
            },
            &metrics,
        );
        outbox.put(
            batch(vec![quote("A", 2), quote("C", 1), quote("A", 3)]),
            &metrics,
        );
        assert_eq!(metrics.conflated.load(Relaxed), 2, "A1 and A2 replaced");

        let first = outbox.take_next().unwrap();
        assert_eq!(
            quotes(&first),
            [("A".into(), 3), ("B".into(), 1), ("C".into(), 1)]
        );
        outbox.put_back(first); // the worker's queue was still full
        outbox.put(batch(vec![quote("B", 2)]), &metrics);
        let first = outbox.take_next().unwrap();
        assert_eq!(
            quotes(&first),
            [("A".into(), 3), ("B".into(), 2), ("C".into(), 1)]
        );
        assert!(matches!(
            outbox.take_next(),
            Some(WorkerMsg::Activate { request: 7, .. })
        ));
        assert!(outbox.take_next().is_none());
        assert!(outbox.is_empty());
    }
}
