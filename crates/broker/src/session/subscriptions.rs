//! One subscriber's subscription entries and the rules around them:
//! atomic requests, at-most-once delivery under overlapping entries, the
//! most specific entry's options, snapshot ordering and `max_hz`.
//!
//! Entries live in a [`PrefixIndex`], so finding the entries that match a
//! topic costs O(length of the topic), whatever the number of entries.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::{PrefixIndex, Selector};

use super::catch_up::{ask_router, Ask};
use super::named::{unique_selectors, Named};
use super::outbound::Outbound;
use super::sink::QuoteSink;
use super::throttle::{Offer, Throttles};
use super::{Action, Effects};
use crate::encodings::{PackedWire, Wire};
use crate::messages::{Format, LocalQuote};

mod activation;

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

    /// Every entry, as the client wrote it, in order: a map's own order
    /// (a hash table's, past sixteen entries) is never shown to a client,
    /// since it would tell of the process's hash key (`topic_name.rs`).
    pub fn entries_written(&self) -> Vec<String> {
        let mut written: Vec<String> = self
            .entries
            .iter()
            .map(|(key, _)| key.to_string())
            .collect();
        written.sort_unstable();
        written
    }

    /// Validates and applies a subscribe, all or nothing. New entries are
    /// pending until the router activates the request.
    pub fn subscribe(
        &mut self,
        topics: &[Cow<'_, str>],
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
    pub fn unsubscribe(&mut self, topics: &[Cow<'_, str>], out: &mut Outbound, fx: &mut Effects) {
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
