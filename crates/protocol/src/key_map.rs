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

use std::collections::HashMap;
use std::sync::Arc;

use crate::topic::same_text;

/// Keys kept in the vector before moving to a hash map.
const SMALL: usize = 16;

pub(crate) enum KeyMap<V> {
    /// Empty or one entry, inline.
    One(Option<(Arc<str>, V)>),
    Small(Vec<(Arc<str>, V)>),
    // Boxed for the enum's size, not the heap: the small variant is what
    // nearly every per-connection index is, and it should not carry a hash
    // map's 48 bytes inline.
    #[allow(clippy::box_collection)]
    Large(Box<HashMap<Arc<str>, V>>),
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

    pub fn get_key_value(&self, key: &str) -> Option<(&Arc<str>, &V)> {
        match self {
            KeyMap::One(one) => one
                .as_ref()
                .filter(|(k, _)| same_text(k, key))
                .map(|(k, v)| (k, v)),
            KeyMap::Small(v) => v
                .iter()
                .find(|(k, _)| same_text(k, key))
                .map(|(k, v)| (k, v)),
            KeyMap::Large(m) => m.get_key_value(key),
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        match self {
            KeyMap::One(one) => one
                .as_mut()
                .filter(|(k, _)| same_text(k, key))
                .map(|(_, v)| v),
            KeyMap::Small(v) => v
                .iter_mut()
                .find(|(k, _)| same_text(k, key))
                .map(|(_, v)| v),
            KeyMap::Large(m) => m.get_mut(key),
        }
    }

    /// The value under `key`, inserted with `make` when absent, in one
    /// probe (a hash map's entry; the key an `Arc` the caller holds, so
    /// the owned key is a count). True when inserted.
    pub fn get_or_insert_with(
        &mut self,
        key: &Arc<str>,
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
                let mut inserted = false;
                let value = m.entry(key.clone()).or_insert_with(|| {
                    inserted = true;
                    make()
                });
                return (value, inserted);
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
            KeyMap::Large(m) => m.get_mut(&**key),
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
            KeyMap::Large(m) => m.reserve(additional),
        }
    }

    /// Inserts a key that is not present (the caller checked).
    pub fn insert_new(&mut self, key: Arc<str>, value: V) {
        match self {
            KeyMap::One(one @ None) => *one = Some((key, value)),
            KeyMap::One(one) => {
                let mut v = Vec::with_capacity(2);
                v.extend(one.take());
                v.push((key, value));
                *self = KeyMap::Small(v);
            }
            KeyMap::Small(v) if v.len() < SMALL => {
                // Grow one slot at a time: the point is not to over-allocate.
                v.reserve_exact(1);
                v.push((key, value));
            }
            KeyMap::Small(v) => {
                let mut m: HashMap<Arc<str>, V> = std::mem::take(v).into_iter().collect();
                m.insert(key, value);
                *self = KeyMap::Large(Box::new(m));
            }
            KeyMap::Large(m) => {
                m.insert(key, value);
            }
        }
    }

    pub fn remove_entry(&mut self, key: &str) -> Option<(Arc<str>, V)> {
        match self {
            KeyMap::One(one) => {
                if one.as_ref().is_some_and(|(k, _)| same_text(k, key)) {
                    one.take()
                } else {
                    None
                }
            }
            KeyMap::Small(v) => {
                let i = v.iter().position(|(k, _)| same_text(k, key))?;
                let entry = v.swap_remove(i);
                if v.is_empty() {
                    *v = Vec::new();
                }
                Some(entry)
            }
            KeyMap::Large(m) => m.remove_entry(key),
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
    pub fn take_all(&mut self) -> Vec<(Arc<str>, V)> {
        match std::mem::take(self) {
            KeyMap::One(one) => one.into_iter().collect(),
            KeyMap::Small(v) => v,
            KeyMap::Large(m) => m.into_iter().collect(),
        }
    }
}

pub(crate) enum Iter<'a, V> {
    One(std::option::Iter<'a, (Arc<str>, V)>),
    Small(std::slice::Iter<'a, (Arc<str>, V)>),
    Large(std::collections::hash_map::Iter<'a, Arc<str>, V>),
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Arc<str>, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::One(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Small(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Large(i) => i.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_alike_below_and_past_the_small_size() {
        let mut map = KeyMap::default();
        for i in 0..20u32 {
            map.insert_new(Arc::from(format!("K{i}").as_str()), i);
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
            let key: Arc<str> = Arc::from(format!("K{i}").as_str());
            let (value, inserted) = map.get_or_insert_with(&key, || i);
            assert_eq!((*value, inserted), (i, true));
            *value += 100;
            for j in 0..=i {
                let key: Arc<str> = Arc::from(format!("K{j}").as_str());
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
            map.insert_new(Arc::from(format!("K{i}").as_str()), i);
        }
        let KeyMap::Small(v) = &map else {
            panic!("still a vector");
        };
        assert_eq!(v.capacity(), 10, "no growth after the reserve");
        map.reserve(100);
        for i in 10..40u32 {
            map.insert_new(Arc::from(format!("K{i}").as_str()), i);
        }
        assert!(matches!(map, KeyMap::Large(_)));
        assert_eq!(map.get("K39"), Some(&39));
        assert_eq!(map.get("K0"), Some(&0));
    }

    #[test]
    fn the_one_inline_entry_comes_and_goes() {
        let mut map = KeyMap::default();
        map.insert_new(Arc::from("A"), 1);
        assert!(matches!(map, KeyMap::One(Some(_))));
        assert_eq!(map.get("A"), Some(&1));
        assert_eq!(map.get("B"), None);
        assert_eq!(map.remove_entry("B"), None);
        assert_eq!(map.remove_entry("A").map(|(_, v)| v), Some(1));
        assert_eq!((map.len(), map.iter().count()), (0, 0));
        map.insert_new(Arc::from("A"), 2);
        map.insert_new(Arc::from("B"), 3);
        assert_eq!(map.len(), 2);
        assert_eq!((map.get("A"), map.get("B")), (Some(&2), Some(&3)));
    }
}
