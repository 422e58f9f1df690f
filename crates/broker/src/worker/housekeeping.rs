//! A worker's periodic work: `max_hz` timers, the deadline sweep, and the
//! start of shutdown.

use super::{conn_of, Worker};
use crate::moment::Moment;

impl Worker {
    /// Sends the held quotes whose `max_hz` spacing has passed.
    pub(super) fn fire_timers(&mut self) {
        while let Some((id, topic)) = self.schedule.pop_due(self.now) {
            if let Some(conn) = conn_of(&mut self.conns, id) {
                conn.link.on_timer(&topic, self.now, &mut self.fx);
                self.after_event(id.slot);
            }
        }
    }

    /// Deadlines. O(connections) every SWEEP_INTERVAL: cheap next to the
    /// per-quote work, and no timer state per connection. Only connections
    /// whose `poll_deadline` has passed are ticked (and then flushed): an
    /// idle one costs a comparison. Passed, strictly: a connection that
    /// wrote this very turn has its progress stamped with this turn's
    /// instant, and is not idle (its buffers, due "at once" once drained,
    /// stay for its next delivery).
    pub(super) fn sweep(&mut self) {
        if std::mem::take(&mut self.accept_retry) {
            self.accept(false);
            self.accept(true);
        }
        let conns = &self.conns;
        self.schedule.purge_timers(conns.len(), |id| {
            conns.get(id.slot).is_some_and(|c| c.serial == id.serial)
        });
        let now = self.now;
        let now_moment = Moment::from(now);
        // The same pass gives back TLS keys idle since the last sweep.
        let due: Vec<usize> = self
            .conns
            .iter_mut()
            .filter_map(|(slot, c)| {
                c.transport.rest();
                let due = c.link.poll_deadline().is_some_and(|at| at < now_moment);
                due.then_some(slot)
            })
            .collect();
        for slot in due {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.link.on_tick(now, &mut self.fx);
                self.after_event(slot);
            }
        }
        self.flush_corked();
        // Texts no entry holds any more (unsubscribed, closed) go.
        self.fx.names.sweep();
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
