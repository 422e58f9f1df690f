//! A worker's two channels with the router: router messages in (quotes,
//! activations, snapshot slices) and commands out (subscribe, interest
//! dropped, snapshots cancelled). Commands are staged during a turn and
//! sent together, as one message, when the turn hands them over
//! ([`RouterChannel::retry`]): one wake of the router per turn. A worker
//! never blocks on the router (the router may be blocked on it): commands
//! the router's queue has no room for stay staged, sent first next turn,
//! and past a bound the worker reads no requests (which make commands)
//! until they drain.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, TrySendError};

use crate::doorbell::BellSender;
use crate::messages::{ConnId, RouterCmd, WorkerMsg};

/// Commands per message to the router: one message stays small, and the
/// router's queue (1,024 messages) holds 65,536 commands at most.
pub const BATCH_MAX: usize = 64;

pub(super) struct RouterChannel {
    rx: Receiver<WorkerMsg>,
    tx: BellSender<RouterCmd>,
    /// Snapshot slices the router has sent and this worker not yet handled.
    slices_queued: Arc<AtomicUsize>,
    /// Commands not handed to the router yet, oldest first: this turn's,
    /// and any its queue had no room for.
    deferred: VecDeque<RouterCmd>,
    /// Bound on `deferred`: past it, no connection is read.
    deferred_limit: usize,
    /// Connections not read while `deferred` is full.
    reads_held: Vec<usize>,
}

impl RouterChannel {
    pub fn new(
        rx: Receiver<WorkerMsg>,
        tx: BellSender<RouterCmd>,
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

    /// Stages a command; [`RouterChannel::retry`] hands it over (the order
    /// of commands is kept).
    pub fn send(&mut self, cmd: RouterCmd) {
        self.deferred.push_back(cmd);
    }

    /// True while commands wait to be handed over.
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

    /// Hands the staged commands to the router as one message (at most
    /// [`BATCH_MAX`] per message) while its queue has room. Calls `taken`
    /// for each subscribe that went (its connection's held replies may go);
    /// returns the connections whose reads were held, once the staged
    /// commands are below half their bound.
    pub fn retry(&mut self, mut taken: impl FnMut(ConnId)) -> Vec<usize> {
        while !self.deferred.is_empty() {
            let n = self.deferred.len().min(BATCH_MAX);
            let mut cmds: Vec<RouterCmd> = self.deferred.drain(..n).collect();
            let subscribers: Vec<ConnId> = cmds.iter().filter_map(subscriber).collect();
            // A lone command goes as itself.
            let msg = match cmds.len() {
                1 => cmds.pop(),
                _ => Some(RouterCmd::Batch(cmds)),
            };
            let Some(msg) = msg else {
                break;
            };
            match self.tx.try_send(msg) {
                // A router that has gone (shutdown) takes everything.
                Ok(()) | Err(TrySendError::Disconnected(_)) => {
                    subscribers.into_iter().for_each(&mut taken);
                }
                Err(TrySendError::Full(msg)) => {
                    // Back to the front, in order, for the next turn.
                    let cmds = match msg {
                        RouterCmd::Batch(cmds) => cmds,
                        cmd => vec![cmd],
                    };
                    for cmd in cmds.into_iter().rev() {
                        self.deferred.push_front(cmd);
                    }
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

/// The connection of a subscribe (whose replies wait for it to go).
fn subscriber(cmd: &RouterCmd) -> Option<ConnId> {
    match cmd {
        RouterCmd::Subscribe { conn, .. } => Some(*conn),
        _ => None,
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
            seed: None,
        }
    }

    /// The subscribers' slots of one message, in order.
    fn slots_of(cmd: RouterCmd) -> Vec<usize> {
        match cmd {
            RouterCmd::Batch(cmds) => cmds.into_iter().flat_map(slots_of).collect(),
            RouterCmd::Subscribe { conn, .. } => vec![conn.slot],
            _ => vec![usize::MAX],
        }
    }

    fn channel(
        room: usize,
        limit: usize,
    ) -> (RouterChannel, crossbeam_channel::Receiver<RouterCmd>) {
        let (tx, router) = crossbeam_channel::bounded(room);
        let (_to_worker, rx) = crossbeam_channel::bounded(1);
        let ch = RouterChannel::new(
            rx,
            BellSender::unheard(tx),
            Arc::new(AtomicUsize::new(0)),
            limit,
        );
        (ch, router)
    }

    #[test]
    fn a_turns_commands_go_as_one_message_in_order() {
        let (mut ch, router) = channel(1, 4);
        ch.send(subscribe(0));
        ch.send(subscribe(1));
        assert!(ch.is_backed_up(), "staged until the hand-over");
        let mut went = Vec::new();
        ch.retry(|id| went.push(id.slot));
        assert_eq!(went, [0, 1]);
        assert!(!ch.is_backed_up());
        assert_eq!(slots_of(router.recv().unwrap()), [0, 1]);
        assert!(router.try_recv().is_err(), "one message");
        // A lone command goes as itself.
        ch.send(subscribe(2));
        ch.retry(|_| {});
        assert!(matches!(
            router.recv().unwrap(),
            RouterCmd::Subscribe { .. }
        ));
    }

    #[test]
    fn a_message_holds_at_most_batch_max_commands() {
        let (mut ch, router) = channel(4, 1 << 20);
        for slot in 0..BATCH_MAX + 6 {
            ch.send(subscribe(slot));
        }
        ch.retry(|_| {});
        let first = slots_of(router.recv().unwrap());
        let second = slots_of(router.recv().unwrap());
        assert_eq!(first, (0..BATCH_MAX).collect::<Vec<_>>());
        assert_eq!(second, (BATCH_MAX..BATCH_MAX + 6).collect::<Vec<_>>());
    }

    #[test]
    fn commands_wait_in_order_while_the_router_is_full_and_reads_stop_at_the_bound() {
        let (mut ch, router) = channel(1, 4);
        let mut went = Vec::new();
        ch.send(subscribe(0));
        ch.retry(|id| went.push(id.slot));
        assert_eq!(went, [0], "room: taken");
        for slot in 1..=4 {
            ch.send(subscribe(slot));
        }
        assert!(ch.retry(|id| went.push(id.slot)).is_empty());
        assert_eq!(went, [0], "full: all four wait");
        assert!(ch.is_backed_up());
        assert!(!ch.may_read(9), "at the bound: held");
        // The router takes one message: the four waiting go, in order, as
        // one; below half the bound, reading resumes.
        assert_eq!(slots_of(router.recv().unwrap()), [0]);
        let resumed = ch.retry(|id| went.push(id.slot));
        assert_eq!(went, [0, 1, 2, 3, 4]);
        assert_eq!(resumed, [9]);
        assert_eq!(slots_of(router.recv().unwrap()), [1, 2, 3, 4]);
        assert!(ch.may_read(9));
    }

    #[test]
    fn a_router_that_has_gone_takes_everything() {
        let (mut ch, router) = channel(1, 4);
        drop(router);
        ch.send(subscribe(0));
        ch.send(subscribe(1));
        let mut went = Vec::new();
        ch.retry(|id| went.push(id.slot));
        assert_eq!(went, [0, 1]);
        assert!(!ch.is_backed_up());
    }
}
