//! The one index from subscription selectors to values, used by the router
//! (topics and worker interest), a worker's route index and each subscriber
//! session (its entries).
//!
//! Keys are selectors as written: `"AAPL"` (exact) or `"AA*"` (prefix). One
//! map holds both kinds, so an exact lookup is a single probe (the map is a
//! short vector while it holds a few keys, a hash map past that: see
//! `key_map.rs`). The
//! selectors matching a topic are found by probing the topic itself and then
//! `topic[..n] + "*"` only for the lengths `n` at which some prefix is stored
//! (a count per length is kept): at most 65 probes, usually one or two —
//! O(length of the topic), whatever the number of entries.
//!
//! An index built with [`PrefixIndex::ordered`] also keeps its exact keys in
//! order, so every exact key under a prefix is a range scan: a `*`
//! subscribe costs O(topics it matches), never O(all topics). Per-connection
//! indexes skip that (it costs a B-tree node per connection).

use std::collections::{BTreeMap, BTreeSet};

use crate::key_map::KeyMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::topic::Selector;
use crate::topic_name::{KeyText, TopicName};
pub use keys::selector_of;
use keys::{selector_of_key, SelectorKey};

/// The length counts of an index without prefixes.
static NO_PREFIXES: BTreeMap<u8, u32> = BTreeMap::new();

pub struct PrefixIndex<V> {
    /// Exact keys and prefix keys (with their `*`), as written.
    map: KeyMap<V>,
    /// What only some indexes need, behind one pointer: most hold exact
    /// topics only and are not ordered (every subscriber has an index, and
    /// pays for the inline size).
    extras: Option<Box<Extras>>,
}

#[derive(Default)]
struct Extras {
    /// How many prefixes of each length (without the `*`) are stored.
    prefix_lens: BTreeMap<u8, u32>,
    /// Exact keys in order, for `keys_under`; only in `ordered()` indexes.
    ordered: Option<BTreeSet<Arc<str>>>,
}

impl<V: std::fmt::Debug> std::fmt::Debug for PrefixIndex<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.map.iter()).finish()
    }
}

impl<V> Default for PrefixIndex<V> {
    fn default() -> Self {
        PrefixIndex::new()
    }
}

impl<V> PrefixIndex<V> {
    /// An index without ordered exact keys (`keys_under` scans).
    pub fn new() -> PrefixIndex<V> {
        PrefixIndex {
            map: KeyMap::default(),
            extras: None,
        }
    }

    /// An index whose exact keys under a prefix are found by a range scan.
    pub fn ordered() -> PrefixIndex<V> {
        PrefixIndex {
            map: KeyMap::default(),
            extras: Some(Box::new(Extras {
                prefix_lens: BTreeMap::new(),
                ordered: Some(BTreeSet::new()),
            })),
        }
    }

    /// The exact keys in order (`ordered()` indexes only).
    fn ordered_keys(&self) -> Option<&BTreeSet<Arc<str>>> {
        self.extras.as_deref().and_then(|e| e.ordered.as_ref())
    }

    fn ordered_mut(&mut self) -> Option<&mut BTreeSet<Arc<str>>> {
        self.extras.as_deref_mut().and_then(|e| e.ordered.as_mut())
    }

    /// Room for `additional` more keys (exactly, below the hash map's size).
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    /// Entries, exact and prefix together.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    pub fn get(&self, selector: &Selector) -> Option<&V> {
        self.map.get(&SelectorKey::of(selector)?)
    }

    pub fn get_mut(&mut self, selector: &Selector) -> Option<&mut V> {
        self.map.get_mut(&SelectorKey::of(selector)?)
    }

    pub fn contains(&self, selector: &Selector) -> bool {
        self.get(selector).is_some()
    }

    /// The value of exact key `topic` (one hash probe, with the hash
    /// `topic` carries if it is a [`TopicName`]).
    pub fn exact<K: KeyText + ?Sized>(&self, topic: &K) -> Option<&V> {
        self.map.get(topic).filter(|_| !topic.text().ends_with('*'))
    }

    pub fn exact_mut<K: KeyText + ?Sized>(&mut self, topic: &K) -> Option<&mut V> {
        if topic.text().ends_with('*') {
            return None;
        }
        self.map.get_mut(topic)
    }

    /// The stored key and value of exact key `topic`.
    pub fn exact_key_value<K: KeyText + ?Sized>(&self, topic: &K) -> Option<(&Arc<str>, &V)> {
        self.map
            .get_key_value(topic)
            .filter(|_| !topic.text().ends_with('*'))
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, selector: &Selector, value: V) -> Option<V> {
        let key = match selector {
            Selector::Exact(t) => t.clone(),
            Selector::Prefix(_) => TopicName::new(Arc::from(selector.as_written())),
        };
        self.insert_key(key, value)
    }

    /// Inserts under exact key `topic`, keeping its very `Arc` as the key.
    pub fn insert_exact(&mut self, topic: TopicName, value: V) -> Option<V> {
        debug_assert!(!topic.ends_with('*'));
        self.insert_key(topic, value)
    }

    fn insert_key(&mut self, key: TopicName, value: V) -> Option<V> {
        if let Some(old) = self.map.get_mut(&key) {
            return Some(std::mem::replace(old, value));
        }
        match key.strip_suffix('*') {
            Some(prefix) => {
                *self
                    .extras
                    .get_or_insert_with(Box::default)
                    .prefix_lens
                    .entry(prefix.len() as u8)
                    .or_insert(0) += 1
            }
            None => {
                if let Some(ordered) = self.ordered_mut() {
                    ordered.insert(key.text().clone());
                }
            }
        }
        self.map.insert_new(key, value);
        None
    }

    /// The value for `selector`, inserted with `make` if absent; true when
    /// it was inserted.
    pub fn get_or_insert_with(
        &mut self,
        selector: &Selector,
        make: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        if let Selector::Exact(topic) = selector {
            // One probe (the storm's common case: 2 to 4 before).
            let (value, inserted) = self.map.get_or_insert_with(topic, make);
            if inserted {
                if let Some(ordered) = self.extras.as_deref_mut().and_then(|e| e.ordered.as_mut()) {
                    ordered.insert(topic.text().clone());
                }
            }
            return (value, inserted);
        }
        let inserted = if self.contains(selector) {
            false
        } else {
            self.insert(selector, make());
            true
        };
        let value = SelectorKey::of(selector).and_then(|k| self.map.get_mut(&k));
        match value {
            Some(v) => (v, inserted),
            // Just inserted or present: unreachable, but never a panic.
            None => unreachable_entry(),
        }
    }

    pub fn remove(&mut self, selector: &Selector) -> Option<V> {
        let (key, value) = self.map.remove_entry(&SelectorKey::of(selector)?)?;
        self.forget_key(&key);
        Some(value)
    }

    /// Removes exact key `topic`.
    pub fn remove_exact<K: KeyText + ?Sized>(&mut self, topic: &K) -> Option<V> {
        if topic.text().ends_with('*') {
            return None;
        }
        let (key, value) = self.map.remove_entry(topic)?;
        self.forget_key(&key);
        Some(value)
    }

    /// Updates the length counts and the order after `key` left the map.
    fn forget_key(&mut self, key: &Arc<str>) {
        match key.strip_suffix('*') {
            Some(prefix) => {
                let len = prefix.len() as u8;
                if let Some(extras) = self.extras.as_mut() {
                    if let Some(count) = extras.prefix_lens.get_mut(&len) {
                        *count -= 1;
                        if *count == 0 {
                            extras.prefix_lens.remove(&len);
                        }
                    }
                    if extras.prefix_lens.is_empty() && extras.ordered.is_none() {
                        self.extras = None;
                    }
                }
            }
            None => {
                if let Some(ordered) = self.ordered_mut() {
                    ordered.remove(key);
                }
            }
        }
    }

    /// Every entry matching `topic`, most specific first: the exact entry,
    /// then prefixes from the longest to the shortest. Each item is the key
    /// as written and its value.
    pub fn matching<'a, 't, K: KeyText + ?Sized>(&'a self, topic: &'t K) -> Matching<'a, 't, V, K> {
        Matching {
            index: self,
            topic,
            exact_done: topic.text().ends_with('*'),
            lens: self
                .extras
                .as_deref()
                .map_or(&NO_PREFIXES, |e| &e.prefix_lens)
                .range(..=(topic.text().len().min(255) as u8))
                .rev(),
        }
    }

    /// The value of the most specific entry matching `topic`.
    pub fn most_specific<K: KeyText + ?Sized>(&self, topic: &K) -> Option<&V> {
        self.matching(topic).next().map(|(_, v)| v)
    }

    /// True when some entry matches `topic`.
    pub fn matches<K: KeyText + ?Sized>(&self, topic: &K) -> bool {
        self.matching(topic).next().is_some()
    }

    /// Exact keys starting with `prefix`, in order. A range scan in an
    /// `ordered()` index; a full scan otherwise.
    pub fn keys_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> Box<dyn Iterator<Item = &'a Arc<str>> + 'a> {
        match self.ordered_keys() {
            Some(ordered) => Box::new(
                ordered
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(move |k| k.starts_with(prefix)),
            ),
            None => Box::new(
                self.map
                    .iter()
                    .map(|(k, _)| k)
                    .filter(move |k| !k.ends_with('*') && k.starts_with(prefix)),
            ),
        }
    }

    /// Exact keys starting with `prefix` and greater than `after`, in
    /// order: a resumable `keys_under`, for walking a large range in slices
    /// (a range scan in an `ordered()` index; a sorted full scan otherwise).
    pub fn keys_under_after<'a>(
        &'a self,
        prefix: &'a str,
        after: &str,
    ) -> Box<dyn Iterator<Item = &'a Arc<str>> + 'a> {
        match self.ordered_keys() {
            Some(ordered) => {
                let from = if *after < *prefix {
                    Bound::Included(prefix)
                } else {
                    Bound::Excluded(after)
                };
                Box::new(
                    ordered
                        .range::<str, _>((from, Bound::Unbounded))
                        .take_while(move |k| k.starts_with(prefix)),
                )
            }
            None => {
                let mut keys: Vec<&'a Arc<str>> =
                    self.keys_under(prefix).filter(|k| &***k > after).collect();
                keys.sort();
                Box::new(keys.into_iter())
            }
        }
    }

    /// Exact keys matched by `selector` (itself, or those under its prefix).
    pub fn keys_matched<'a>(
        &'a self,
        selector: &'a Selector,
    ) -> Box<dyn Iterator<Item = &'a Arc<str>> + 'a> {
        match selector {
            Selector::Exact(t) => Box::new(self.exact_key_value(t).map(|(k, _)| k).into_iter()),
            Selector::Prefix(p) => self.keys_under(p),
        }
    }

    /// Every entry, keys as written, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &V)> {
        self.map.iter()
    }

    /// Empties the index, returning every entry.
    pub fn drain(&mut self) -> impl Iterator<Item = (Selector, V)> + '_ {
        if let Some(extras) = self.extras.as_mut() {
            extras.prefix_lens.clear();
            match extras.ordered.as_mut() {
                Some(ordered) => ordered.clear(),
                None => self.extras = None,
            }
        }
        self.map
            .take_all()
            .into_iter()
            .map(|(k, v)| (selector_of_key(k), v))
    }
}

#[cold]
fn unreachable_entry<T>() -> T {
    // get_or_insert_with inserts before it looks up; a miss would be a bug
    // in this file, not something input can cause.
    unreachable!("prefix index entry vanished between insert and lookup")
}

mod keys;
mod matching;

pub use matching::Matching;

#[cfg(test)]
mod tests;
