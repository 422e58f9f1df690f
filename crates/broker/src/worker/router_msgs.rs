//! What the router sends a worker: shared quotes to route to the
//! connections, and answers to subscribes (activations and snapshot slices).

use std::time::Instant;

use super::by_connection::CHUNK;
use super::cork::TurnBudget;
use super::{conn_of, Worker};
use crate::messages::{ConnId, LocalQuote, WorkerMsg};
use crate::session::{Activation, CatchUpSlice, Connection, Effects};

impl Worker {
    /// Delivers the quotes routed so far, connection by connection
    /// (`by_connection.rs`): before a message of another kind (an answer
    /// to a subscribe must follow the quotes before it), at the end of the
    /// messages of a turn, and whenever a chunk is full. The quotes of
    /// consecutive messages are grouped together: a worker behind its
    /// router finds many small messages waiting, one per router round.
    fn deliver_chunk(&mut self) {
        let mut by_connection = std::mem::take(&mut self.by_connection);
        let chunk = std::mem::take(&mut self.chunk);
        by_connection.deliver(|slot, run| {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            let quotes = run.iter().filter_map(|d| {
                let quote = chunk.get(d.quote as usize)?;
                Some((quote, d.target.min_interval()))
            });
            conn.link.on_quotes(quotes, self.now, &mut self.fx);
            // The per-delivery path: quotes ask for no action but a timer,
            // rarely.
            if self.fx.actions.is_empty() {
                self.schedule.flush_later(slot);
            } else {
                self.after_event(slot);
            }
        });
        self.by_connection = by_connection;
        let mut chunk = chunk;
        chunk.clear();
        self.chunk = chunk;
    }

    /// Handles router messages until the channel is empty (false) or the
    /// turn's work budget is spent (true: more may be waiting).
    pub(super) fn handle_router_msgs(&mut self) -> bool {
        let mut budget = TurnBudget::default();
        while !budget.exhausted() {
            let Some(msg) = self.router.try_recv() else {
                self.deliver_chunk();
                return false;
            };
            if !matches!(msg, WorkerMsg::Quotes { .. }) {
                self.deliver_chunk();
            }
            match msg {
                WorkerMsg::Quotes { quotes, sent_at } => {
                    self.stats
                        .router_hop(sent_at.elapsed(), quotes.len() as u64);
                    for quote in quotes {
                        if self.by_connection.len() >= CHUNK {
                            self.deliver_chunk();
                        }
                        // One worker-local handle per quote: deliveries
                        // clone it without touching the shared count.
                        let quote = LocalQuote::from(quote);
                        self.following.on_quote(&quote);
                        let targets = self.routes.targets(&quote.topic);
                        budget.charge(targets.len());
                        let index = self.chunk.len() as u32;
                        for target in targets.iter() {
                            self.by_connection.route(*target, index);
                        }
                        self.chunk.push(quote);
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
        self.deliver_chunk();
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
