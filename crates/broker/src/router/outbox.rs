//! What the router holds for one worker whose queue is full.
//!
//! Messages wait in order, as segments: a batch of quotes, an activation (or
//! a snapshot slice), a batch of quotes, ... Quotes conflate only within the
//! last quote batch (a later quote of a topic replaces the earlier one in
//! place, counted as conflated), never across an activation: a quote numbered after a
//! subscribe must reach the worker after that subscribe's activation, or the
//! subscriber could get its snapshot after a newer quote. So the outbox is
//! bounded by the number of topics per batch, and there is one batch per
//! activation waiting — activations are bounded by the subscribers' own
//! request rate.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use crate::messages::{SharedQuote, WorkerMsg};
use crate::metrics::Metrics;

#[derive(Default)]
pub struct Outbox {
    segments: VecDeque<Segment>,
}

enum Segment {
    Quotes {
        quotes: Vec<Arc<SharedQuote>>,
        by_topic: HashMap<Arc<str>, usize>,
    },
    /// An activation or a snapshot slice: kept whole, in order.
    Ordered(WorkerMsg),
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Adds a message the worker's queue could not take.
    pub fn put(&mut self, msg: WorkerMsg, metrics: &Metrics) {
        match msg {
            WorkerMsg::Quotes { quotes, .. } => {
                if !matches!(self.segments.back(), Some(Segment::Quotes { .. })) {
                    self.segments.push_back(Segment::Quotes {
                        quotes: Vec::new(),
                        by_topic: HashMap::new(),
                    });
                }
                let Some(Segment::Quotes {
                    quotes: held,
                    by_topic,
                }) = self.segments.back_mut()
                else {
                    return;
                };
                let mut replaced = 0;
                for quote in quotes {
                    match by_topic.get(&quote.topic) {
                        Some(&i) => {
                            held[i] = quote;
                            replaced += 1;
                        }
                        None => {
                            by_topic.insert(quote.topic.clone(), held.len());
                            held.push(quote);
                        }
                    }
                }
                if replaced > 0 {
                    metrics.conflated.fetch_add(replaced, Relaxed);
                }
            }
            ordered => self.segments.push_back(Segment::Ordered(ordered)),
        }
    }

    /// The next message to try, oldest first.
    pub fn take_next(&mut self) -> Option<WorkerMsg> {
        Some(match self.segments.pop_front()? {
            Segment::Quotes { quotes, .. } => WorkerMsg::Quotes {
                quotes,
                sent_at: Instant::now(),
            },
            Segment::Ordered(msg) => msg,
        })
    }

    /// Returns a message `take_next` gave out that the queue refused.
    pub fn put_back(&mut self, msg: WorkerMsg) {
        let segment = match msg {
            WorkerMsg::Quotes { quotes, .. } => Segment::Quotes {
                by_topic: quotes
                    .iter()
                    .enumerate()
                    .map(|(i, q)| (q.topic.clone(), i))
                    .collect(),
                quotes,
            },
            ordered => Segment::Ordered(ordered),
        };
        self.segments.push_front(segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ConnId;

    fn quote(topic: &str, body: u8) -> Arc<SharedQuote> {
        Arc::new(SharedQuote {
            topic: topic.into(),
            seq: 0,
            accepted: 0,
            json_frame: vec![body].into(),
            binary_frame: vec![body].into(),
            changed: None,
            lazy: Default::default(),
            decoded_at: Instant::now(),
        })
    }

    fn batch(quotes: Vec<Arc<SharedQuote>>) -> WorkerMsg {
        WorkerMsg::Quotes {
            quotes,
            sent_at: Instant::now(),
        }
    }

    fn quotes(msg: &WorkerMsg) -> Vec<(String, u8)> {
        match msg {
            WorkerMsg::Quotes { quotes, .. } => quotes
                .iter()
                .map(|q| (q.topic.to_string(), q.json_frame[0]))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn conflates_within_a_batch_but_never_across_an_activation() {
        let metrics = Metrics::default();
        let mut outbox = Outbox::default();
        outbox.put(batch(vec![quote("A", 1), quote("B", 1)]), &metrics);
        outbox.put(batch(vec![quote("A", 2)]), &metrics);
        let conn = ConnId { slot: 0, serial: 1 };
        outbox.put(
            WorkerMsg::Activate {
                conn,
                request: 7,
                selectors: vec![],
                snapshots: vec![],
                replayed: 0,
                more: false,
                unrecovered: None,
                seed: None,
            },
            &metrics,
        );
        outbox.put(
            batch(vec![quote("A", 3), quote("C", 1), quote("A", 4)]),
            &metrics,
        );
        assert_eq!(metrics.conflated.load(Relaxed), 2, "A1 and A3 replaced");

        let first = outbox.take_next().unwrap();
        assert_eq!(quotes(&first), [("A".into(), 2), ("B".into(), 1)]);
        outbox.put_back(first); // the worker's queue was still full
        let first = outbox.take_next().unwrap();
        assert_eq!(quotes(&first), [("A".into(), 2), ("B".into(), 1)]);
        assert!(matches!(
            outbox.take_next(),
            Some(WorkerMsg::Activate { request: 7, .. })
        ));
        let last = outbox.take_next().unwrap();
        assert_eq!(quotes(&last), [("A".into(), 4), ("C".into(), 1)]);
        assert!(outbox.take_next().is_none());
        assert!(outbox.is_empty());
    }
}
