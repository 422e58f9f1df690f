//! The key → value store behind a [`crate::PrefixIndex`]: one entry inline,
//! then a short vector, a hash map past [`SMALL`] keys. Most subscribers
//! hold one to a few entries; a hash table costs at least four slots plus
//! control bytes (~150 bytes for one entry), a vector one slot (32 bytes,
//! 48 with the allocator's header), and the one entry of the commonest
//! index (an idle dashboard on one topic) nothing beyond the map itself.
//! Up to sixteen keys a linear scan of short strings (most differ in
//! length or first byte) costs about what SipHash-ing one does, and a
//! subscriber of 10 topics (a dashboard's common request) skips building
//! a hash table: measured, −3% of a reconnect storm's instructions
//! against eight.

use std::sync::Arc;

use hashbrown::hash_table::{Entry, HashTable};

use crate::topic::same_text;
use crate::topic_name::{text_hash, KeyText, TopicName};

/// Keys kept in the vector before moving to a hash map.
const SMALL: usize = 16;

/// An entry of the hash map form: the hash is not stored; the table asks
/// for it only when it grows (as `std`'s map does).
type Pair<V> = (Arc<str>, V);

pub(crate) enum KeyMap<V> {
    /// Empty or one entry, inline.
    One(Option<Pair<V>>),
    Small(Vec<Pair<V>>),
    // Boxed for the enum's size, not the heap: the small variant is what
    // nearly every per-connection index is, and it should not carry a hash
    // table inline. A table, not a map: a lookup takes the hash its key
    // carries (`KeyText`), so a topic is hashed once, not per map.
    Large(Box<HashTable<Pair<V>>>),
}

/// The hash of a stored entry, for the table's growth.
fn rehash<V>(pair: &Pair<V>) -> u64 {
    text_hash(&pair.0)
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap::One(None)
    }
}

impl<V> KeyMap<V> {
    pub fn len(&self) -> usize {
        match self {
            KeyMap::One(one) => usize::from(one.is_some()),
            KeyMap::Small(v) => v.len(),
            KeyMap::Large(m) => m.len(),
        }
    }

    pub fn get_key_value<K: KeyText + ?Sized>(&self, key: &K) -> Option<(&Arc<str>, &V)> {
        let text = key.text();
        let pair = match self {
            KeyMap::One(one) => one.as_ref().filter(|(k, _)| same_text(k, text)),
            KeyMap::Small(v) => v.iter().find(|(k, _)| same_text(k, text)),
            KeyMap::Large(m) => m.find(key.text_hash(), |(k, _)| same_text(k, text)),
        };
        pair.map(|(k, v)| (k, v))
    }

    pub fn get<K: KeyText + ?Sized>(&self, key: &K) -> Option<&V> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    pub fn get_mut<K: KeyText + ?Sized>(&mut self, key: &K) -> Option<&mut V> {
        let text = key.text();
        let pair = match self {
            KeyMap::One(one) => one.as_mut().filter(|(k, _)| same_text(k, text)),
            KeyMap::Small(v) => v.iter_mut().find(|(k, _)| same_text(k, text)),
            KeyMap::Large(m) => m.find_mut(key.text_hash(), |(k, _)| same_text(k, text)),
        };
        pair.map(|(_, v)| v)
    }

    /// The value under `key`, inserted with `make` when absent, in one
    /// probe (the key's text an `Arc` the caller holds, so the owned key
    /// is a count). True when inserted.
    pub fn get_or_insert_with(
        &mut self,
        key: &TopicName,
        make: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        // One scan of the short forms for the key's position.
        let found = match self {
            KeyMap::One(one) => one
                .as_ref()
                .and_then(|(k, _)| same_text(k, key).then_some(0)),
            KeyMap::Small(v) => v.iter().position(|(k, _)| same_text(k, key)),
            KeyMap::Large(_) => None,
        };
        if found.is_none() {
            if let KeyMap::Large(m) = self {
                let entry = m.entry(key.hash_value(), |(k, _)| same_text(k, key), rehash);
                return match entry {
                    Entry::Occupied(entry) => (&mut entry.into_mut().1, false),
                    Entry::Vacant(entry) => {
                        let entry = entry.insert((key.text().clone(), make()));
                        (&mut entry.into_mut().1, true)
                    }
                };
            }
            self.insert_new(key.clone(), make());
        }
        let inserted = found.is_none();
        let value = match self {
            KeyMap::One(one) => one.as_mut().map(|(_, v)| v),
            // Found at its position, or just pushed at the end.
            KeyMap::Small(v) => match found {
                Some(i) => v.get_mut(i).map(|(_, v)| v),
                None => v.last_mut().map(|(_, v)| v),
            },
            // Just moved from the vector past `SMALL`.
            KeyMap::Large(_) => self.get_mut(key),
        };
        match value {
            Some(value) => (value, inserted),
            // Found or just inserted: a bug here if not, never input's doing.
            None => unreachable!("a key just found or inserted is present"),
        }
    }

    /// Room for `additional` more keys: exactly, up to the vector's
    /// [`SMALL`] (an inline entry becomes a vector only if it will hold
    /// two or more).
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len() + additional;
        match self {
            KeyMap::One(_) if wanted <= 1 => {}
            KeyMap::One(one) => {
                let mut v = Vec::with_capacity(wanted.min(SMALL));
                v.extend(one.take());
                *self = KeyMap::Small(v);
            }
            KeyMap::Small(v) => v.reserve_exact(wanted.min(SMALL).saturating_sub(v.len())),
            KeyMap::Large(m) => m.reserve(additional, rehash),
        }
    }

    /// Inserts a key that is not present (the caller checked).
    pub fn insert_new(&mut self, key: TopicName, value: V) {
        match self {
            KeyMap::One(one @ None) => *one = Some((key.into_text(), value)),
            KeyMap::One(one) => {
                let mut v = Vec::with_capacity(2);
                v.extend(one.take());
                v.push((key.into_text(), value));
                *self = KeyMap::Small(v);
            }
            KeyMap::Small(v) if v.len() < SMALL => {
                // Grow one slot at a time: the point is not to over-allocate.
                v.reserve_exact(1);
                v.push((key.into_text(), value));
            }
            KeyMap::Small(v) => {
                let mut m = HashTable::with_capacity(v.len() + 1);
                for pair in std::mem::take(v) {
                    m.insert_unique(rehash(&pair), pair, rehash);
                }
                m.insert_unique(key.hash_value(), (key.into_text(), value), rehash);
                *self = KeyMap::Large(Box::new(m));
            }
            KeyMap::Large(m) => {
                m.insert_unique(key.hash_value(), (key.into_text(), value), rehash);
            }
        }
    }

    pub fn remove_entry<K: KeyText + ?Sized>(&mut self, key: &K) -> Option<Pair<V>> {
        let text = key.text();
        match self {
            KeyMap::One(one) => {
                if one.as_ref().is_some_and(|(k, _)| same_text(k, text)) {
                    one.take()
                } else {
                    None
                }
            }
            KeyMap::Small(v) => {
                let i = v.iter().position(|(k, _)| same_text(k, text))?;
                let entry = v.swap_remove(i);
                if v.is_empty() {
                    *v = Vec::new();
                }
                Some(entry)
            }
            KeyMap::Large(m) => m
                .find_entry(key.text_hash(), |(k, _)| same_text(k, text))
                .ok()
                .map(|entry| entry.remove().0),
        }
    }

    pub fn iter(&self) -> Iter<'_, V> {
        match self {
            KeyMap::One(one) => Iter::One(one.iter()),
            KeyMap::Small(v) => Iter::Small(v.iter()),
            KeyMap::Large(m) => Iter::Large(m.iter()),
        }
    }

    /// Empties the map, returning every entry.
    pub fn take_all(&mut self) -> Vec<Pair<V>> {
        match std::mem::take(self) {
            KeyMap::One(one) => one.into_iter().collect(),
            KeyMap::Small(v) => v,
            KeyMap::Large(m) => m.into_iter().collect(),
        }
    }
}

pub(crate) enum Iter<'a, V> {
    One(std::option::Iter<'a, Pair<V>>),
    Small(std::slice::Iter<'a, Pair<V>>),
    Large(hashbrown::hash_table::Iter<'a, Pair<V>>),
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Arc<str>, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = match self {
            Iter::One(i) => i.next(),
            Iter::Small(i) => i.next(),
            Iter::Large(i) => i.next(),
        };
        pair.map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_alike_below_and_past_the_small_size() {
        let mut map = KeyMap::default();
        for i in 0..20u32 {
            map.insert_new(TopicName::from(format!("K{i}").as_str()), i);
            assert_eq!(map.len(), i as usize + 1);
            let kind = match map {
                KeyMap::One(_) => 1,
                KeyMap::Small(_) => 2,
                KeyMap::Large(_) => 3,
            };
            assert_eq!(
                kind,
                if i == 0 {
                    1
                } else if i < SMALL as u32 {
                    2
                } else {
                    3
                }
            );
            for j in 0..=i {
                assert_eq!(map.get(&format!("K{j}")), Some(&j));
            }
            assert_eq!(map.get("nope"), None);
        }
        *map.get_mut("K3").unwrap() = 33;
        assert_eq!(
            map.remove_entry("K3").map(|(k, v)| (k.to_string(), v)),
            Some(("K3".into(), 33))
        );
        assert_eq!(map.remove_entry("K3"), None);
        assert_eq!(map.iter().count(), 19);
        let mut all: Vec<u32> = map.take_all().into_iter().map(|(_, v)| v).collect();
        all.sort();
        assert_eq!(all.len(), 19);
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn get_or_insert_with_finds_or_inserts_in_every_form() {
        let mut map = KeyMap::default();
        for i in 0..20u32 {
            let key = TopicName::from(format!("K{i}").as_str());
            let (value, inserted) = map.get_or_insert_with(&key, || i);
            assert_eq!((*value, inserted), (i, true));
            *value += 100;
            for j in 0..=i {
                let key = TopicName::from(format!("K{j}").as_str());
                let (value, inserted) = map.get_or_insert_with(&key, || 999);
                assert_eq!((*value, inserted), (j + 100, false));
            }
        }
        assert!(matches!(map, KeyMap::Large(_)));
        assert_eq!(map.len(), 20);
    }

    #[test]
    fn reserve_makes_room_once_and_keeps_the_forms() {
        let mut map: KeyMap<u32> = KeyMap::default();
        map.reserve(1);
        assert!(matches!(map, KeyMap::One(None)));
        map.reserve(10);
        let KeyMap::Small(v) = &map else {
            panic!("a vector for ten");
        };
        assert_eq!((v.len(), v.capacity()), (0, 10));
        for i in 0..10u32 {
            map.insert_new(TopicName::from(format!("K{i}").as_str()), i);
        }
        let KeyMap::Small(v) = &map else {
            panic!("still a vector");
        };
        assert_eq!(v.capacity(), 10, "no growth after the reserve");
        map.reserve(100);
        for i in 10..40u32 {
            map.insert_new(TopicName::from(format!("K{i}").as_str()), i);
        }
        assert!(matches!(map, KeyMap::Large(_)));
        assert_eq!(map.get("K39"), Some(&39));
        assert_eq!(map.get("K0"), Some(&0));
    }

    #[test]
    fn the_one_inline_entry_comes_and_goes() {
        let mut map = KeyMap::default();
        map.insert_new(TopicName::from("A"), 1);
        assert!(matches!(map, KeyMap::One(Some(_))));
        assert_eq!(map.get("A"), Some(&1));
        assert_eq!(map.get("B"), None);
        assert_eq!(map.remove_entry("B"), None);
        assert_eq!(map.remove_entry("A").map(|(_, v)| v), Some(1));
        assert_eq!((map.len(), map.iter().count()), (0, 0));
        map.insert_new(TopicName::from("A"), 2);
        map.insert_new(TopicName::from("B"), 3);
        assert_eq!(map.len(), 2);
        assert_eq!((map.get("A"), map.get("B")), (Some(&2), Some(&3)));
    }
}
