//! Carrying out what a connection asked for (`session::Action`): router
//! commands, route-index changes, timers, counters, drops. The only place
//! where a connection's decisions touch worker-wide state.

use tickwire_protocol::Selector;

use super::{conn_of, Worker};
use crate::messages::{CatchUp, ConnId, LocalQuote, RouterCmd};
use crate::metrics;
use crate::router::SNAPSHOT_SLICE;
use crate::session::{Action, Activation, CatchUpSlice};

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
        // A subscribe this worker answers itself, once these actions are
        // done (its answer makes actions of its own).
        let mut answered = None;
        for action in actions.drain(..) {
            match action {
                Action::Subscribe {
                    request,
                    selectors,
                    added,
                    catch_up,
                } => {
                    let stamp = self.following.stamp();
                    let interest_add: Vec<Selector> = added
                        .into_iter()
                        .filter(|s| self.following.add_ref(s, stamp))
                        .collect();
                    if interest_add.is_empty() && catch_up.is_plain() {
                        if let Some(snapshots) = self.answerable_here(id, &selectors, &catch_up) {
                            answered = Some((request, selectors, snapshots));
                            continue;
                        }
                    }
                    metrics::add(&self.stats.metrics().subscribes_routed, 1);
                    let cmd = RouterCmd::Subscribe {
                        worker: self.id,
                        conn: id,
                        request,
                        selectors,
                        interest_add,
                        seed: (catch_up.snapshot && catch_up.is_plain()).then_some(stamp),
                        catch_up,
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
                        .filter(|s| self.following.remove_ref(s))
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
        match answered {
            Some((request, selectors, snapshots)) if !dropped => {
                self.answer_here(id, request, &selectors, snapshots)
            }
            _ => dropped,
        }
    }

    /// The snapshot of a plain subscribe (no interest to add) as this
    /// worker can answer it, if it can: the connection awaits nothing else
    /// from the router (its answer would overtake one still owed), and —
    /// when it asks for a snapshot — every topic is exact, known here, and
    /// few enough for the router's one slice.
    fn answerable_here(
        &mut self,
        id: ConnId,
        selectors: &[Selector],
        catch_up: &CatchUp,
    ) -> Option<Vec<LocalQuote>> {
        let conn = conn_of(&mut self.conns, id)?;
        if !conn.link.awaits_only_the_last() {
            return None;
        }
        if !catch_up.snapshot {
            return Some(Vec::new());
        }
        if selectors.len() > SNAPSHOT_SLICE {
            return None;
        }
        self.following.snapshots(selectors)
    }

    /// Answers subscribe `request` here, as the router would have: the
    /// command counts as taken (its ack may go), then the activation with
    /// its snapshots. Returns whether the connection was dropped.
    fn answer_here(
        &mut self,
        id: ConnId,
        request: u32,
        selectors: &[Selector],
        snapshots: Vec<LocalQuote>,
    ) -> bool {
        metrics::add(&self.stats.metrics().subscribes_answered_by_worker, 1);
        let Some(conn) = conn_of(&mut self.conns, id) else {
            return false;
        };
        conn.link.on_command_taken(&mut self.fx);
        let answer = Activation {
            selectors,
            snapshots: CatchUpSlice {
                quotes: snapshots,
                replayed: 0,
            },
            more: false,
            unrecovered: None,
        };
        conn.link
            .on_activate(request, answer, self.now, &mut self.fx);
        // Its actions hold no subscribe: this goes no deeper.
        self.apply_effects(id)
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
