//! Which producers have bytes to read, in the order they are served.
//!
//! A router round reads a budget of batches, so some producers may wait for
//! the next round. Served in slot order, the lowest slots, if they always
//! had more, would take every round's budget and the others would never be
//! read (nor their `Hello` within the admission deadline). So the queue is
//! first in, first out: a producer the budget skipped keeps its place, one
//! that was read and has more goes to the back, behind those whose events
//! came meanwhile.
//!
//! Per slot it also remembers what decides how a read may end early: the
//! event carried a FIN or error, or the slot is carried over with no event
//! at all (see `Ingest::read`).

/// Queued for the next turn.
const QUEUED: u8 = 1;
/// Queued without a readiness event (its reads ran out or the budget did).
const CARRIED: u8 = 2;
/// Its event carried a FIN or an error.
const FIN: u8 = 4;

#[derive(Debug, Default)]
pub struct ReadQueue {
    order: Vec<usize>,
    flags: Vec<u8>,
}

/// A producer to read this turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ready {
    pub slot: usize,
    /// A short read of a plain socket has taken all it held: the event
    /// carried no FIN or error and the slot is not carried over.
    pub short_ends: bool,
}

impl ReadQueue {
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// A readiness event for `slot` (`fin`: it carried a FIN or an error).
    pub fn ready(&mut self, slot: usize, fin: bool) {
        self.queue(slot, if fin { FIN } else { 0 });
    }

    /// `slot` waits for the next turn with no event to bring it back.
    pub fn carry(&mut self, slot: usize) {
        self.queue(slot, CARRIED);
    }

    /// This turn's producers, in order; the queue starts empty again.
    pub fn take(&mut self) -> Vec<Ready> {
        let order = std::mem::take(&mut self.order);
        order
            .into_iter()
            .map(|slot| {
                let flags = self.flags.get_mut(slot).map_or(0, std::mem::take);
                Ready {
                    slot,
                    short_ends: flags & (FIN | CARRIED) == 0,
                }
            })
            .collect()
    }

    /// `slot` was closed: what was queued of it is forgotten (the slot may
    /// be given to a new producer).
    pub fn forget(&mut self, slot: usize) {
        if let Some(flags) = self.flags.get_mut(slot) {
            if *flags & QUEUED != 0 {
                self.order.retain(|&s| s != slot);
            }
            *flags = 0;
        }
    }

    fn queue(&mut self, slot: usize, flag: u8) {
        if self.flags.len() <= slot {
            self.flags.resize(slot + 1, 0);
        }
        let Some(flags) = self.flags.get_mut(slot) else {
            return;
        };
        if *flags & QUEUED == 0 {
            self.order.push(slot);
        }
        *flags |= QUEUED | flag;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(ready: &[Ready]) -> Vec<usize> {
        ready.iter().map(|r| r.slot).collect()
    }

    #[test]
    fn first_in_first_out_once_each() {
        let mut q = ReadQueue::default();
        q.ready(5, false);
        q.ready(1, false);
        q.ready(5, true);
        q.ready(3, false);
        let ready = q.take();
        assert_eq!(slots(&ready), [5, 1, 3]);
        assert!(!ready[0].short_ends, "a FIN on its second event");
        assert!(ready[1].short_ends && ready[2].short_ends);
        assert!(q.is_empty());
    }

    #[test]
    fn a_carried_slot_reads_to_the_end_and_keeps_its_place() {
        let mut q = ReadQueue::default();
        // Skipped by the budget (0, 1), then one that was read and has more
        // (2) goes behind them; an event arriving later comes after.
        q.carry(0);
        q.carry(1);
        q.carry(2);
        q.ready(7, false);
        q.ready(0, false);
        let ready = q.take();
        assert_eq!(slots(&ready), [0, 1, 2, 7]);
        assert!(ready[..3].iter().all(|r| !r.short_ends));
        assert!(ready[3].short_ends);
    }

    #[test]
    fn a_closed_slot_is_forgotten_and_its_reuse_starts_clean() {
        let mut q = ReadQueue::default();
        q.ready(2, true);
        q.ready(4, false);
        q.forget(2);
        q.forget(9);
        assert_eq!(slots(&q.take()), [4]);
        q.ready(2, false);
        assert_eq!(
            q.take(),
            [Ready {
                slot: 2,
                short_ends: true
            }]
        );
    }
}
