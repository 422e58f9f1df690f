//! A worker's index from topics to its local subscriber connections.
//!
//! Exact and prefix entries are indexed separately; the set of connections a
//! topic reaches is resolved once, de-duplicated (a connection matching a
//! topic through several entries gets each quote once, with the options of
//! its most specific entry), and cached until a subscription change touches
//! that topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tickwire_protocol::Selector;

/// One connection a topic's quotes go to, and its minimum spacing
/// (`max_hz`) for that topic, if throttled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub slot: usize,
    pub min_interval: Option<Duration>,
}

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

/// An entry in the index: which connection, with which `max_hz`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Member {
    slot: u32,
    max_hz: Option<f32>,
}

#[derive(Default)]
pub struct SubscriptionIndex {
    exact: HashMap<String, Vec<Member>>,
    prefix: HashMap<String, Vec<Member>>,
    /// Entries (pending or active) per selector on this worker, so the
    /// router hears only about the first and the last.
    refs: HashMap<Selector, u32>,
    routes: HashMap<Arc<str>, Arc<[Target]>>,
}

impl SubscriptionIndex {
    /// Counts one more entry for `selector`; true if it is this worker's first.
    pub fn add_ref(&mut self, selector: &Selector) -> bool {
        let count = self.refs.entry(selector.clone()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one entry less; true if it was this worker's last.
    pub fn remove_ref(&mut self, selector: &Selector) -> bool {
        match self.refs.get_mut(selector) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                self.refs.remove(selector);
                true
            }
            None => false,
        }
    }

    /// Connection `slot` now receives live quotes matching `selector`, at
    /// most `max_hz` per second per topic.
    pub fn activate(&mut self, selector: &Selector, slot: usize, max_hz: Option<f32>) {
        let (map, key) = self.map_for(selector);
        map.entry(key.to_owned()).or_default().push(Member {
            slot: slot as u32,
            max_hz,
        });
        self.invalidate(selector);
    }

    pub fn deactivate(&mut self, selector: &Selector, slot: usize) {
        let (map, key) = self.map_for(selector);
        if let Some(slots) = map.get_mut(key) {
            if let Some(i) = slots.iter().position(|m| m.slot as usize == slot) {
                slots.swap_remove(i);
            }
            if slots.is_empty() {
                map.remove(key);
            }
        }
        self.invalidate(selector);
    }

    /// Connections that get a quote of `topic`, each once, with the
    /// options of the most specific entry matching it.
    pub fn targets(&mut self, topic: &Arc<str>) -> Arc<[Target]> {
        if let Some(route) = self.routes.get(topic) {
            return route.clone();
        }
        // (slot, specificity, max_hz) for every matching entry.
        let mut found: Vec<(usize, usize, Option<f32>)> = Vec::new();
        if let Some(members) = self.exact.get(&**topic) {
            found.extend(
                members
                    .iter()
                    .map(|m| (m.slot as usize, usize::MAX, m.max_hz)),
            );
        }
        if !self.prefix.is_empty() {
            for end in 0..=topic.len() {
                if let Some(members) = topic.get(..end).and_then(|p| self.prefix.get(p)) {
                    found.extend(members.iter().map(|m| (m.slot as usize, end, m.max_hz)));
                }
            }
        }
        // Per slot, the most specific entry first; keep only that one.
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        found.dedup_by_key(|f| f.0);
        let route: Arc<[Target]> = found
            .into_iter()
            .map(|(slot, _, max_hz)| Target {
                slot,
                min_interval: max_hz.map(spacing),
            })
            .collect();
        self.routes.insert(topic.clone(), route.clone());
        route
    }

    fn map_for<'a>(
        &mut self,
        selector: &'a Selector,
    ) -> (&mut HashMap<String, Vec<Member>>, &'a str) {
        match selector {
            Selector::Exact(t) => (&mut self.exact, t),
            Selector::Prefix(p) => (&mut self.prefix, p),
        }
    }

    fn invalidate(&mut self, selector: &Selector) {
        match selector {
            Selector::Exact(t) => {
                self.routes.remove(t.as_str());
            }
            Selector::Prefix(p) => self
                .routes
                .retain(|topic, _| !topic.starts_with(p.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    fn slots(index: &mut SubscriptionIndex, topic: &str) -> Vec<usize> {
        index
            .targets(&topic.into())
            .iter()
            .map(|t| t.slot)
            .collect()
    }

    #[test]
    fn overlapping_entries_reach_a_connection_once() {
        let mut index = SubscriptionIndex::default();
        index.activate(&sel("AAPL"), 1, None);
        index.activate(&sel("AA*"), 1, None);
        index.activate(&sel("*"), 1, None);
        index.activate(&sel("*"), 2, None);
        assert_eq!(slots(&mut index, "AAPL"), [1, 2]);
        index.deactivate(&sel("*"), 2);
        assert_eq!(slots(&mut index, "AAPL"), [1]);
        index.deactivate(&sel("AAPL"), 1);
        index.deactivate(&sel("AA*"), 1);
        assert_eq!(slots(&mut index, "AAPL"), [1]);
        index.deactivate(&sel("*"), 1);
        assert!(slots(&mut index, "AAPL").is_empty());
    }

    #[test]
    fn spacing_is_clamped_for_absurdly_small_rates() {
        assert_eq!(spacing(4.0), Duration::from_millis(250));
        assert_eq!(spacing(1e-30), MAX_SPACING);
        assert_eq!(spacing(f32::MIN_POSITIVE), MAX_SPACING);
        assert_eq!(spacing(0.0), MAX_SPACING);
        assert_eq!(spacing(1.0 / 86_400.0), MAX_SPACING);
    }

    #[test]
    fn the_most_specific_entry_sets_the_rate() {
        let mut index = SubscriptionIndex::default();
        index.activate(&sel("*"), 1, Some(1.0));
        index.activate(&sel("AA*"), 1, Some(4.0));
        index.activate(&sel("AAPL"), 1, None);
        let interval =
            |index: &mut SubscriptionIndex, t: &str| index.targets(&t.into())[0].min_interval;
        assert_eq!(interval(&mut index, "AAPL"), None, "exact beats patterns");
        assert_eq!(
            interval(&mut index, "AAL"),
            Some(Duration::from_millis(250)),
            "longer prefix"
        );
        assert_eq!(interval(&mut index, "MSFT"), Some(Duration::from_secs(1)));
        index.deactivate(&sel("AAPL"), 1);
        assert_eq!(
            interval(&mut index, "AAPL"),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn refs_report_first_and_last() {
        let mut index = SubscriptionIndex::default();
        assert!(index.add_ref(&sel("X")));
        assert!(!index.add_ref(&sel("X")));
        assert!(!index.remove_ref(&sel("X")));
        assert!(index.remove_ref(&sel("X")));
        assert!(!index.remove_ref(&sel("X")));
    }
}
