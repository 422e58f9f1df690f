//! Quotes into the WebSocket phase: activations with their snapshots, live
//! quotes and `max_hz` timers, all queued on the connection's outbound
//! queue in its wire format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::Selector;

use super::subscriptions::{QuoteSink, Subscriptions};
use super::{Connection, Effects, Phase};
use crate::messages::LocalQuote;

impl Connection {
    /// The router processed subscribe `request` (which named `selectors`);
    /// `more`: the rest of its snapshot follows in slices.
    pub fn on_activate(
        &mut self,
        request: u32,
        selectors: &[Selector],
        snapshots: Vec<LocalQuote>,
        more: bool,
        now: Instant,
        fx: &mut Effects,
    ) {
        self.charge_snapshots(snapshots.len(), (!more).then_some(request), now);
        self.deliver(now, fx, |subs, sink| {
            subs.activate(request, selectors, snapshots, more, sink)
        });
        self.resume_held_input(now, fx);
    }

    /// A later slice of subscribe `request`'s snapshot.
    pub fn on_snapshots(
        &mut self,
        request: u32,
        quotes: Vec<LocalQuote>,
        more: bool,
        now: Instant,
        fx: &mut Effects,
    ) {
        self.charge_snapshots(quotes.len(), (!more).then_some(request), now);
        self.deliver(now, fx, |subs, sink| {
            subs.snapshot_slice(request, quotes, more, sink)
        });
        self.resume_held_input(now, fx);
    }

    /// Snapshot quotes cost the broker per topic: charged to the
    /// connection's snapshot rate. `done`: the request they answered has
    /// had its last ones.
    fn charge_snapshots(&mut self, count: usize, done: Option<u32>, now: Instant) {
        let per_second = self.config.snapshots_per_second;
        if let Phase::Ws(session) = &mut self.phase {
            session.snapshots.charge(per_second, count, now);
            if let Some(request) = done {
                session.snapshots.answered(request);
            }
        }
    }

    /// Input held behind a snapshot request goes on once it is answered.
    fn resume_held_input(&mut self, now: Instant, fx: &mut Effects) {
        if self.wants_read() && !self.read_buf.is_empty() {
            self.on_buffered_frames(now, fx);
        }
    }

    /// A live quote routed here, with the spacing (`max_hz`) of the most
    /// specific entry matching its topic.
    pub fn on_quote(
        &mut self,
        quote: &LocalQuote,
        interval: Option<Duration>,
        now: Instant,
        fx: &mut Effects,
    ) {
        self.deliver(now, fx, |subs, sink| subs.on_quote(quote, interval, sink));
    }

    /// A timer armed by [`Action::ArmTimer`] is due.
    pub fn on_timer(&mut self, topic: &Arc<str>, now: Instant, fx: &mut Effects) {
        self.deliver(now, fx, |subs, sink| subs.on_timer(topic, sink));
    }

    /// Runs `step` with the subscriptions and a sink into the outbound
    /// queue (nothing outside the WebSocket phase); a quote landing on an
    /// empty queue starts the stall clock.
    fn deliver(
        &mut self,
        now: Instant,
        fx: &mut Effects,
        step: impl FnOnce(&mut Subscriptions, &mut QuoteSink<'_>),
    ) {
        let was_empty = self.out.is_empty();
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let mut sink = QuoteSink {
            out: &mut self.out,
            format: session.format,
            now,
            fx,
        };
        step(&mut session.subs, &mut sink);
        if was_empty && !self.out.is_empty() {
            self.progress_at = now;
        }
    }
}
