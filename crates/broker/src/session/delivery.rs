//! Quotes into the subscriber core: activations with their snapshots, live
//! quotes and `max_hz` timers, all queued on the connection's outbound
//! queue in its wire format. These are the connection's entry points; the
//! rules are the core's (`subscriptions`, `throttle`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::Selector;

use super::outbound::OutFrame;
use super::sink::{CatchUpSlice, QuoteSink};
use super::subscriber::Subscriber;
use super::{Action, Connection, Effects, Phase};
use crate::http::event_id::{epoch_bits, EventId};
use crate::messages::LocalQuote;

/// The router's answer to a subscribe.
pub struct Activation<'a> {
    /// The selectors the request named.
    pub selectors: &'a [Selector],
    /// The first slice of its catch-up (snapshots, replays, rewinds).
    pub snapshots: CatchUpSlice,
    /// The rest of the catch-up follows in slices.
    pub more: bool,
    /// For a resume: the topics of its `since` not recovered.
    pub unrecovered: Option<&'a [Arc<str>]>,
}

impl Connection {
    /// The router processed subscribe `request`: its ack if it was a
    /// resume, then its catch-up, then its entries go live.
    pub fn on_activate(
        &mut self,
        request: u32,
        answer: Activation<'_>,
        now: Instant,
        fx: &mut Effects,
    ) {
        let Activation {
            selectors,
            snapshots,
            more,
            unrecovered,
        } = answer;
        let (per_second, reading) = (self.config.snapshots_per_second, self.wants_read());
        if let Phase::Open(open) = &mut self.phase {
            let framing = open.transport.framing();
            open.core
                .on_activated(request, unrecovered, &self.config, framing, &mut self.out);
        }
        self.deliver(now, fx, |core, sink| {
            core.snapshots
                .charge(per_second, snapshots.quotes.len(), now);
            if !more {
                core.snapshots.answered(request);
            }
            core.subs.slice_arrived(more);
            core.subs
                .activate(request, selectors, snapshots, more, sink)
        });
        self.offer_credit(fx);
        self.resume_held_input(reading, now, fx);
    }

    /// A later slice of subscribe `request`'s snapshot.
    pub fn on_snapshots(
        &mut self,
        request: u32,
        quotes: CatchUpSlice,
        more: bool,
        now: Instant,
        fx: &mut Effects,
    ) {
        let (per_second, reading) = (self.config.snapshots_per_second, self.wants_read());
        self.deliver(now, fx, |core, sink| {
            core.snapshots.charge(per_second, quotes.quotes.len(), now);
            if !more {
                core.snapshots.answered(request);
            }
            core.subs.slice_arrived(more);
            core.subs.snapshot_slice(request, quotes, more, sink)
        });
        self.offer_credit(fx);
        self.resume_held_input(reading, now, fx);
    }

    /// Tells the router the queue has room for the next catch-up slice
    /// once it holds at most half its budget: a slice is at most the other
    /// half, so a client that reads gets a replay whole, never conflated.
    pub(super) fn offer_credit(&mut self, fx: &mut Effects) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let room = self.out.queued_bytes() <= self.config.outbound_budget_bytes / 2;
        if open.core.subs.take_credit(room) {
            fx.actions.push(Action::CatchUpCredit);
        }
    }

    /// Input held behind a snapshot request goes on once it is answered
    /// (`reading`: whether the connection was read before the answer).
    fn resume_held_input(&mut self, reading: bool, now: Instant, fx: &mut Effects) {
        if self.subscriber().is_some_and(|s| !s.input_held()) && !self.read_buf.is_empty() {
            self.on_buffered_input(now, fx);
        }
        self.sync_read_interest(reading, fx);
    }

    /// A live quote routed here, with the spacing (`max_hz`) of the most
    /// specific entry matching its topic. The per-delivery path: no read
    /// interest can change here (a quote is never a reason to stop or
    /// resume reading).
    pub fn on_quote(
        &mut self,
        quote: &LocalQuote,
        interval: Option<Duration>,
        now: Instant,
        fx: &mut Effects,
    ) {
        self.deliver(now, fx, |core, sink| {
            core.subs.on_quote(quote, interval, sink)
        });
    }

    /// A timer armed by [`super::Action::ArmTimer`] is due.
    pub fn on_timer(&mut self, topic: &Arc<str>, now: Instant, fx: &mut Effects) {
        self.deliver(now, fx, |core, sink| core.subs.on_timer(topic, sink));
    }

    /// Runs `step` with the subscriber core and a sink into the outbound
    /// queue (nothing before the upgrade or while closing); a quote
    /// landing on an empty queue starts the stall clock.
    fn deliver(
        &mut self,
        now: Instant,
        fx: &mut Effects,
        step: impl FnOnce(&mut Subscriber, &mut QuoteSink<'_>),
    ) {
        let was_empty = self.out.is_empty();
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let core = &mut open.core;
        // Acks of taken subscribes go before anything delivered (and in
        // the same write as their snapshot).
        for ack in core.gate.delivering() {
            self.out.push_data(OutFrame::Owned(ack));
        }
        let config = &self.config;
        // Called once per quote that reaches SSE at all (the event is then
        // shared): the epoch's lock is read there, not per delivery.
        let ids = |accepted: u64, out: &mut Vec<u8>| {
            let epoch = epoch_bits(&config.epoch.current()).unwrap_or(0);
            let instance = config.sse_instance;
            EventId {
                epoch,
                instance,
                accepted,
            }
            .write(out)
        };
        let mut sink = QuoteSink {
            out: &mut self.out,
            wire: core.subs.wire(),
            now,
            fx,
            ids: &ids,
            catching_up: core.subs.catching_up(),
        };
        step(core, &mut sink);
        if was_empty && !self.out.is_empty() {
            self.progress_at = now.into();
        }
    }
}
