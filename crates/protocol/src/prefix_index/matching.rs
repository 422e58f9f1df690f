//! The entries matching a topic, most specific first.

use std::sync::Arc;

use super::keys::KeyBuf;
use super::PrefixIndex;
use crate::topic_name::KeyText;

/// Iterator of [`PrefixIndex::matching`].
pub struct Matching<'a, 't, V, K: ?Sized> {
    pub(super) index: &'a PrefixIndex<V>,
    /// The topic: its exact probe uses the hash it carries, if any.
    pub(super) topic: &'t K,
    pub(super) exact_done: bool,
    pub(super) lens: std::iter::Rev<std::collections::btree_map::Range<'a, u8, u32>>,
}

impl<'a, V, K: KeyText + ?Sized> Iterator for Matching<'a, '_, V, K> {
    type Item = (&'a Arc<str>, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if !self.exact_done {
            self.exact_done = true;
            if let Some(hit) = self.index.map.get_key_value(self.topic) {
                return Some(hit);
            }
        }
        for (&len, _) in self.lens.by_ref() {
            let Some(key) = self
                .topic
                .text()
                .get(..len as usize)
                .and_then(KeyBuf::prefix)
            else {
                continue;
            };
            if let Some(hit) = self.index.map.get_key_value(key.as_str()) {
                return Some(hit);
            }
        }
        None
    }
}
