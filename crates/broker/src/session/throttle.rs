//! `max_hz` state of one subscriber: per throttled topic, when the last
//! delivery went and the newest quote held until the spacing ends.
//!
//! The spacing itself is not decided here: it is the most specific entry's,
//! resolved once per topic by the worker's route index and carried with
//! each live quote ([`Throttles::offer`]). A hold remembers when it is due,
//! so a timer needs no spacing, and a snapshot only marks a delivery (of a
//! topic whose entry has a `max_hz`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::messages::LocalQuote;

/// The longest `max_hz` spacing honoured: a day. The contract allows any
/// `max_hz > 0`; below 1/86400 Hz it is treated as once a day (and a value
/// too small for `f32` or for `Instant` arithmetic cannot crash a worker).
pub const MAX_SPACING: Duration = Duration::from_secs(86_400);

/// Minimum spacing between two deliveries for `max_hz`, clamped to
/// [`MAX_SPACING`].
pub fn spacing(max_hz: f32) -> Duration {
    Duration::try_from_secs_f64(1.0 / f64::from(max_hz))
        .unwrap_or(MAX_SPACING)
        .min(MAX_SPACING)
}

struct Throttle {
    /// The last delivery of the topic (live, released or snapshot).
    last_sent: Instant,
    /// While a quote is held: when it may go.
    due: Instant,
    held: Option<LocalQuote>,
}

/// What [`Throttles::offer`] decided for a live quote.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Deliver it now.
    Send,
    /// Held until the spacing ends; `replaced` when it replaced an older
    /// held quote (conflated); `due` when a timer must be armed.
    Held {
        replaced: bool,
        due: Option<Instant>,
    },
}

/// Allocated on first use: boxed so the unthrottled majority of
/// connections pays one pointer, not an empty map.
#[derive(Default)]
pub struct Throttles {
    #[allow(clippy::box_collection)]
    map: Option<Box<HashMap<Arc<str>, Throttle>>>,
}

impl Throttles {
    fn get_or_create(&mut self, topic: &Arc<str>, now: Instant) -> &mut Throttle {
        self.map
            .get_or_insert_with(Box::default)
            .entry(topic.clone())
            .or_insert(Throttle {
                last_sent: now,
                due: now,
                held: None,
            })
    }

    /// A live quote of a topic whose spacing is `interval` (None: not
    /// throttled). Returns whether it goes now, and how many held quotes
    /// were discarded (an older held one must never follow a newer one).
    pub fn offer(
        &mut self,
        quote: &LocalQuote,
        interval: Option<Duration>,
        now: Instant,
    ) -> (Offer, u64) {
        let Some(interval) = interval else {
            // No longer throttled (re-subscribed without max_hz).
            return (Offer::Send, self.forget(&quote.topic));
        };
        let Some(throttle) = self.map.as_mut().and_then(|m| m.get_mut(&quote.topic)) else {
            // Nothing delivered under a spacing yet: at once.
            self.get_or_create(&quote.topic, now);
            return (Offer::Send, 0);
        };
        let next_allowed = throttle.last_sent + interval;
        if throttle.held.is_some() || now < next_allowed {
            let replaced = throttle.held.replace(quote.clone()).is_some();
            if !replaced {
                throttle.due = next_allowed;
            }
            let due = (!replaced).then_some(throttle.due);
            return (Offer::Held { replaced, due }, 0);
        }
        throttle.last_sent = now;
        (Offer::Send, 0)
    }

    /// A snapshot of `topic` goes out now: it counts as a delivery, and it
    /// is the topic's newest quote, so a held one is superseded. `throttled`:
    /// whether the topic's most specific entry has a `max_hz` (otherwise its
    /// state is forgotten). Returns how many held quotes were discarded.
    pub fn on_snapshot(&mut self, topic: &Arc<str>, throttled: bool, now: Instant) -> u64 {
        if !throttled {
            return self.forget(topic);
        }
        let throttle = self.get_or_create(topic, now);
        throttle.last_sent = now;
        u64::from(throttle.held.take().is_some())
    }

    /// The timer of `topic` fired: the held quote, if it is due; or, when
    /// the timer fired early (clock jitter), `Err(due)`: come back then.
    pub fn release(
        &mut self,
        topic: &Arc<str>,
        now: Instant,
    ) -> Result<Option<LocalQuote>, Instant> {
        let Some(throttle) = self.map.as_mut().and_then(|m| m.get_mut(topic)) else {
            return Ok(None);
        };
        if throttle.held.is_none() {
            return Ok(None);
        }
        if now < throttle.due {
            return Err(throttle.due);
        }
        throttle.last_sent = now;
        Ok(throttle.held.take())
    }

    /// Topics with throttle state.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Drops the state of topics for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        if let Some(map) = self.map.as_mut() {
            map.retain(|topic, _| keep(topic));
            if map.is_empty() {
                self.map = None;
            }
        }
    }

    /// Forgets `topic`; 1 if a held quote was discarded.
    fn forget(&mut self, topic: &str) -> u64 {
        let Some(map) = self.map.as_mut() else {
            return 0;
        };
        u64::from(map.remove(topic).is_some_and(|t| t.held.is_some()))
    }
}
