//! One subscriber's subscription entries and the rules around them:
//! atomic requests, at-most-once delivery under overlapping entries, the
//! most specific entry's options, snapshot ordering and `max_hz`.
//!
//! Entries live in a [`PrefixIndex`], so finding the entries that match a
//! topic costs O(length of the topic), whatever the number of entries.

use std::sync::Arc;
use std::time::Duration;

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::topic::same_text;
use tickwire_protocol::{PrefixIndex, Selector};

use super::catch_up::{ask_router, Ask};
use super::named::{unique_selectors, Named};
use super::outbound::Outbound;
use super::sink::CatchUpSlice;
use super::sink::QuoteSink;
use super::throttle::{Offer, Throttles};
use super::{Action, Effects};
use crate::encodings::{PackedWire, Wire};
use crate::messages::{Format, LocalQuote};

pub(super) struct Entry {
    /// The subscribe request that created it; the router's activation of
    /// that request turns it on.
    request: u32,
    active: bool,
    /// f32, not f64: idle connections must stay cheap.
    pub max_hz: Option<f32>,
}

pub(super) struct Subscriptions {
    entries: PrefixIndex<Entry>,
    next_request: u32,
    /// The wire of the connection's quotes: format, deltas, compression
    /// (each encoding of a quote is made once and shared; only which bytes
    /// to queue is chosen here). Kept here, beside `next_request`, where it
    /// fits in padding: every idle connection pays for the inline size.
    wire: PackedWire,
    throttles: Throttles,
    /// Requests whose snapshots still arrive in slices (one at a time
    /// unless the snapshot rate is off).
    /// Boxed: rare, and every idle connection pays for the inline size.
    #[allow(clippy::box_collection)]
    sliced: Option<Box<Vec<SlicedSnapshot>>>,
    /// Some subscribe asked for a snapshot: the router may hold a job.
    asked_snapshots: bool,
    /// A catch-up slice came with more to follow: the router waits for
    /// word that the queue has room (see `CatchUp::window`). Here, beside
    /// the other flags, where it fits in padding.
    credit_owed: bool,
    /// Subscribes not answered yet (their activation has not come); at
    /// [`MAX_AWAITING`] the connection's input waits. In padding too.
    awaiting: u8,
}

/// Subscribes of one connection awaiting their answer before its input
/// waits: the bound that keeps `awaiting` exact in a byte.
pub(super) const MAX_AWAITING: u8 = u8::MAX;

/// A subscribe whose snapshot comes in several router messages.
struct SlicedSnapshot {
    request: u32,
    /// The entries it named.
    named: Named,
}

/// A rejected request: error code and message.
pub(super) type Rejection = (ErrorCode, String);

impl Subscriptions {
    pub fn new(wire: Wire) -> Subscriptions {
        Subscriptions {
            entries: PrefixIndex::default(),
            next_request: 0,
            wire: wire.into(),
            throttles: Throttles::default(),
            sliced: None,
            asked_snapshots: false,
            credit_owed: false,
            awaiting: 0,
        }
    }

    pub fn format(&self) -> Format {
        self.wire().format
    }

    pub fn wire(&self) -> Wire {
        self.wire.into()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Topics with throttle state.
    #[cfg(test)]
    pub fn throttled_topics(&self) -> usize {
        self.throttles.len()
    }

    /// The number of the last subscribe request accepted.
    pub fn last_request(&self) -> u32 {
        self.next_request.wrapping_sub(1)
    }

    /// Every entry, as the client wrote it.
    pub fn entries_written(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(key, _)| key.to_string())
            .collect()
    }

    /// Validates and applies a subscribe, all or nothing. New entries are
    /// pending until the router activates the request.
    pub fn subscribe(
        &mut self,
        topics: &[String],
        ask: Ask<'_>,
        max_entries: usize,
        fx: &mut Effects,
    ) -> Result<(), Rejection> {
        let Ask {
            snapshot,
            max_hz,
            rewind,
            since,
            window,
            resume_from,
        } = ask;
        // Shared texts only for a request the cap cannot refuse (it counts
        // at most its topics as new entries).
        let share = self.entries.len() + topics.len() <= max_entries;
        let selectors = unique_selectors(topics, &mut fx.names, share)
            .map_err(|t| (ErrorCode::BadTopic, format!("invalid topic {t:?}")))?;
        // Counting the new entries costs a lookup each: only near the cap.
        let adding = if self.entries.len() + selectors.len() <= max_entries {
            0
        } else {
            selectors
                .iter()
                .filter(|s| !self.entries.contains(s))
                .count()
        };
        if self.entries.len() + adding > max_entries {
            return Err((
                ErrorCode::TooManySubscriptions,
                format!("at most {max_entries} subscription entries per connection"),
            ));
        }
        // Kept as f32 (idle connections stay small); a rate too small for
        // an f32 is the smallest one, never 0 (which the route index reads
        // as "not throttled").
        let max_hz = max_hz.map(|hz| (hz as f32).max(f32::MIN_POSITIVE));
        let request = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        if self.entries.is_empty() {
            // Every selector is new (they are unique): room for all at
            // once, not a slot at a time.
            self.entries.reserve(selectors.len());
        }
        let mut added = Vec::with_capacity(selectors.len());
        for selector in &selectors {
            let (entry, inserted) = self.entries.get_or_insert_with(selector, || Entry {
                request,
                active: false,
                max_hz,
            });
            if inserted {
                added.push(selector.clone());
            } else if entry.max_hz != max_hz {
                // Subscribing again replaces the entry's options.
                entry.max_hz = max_hz;
                if entry.active {
                    fx.actions.push(Action::Route {
                        selector: selector.clone(),
                        max_hz,
                    });
                }
            }
        }
        if !added.is_empty() {
            fx.actions
                .push(Action::SubscriptionsChanged(added.len() as i64));
        }
        let catch_up = ask_router(&self.entries, snapshot, rewind, since, window, resume_from);
        self.asked_snapshots |= catch_up.sends_quotes();
        // Never past the bound: input waits at it (`Subscriber::input_held`).
        self.awaiting = self.awaiting.saturating_add(1);
        fx.actions.push(Action::Subscribe {
            request,
            selectors,
            added,
            catch_up,
        });
        Ok(())
    }

    /// Removes exactly the entries named (idempotent), and whatever is
    /// queued or held for topics no longer matched.
    pub fn unsubscribe(&mut self, topics: &[String], out: &mut Outbound, fx: &mut Effects) {
        let mut released = Vec::new();
        // Topics were validated by the parser; invalid ones cannot be entries.
        for selector in topics.iter().filter_map(|t| Selector::parse(t)) {
            if let Some(entry) = self.entries.remove(&selector) {
                if entry.active {
                    fx.actions.push(Action::Unroute(selector.clone()));
                }
                released.push(selector);
            }
        }
        if released.is_empty() {
            return;
        }
        fx.actions
            .push(Action::SubscriptionsChanged(-(released.len() as i64)));
        // Quotes queued but not yet written for topics no longer wanted are
        // not sent after the `unsubscribed` reply.
        let entries = &self.entries;
        out.retain_quotes(|topic| entries.matches(topic));
        self.throttles.retain(|topic| entries.matches(topic));
        fx.actions.push(Action::Release(released));
    }

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
        let mut previous: Option<Arc<str>> = None;
        sink.out.reserve_data(slice.quotes.len());
        for (i, quote) in slice.quotes.into_iter().enumerate() {
            // Field deltas: a snapshot, and the first quote of a topic's
            // rewind, go full; a replay and the rest of a rewind follow the
            // delta rule (the quote before them went first).
            let full = i >= slice.replayed
                && !previous
                    .as_ref()
                    .is_some_and(|p| same_text(p, &quote.topic));
            previous = Some(quote.topic.clone());
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

    /// A live quote routed to this connection with the spacing of its most
    /// specific entry: delivered now, or held (newest wins) until the
    /// spacing ends.
    pub fn on_quote(
        &mut self,
        quote: &LocalQuote,
        interval: Option<Duration>,
        sink: &mut QuoteSink<'_>,
    ) {
        let (offer, discarded) = self.throttles.offer(quote, interval, sink.now);
        sink.fx.conflated += discarded;
        match offer {
            Offer::Send => sink.push(quote.clone()),
            Offer::Held { replaced, due } => {
                sink.fx.conflated += u64::from(replaced);
                if let Some(at) = due {
                    sink.fx.actions.push(Action::ArmTimer {
                        at,
                        topic: quote.topic.clone(),
                    });
                }
            }
        }
    }

    /// A `max_hz` timer of `topic` fired.
    pub fn on_timer(&mut self, topic: &Arc<str>, sink: &mut QuoteSink<'_>) {
        match self.throttles.release(topic, sink.now) {
            Ok(Some(quote)) => sink.push(quote),
            Ok(None) => {}
            Err(at) => sink.fx.actions.push(Action::ArmTimer {
                at,
                topic: topic.clone(),
            }),
        }
    }

    /// Gives back every entry (the connection is leaving).
    pub fn clear(&mut self, fx: &mut Effects) {
        let count = self.entries.len();
        let mut released = Vec::with_capacity(count);
        for (selector, entry) in self.entries.drain() {
            if entry.active {
                fx.actions.push(Action::Unroute(selector.clone()));
            }
            released.push(selector);
        }
        self.throttles = Throttles::default();
        self.sliced = None;
        if count > 0 {
            fx.actions
                .push(Action::SubscriptionsChanged(-(count as i64)));
            fx.actions.push(Action::Release(released));
        }
    }
}
