//! Carrying out what a connection asked for (`session::Action`): router
//! commands, route-index changes, timers, counters, drops. The only place
//! where a connection's decisions touch worker-wide state.

use tickwire_protocol::Selector;

use super::{conn_of, Worker};
use crate::messages::{ConnId, RouterCmd};
use crate::metrics;
use crate::session::Action;

impl Worker {
    /// After any event handed to connection `slot`: carry out its actions
    /// and cork it (the flush at the end of the turn writes whatever it
    /// queued; one with nothing queued costs a `poll_transmit` that finds
    /// nothing).
    pub(super) fn after_event(&mut self, slot: usize) {
        if !self.apply_and_maybe_remove(slot) {
            self.schedule.flush_later(slot);
        }
    }

    /// Carries out connection `slot`'s actions; true when one of them
    /// dropped it (it is removed).
    pub(super) fn apply_and_maybe_remove(&mut self, slot: usize) -> bool {
        let Some(id) = self.conns.get(slot).map(|c| ConnId {
            slot,
            serial: c.serial,
        }) else {
            self.fx.actions.clear();
            return true;
        };
        let dropped = self.apply_effects(id);
        if dropped {
            self.remove(slot);
        }
        dropped
    }

    /// Applies and clears `self.fx.actions` for connection `id`; true if
    /// one of them was [`Action::Drop`].
    pub(super) fn apply_effects(&mut self, id: ConnId) -> bool {
        if self.fx.actions.is_empty() {
            return false;
        }
        let mut actions = std::mem::take(&mut self.fx.actions);
        let mut dropped = false;
        for action in actions.drain(..) {
            match action {
                Action::Subscribe {
                    request,
                    selectors,
                    added,
                    catch_up,
                } => {
                    let interest_add = added
                        .into_iter()
                        .filter(|s| self.routes.add_ref(s))
                        .collect();
                    let cmd = RouterCmd::Subscribe {
                        worker: self.id,
                        conn: id,
                        request,
                        selectors,
                        catch_up,
                        interest_add,
                    };
                    // Staged: handed over at the turn's `retry_deferred`,
                    // which then releases the replies held behind it.
                    self.router.send(cmd);
                }
                Action::Route { selector, max_hz } => self.routes.route(&selector, id.slot, max_hz),
                Action::Unroute(selector) => self.routes.unroute(&selector, id.slot),
                Action::Release(selectors) => {
                    let dropped: Vec<Selector> = selectors
                        .into_iter()
                        .filter(|s| self.routes.remove_ref(s))
                        .collect();
                    if !dropped.is_empty() {
                        self.router.send(RouterCmd::DropInterest {
                            worker: self.id,
                            selectors: dropped,
                        });
                    }
                }
                Action::CancelSnapshots => {
                    self.router.send(RouterCmd::CancelSnapshots {
                        worker: self.id,
                        conn: id,
                    });
                }
                Action::CatchUpCredit => {
                    self.router.send(RouterCmd::CatchUpCredit {
                        worker: self.id,
                        conn: id,
                    });
                }
                Action::ArmTimer { at, topic } => self.schedule.arm(at, id, topic),
                Action::PauseRead => self.set_reading(id, false),
                Action::ResumeRead => self.set_reading(id, true),
                Action::ShutdownWrite => {
                    if let Some(conn) = conn_of(&mut self.conns, id) {
                        conn.transport.shutdown_write();
                    }
                }
                Action::Opened => {
                    metrics::gauge_add(&self.stats.metrics().subscriber_connections, 1)
                }
                Action::Left => {
                    metrics::gauge_add(&self.stats.metrics().subscriber_connections, -1)
                }
                Action::OpenedSse => metrics::gauge_add(&self.stats.metrics().sse_connections, 1),
                Action::LeftSse => metrics::gauge_add(&self.stats.metrics().sse_connections, -1),
                Action::SubscriptionsChanged(delta) => {
                    metrics::gauge_add(&self.stats.metrics().subscriptions, delta)
                }
                Action::RequestError(code) => self.stats.metrics().request_error(code),
                Action::CloseSent {
                    code,
                    slow_consumer,
                } => {
                    self.stats.metrics().close_sent(code);
                    if slow_consumer {
                        tracing::info!(worker = self.id, conn = id.slot, "slow consumer closed");
                        metrics::add(&self.stats.metrics().slow_consumer_closes, 1);
                    }
                }
                Action::Drop => dropped = true,
            }
        }
        // Keep the allocation for the next event.
        self.fx.actions = actions;
        dropped
    }

    /// Hands the turn's staged commands to the router while its queue has
    /// room; a subscribe that goes releases its connection's held replies.
    pub(super) fn retry_deferred(&mut self) {
        let mut taken = Vec::new();
        let resumed = self.router.retry(|id| taken.push(id));
        for id in taken {
            self.command_taken(id);
        }
        for slot in resumed {
            self.schedule.read_again(slot);
        }
    }

    fn command_taken(&mut self, id: ConnId) {
        if let Some(conn) = conn_of(&mut self.conns, id) {
            conn.link.on_command_taken(&mut self.fx);
            self.after_event(id.slot);
        }
    }

    /// The connection asked to stop or resume reading. A resumed one gets
    /// a read next turn (edge-triggered readiness will not fire again for
    /// input that waited), within the per-event read cap.
    fn set_reading(&mut self, id: ConnId, reading: bool) {
        if let Some(conn) = conn_of(&mut self.conns, id) {
            conn.reads_paused = !reading;
            if reading && conn.maybe_unread {
                self.schedule.read_again(id.slot);
            }
        }
    }
}
