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

use tickwire_protocol::{HashedText, PrefixIndex, Selector, MAX_SEQ};

use super::cluster::Origin;
use super::history::{Eviction, HistoryLimits, Ring};
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
    /// Its recent quotes (`[history]`), the last value the newest.
    ring: Ring,
}

pub(super) struct TopicTable {
    /// Ordered: the topics under a pattern are a range scan, so a `*`
    /// subscribe costs O(topics it matches).
    topics: PrefixIndex<Topic>,
    /// Quotes accepted so far, over every topic.
    accepted: u64,
    max_topics: usize,
    /// The history's limits, counts and eviction order.
    history: Eviction,
    metrics: Arc<Metrics>,
}

/// One topic being quoted: its state and the table's accept counter,
/// borrowed together so a quote looks its topic up once.
pub(super) struct Quoting<'a> {
    topic: &'a mut Topic,
    accepted: &'a mut u64,
    history: &'a mut Eviction,
}

impl TopicTable {
    pub fn new(max_topics: usize, history: HistoryLimits, metrics: Arc<Metrics>) -> TopicTable {
        TopicTable {
            topics: PrefixIndex::ordered(),
            accepted: 0,
            max_topics,
            history: Eviction::new(history),
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
        // Hashed once for both probes.
        let key = HashedText::new(topic);
        let name = match self.topics.exact_key_value(&key) {
            Some((name, _)) => name.clone(),
            None => self.create(key)?,
        };
        let topic = self.topics.exact_mut(&key)?;
        let quoting = Quoting {
            topic,
            accepted: &mut self.accepted,
            history: &mut self.history,
        };
        Some((name, quoting))
    }

    fn create(&mut self, topic: HashedText<'_>) -> Option<Arc<str>> {
        if self.topics.len() >= self.max_topics {
            if self.metrics.topics_dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max_topics = self.max_topics,
                    topic = topic.as_str(),
                    "topic limit reached; quotes for new topics are dropped"
                );
            }
            return None;
        }
        let name = topic.to_name();
        let fresh = Topic {
            seq: 0,
            last: None,
            accepted: 0,
            // Not computed yet: done on the topic's first delivered quote.
            mask: CachedMask::default(),
            origin: Origin::default(),
            ring: Ring::default(),
        };
        let text = name.text().clone();
        self.topics.insert_exact(name, fresh);
        metrics::gauge_add(&self.metrics.topics, 1);
        Some(text)
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

    /// Whether history is kept (`[history] size` above 0).
    pub fn history_enabled(&self) -> bool {
        self.history.enabled()
    }

    /// Quotes and bytes held in history, for the gauges.
    pub fn history_held(&self) -> (usize, usize) {
        (self.history.quotes(), self.history.bytes())
    }

    /// Whether a resume of `name` after `after` is recovered now (the
    /// contract's rules; the epoch was checked before): history must be on,
    /// `after` not above the newest seq, and — unless only the newest quote
    /// is wanted (`max_hz`) — every quote after it still held. A topic
    /// with no quote yet has seq 0.
    pub fn resume_holds(&self, name: &str, after: u64, newest_only: bool) -> bool {
        if !self.history.enabled() {
            return false;
        }
        let Some(topic) = self.topics.exact(name) else {
            return after == 0;
        };
        if after > topic.seq {
            return false;
        }
        newest_only || topic.ring.holds_all_after(after, topic.seq)
    }

    /// Where a client stands in `name` once it has every quote the broker
    /// accepted up to `accepted` (an SSE `Last-Event-ID`): the seq of the
    /// topic's newest quote at that count, 0 when the topic's first quote
    /// came later and is still held; None when history no longer tells.
    pub fn position_at(&self, name: &str, accepted: u64) -> Option<u64> {
        let topic = self.topics.exact(name)?;
        let last = topic.last.as_ref()?;
        if last.accepted <= accepted {
            return Some(topic.seq);
        }
        if let Some(q) = topic.ring.at_or_before(accepted) {
            return Some(q.seq);
        }
        topic.ring.oldest_seq().filter(|s| *s == 1).map(|_| 0)
    }

    /// What a recovered resume of `name` sends: the held quotes after
    /// `after`, or with `newest_only` the newest if it is after `after`.
    pub fn resume_quotes(
        &self,
        name: &str,
        after: u64,
        newest_only: bool,
    ) -> Vec<Arc<SharedQuote>> {
        let Some(topic) = self.topics.exact(name) else {
            return Vec::new();
        };
        if newest_only {
            return topic
                .last
                .iter()
                .filter(|q| q.seq > after)
                .cloned()
                .collect();
        }
        topic.ring.after(after).cloned().collect()
    }

    /// What a rewind of `n` sends for `name`, taken when the accept count
    /// was `live_since`: up to the `n` newest quotes held, oldest first
    /// (the last value counts as held, so with history off it is the
    /// snapshot); nothing when the topic was accepted since (see
    /// [`TopicTable::snapshot`]).
    pub fn rewind(&self, name: &str, n: usize, live_since: u64) -> Vec<Arc<SharedQuote>> {
        let Some(topic) = self.topics.exact(name) else {
            return Vec::new();
        };
        if topic.accepted > live_since {
            return Vec::new();
        }
        recent(topic, n)
    }

    /// Puts quotes fetched from the cluster's history in front of `name`'s
    /// ring (ascending; only those older than what the ring holds and not
    /// above the topic's seq are kept).
    pub fn prepend_history(&mut self, name: &str, older: Vec<Arc<SharedQuote>>) {
        let Some((name, _)) = self.topics.exact_key_value(name) else {
            return;
        };
        let name = name.clone();
        let Some(topic) = self.topics.exact_mut(&name) else {
            return;
        };
        let seq = topic.seq;
        let older = older.into_iter().filter(|q| q.seq <= seq).collect();
        self.history.prepend(&name, &mut topic.ring, older);
        self.trim_history();
    }

    /// Evicts history while past the byte bound (called after each quote
    /// taken): the least recently quoted topic's oldest quotes first.
    pub fn trim_history(&mut self) {
        while let Some(name) = self.history.victim() {
            let Some(topic) = self.topics.exact_mut(&name) else {
                break;
            };
            self.history.evict_oldest(&mut topic.ring);
        }
    }
}

/// Up to `n` of a topic's newest quotes, oldest first; its last value
/// when the ring holds none (history off or evicted).
fn recent(topic: &Topic, n: usize) -> Vec<Arc<SharedQuote>> {
    if topic.ring.len() == 0 {
        return topic.last.iter().cloned().collect();
    }
    topic.ring.newest(n).cloned().collect()
}

impl Quoting<'_> {
    /// The table's accept count at this topic's previous accepted quote:
    /// catch-up jobs started at or after it still see the topic as it was
    /// when they started.
    pub fn accepted_before(&self) -> u64 {
        self.topic.accepted
    }

    /// The accept count the next [`Quoting::accept`] gives its quote.
    pub fn next_accepted(&self) -> u64 {
        *self.accepted + 1
    }

    /// Up to `n` of the topic's newest quotes, oldest first (a rewind).
    pub fn recent(&self, n: usize) -> Vec<Arc<SharedQuote>> {
        recent(self.topic, n)
    }

    /// The held quotes after `after` (a resume), or the newest only.
    pub fn resume_quotes(&self, after: u64, newest_only: bool) -> Vec<Arc<SharedQuote>> {
        if newest_only {
            return self
                .topic
                .last
                .iter()
                .filter(|q| q.seq > after)
                .cloned()
                .collect();
        }
        self.topic.ring.after(after).cloned().collect()
    }

    pub fn seq(&self) -> u64 {
        self.topic.seq
    }

    /// The topic's last value, if it has one.
    pub fn last(&self) -> Option<&SharedQuote> {
        self.topic.last.as_deref()
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
        self.history
            .push(&quote.topic, &mut self.topic.ring, &quote);
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
        seq: 0,
        accepted: 0,
        json_frame: Box::new([]),
        binary_frame: Box::new([]),
        changed: None,
        lazy: Default::default(),
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
mod tests;
