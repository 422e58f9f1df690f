//! The topic table: every topic the router has seen, with its `seq`, its
//! last value (what a snapshot sends) and the accept counter.
//!
//! The accept counter orders quotes against snapshot jobs: a job remembers
//! the count when its subscription went live, and a topic accepted after
//! that reaches the subscriber live, so its slice leaves it out (see
//! `snapshots.rs`). A quote whose `seq` only moves the numbering on (a
//! stored cluster quote older than ours) is not accepted: it changes no
//! last value, so it must not hide the topic from a snapshot.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tickwire_protocol::{PrefixIndex, Selector, MAX_SEQ};

use super::cluster::Origin;
use super::interest::CachedMask;
use crate::messages::SharedQuote;
use crate::metrics::{self, Metrics};

struct Topic {
    seq: u64,
    last: Option<Arc<SharedQuote>>,
    /// The table's accept count at this topic's last accepted quote.
    accepted: u64,
    /// The workers interested in it, kept by `Interest` (cached here so a
    /// quote costs one lookup of its topic, not one per selector).
    mask: CachedMask,
    /// Cluster only: who published it last, whether ingested here.
    origin: Origin,
}

pub(super) struct TopicTable {
    /// Ordered: the topics under a pattern are a range scan, so a `*`
    /// subscribe costs O(topics it matches).
    topics: PrefixIndex<Topic>,
    /// Quotes accepted so far, over every topic.
    accepted: u64,
    max_topics: usize,
    metrics: Arc<Metrics>,
}

/// One topic being quoted: its state and the table's accept counter,
/// borrowed together so a quote looks its topic up once.
pub(super) struct Quoting<'a> {
    topic: &'a mut Topic,
    accepted: &'a mut u64,
}

impl TopicTable {
    pub fn new(max_topics: usize, metrics: Arc<Metrics>) -> TopicTable {
        TopicTable {
            topics: PrefixIndex::ordered(),
            accepted: 0,
            max_topics,
            metrics,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Quotes accepted so far: where a subscription goes live.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// The topic a quote is for, created if the limit leaves room: its
    /// shared name (one `Arc` for every copy of every quote) and its state.
    /// None past `max_topics`: that quote is dropped, counted.
    pub fn quote(&mut self, topic: &str) -> Option<(Arc<str>, Quoting<'_>)> {
        let name = match self.topics.exact_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => self.create(topic)?,
        };
        let topic = self.topics.exact_mut(&name)?;
        let quoting = Quoting {
            topic,
            accepted: &mut self.accepted,
        };
        Some((name, quoting))
    }

    fn create(&mut self, topic: &str) -> Option<Arc<str>> {
        if self.topics.len() >= self.max_topics {
            if self.metrics.topics_dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(max_topics = self.max_topics, %topic, "topic limit reached; quotes for new topics are dropped");
            }
            return None;
        }
        let name: Arc<str> = Arc::from(topic);
        let fresh = Topic {
            seq: 0,
            last: None,
            accepted: 0,
            // Not computed yet: done on the topic's first delivered quote.
            mask: CachedMask::default(),
            origin: Origin::default(),
        };
        self.topics.insert_exact(name.clone(), fresh);
        metrics::gauge_add(&self.metrics.topics, 1);
        Some(name)
    }

    /// The cached workers of the one topic an exact selector names (a
    /// pattern's change goes through the generation instead).
    pub fn mask_mut(&mut self, selector: &Selector) -> Option<&mut CachedMask> {
        match selector {
            Selector::Exact(name) => self.topics.exact_mut(name).map(|t| &mut t.mask),
            Selector::Prefix(_) => None,
        }
    }

    /// The names `selector` matches, in order; for a pattern, only those
    /// after `after` (where the previous slice stopped).
    pub fn names<'a>(
        &'a self,
        selector: &'a Selector,
        after: Option<&Arc<str>>,
    ) -> Box<dyn Iterator<Item = &'a Arc<str>> + 'a> {
        match (selector, after) {
            (Selector::Prefix(prefix), Some(after)) => self.topics.keys_under_after(prefix, after),
            _ => self.topics.keys_matched(selector),
        }
    }

    /// The last value of `name` for a snapshot taken when the accept count
    /// was `live_since`; None when the topic has been accepted since (the
    /// subscriber gets it live) or has no value.
    pub fn snapshot(&self, name: &str, live_since: u64) -> Option<Arc<SharedQuote>> {
        let topic = self.topics.exact(name)?;
        if topic.accepted > live_since {
            return None;
        }
        topic.last.clone()
    }
}

impl Quoting<'_> {
    pub fn seq(&self) -> u64 {
        self.topic.seq
    }

    /// Numbers a quote of this broker's ingest. Never wraps: a topic at the
    /// bound keeps its seq (its quotes are then stale elsewhere) rather than
    /// restart at 0, stale everywhere.
    pub fn next_seq(&mut self) -> u64 {
        self.topic.seq = self.topic.seq.saturating_add(1).min(MAX_SEQ);
        self.topic.seq
    }

    /// Moves the numbering on to another broker's `seq`; false when it is
    /// not newer (a quote already seen or older: `seq` never goes back).
    /// The caller refuses a `seq` above `MAX_SEQ` before the topic exists.
    pub fn adopt(&mut self, seq: u64) -> bool {
        debug_assert!(seq <= MAX_SEQ);
        if seq <= self.topic.seq {
            return false;
        }
        self.topic.seq = seq;
        true
    }

    /// Takes `quote` (numbered with `seq()`) as the topic's last value and
    /// counts it accepted.
    pub fn accept(&mut self, quote: Arc<SharedQuote>) {
        *self.accepted += 1;
        self.topic.accepted = *self.accepted;
        self.topic.last = Some(quote);
    }

    pub fn mask(&mut self) -> &mut CachedMask {
        &mut self.topic.mask
    }

    pub fn origin(&mut self) -> &mut Origin {
        &mut self.topic.origin
    }
}

/// A stand-in for an encoded quote: tests only look at its topic and which
/// `Arc` it is.
#[cfg(test)]
pub(super) fn shared(topic: &Arc<str>) -> Arc<SharedQuote> {
    Arc::new(SharedQuote {
        topic: topic.clone(),
        json_frame: Box::new([]),
        binary_frame: Box::new([]),
        decoded_at: std::time::Instant::now(),
    })
}

/// Quotes each of `names` once, as ingest would.
#[cfg(test)]
pub(super) fn quote_all(table: &mut TopicTable, names: &[&str]) {
    for name in names {
        if let Some((name, mut topic)) = table.quote(name) {
            topic.next_seq();
            topic.accept(shared(&name));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    fn table(max_topics: usize) -> TopicTable {
        TopicTable::new(max_topics, Arc::new(Metrics::default()))
    }

    #[test]
    fn numbers_each_topic_on_its_own_and_never_past_max_seq() {
        let mut table = table(10);
        let (_, mut a) = table.quote("A").unwrap();
        assert_eq!((a.next_seq(), a.next_seq()), (1, 2));
        let (_, mut b) = table.quote("B").unwrap();
        assert_eq!(b.next_seq(), 1);
        let (_, mut a) = table.quote("A").unwrap();
        assert!(!a.adopt(2), "not newer");
        assert!(a.adopt(MAX_SEQ - 1));
        assert_eq!(a.next_seq(), MAX_SEQ);
        assert_eq!(a.next_seq(), MAX_SEQ, "stays at the bound, never wraps");
        assert!(!a.adopt(MAX_SEQ));
    }

    #[test]
    fn new_topics_past_the_limit_are_dropped_and_counted() {
        let mut table = table(2);
        let (first, _) = table.quote("A").unwrap();
        assert!(table.quote("B").is_some());
        assert!(table.quote("C").is_none());
        assert!(table.quote("C").is_none());
        let (again, _) = table.quote("A").unwrap();
        assert!(Arc::ptr_eq(&first, &again), "one shared name per topic");
        assert_eq!(table.len(), 2);
        assert_eq!(table.metrics.topics.load(Relaxed), 2);
        assert_eq!(table.metrics.topics_dropped.load(Relaxed), 2);
    }

    /// The accept counter decides what a snapshot taken at some count
    /// still sends: a topic accepted later is left to its live quote, and
    /// adopting a seq alone accepts nothing.
    #[test]
    fn a_snapshot_leaves_out_topics_accepted_after_it_went_live() {
        let mut table = table(10);
        quote_all(&mut table, &["A", "B"]);
        let live_since = table.accepted();
        assert_eq!(live_since, 2);
        assert!(table.snapshot("A", live_since).is_some());
        quote_all(&mut table, &["A"]);
        assert!(table.snapshot("A", live_since).is_none());
        assert!(table.snapshot("B", live_since).is_some());
        let (_, mut c) = table.quote("C").unwrap();
        assert!(c.adopt(7));
        assert_eq!(table.accepted(), 3);
        assert!(table.snapshot("C", 3).is_none(), "no value to send");
        assert!(table.snapshot("Z", 3).is_none());
    }

    #[test]
    fn names_under_a_pattern_come_in_order_and_resume_after_a_name() {
        let mut table = table(10);
        quote_all(&mut table, &["B.2", "A.1", "B.1", "B.3"]);
        let pattern = Selector::parse("B.*").unwrap();
        let all: Vec<&str> = table.names(&pattern, None).map(|n| &**n).collect();
        assert_eq!(all, ["B.1", "B.2", "B.3"]);
        let after = Arc::from("B.1");
        let rest: Vec<&str> = table.names(&pattern, Some(&after)).map(|n| &**n).collect();
        assert_eq!(rest, ["B.2", "B.3"]);
        let exact = Selector::parse("A.1").unwrap();
        assert_eq!(table.names(&exact, None).count(), 1);
        assert!(table.mask_mut(&exact).is_some());
        assert!(table.mask_mut(&pattern).is_none());
    }
}
