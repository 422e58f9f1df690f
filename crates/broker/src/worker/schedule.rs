//! What a worker does next, besides reacting to readiness: connections to
//! flush at the end of the turn (the cork), to read again (input that
//! waited), to write again (a flush stopped at its byte limit), and the
//! `max_hz` timers. One heap per worker, no timer per subscription.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use super::cork::Cork;
use crate::messages::ConnId;

/// Timer-heap size past which timers of closed connections are purged.
const TIMER_PURGE_AT: usize = 65_536;

#[derive(Default)]
pub(super) struct Schedule {
    cork: Cork,
    /// Connections that may have more input: edge-triggered readiness will
    /// not fire again for them, so they get another turn next loop.
    unread: Vec<usize>,
    /// Connections whose last flush stopped at [`super::cork::FLUSH_LIMIT`].
    write_again: Vec<usize>,
    /// `max_hz` deadlines: when a connection's held quote of a topic is due.
    timers: BinaryHeap<Reverse<(Instant, ConnId, Arc<str>)>>,
}

impl Schedule {
    /// `slot` has output (or may): flush it at the end of this turn.
    pub fn flush_later(&mut self, slot: usize) {
        self.cork.mark(slot);
    }

    /// `slot` is to be read next turn (its input waited, or it asked to
    /// resume reading).
    pub fn read_again(&mut self, slot: usize) {
        self.unread.push(slot);
    }

    /// `slot`'s flush stopped at the byte limit: it goes on next turn.
    pub fn write_again(&mut self, slot: usize) {
        self.write_again.push(slot);
    }

    /// Starts a turn: the connections to read again, and those to write
    /// again join this turn's flush.
    pub fn start_turn(&mut self) -> Vec<usize> {
        for slot in std::mem::take(&mut self.write_again) {
            self.cork.mark(slot);
        }
        std::mem::take(&mut self.unread)
    }

    /// True when the next turn has work without waiting for readiness.
    pub fn has_more(&self) -> bool {
        !self.unread.is_empty() || !self.write_again.is_empty()
    }

    /// The connections to flush now (each once); None when there are
    /// none. Marks made while they are flushed go to the next list: hand
    /// it back with [`Schedule::flushed`] and ask again.
    pub fn take_flush(&mut self) -> Option<Vec<usize>> {
        (!self.cork.is_empty()).then(|| self.cork.take())
    }

    /// Hands back a list from [`Schedule::take_flush`] for reuse.
    pub fn flushed(&mut self, list: Vec<usize>) {
        self.cork.recycle(list);
    }

    /// Calls the connection `id` back for `topic` at `at`.
    pub fn arm(&mut self, at: Instant, id: ConnId, topic: Arc<str>) {
        self.timers.push(Reverse((at, id, topic)));
    }

    /// When the next timer is due.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next timer due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<(ConnId, Arc<str>)> {
        match self.timers.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.timers.pop().map(|Reverse((_, id, topic))| (id, topic))
            }
            _ => None,
        }
    }

    /// Drops timers of connections that have gone (`live` is false), once
    /// they pile up: reconnecting `max_hz` subscribers would otherwise leave
    /// theirs until their deadline, up to a day away.
    pub fn purge_timers(&mut self, open: usize, live: impl Fn(&ConnId) -> bool) {
        if self.timers.len() <= TIMER_PURGE_AT.max(2 * open) {
            return;
        }
        self.timers.retain(|Reverse((_, id, _))| live(id));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(slot: usize) -> ConnId {
        ConnId { slot, serial: 1 }
    }

    #[test]
    fn timers_fire_when_due_earliest_first() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.arm(t0 + Duration::from_millis(20), id(1), "B".into());
        s.arm(t0 + Duration::from_millis(10), id(2), "A".into());
        assert_eq!(s.next_timer(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(s.pop_due(t0 + Duration::from_millis(9)), None);
        assert_eq!(
            s.pop_due(t0 + Duration::from_millis(25)),
            Some((id(2), "A".into()))
        );
        assert_eq!(
            s.pop_due(t0 + Duration::from_millis(25)),
            Some((id(1), "B".into()))
        );
        assert_eq!(s.pop_due(t0 + Duration::from_millis(25)), None);
        assert_eq!(s.next_timer(), None);
    }

    #[test]
    fn timers_of_gone_connections_are_purged_only_once_they_pile_up() {
        let mut s = Schedule::default();
        let at = Instant::now();
        for i in 0..=TIMER_PURGE_AT {
            s.arm(at, id(i % 2), "T".into());
        }
        s.purge_timers(10, |id| id.slot == 0);
        assert_eq!(s.timers.len(), TIMER_PURGE_AT / 2 + 1, "slot 1 is gone");
        // Under the threshold nothing is walked.
        s.purge_timers(10, |_| false);
        assert_eq!(s.timers.len(), TIMER_PURGE_AT / 2 + 1);
    }

    #[test]
    fn writes_that_stopped_at_the_limit_join_the_next_turns_flush_once() {
        let mut s = Schedule::default();
        s.write_again(4);
        s.read_again(7);
        assert!(s.has_more());
        assert_eq!(s.start_turn(), [7], "the reads of this turn");
        s.flush_later(4);
        assert_eq!(s.take_flush(), Some(vec![4]), "marked once");
        assert!(!s.has_more());
        assert_eq!(s.take_flush(), None);
    }
}
