//! When a worker writes: the flush (cork) policy, in one place.
//!
//! - A connection is *corked* for the whole loop turn: whatever is queued
//!   for it during the turn — quotes, replies, pongs, a close — is written
//!   by one flush at the end of the turn ([`Cork::mark`] / [`Cork::take`]),
//!   so many frames share one write.
//! - A writable event does not flush at once either: it marks the
//!   connection, which is flushed with the others at the end of the turn.
//! - A turn ends once its work budget is spent ([`TurnBudget`]): every
//!   connection a quote was routed to counts (delivered, held or conflated
//!   alike), so sockets, timers and the sweep always get their turn, and
//!   one connection's burst stays small next to a second of traffic.
//! - A snapshot slice ends the turn ([`TurnBudget::end_turn`]): a large
//!   snapshot reaches the socket slice by slice, live quotes in between.
//! - A flush writes until the queue is empty or the socket would block
//!   (then the connection waits for its writable event), or until
//!   [`FLUSH_LIMIT`] bytes went out: the rest is written next turn, so one
//!   connection with megabytes queued cannot hold up the others' writes.

/// Connections with something to write this turn, each listed once.
#[derive(Default)]
pub struct Cork {
    list: Vec<usize>,
    /// Bit `slot` set: `slot` is in `list`.
    marked: Vec<u64>,
    /// The previous turn's list, kept for its capacity.
    spare: Vec<usize>,
}

impl Cork {
    /// `slot` has output: flush it at the end of this turn.
    pub fn mark(&mut self, slot: usize) {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.marked.len() <= word {
            self.marked.resize(word + 1, 0);
        }
        if let Some(w) = self.marked.get_mut(word) {
            if *w & bit == 0 {
                *w |= bit;
                self.list.push(slot);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The connections to flush now, in the order they were marked; marks
    /// made while they are flushed go to the next list.
    pub fn take(&mut self) -> Vec<usize> {
        for &slot in &self.list {
            if let Some(w) = self.marked.get_mut(slot / 64) {
                *w &= !(1u64 << (slot % 64));
            }
        }
        let next = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.list, next)
    }

    /// Hands back a list from [`Cork::take`] (emptied) for reuse.
    pub fn recycle(&mut self, mut list: Vec<usize>) {
        list.clear();
        if list.capacity() > self.spare.capacity() {
            self.spare = list;
        }
    }
}

/// Bytes one flush writes to one connection before the others get their
/// turn.
pub const FLUSH_LIMIT: usize = 64 * 1024;

/// Work per loop turn before everything is flushed and sockets get a look
/// again. Under load, router messages pile up in the channel and a turn
/// takes several of them: more frames per write, fewer syscalls per
/// delivery (the kernel's TCP send path is most of the cost). 32,768
/// routings (~32 frames per connection with 1,000 subscribers) took
/// peerbench scenario A from 0.58× to 0.99× uWebSockets; 131,072 did no
/// better (docs/performance.md).
pub const WORK_PER_TURN: u64 = 32_768;

/// Counts a turn's work against [`WORK_PER_TURN`].
#[derive(Debug, Default)]
pub struct TurnBudget {
    spent: u64,
}

impl TurnBudget {
    /// Charges the routing of one quote to `targets` connections (a quote
    /// routed to none still costs one).
    pub fn charge(&mut self, targets: usize) {
        self.spent += targets.max(1) as u64;
    }

    pub fn exhausted(&self) -> bool {
        self.spent >= WORK_PER_TURN
    }

    /// Spends the rest of the budget: the turn ends now.
    pub fn end_turn(&mut self) {
        self.spent = self.spent.max(WORK_PER_TURN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_flushed_once_per_turn_however_often_marked() {
        let mut cork = Cork::default();
        for slot in [3, 70, 3, 3, 0, 70] {
            cork.mark(slot);
        }
        let turn = cork.take();
        assert_eq!(turn, [3, 70, 0]);
        assert!(cork.is_empty());
        cork.recycle(turn);
        // Marks after the take belong to the next turn.
        cork.mark(3);
        assert_eq!(cork.take(), [3]);
        assert!(cork.take().is_empty());
    }

    #[test]
    fn a_writable_event_during_a_turn_joins_the_same_flush() {
        let mut cork = Cork::default();
        cork.mark(5); // a quote queued
        cork.mark(5); // then the socket reported writable
        assert_eq!(cork.take(), [5]);
    }

    #[test]
    fn the_budget_counts_every_routing_and_at_least_one_per_quote() {
        let mut budget = TurnBudget::default();
        for _ in 0..WORK_PER_TURN - 1 {
            budget.charge(0);
        }
        assert!(!budget.exhausted());
        budget.charge(1);
        assert!(budget.exhausted());
        let mut budget = TurnBudget::default();
        budget.charge(WORK_PER_TURN as usize);
        assert!(budget.exhausted());
    }
}
