//! A worker's two channels with the router: router messages in (quotes,
//! activations, snapshot slices) and commands out (subscribe, interest
//! dropped, snapshots cancelled). A worker never blocks on the router (the
//! router may be blocked on it): a command the router's queue has no room
//! for waits in a deferred queue, sent first next turn, and past a bound
//! the worker reads no requests (which make commands) until it drains.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::messages::{ConnId, RouterCmd, WorkerMsg};

pub(super) struct RouterChannel {
    rx: Receiver<WorkerMsg>,
    tx: Sender<RouterCmd>,
    /// Snapshot slices the router has sent and this worker not yet handled.
    slices_queued: Arc<AtomicUsize>,
    /// Commands the router's queue had no room for, oldest first.
    deferred: VecDeque<RouterCmd>,
    /// Bound on `deferred`: past it, no connection is read.
    deferred_limit: usize,
    /// Connections not read while `deferred` is full.
    reads_held: Vec<usize>,
}

impl RouterChannel {
    pub fn new(
        rx: Receiver<WorkerMsg>,
        tx: Sender<RouterCmd>,
        slices_queued: Arc<AtomicUsize>,
        deferred_limit: usize,
    ) -> RouterChannel {
        RouterChannel {
            rx,
            tx,
            slices_queued,
            deferred: VecDeque::new(),
            deferred_limit,
            reads_held: Vec::new(),
        }
    }

    /// The next router message, if one waits.
    pub fn try_recv(&self) -> Option<WorkerMsg> {
        // Disconnected only at shutdown: nothing more will come.
        self.rx.try_recv().ok()
    }

    /// Router messages waiting (the queue-depth gauge).
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// A snapshot slice was handled: the router may send the next.
    pub fn slice_handled(&self) {
        self.slices_queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sends a command without blocking; true if the router has it now,
    /// false if it waits in the deferred queue (behind any older one: the
    /// order of commands is kept).
    pub fn send(&mut self, cmd: RouterCmd) -> bool {
        if !self.deferred.is_empty() {
            self.deferred.push_back(cmd);
            return false;
        }
        match self.tx.try_send(cmd) {
            // A router that has gone (shutdown) takes everything.
            Ok(()) | Err(TrySendError::Disconnected(_)) => true,
            Err(TrySendError::Full(cmd)) => {
                self.deferred.push_back(cmd);
                false
            }
        }
    }

    /// True while commands wait for room in the router's queue.
    pub fn is_backed_up(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Whether connection `slot` may be read now: not while the deferred
    /// queue is at its bound (it is then held, and handed back by
    /// [`RouterChannel::retry`] once the queue drains to half).
    pub fn may_read(&mut self, slot: usize) -> bool {
        if self.deferred.len() < self.deferred_limit {
            return true;
        }
        self.reads_held.push(slot);
        false
    }

    /// Sends deferred commands while the router's queue has room. Calls
    /// `taken` for each subscribe that went (its connection's held replies
    /// may go); returns the connections whose reads were held, once the
    /// queue is below half its bound.
    pub fn retry(&mut self, mut taken: impl FnMut(ConnId)) -> Vec<usize> {
        while let Some(cmd) = self.deferred.pop_front() {
            let conn = match &cmd {
                RouterCmd::Subscribe { conn, .. } => Some(*conn),
                RouterCmd::DropInterest { .. }
                | RouterCmd::CancelSnapshots { .. }
                | RouterCmd::CatchUpCredit { .. } => None,
            };
            match self.tx.try_send(cmd) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {
                    if let Some(id) = conn {
                        taken(id);
                    }
                }
                Err(TrySendError::Full(cmd)) => {
                    self.deferred.push_front(cmd);
                    break;
                }
            }
        }
        if self.deferred.len() < self.deferred_limit / 2 {
            std::mem::take(&mut self.reads_held)
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::CatchUp;

    fn subscribe(slot: usize) -> RouterCmd {
        RouterCmd::Subscribe {
            worker: 0,
            conn: ConnId { slot, serial: 1 },
            request: 0,
            selectors: vec![],
            catch_up: CatchUp::snapshot(false),
            interest_add: vec![],
        }
    }

    fn slot_of(cmd: RouterCmd) -> usize {
        match cmd {
            RouterCmd::Subscribe { conn, .. } => conn.slot,
            _ => usize::MAX,
        }
    }

    #[test]
    fn commands_wait_in_order_while_the_router_is_full_and_reads_stop_at_the_bound() {
        let (tx, router) = crossbeam_channel::bounded(1);
        let (_to_worker, rx) = crossbeam_channel::bounded(1);
        let mut ch = RouterChannel::new(rx, tx, Arc::new(AtomicUsize::new(0)), 4);
        assert!(ch.send(subscribe(0)), "room: taken now");
        for slot in 1..=4 {
            assert!(!ch.send(subscribe(slot)), "full: deferred");
        }
        assert!(ch.is_backed_up());
        assert!(!ch.may_read(9), "at the bound: held");
        // Nothing drained yet: nothing goes, nothing resumes.
        let mut went = Vec::new();
        assert!(ch.retry(|id| went.push(id.slot)).is_empty());
        assert!(went.is_empty());
        // The router takes one: the oldest deferred goes, in order.
        assert_eq!(slot_of(router.recv().unwrap()), 0);
        assert!(
            ch.retry(|id| went.push(id.slot)).is_empty(),
            "3 left: over half"
        );
        assert_eq!(went, [1]);
        assert_eq!(slot_of(router.recv().unwrap()), 1);
        ch.retry(|id| went.push(id.slot));
        assert_eq!(slot_of(router.recv().unwrap()), 2);
        let resumed = ch.retry(|id| went.push(id.slot));
        assert_eq!(went, [1, 2, 3]);
        assert_eq!(resumed, [9], "below half the bound: reading resumes");
        assert!(ch.may_read(9));
    }

    #[test]
    fn a_router_that_has_gone_takes_everything() {
        let (tx, router) = crossbeam_channel::bounded(1);
        drop(router);
        let (_to_worker, rx) = crossbeam_channel::bounded(1);
        let mut ch = RouterChannel::new(rx, tx, Arc::new(AtomicUsize::new(0)), 4);
        assert!(ch.send(subscribe(0)));
        assert!(ch.send(subscribe(1)));
        assert!(!ch.is_backed_up());
    }
}
