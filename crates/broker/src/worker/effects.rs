//! Carrying out what a connection asked for (`session::Action`): router
//! commands, route-index changes, timers, counters, drops. The only place
//! where a connection's decisions touch worker-wide state.

use tickwire_protocol::Selector;

use super::{conn_of, Worker};
use crate::messages::{ConnId, LocalQuote, RouterCmd};
use crate::metrics;
use crate::router::SNAPSHOT_SLICE;
use crate::session::{Action, Activation, CatchUpSlice};

/// A subscribe this worker answers itself (see `worker::following`).
struct AnsweredHere {
    request: u32,
    selectors: Vec<Selector>,
    snapshots: Vec<LocalQuote>,
}

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
    /// one of them was [`Action::Drop`]. A subscribe answered here makes
    /// actions of its own, and input held behind it may make another
    /// subscribe: a loop, not a recursion (a pipelined burst of them
    /// would otherwise nest a frame per request).
    pub(super) fn apply_effects(&mut self, id: ConnId) -> bool {
        loop {
            match self.apply_actions(id) {
                (true, _) => return true,
                (false, None) => return false,
                (false, Some(answer)) => self.answer_here(id, answer),
            }
        }
    }

    /// One pass over `self.fx.actions`: whether one dropped the
    /// connection, and the subscribe (at most one) this worker answers
    /// itself once the others are done.
    fn apply_actions(&mut self, id: ConnId) -> (bool, Option<AnsweredHere>) {
        if self.fx.actions.is_empty() {
            return (false, None);
        }
        let mut actions = std::mem::take(&mut self.fx.actions);
        let mut dropped = false;
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
                    let plain = catch_up.is_plain();
                    if answered.is_none() && interest_add.is_empty() && plain {
                        if let Some(snapshots) =
                            self.answerable_here(id, &selectors, catch_up.snapshot)
                        {
                            answered = Some(AnsweredHere {
                                request,
                                selectors,
                                snapshots,
                            });
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
                        seed: (plain && catch_up.snapshot).then_some(stamp),
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
        (dropped, answered)
    }

    /// The snapshot of a plain subscribe (no interest to add) as this
    /// worker can answer it, if it can: the connection awaits nothing else
    /// from the router (its answer would overtake one still owed), and
    /// every topic is exact, its newest known here, and few enough for the
    /// router's one slice. Known means the router has activated a
    /// subscribe of the topic, so it has this worker's interest: a client
    /// that sees the ack gets every quote numbered after it. That holds
    /// for a subscribe without a snapshot too (its snapshot is then not
    /// sent): the interest of another connection's entry may still wait
    /// in the deferred queue, unknown to the router.
    fn answerable_here(
        &mut self,
        id: ConnId,
        selectors: &[Selector],
        snapshot: bool,
    ) -> Option<Vec<LocalQuote>> {
        let conn = conn_of(&mut self.conns, id)?;
        if !conn.link.awaits_only_the_last() || selectors.len() > SNAPSHOT_SLICE {
            return None;
        }
        let snapshots = self.following.snapshots(selectors)?;
        Some(if snapshot { snapshots } else { Vec::new() })
    }

    /// Answers a subscribe here, as the router would have: the command
    /// counts as taken (its ack may go), then the activation with its
    /// snapshots. What that does is left in `self.fx.actions`.
    fn answer_here(&mut self, id: ConnId, answer: AnsweredHere) {
        metrics::add(&self.stats.metrics().subscribes_answered_by_worker, 1);
        let Some(conn) = conn_of(&mut self.conns, id) else {
            return;
        };
        conn.link.on_command_taken(&mut self.fx);
        let AnsweredHere {
            request,
            selectors,
            snapshots,
        } = answer;
        let activation = Activation {
            selectors: &selectors,
            snapshots: CatchUpSlice {
                quotes: snapshots,
                replayed: 0,
            },
            more: false,
            unrecovered: None,
        };
        conn.link
            .on_activate(request, activation, self.now, &mut self.fx);
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
