//! Handing messages to the workers: never blocking the router, a full
//! worker queue backs up into that worker's outbox only.

use std::time::Instant;

use crossbeam_channel::TrySendError;

use super::outbox::Outbox;
use super::Router;
use crate::messages::WorkerMsg;

impl Router {
    pub(super) fn send_pending(&mut self, worker: usize) {
        let Some(pending) = self.pending.get_mut(worker) else {
            return;
        };
        if !pending.is_empty() {
            let quotes = std::mem::take(pending);
            let sent_at = Instant::now();
            self.send(worker, WorkerMsg::Quotes { quotes, sent_at });
        } else {
            self.drain_outbox(worker);
        }
    }

    /// Hands `msg` to the worker without ever blocking: if its queue is
    /// full (or already backed up), quotes wait in its outbox, conflated per
    /// topic, and activations wait in order behind them. So a worker that
    /// falls behind costs its own subscribers a `seq` gap, never the feed.
    pub(super) fn send(&mut self, worker: usize, msg: WorkerMsg) {
        let Some(outbox) = self.outboxes.get_mut(worker) else {
            return;
        };
        if outbox.is_empty() {
            match self.workers[worker].tx.try_send(msg) {
                Ok(()) => {
                    self.to_wake |= 1 << worker;
                    return;
                }
                Err(TrySendError::Full(msg)) => outbox.put(msg, &self.metrics),
                Err(TrySendError::Disconnected(_)) => {
                    self.worker_gone(worker);
                    return;
                }
            }
        } else {
            outbox.put(msg, &self.metrics);
        }
        self.drain_outbox(worker);
    }

    fn drain_outbox(&mut self, worker: usize) {
        let (Some(outbox), Some(link)) = (self.outboxes.get_mut(worker), self.workers.get(worker))
        else {
            return;
        };
        while let Some(msg) = outbox.take_next() {
            match link.tx.try_send(msg) {
                Ok(()) => self.to_wake |= 1 << worker,
                Err(TrySendError::Full(msg)) => {
                    outbox.put_back(msg);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    *outbox = Outbox::default();
                    self.worker_gone(worker);
                    return;
                }
            }
        }
    }

    /// Sends each worker its quotes of this round and wakes it once.
    pub fn flush(&mut self) {
        if let Some(link) = &mut self.cluster {
            link.flush();
        }
        for w in 0..self.workers.len() {
            self.send_pending(w);
        }
        while self.to_wake != 0 {
            let w = self.to_wake.trailing_zeros() as usize;
            self.to_wake &= self.to_wake - 1;
            if let Some(link) = self.workers.get(w) {
                if let Err(e) = link.waker.wake() {
                    tracing::error!(worker = w, error = %e, "cannot wake worker");
                }
            }
        }
    }
}
