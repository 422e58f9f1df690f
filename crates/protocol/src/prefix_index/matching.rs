//! The entries matching a topic, most specific first.

use std::sync::Arc;

use super::keys::KeyBuf;
use super::PrefixIndex;

/// Iterator of [`PrefixIndex::matching`].
pub struct Matching<'a, 't, V> {
    pub(super) index: &'a PrefixIndex<V>,
    pub(super) topic: &'t str,
    pub(super) exact_done: bool,
    pub(super) lens: std::iter::Rev<std::collections::btree_map::Range<'a, u8, u32>>,
}

impl<'a, V> Iterator for Matching<'a, '_, V> {
    type Item = (&'a Arc<str>, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if !self.exact_done {
            self.exact_done = true;
            if let Some(hit) = self.index.map.get_key_value(self.topic) {
                return Some(hit);
            }
        }
        for (&len, _) in self.lens.by_ref() {
            let Some(key) = self.topic.get(..len as usize).and_then(KeyBuf::prefix) else {
                continue;
            };
            if let Some(hit) = self.index.map.get_key_value(key.as_str()) {
                return Some(hit);
            }
        }
        None
    }
}
