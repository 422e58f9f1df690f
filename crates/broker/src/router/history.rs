//! History: the most recent quotes of each topic, what a resume (`since`)
//! replays and a `rewind` sends.
//!
//! Each topic keeps a ring of `Arc`s to the quotes the router already
//! encoded for live delivery: history copies no bytes, and a replay hands
//! workers the very frames live subscribers got. Two bounds hold it:
//! `[history] size` quotes per topic, and `[history] max_bytes` over all
//! topics. Past the byte bound the least recently quoted topic loses its
//! oldest quotes first, then the next: topics holding history are kept in
//! a list in the order they were last quoted ([`Eviction`]), moved to its
//! end in O(1) on each quote, so the bound costs nothing until it is hit.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::Arc;

use crate::messages::SharedQuote;

/// `[history]`: quotes kept per topic (0 = off) and bytes over all topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    pub size: usize,
    pub max_bytes: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            size: 64,
            max_bytes: 256 << 20,
        }
    }
}

/// The memory one history entry stands for: the quote's frames and its
/// shared header (counted in full, though the newest entry of a topic is
/// also its last value), the ring slot and the eviction record.
pub fn entry_cost(quote: &SharedQuote) -> usize {
    quote.json_frame.len()
        + quote.binary_frame.len()
        + size_of::<SharedQuote>()
        + 2 * size_of::<usize>() // the Arc's counts
        + size_of::<Arc<SharedQuote>>()
}

/// No place in the list.
const NONE: u32 = u32::MAX;

/// One topic's recent quotes, oldest first, ascending `seq` (usually
/// consecutive; quotes from other brokers may leave holes, which a resume
/// sees as a range not held).
pub(super) struct Ring {
    quotes: VecDeque<Arc<SharedQuote>>,
    /// Its node in the eviction list while it holds quotes.
    node: u32,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            quotes: VecDeque::new(),
            node: NONE,
        }
    }
}

impl Ring {
    pub fn len(&self) -> usize {
        self.quotes.len()
    }

    pub fn oldest_seq(&self) -> Option<u64> {
        self.quotes.front().map(|q| q.seq)
    }

    /// Every quote with a seq above `after`, oldest first.
    pub fn after(&self, after: u64) -> impl Iterator<Item = &Arc<SharedQuote>> {
        // Ascending: the quotes after `after` are a suffix.
        let start = self.quotes.partition_point(|q| q.seq <= after);
        self.quotes.range(start..)
    }

    /// Whether the ring holds every seq in `after + 1 ..= newest`.
    pub fn holds_all_after(&self, after: u64, newest: u64) -> bool {
        if after >= newest {
            return true;
        }
        let held = self.after(after).count() as u64;
        held == newest - after && self.quotes.back().is_some_and(|q| q.seq == newest)
    }

    /// The newest quote accepted at or before the accept count `accepted`.
    pub fn at_or_before(&self, accepted: u64) -> Option<&Arc<SharedQuote>> {
        // Accept counts ascend with seq (quotes filled in from the cluster's
        // history count 0: older than anything accepted here).
        let end = self.quotes.partition_point(|q| q.accepted <= accepted);
        end.checked_sub(1).and_then(|i| self.quotes.get(i))
    }

    /// The `n` newest quotes, oldest first.
    pub fn newest(&self, n: usize) -> impl Iterator<Item = &Arc<SharedQuote>> {
        self.quotes.range(self.quotes.len().saturating_sub(n)..)
    }
}

/// The table-wide side of history: the limits, what is held, and which
/// topic loses history first when the byte bound is passed.
pub(super) struct Eviction {
    limits: HistoryLimits,
    bytes: usize,
    quotes: usize,
    /// Topics holding history, least recently quoted first: a doubly
    /// linked list in a slab (indices, no per-node allocation).
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
}

struct Node {
    prev: u32,
    next: u32,
    /// The topic whose ring this is (None while free).
    name: Option<Arc<str>>,
}

impl Eviction {
    pub fn new(limits: HistoryLimits) -> Eviction {
        Eviction {
            limits,
            bytes: 0,
            quotes: 0,
            nodes: Vec::new(),
            free: Vec::new(),
            head: NONE,
            tail: NONE,
        }
    }

    pub fn enabled(&self) -> bool {
        self.limits.size > 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn quotes(&self) -> usize {
        self.quotes
    }

    /// Appends `quote` (the topic's newest) to `ring`, dropping the ring's
    /// oldest past the per-topic size; the topic becomes the most recently
    /// quoted.
    pub fn push(&mut self, name: &Arc<str>, ring: &mut Ring, quote: &Arc<SharedQuote>) {
        if !self.enabled() {
            return;
        }
        ring.quotes.push_back(quote.clone());
        self.taken(quote);
        while ring.quotes.len() > self.limits.size {
            if let Some(old) = ring.quotes.pop_front() {
                self.given_back(&old);
            }
        }
        self.move_to_tail(name, ring);
    }

    /// Puts quotes older than the ring's oldest in front of it (a cluster
    /// broker filling its history from JetStream), ascending, as many as
    /// the per-topic size leaves room for (the newest of them first).
    pub fn prepend(&mut self, name: &Arc<str>, ring: &mut Ring, older: Vec<Arc<SharedQuote>>) {
        if !self.enabled() {
            return;
        }
        for quote in older.into_iter().rev() {
            if ring.quotes.len() >= self.limits.size {
                break;
            }
            if ring.oldest_seq().is_some_and(|front| quote.seq >= front) {
                continue;
            }
            self.taken(&quote);
            ring.quotes.push_front(quote);
        }
        if !ring.quotes.is_empty() {
            self.move_to_tail(name, ring);
        }
    }

    /// The topic to take history from while past the byte bound: the least
    /// recently quoted one holding any. None when within the bound.
    pub fn victim(&self) -> Option<Arc<str>> {
        if self.bytes <= self.limits.max_bytes {
            return None;
        }
        self.nodes.get(self.head as usize)?.name.clone()
    }

    /// Drops `ring`'s oldest quote (the victim's); a ring left empty leaves
    /// the list.
    pub fn evict_oldest(&mut self, ring: &mut Ring) {
        if let Some(old) = ring.quotes.pop_front() {
            self.given_back(&old);
        }
        if ring.quotes.is_empty() {
            self.unlink(ring.node);
            self.release(ring.node);
            ring.node = NONE;
        }
    }

    /// Moves `ring`'s topic to the end of the list (linking it first if it
    /// is not in it).
    fn move_to_tail(&mut self, name: &Arc<str>, ring: &mut Ring) {
        if ring.node == NONE {
            ring.node = self.allocate(name);
        } else if ring.node == self.tail {
            return;
        } else {
            self.unlink(ring.node);
        }
        let node = ring.node;
        if let Some(n) = self.nodes.get_mut(node as usize) {
            n.prev = self.tail;
            n.next = NONE;
        }
        match self.nodes.get_mut(self.tail as usize) {
            Some(tail) => tail.next = node,
            None => self.head = node,
        }
        self.tail = node;
    }

    fn unlink(&mut self, node: u32) {
        let Some(n) = self.nodes.get(node as usize) else {
            return;
        };
        let (prev, next) = (n.prev, n.next);
        match self.nodes.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn allocate(&mut self, name: &Arc<str>) -> u32 {
        let node = Node {
            prev: NONE,
            next: NONE,
            name: Some(name.clone()),
        };
        match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.nodes.get_mut(i as usize) {
                    *slot = node;
                }
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, node: u32) {
        if let Some(n) = self.nodes.get_mut(node as usize) {
            n.name = None;
            self.free.push(node);
        }
    }

    fn taken(&mut self, quote: &SharedQuote) {
        self.quotes += 1;
        self.bytes += entry_cost(quote);
    }

    fn given_back(&mut self, quote: &SharedQuote) {
        self.quotes -= 1;
        self.bytes -= entry_cost(quote);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn quote(topic: &Arc<str>, seq: u64) -> Arc<SharedQuote> {
        Arc::new(SharedQuote {
            topic: topic.clone(),
            seq,
            accepted: seq,
            json_frame: vec![0; 100].into_boxed_slice(),
            binary_frame: vec![0; 50].into_boxed_slice(),
            changed: None,
            lazy: Default::default(),
            decoded_at: Instant::now(),
        })
    }

    fn seqs<'a>(it: impl Iterator<Item = &'a Arc<SharedQuote>>) -> Vec<u64> {
        it.map(|q| q.seq).collect()
    }

    #[test]
    fn a_ring_keeps_the_newest_size_quotes_and_counts_them() {
        let name: Arc<str> = Arc::from("A");
        let mut ev = Eviction::new(HistoryLimits {
            size: 3,
            max_bytes: usize::MAX,
        });
        let mut ring = Ring::default();
        for seq in 1..=5 {
            ev.push(&name, &mut ring, &quote(&name, seq));
        }
        assert_eq!(seqs(ring.after(0)), [3, 4, 5]);
        assert_eq!(seqs(ring.after(3)), [4, 5]);
        assert_eq!(seqs(ring.newest(2)), [4, 5]);
        assert_eq!(seqs(ring.newest(10)), [3, 4, 5]);
        assert!(ring.holds_all_after(2, 5) && ring.holds_all_after(5, 5));
        assert!(!ring.holds_all_after(1, 5), "seq 2 was dropped");
        assert_eq!(ev.quotes(), 3);
        assert_eq!(ev.bytes(), 3 * entry_cost(&quote(&name, 1)));
    }

    #[test]
    fn a_hole_is_not_held_and_history_off_keeps_nothing() {
        let name: Arc<str> = Arc::from("A");
        let mut ev = Eviction::new(HistoryLimits::default());
        let mut ring = Ring::default();
        for seq in [1, 2, 4] {
            ev.push(&name, &mut ring, &quote(&name, seq));
        }
        assert!(!ring.holds_all_after(1, 4));
        assert!(ring.holds_all_after(3, 4));
        let mut off = Eviction::new(HistoryLimits {
            size: 0,
            max_bytes: usize::MAX,
        });
        let mut empty = Ring::default();
        off.push(&name, &mut empty, &quote(&name, 1));
        assert_eq!((empty.len(), off.quotes(), off.bytes()), (0, 0, 0));
    }

    #[test]
    fn prepend_fills_in_older_quotes_within_the_size() {
        let name: Arc<str> = Arc::from("A");
        let mut ev = Eviction::new(HistoryLimits {
            size: 4,
            max_bytes: usize::MAX,
        });
        let mut ring = Ring::default();
        ev.push(&name, &mut ring, &quote(&name, 10));
        let older = (5..=10).map(|s| quote(&name, s)).collect();
        ev.prepend(&name, &mut ring, older);
        assert_eq!(seqs(ring.after(0)), [7, 8, 9, 10], "the newest that fit");
        assert_eq!(ev.quotes(), 4);
    }

    /// Past the byte bound, the least recently quoted topic loses its
    /// oldest quotes first; a topic quoted again moves to the end.
    #[test]
    fn the_least_recently_quoted_topic_goes_first() {
        let names: Vec<Arc<str>> = ["A", "B", "C"].iter().map(|n| Arc::from(*n)).collect();
        let cost = entry_cost(&quote(&names[0], 1));
        let mut ev = Eviction::new(HistoryLimits {
            size: 8,
            max_bytes: 5 * cost,
        });
        let mut rings: Vec<Ring> = (0..3).map(|_| Ring::default()).collect();
        for (i, seq) in [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (0, 3)] {
            ev.push(&names[i], &mut rings[i], &quote(&names[i], seq));
        }
        // 6 held, 5 allowed: C was quoted least recently.
        assert_eq!(ev.victim(), Some(names[2].clone()));
        ev.evict_oldest(&mut rings[2]);
        assert_eq!((rings[2].len(), ev.victim()), (0, None));
        ev.push(&names[1], &mut rings[1], &quote(&names[1], 3));
        // Now A is the least recently quoted: its oldest goes.
        assert_eq!(ev.victim(), Some(names[0].clone()));
        ev.evict_oldest(&mut rings[0]);
        assert_eq!(seqs(rings[0].after(0)), [2, 3]);
        assert_eq!(ev.victim(), None);
        // A topic emptied and quoted again rejoins at the end.
        ev.push(&names[2], &mut rings[2], &quote(&names[2], 2));
        assert_eq!(ev.quotes(), 6);
        assert_eq!(ev.victim(), Some(names[0].clone()));
    }
}
