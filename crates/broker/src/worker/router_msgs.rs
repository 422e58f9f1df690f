//! What the router sends a worker: shared quotes to route to the
//! connections, and answers to subscribes (activations and snapshot slices).

use std::time::Instant;

use super::cork::TurnBudget;
use super::{conn_of, Worker};
use crate::messages::{ConnId, LocalQuote, WorkerMsg};
use crate::session::{Activation, CatchUpSlice, Connection, Effects};

impl Worker {
    /// Handles router messages until the channel is empty (false) or the
    /// turn's work budget is spent (true: more may be waiting).
    pub(super) fn handle_router_msgs(&mut self) -> bool {
        let mut budget = TurnBudget::default();
        while !budget.exhausted() {
            let Some(msg) = self.router.try_recv() else {
                return false;
            };
            match msg {
                WorkerMsg::Quotes { quotes, sent_at } => {
                    self.stats
                        .router_hop(sent_at.elapsed(), quotes.len() as u64);
                    for quote in quotes {
                        // One worker-local handle per quote: deliveries
                        // clone it without touching the shared count.
                        let quote = LocalQuote::from(quote);
                        self.following.on_quote(&quote);
                        let targets = self.routes.targets(&quote.topic);
                        budget.charge(targets.len());
                        for target in targets.iter() {
                            if let Some(conn) = self.conns.get_mut(target.slot()) {
                                conn.link.on_quote(
                                    &quote,
                                    target.min_interval(),
                                    self.now,
                                    &mut self.fx,
                                );
                                // The per-delivery path: a quote asks for
                                // no action but a timer, rarely.
                                if self.fx.actions.is_empty() {
                                    self.schedule.flush_later(target.slot());
                                } else {
                                    self.after_event(target.slot());
                                }
                            }
                        }
                    }
                }
                WorkerMsg::Activate {
                    conn,
                    request,
                    selectors,
                    snapshots,
                    replayed,
                    more,
                    unrecovered,
                    seed,
                } => {
                    budget.charge(snapshots.len());
                    if let (Some(stamp), false) = (seed, more) {
                        self.following.seed(stamp, &selectors, &snapshots);
                    }
                    if more {
                        self.slice_handled(&mut budget);
                    }
                    let snapshots = CatchUpSlice {
                        quotes: snapshots.into_iter().map(LocalQuote::single).collect(),
                        replayed,
                    };
                    self.on_answer(conn, |link, now, fx| {
                        let answer = Activation {
                            selectors: &selectors,
                            snapshots,
                            more,
                            unrecovered: unrecovered.as_deref(),
                        };
                        link.on_activate(request, answer, now, fx)
                    });
                }
                WorkerMsg::Snapshots {
                    conn,
                    request,
                    quotes,
                    replayed,
                    more,
                } => {
                    self.slice_handled(&mut budget);
                    let quotes = CatchUpSlice {
                        quotes: quotes.into_iter().map(LocalQuote::single).collect(),
                        replayed,
                    };
                    self.on_answer(conn, |link, now, fx| {
                        link.on_snapshots(request, quotes, more, now, fx)
                    });
                }
            }
        }
        true
    }

    /// A snapshot slice ends the turn: its quotes are flushed, and live
    /// quotes behind it go next, before the router sends another slice.
    fn slice_handled(&mut self, budget: &mut TurnBudget) {
        self.router.slice_handled();
        budget.end_turn();
    }

    /// Hands connection `conn` the router's answer to its subscribe.
    fn on_answer(
        &mut self,
        conn: ConnId,
        step: impl FnOnce(&mut Connection, Instant, &mut Effects),
    ) {
        let Some(c) = conn_of(&mut self.conns, conn) else {
            return;
        };
        step(&mut c.link, self.now, &mut self.fx);
        self.after_event(conn.slot);
    }
}
