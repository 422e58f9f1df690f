//! A worker's index from topics to its local subscriber connections.
//!
//! Exact and prefix entries are indexed separately; the set of connections a
//! topic reaches is resolved once, de-duplicated (a connection matching a
//! topic through several entries gets each quote once), and cached until a
//! subscription change touches that topic.

use std::collections::HashMap;
use std::sync::Arc;

use tickwire_protocol::Selector;

#[derive(Default)]
pub struct SubscriptionIndex {
    exact: HashMap<String, Vec<usize>>,
    prefix: HashMap<String, Vec<usize>>,
    /// Entries (pending or active) per selector on this worker, so the
    /// router hears only about the first and the last.
    refs: HashMap<Selector, u32>,
    routes: HashMap<Arc<str>, Arc<[usize]>>,
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

    /// Connection `slot` now receives live quotes matching `selector`.
    pub fn activate(&mut self, selector: &Selector, slot: usize) {
        let (map, key) = self.map_for(selector);
        map.entry(key.to_owned()).or_default().push(slot);
        self.invalidate(selector);
    }

    pub fn deactivate(&mut self, selector: &Selector, slot: usize) {
        let (map, key) = self.map_for(selector);
        if let Some(slots) = map.get_mut(key) {
            if let Some(i) = slots.iter().position(|&s| s == slot) {
                slots.swap_remove(i);
            }
            if slots.is_empty() {
                map.remove(key);
            }
        }
        self.invalidate(selector);
    }

    /// Connections that get a quote of `topic`, each once.
    pub fn targets(&mut self, topic: &Arc<str>) -> Arc<[usize]> {
        if let Some(route) = self.routes.get(topic) {
            return route.clone();
        }
        let mut slots: Vec<usize> = self.exact.get(&**topic).cloned().unwrap_or_default();
        if !self.prefix.is_empty() {
            for end in 0..=topic.len() {
                if let Some(more) = topic.get(..end).and_then(|p| self.prefix.get(p)) {
                    slots.extend_from_slice(more);
                }
            }
            slots.sort_unstable();
            slots.dedup();
        }
        let route: Arc<[usize]> = slots.into();
        self.routes.insert(topic.clone(), route.clone());
        route
    }

    fn map_for<'a>(
        &mut self,
        selector: &'a Selector,
    ) -> (&mut HashMap<String, Vec<usize>>, &'a str) {
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

    #[test]
    fn overlapping_entries_reach_a_connection_once() {
        let mut index = SubscriptionIndex::default();
        index.activate(&sel("AAPL"), 1);
        index.activate(&sel("AA*"), 1);
        index.activate(&sel("*"), 1);
        index.activate(&sel("*"), 2);
        let topic: Arc<str> = "AAPL".into();
        assert_eq!(&*index.targets(&topic), &[1, 2]);
        index.deactivate(&sel("*"), 2);
        assert_eq!(&*index.targets(&topic), &[1]);
        index.deactivate(&sel("AAPL"), 1);
        index.deactivate(&sel("AA*"), 1);
        assert_eq!(&*index.targets(&topic), &[1]);
        index.deactivate(&sel("*"), 1);
        assert!(index.targets(&topic).is_empty());
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
