//! `max_hz` state of one subscriber: per throttled topic, when the next
//! delivery may go and the newest quote held until then.

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
    next_allowed: Instant,
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
                next_allowed: now,
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
        let throttle = self.get_or_create(&quote.topic, now);
        if throttle.held.is_some() || now < throttle.next_allowed {
            let replaced = throttle.held.replace(quote.clone()).is_some();
            let due = (!replaced).then_some(throttle.next_allowed);
            return (Offer::Held { replaced, due }, 0);
        }
        throttle.next_allowed = now + interval;
        (Offer::Send, 0)
    }

    /// A snapshot of `topic` goes out now: it counts as a delivery, and it
    /// is the topic's newest quote, so a held one is superseded. Returns
    /// how many held quotes were discarded.
    pub fn on_snapshot(
        &mut self,
        topic: &Arc<str>,
        interval: Option<Duration>,
        now: Instant,
    ) -> u64 {
        match interval {
            Some(interval) => {
                let throttle = self.get_or_create(topic, now);
                throttle.next_allowed = now + interval;
                u64::from(throttle.held.take().is_some())
            }
            None => self.forget(topic),
        }
    }

    /// The timer of `topic` fired: the held quote, if its spacing has
    /// passed; or, when the timer was from an earlier hold and the spacing
    /// has not passed, `Err(due)`: come back then.
    pub fn release(
        &mut self,
        topic: &Arc<str>,
        interval: Option<Duration>,
        now: Instant,
    ) -> Result<Option<LocalQuote>, Instant> {
        let Some(throttle) = self.map.as_mut().and_then(|m| m.get_mut(topic)) else {
            return Ok(None);
        };
        if now < throttle.next_allowed {
            return match throttle.held {
                Some(_) => Err(throttle.next_allowed),
                None => Ok(None),
            };
        }
        let held = throttle.held.take();
        if held.is_some() {
            throttle.next_allowed = now + interval.unwrap_or_default();
        }
        Ok(held)
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
