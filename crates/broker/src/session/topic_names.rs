//! Topic texts shared by a worker's subscriptions.
//!
//! Every entry holds its selector's text as an `Arc<str>`. Made per
//! request, 10,000 dashboards on the same 100 topics held 10,000 copies
//! (32 bytes each with the allocator's header, per topic per connection);
//! taken from here they hold 100, and an idle subscriber's key is a count.
//! A text is dropped by the worker's sweep once no entry holds it.
//!
//! A text is kept with its hash ([`TopicName`]): the one hash made of a
//! subscribe's topic, here, is the one every later map uses.

use hashbrown::HashTable;
use tickwire_protocol::topic::same_text;
use tickwire_protocol::{HashedText, KeyText, Selector, TopicName};

/// Texts kept at most: past it a new text is made for its selector alone
/// (a client naming endless distinct topics grows nothing here).
const MAX_NAMES: usize = 1 << 16;

/// The table is walked for texts no one holds only once as many texts
/// were made since the last walk as that walk kept (at least this many):
/// each walk is paid for by the texts made before it, never by a tick (a
/// full table is 65,536 reads scattered over the heap).
const FIRST_SWEEP: usize = 1024;

#[derive(Debug)]
pub struct TopicNames {
    names: HashTable<TopicName>,
    /// Texts made (shared or, past the cap, alone) since the last walk.
    made: usize,
    /// The walk comes once `made` reaches this.
    walk_after: usize,
    /// Walks so far (for the tests of when they happen).
    walks: u64,
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            names: HashTable::new(),
            made: 0,
            walk_after: FIRST_SWEEP,
            walks: 0,
        }
    }
}

impl TopicNames {
    /// Parses `s` (see [`Selector::parse`]) with its text shared.
    #[cfg(test)]
    pub fn selector(&mut self, s: &str) -> Option<Selector> {
        Selector::parse_with(s, |text| self.text(text))
    }

    /// The selector of `s`, already checked by [`Selector::is_valid`]
    /// (see [`Selector::of_valid_with`]), with its text shared.
    pub fn valid_selector(&mut self, s: &str) -> Selector {
        Selector::of_valid_with(s, |text| self.text(text))
    }

    fn text(&mut self, text: &str) -> TopicName {
        let key = HashedText::new(text);
        if let Some(shared) = self
            .names
            .find(key.text_hash(), |name| same_text(name, text))
        {
            return shared.clone();
        }
        let made = key.to_name();
        self.made += 1;
        if self.names.len() < MAX_NAMES {
            self.names
                .insert_unique(key.text_hash(), made.clone(), TopicName::hash_value);
        }
        made
    }

    /// Forgets the texts only this table still holds, once enough texts
    /// were made since the last time (see [`FIRST_SWEEP`]); called by the
    /// worker's periodic sweep. A text no entry holds stays until then:
    /// the table keeps at most about twice what is held, plus 1,024.
    pub fn sweep(&mut self) {
        if self.made < self.walk_after {
            return;
        }
        self.sweep_now();
    }

    fn sweep_now(&mut self) {
        self.walks += 1;
        self.names
            .retain(|name| std::sync::Arc::strong_count(name.text()) > 1);
        if self.names.capacity() > 4 * self.names.len().max(FIRST_SWEEP) {
            self.names
                .shrink_to(2 * self.names.len(), TopicName::hash_value);
        }
        self.made = 0;
        self.walk_after = self.names.len().max(FIRST_SWEEP);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts of two selectors of exact topic `topic`.
    fn twice(names: &mut TopicNames, topic: &str) -> (TopicName, TopicName) {
        match (names.selector(topic), names.selector(topic)) {
            (Some(Selector::Exact(a)), Some(Selector::Exact(b))) => (a, b),
            other => panic!("exact selectors: {other:?}"),
        }
    }

    /// A full table, every text held by the selectors returned.
    fn fill(names: &mut TopicNames) -> Vec<Selector> {
        (0..MAX_NAMES)
            .filter_map(|i| names.selector(&format!("T{i}")))
            .collect()
    }

    #[test]
    fn selectors_of_one_text_share_it_until_none_holds_it() {
        let mut names = TopicNames::default();
        let (a, b) = twice(&mut names, "AAPL");
        assert!(std::sync::Arc::ptr_eq(a.text(), b.text()));
        assert_eq!(names.selector("FX.*"), Selector::parse("FX.*"));
        assert_eq!(names.selector("bad topic"), None);
        names.sweep();
        assert_eq!(names.len(), 2, "below the first sweep's size: kept");
        names.sweep_now();
        assert_eq!(names.len(), 1, "FX. was held by nothing");
        drop((a, b));
        names.sweep_now();
        assert_eq!(names.len(), 0);
    }

    #[test]
    fn the_sweep_walks_once_as_many_texts_were_made_as_it_kept() {
        let mut names = TopicNames::default();
        let held: Vec<Selector> = (0..600)
            .filter_map(|i| names.selector(&format!("H{i}")))
            .collect();
        for i in 0..423 {
            names.selector(&format!("GONE{i}"));
        }
        names.sweep();
        assert_eq!(names.len(), 1023, "not yet 1,024");
        names.selector("ONE.MORE.GONE");
        names.sweep();
        assert_eq!(names.len(), 600, "the unheld went");
        // Next walk at 1,200: 600 held texts are not walked each tick.
        for i in 0..599 {
            names.selector(&format!("LATER{i}"));
        }
        names.sweep();
        assert_eq!(names.len(), 1199);
        drop(held);
    }

    /// A full table of texts all still held is not walked again until as
    /// many texts were made (alone, past the cap) as it holds.
    #[test]
    fn a_full_held_table_is_not_walked_every_tick() {
        let mut names = TopicNames::default();
        let held = fill(&mut names);
        names.sweep();
        let walks = names.walks;
        assert_eq!(walks, 1);
        for _ in 0..100 {
            names.sweep();
        }
        assert_eq!(names.walks, walks, "no walk without new texts");
        let alone: Vec<Selector> = (0..MAX_NAMES)
            .filter_map(|i| names.selector(&format!("NEW{i}")))
            .collect();
        names.sweep();
        assert_eq!(names.walks, walks + 1);
        assert_eq!(names.len(), MAX_NAMES);
        drop((held, alone));
    }

    #[test]
    fn past_the_cap_texts_are_made_alone() {
        let mut names = TopicNames::default();
        let held = fill(&mut names);
        assert_eq!(names.len(), MAX_NAMES);
        let (a, b) = twice(&mut names, "ONE.MORE");
        assert!(!std::sync::Arc::ptr_eq(a.text(), b.text()));
        assert_eq!(names.len(), MAX_NAMES);
        drop(held);
    }
}
