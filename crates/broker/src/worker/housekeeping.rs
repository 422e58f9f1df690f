//! A worker's periodic work: `max_hz` timers, the deadline sweep, stats
//! published once a second, and the start of shutdown.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;

use super::{Worker, TIMER_PURGE_AT};
use crate::metrics;

impl Worker {
    /// Drops timers of connections that have gone, once they pile up
    /// (reconnecting `max_hz` subscribers would otherwise leave theirs until
    /// their deadline, up to a day away).
    pub(super) fn purge_timers(&mut self) {
        if self.timers.len() <= TIMER_PURGE_AT.max(2 * self.conns.len()) {
            return;
        }
        let conns = &self.conns;
        self.timers
            .retain(|Reverse((_, id, _))| conns.get(id.slot).is_some_and(|c| c.id == *id));
    }

    /// Sends the held quotes whose `max_hz` spacing has passed.
    pub(super) fn fire_timers(&mut self) {
        while let Some(Reverse((at, id, _))) = self.timers.peek() {
            if *at > self.now {
                return;
            }
            let id = *id;
            let Some(Reverse((_, _, topic))) = self.timers.pop() else {
                return;
            };
            if let Some(conn) = self.conns.get_mut(id.slot).filter(|c| c.id == id) {
                conn.link.on_timer(&topic, self.now, &mut self.fx);
                self.after_event(id.slot);
            }
        }
    }

    pub(super) fn publish_stats(&mut self) {
        let now = self.now;
        self.last_publish = now;
        let m = &self.metrics;
        metrics::add(&m.frames_out, std::mem::take(&mut self.frames_out));
        metrics::add(&m.socket_writes, std::mem::take(&mut self.socket_writes));
        if let Some(depth) = m.worker_queue_depth.get(self.id) {
            depth.store(self.rx.len() as u64, Ordering::Relaxed);
        }
        m.delivery_latency
            .lock()
            .absorb(&mut self.delivery_latency, now);
        m.router_worker_latency
            .lock()
            .absorb(&mut self.hop_latency, now);
    }

    /// Deadlines. O(connections) every SWEEP_INTERVAL: cheap next to the
    /// per-quote work, and no timer state per connection.
    pub(super) fn sweep(&mut self) {
        if std::mem::take(&mut self.accept_retry) {
            self.accept(false);
            self.accept(true);
        }
        self.purge_timers();
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.link.on_tick(self.now, &mut self.fx);
                self.after_event(slot);
            }
        }
        self.flush_corked();
    }

    pub(super) fn begin_shutdown(&mut self) {
        for mut listener in [self.listener.take(), self.tls_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.link.begin_shutdown(self.now, &mut self.fx);
                self.after_event(slot);
            }
        }
        self.flush_corked();
    }
}
