//! Handing messages to the workers: never blocking the router, a full
//! worker queue backs up into that worker's outbox only.
//!
//! Quotes numbered in a round wait in `pending` and go to each worker as one
//! message (one channel operation and one wake per worker per round, however
//! many quotes), each the same `Arc` the topic table keeps as last value.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};
use mio::Waker;

use super::outbox::Outbox;
use crate::messages::{SharedQuote, WorkerMsg};
use crate::metrics::Metrics;

pub struct WorkerLink {
    pub tx: Sender<WorkerMsg>,
    pub waker: Arc<Waker>,
    /// Snapshot slices sent and not yet handled by the worker: the next
    /// slice waits until it is 0, so slices never pile up in the worker's
    /// queue ahead of live quotes.
    pub slices_queued: Arc<AtomicUsize>,
}

/// A worker's channel is closed: it stopped, and whatever waits for it
/// (its snapshot jobs) can go.
#[derive(Debug)]
pub(super) struct WorkerGone;

pub(super) struct FanOut {
    links: Vec<WorkerLink>,
    /// Quotes for each worker, sent as one message per round.
    pending: Vec<Vec<Arc<SharedQuote>>>,
    /// Per worker, what its full queue could not take yet.
    outboxes: Vec<Outbox>,
    /// Workers handed something this round, woken once at its end.
    to_wake: u64,
    metrics: Arc<Metrics>,
}

impl FanOut {
    pub fn new(links: Vec<WorkerLink>, metrics: Arc<Metrics>) -> FanOut {
        FanOut {
            pending: links.iter().map(|_| Vec::new()).collect(),
            outboxes: links.iter().map(|_| Outbox::default()).collect(),
            links,
            to_wake: 0,
            metrics,
        }
    }

    pub fn workers(&self) -> usize {
        self.links.len()
    }

    /// Queues `quote` for every worker in the mask `workers` (each gets a
    /// reference to the same encoded copy).
    pub fn queue(&mut self, workers: u64, quote: &Arc<SharedQuote>) {
        let mut mask = workers;
        while mask != 0 {
            let w = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(pending) = self.pending.get_mut(w) {
                pending.push(quote.clone());
            }
        }
    }

    /// Hands `worker` the quotes queued for it so far (or, with none, tries
    /// its outbox again).
    pub fn send_pending(&mut self, worker: usize) -> Result<(), WorkerGone> {
        let Some(pending) = self.pending.get_mut(worker) else {
            return Ok(());
        };
        if pending.is_empty() {
            return self.drain_outbox(worker);
        }
        let quotes = std::mem::take(pending);
        let sent_at = Instant::now();
        self.send(worker, WorkerMsg::Quotes { quotes, sent_at })
    }

    /// Hands `msg` to the worker without ever blocking: if its queue is
    /// full (or already backed up), quotes wait in its outbox, conflated per
    /// topic, and activations wait in order behind them. So a worker that
    /// falls behind costs its own subscribers a `seq` gap, never the feed.
    pub fn send(&mut self, worker: usize, msg: WorkerMsg) -> Result<(), WorkerGone> {
        let (Some(outbox), Some(link)) = (self.outboxes.get_mut(worker), self.links.get(worker))
        else {
            return Ok(());
        };
        if outbox.is_empty() {
            match link.tx.try_send(msg) {
                Ok(()) => {
                    self.to_wake |= 1 << worker;
                    return Ok(());
                }
                Err(TrySendError::Full(msg)) => outbox.put(msg, &self.metrics),
                Err(TrySendError::Disconnected(_)) => return Err(WorkerGone),
            }
        } else {
            outbox.put(msg, &self.metrics);
        }
        self.drain_outbox(worker)
    }

    fn drain_outbox(&mut self, worker: usize) -> Result<(), WorkerGone> {
        let (Some(outbox), Some(link)) = (self.outboxes.get_mut(worker), self.links.get(worker))
        else {
            return Ok(());
        };
        while let Some(msg) = outbox.take_next() {
            match link.tx.try_send(msg) {
                Ok(()) => self.to_wake |= 1 << worker,
                Err(TrySendError::Full(msg)) => {
                    outbox.put_back(msg);
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => {
                    *outbox = Outbox::default();
                    return Err(WorkerGone);
                }
            }
        }
        Ok(())
    }

    /// Wakes every worker handed something since the last call, once.
    pub fn wake(&mut self) {
        while self.to_wake != 0 {
            let w = self.to_wake.trailing_zeros() as usize;
            self.to_wake &= self.to_wake - 1;
            if let Some(link) = self.links.get(w) {
                if let Err(e) = link.waker.wake() {
                    tracing::error!(worker = w, error = %e, "cannot wake worker");
                }
            }
        }
    }

    /// Whether some worker's outbox holds messages (the router then retries
    /// soon even without input).
    pub fn backed_up(&self) -> bool {
        self.outboxes.iter().any(|o| !o.is_empty())
    }

    /// A worker keeps up when nothing waits for room in its queue and it
    /// has handled the last slice it was sent: slices go one at a time, at
    /// the pace the worker takes them, never piling up ahead of live quotes.
    pub fn keeps_up(&self, worker: usize) -> bool {
        self.outboxes.get(worker).is_some_and(|o| o.is_empty())
            && self
                .links
                .get(worker)
                .is_some_and(|w| w.slices_queued.load(Ordering::Acquire) == 0)
    }

    /// Counts a slice (or an activation with more to come) sent to `worker`.
    pub fn slice_sent(&self, worker: usize) {
        if let Some(link) = self.links.get(worker) {
            link.slices_queued.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The link itself, for tests that play the worker.
    #[cfg(test)]
    pub fn link(&self, worker: usize) -> &WorkerLink {
        &self.links[worker]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use crossbeam_channel::Receiver;
    use mio::{Events, Poll, Token};

    use super::*;
    use crate::router::topics::shared;

    /// Workers whose queues take `capacity` messages.
    fn fanout(workers: usize, capacity: usize) -> (FanOut, Vec<Receiver<WorkerMsg>>, Vec<Poll>) {
        let polls: Vec<Poll> = (0..workers).map(|_| Poll::new().unwrap()).collect();
        let mut rxs = Vec::new();
        let links = polls
            .iter()
            .map(|poll| {
                let (tx, rx) = crossbeam_channel::bounded(capacity);
                rxs.push(rx);
                WorkerLink {
                    tx,
                    waker: Arc::new(Waker::new(poll.registry(), Token(1)).unwrap()),
                    slices_queued: Arc::new(AtomicUsize::new(0)),
                }
            })
            .collect();
        (FanOut::new(links, Arc::new(Metrics::default())), rxs, polls)
    }

    fn quote(topic: &str) -> Arc<SharedQuote> {
        shared(&Arc::from(topic))
    }

    fn topics(msg: WorkerMsg) -> Vec<String> {
        match msg {
            WorkerMsg::Quotes { quotes, .. } => {
                quotes.iter().map(|q| q.topic.to_string()).collect()
            }
            _ => Vec::new(),
        }
    }

    fn woken(poll: &mut Poll) -> usize {
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        events.iter().count()
    }

    /// A round's quotes go to each worker as one message sharing one copy,
    /// and each worker is woken once for it.
    #[test]
    fn a_round_is_one_message_and_one_wake_per_worker() {
        let (mut fanout, rxs, mut polls) = fanout(3, 8);
        let a = quote("A");
        fanout.queue(0b011, &a);
        fanout.queue(0b001, &quote("B"));
        for w in 0..fanout.workers() {
            fanout.send_pending(w).unwrap();
        }
        assert_eq!(fanout.to_wake, 0b011, "worker 2 got nothing");
        fanout.wake();
        assert_eq!(fanout.to_wake, 0);
        assert_eq!(woken(&mut polls[0]), 1);
        assert_eq!(woken(&mut polls[2]), 0);
        assert_eq!(topics(rxs[0].try_recv().unwrap()), ["A", "B"]);
        let WorkerMsg::Quotes { quotes, .. } = rxs[1].try_recv().unwrap() else {
            panic!("quotes expected");
        };
        assert!(Arc::ptr_eq(&quotes[0], &a));
        assert!(rxs[0].is_empty() && rxs[1].is_empty() && rxs[2].is_empty());
    }

    /// A full queue never blocks the router: that worker's quotes wait in
    /// its outbox, the newest per topic, until the worker takes them.
    #[test]
    fn a_full_queue_conflates_into_the_outbox_until_the_worker_catches_up() {
        let (mut fanout, rxs, _polls) = fanout(2, 1);
        fanout.queue(0b11, &quote("A"));
        fanout.send_pending(0).unwrap();
        fanout.send_pending(1).unwrap();
        assert!(!fanout.backed_up());
        // Worker 1 reads; worker 0 does not: its queue (1) is full.
        assert_eq!(topics(rxs[1].try_recv().unwrap()), ["A"]);
        for round in 0..3 {
            fanout.queue(0b11, &quote("A"));
            fanout.queue(0b11, &quote(if round == 0 { "B" } else { "C" }));
            fanout.send_pending(0).unwrap();
            fanout.send_pending(1).unwrap();
            assert_eq!(rxs[1].try_iter().count(), 1);
        }
        assert!(fanout.backed_up());
        assert!(!fanout.keeps_up(0) && fanout.keeps_up(1));
        assert_eq!(fanout.metrics.conflated.load(Relaxed), 3, "A twice, C once");

        assert_eq!(topics(rxs[0].try_recv().unwrap()), ["A"]);
        fanout.send_pending(0).unwrap();
        assert_eq!(topics(rxs[0].try_recv().unwrap()), ["A", "B", "C"]);
        assert!(!fanout.backed_up() && fanout.keeps_up(0));
    }

    #[test]
    fn a_worker_keeps_up_once_it_handled_its_slice_and_a_gone_one_is_told() {
        let (mut fanout, mut rxs, _polls) = fanout(2, 1);
        fanout.slice_sent(0);
        assert!(!fanout.keeps_up(0));
        fanout.link(0).slices_queued.fetch_sub(1, Relaxed);
        assert!(fanout.keeps_up(0));
        assert!(!fanout.keeps_up(5), "no such worker");

        drop(rxs.pop());
        fanout.queue(0b10, &quote("A"));
        assert!(fanout.send_pending(1).is_err());
        assert!(fanout.send_pending(0).is_ok());
    }
}
