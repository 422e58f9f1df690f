//! A subscription's answers: the activation that turns a request's
//! entries on with their snapshots, the slices of a large catch-up, the
//! credit that paces them, and which snapshot goes to whom.

use tickwire_protocol::topic::same_text;
use tickwire_protocol::Selector;

use super::super::named::Named;
use super::super::sink::{CatchUpSlice, QuoteSink};
use super::super::Action;
use super::{SlicedSnapshot, Subscriptions};

impl Subscriptions {
    /// The router took subscribe `request` (naming `selectors`): queue the
    /// snapshots it wants, then let live quotes flow to the entries it
    /// created. Quotes the router sends after this are newer than these
    /// snapshots, so no live quote can precede its topic's snapshot.
    pub fn activate(
        &mut self,
        request: u32,
        selectors: &[Selector],
        snapshots: CatchUpSlice,
        more: bool,
        sink: &mut QuoteSink<'_>,
    ) {
        self.awaiting = self.awaiting.saturating_sub(1);
        if !snapshots.quotes.is_empty() || more {
            let named = Named::new(selectors);
            self.push_snapshots(request, &named, snapshots, sink);
            if more {
                self.sliced
                    .get_or_insert_with(Box::default)
                    .push(SlicedSnapshot { request, named });
            }
        }
        for selector in selectors {
            if let Some(entry) = self.entries.get_mut(selector) {
                if entry.request == request && !entry.active {
                    entry.active = true;
                    sink.fx.actions.push(Action::Route {
                        selector: selector.clone(),
                        max_hz: entry.max_hz,
                    });
                }
            }
        }
    }

    /// The next slice of the snapshot being sliced. Its entries are live by
    /// now; the router left out every topic they had a quote of since.
    pub fn snapshot_slice(
        &mut self,
        request: u32,
        quotes: CatchUpSlice,
        more: bool,
        sink: &mut QuoteSink<'_>,
    ) {
        let Some(all) = self.sliced.as_mut() else {
            return;
        };
        let Some(i) = all.iter().position(|s| s.request == request) else {
            return;
        };
        let sliced = all.swap_remove(i);
        if all.is_empty() {
            self.sliced = None;
        }
        self.push_snapshots(request, &sliced.named, quotes, sink);
        if more {
            self.sliced.get_or_insert_with(Box::default).push(sliced);
        }
    }

    /// A catch-up slice arrived; `more`: the router waits for credit.
    pub fn slice_arrived(&mut self, more: bool) {
        self.credit_owed |= more;
    }

    /// Takes the credit owed, if the queue has `room` now.
    pub fn take_credit(&mut self, room: bool) -> bool {
        let give = self.credit_owed && room;
        self.credit_owed &= !give;
        give
    }

    /// Whether a catch-up still comes in slices.
    pub fn catching_up(&self) -> bool {
        self.sliced.is_some()
    }

    /// Subscribes not answered yet.
    pub fn awaiting(&self) -> u8 {
        self.awaiting
    }

    /// Whether a subscribe asked for a snapshot the router may still be
    /// collecting.
    pub fn asked_snapshots(&self) -> bool {
        self.asked_snapshots
    }

    fn push_snapshots(
        &mut self,
        request: u32,
        named: &Named,
        slice: CatchUpSlice,
        sink: &mut QuoteSink<'_>,
    ) {
        sink.out.reserve_data(slice.quotes.len());
        let mut quotes = slice.quotes.into_iter().enumerate().peekable();
        // Whether the quote before was of the same topic. Looked ahead,
        // not remembered: keeping the previous topic cloned its `Arc`, an
        // atomic write per snapshot to a count every worker writes.
        let mut after_same_topic = false;
        while let Some((i, quote)) = quotes.next() {
            // Field deltas: a snapshot, and the first quote of a topic's
            // rewind, go full; a replay and the rest of a rewind follow the
            // delta rule (the quote before them went first).
            let full = i >= slice.replayed && !after_same_topic;
            after_same_topic = quotes
                .peek()
                .is_some_and(|(_, next)| same_text(&next.topic, &quote.topic));
            let Some(throttled) = self.snapshot_wanted(request, named, &quote.topic) else {
                continue;
            };
            sink.fx.conflated += self
                .throttles
                .on_snapshot(&quote.topic, throttled, sink.now);
            sink.push_snapshot(quote, full);
        }
    }

    /// Whether subscribe `request`'s snapshot of `topic` goes out. An entry
    /// the request named must still match it, and either have existed
    /// before the request (a re-subscribe asks for the snapshot again) or be
    /// new with no other active entry already delivering the topic (the
    /// client has its live quotes: a snapshot could be one of them again).
    /// An entry re-created by a later request (after an unsubscribe) is
    /// that request's business. Only entries older than the request count
    /// as delivering elsewhere: a later request's entry that is active while
    /// this request's snapshot still arrives in slices gave up its own
    /// snapshot of the topic because of this request's entry.
    ///
    /// When it goes: whether the topic is throttled at all, by its most
    /// specific entry (the first matching; its spacing comes with its live
    /// quotes, from the route): only then does the snapshot count as a
    /// delivery to space the next one from. One walk of the entries for
    /// both answers.
    fn snapshot_wanted(&self, request: u32, named: &Named, topic: &str) -> Option<bool> {
        let (mut new_match, mut delivered_elsewhere) = (false, false);
        let mut throttled = None;
        for (key, entry) in self.entries.matching(topic) {
            throttled.get_or_insert(entry.max_hz.is_some());
            // Request ids wrap; "older" is within half the range.
            let age = request.wrapping_sub(entry.request) as i32;
            if named.contains(key) {
                match age {
                    1.. => return throttled, // existed before: re-subscribed
                    0 => new_match = true,
                    _ => {} // re-created after this request
                }
            } else if entry.active && age > 0 {
                delivered_elsewhere = true;
            }
        }
        throttled.filter(|_| new_match && !delivered_elsewhere)
    }
}
