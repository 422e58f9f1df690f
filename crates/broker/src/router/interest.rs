//! Which workers want which topics.
//!
//! Workers report interest only on transitions (their first subscriber to a
//! selector, their last one leaving), so the state is a bit mask of workers
//! per selector, independent of the number of subscribers. Each topic caches
//! the union of the masks matching it (a [`CachedMask`], kept in the topic
//! table). A change of pattern interest only bumps a generation, and each
//! topic recomputes its cache on its next quote (O(length of the topic)), so
//! no interest change ever walks every topic; an exact selector updates its
//! one topic.

use tickwire_protocol::{PrefixIndex, Selector};

pub(super) struct Interest {
    /// Per selector as written, the workers with a subscriber for it.
    by_selector: PrefixIndex<u64>,
    /// Bumped by every change of pattern interest: a cached mask of an older
    /// generation is stale. Starts at 1 so that a default cache (generation
    /// 0) is never current.
    generation: u64,
}

/// One topic's workers: bit w set when worker w has a subscriber matching
/// it; valid while `generation` is the interest's.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CachedMask {
    workers: u64,
    generation: u64,
}

impl Default for Interest {
    fn default() -> Interest {
        Interest {
            by_selector: PrefixIndex::new(),
            generation: 1,
        }
    }
}

impl Interest {
    /// Worker `worker` has its first subscriber to `selector`; `topic` is
    /// the cache of the topic an exact selector names, if that topic exists.
    /// Returns true when no worker had interest in `selector` before (the
    /// broker as a whole starts following it).
    pub fn add(
        &mut self,
        worker: usize,
        selector: &Selector,
        topic: Option<&mut CachedMask>,
    ) -> bool {
        let bit = 1u64 << worker;
        let mask = self.by_selector.get_or_insert_with(selector, || 0).0;
        let was_none = *mask == 0;
        *mask |= bit;
        match selector {
            Selector::Exact(_) => {
                if let Some(topic) = topic {
                    // Only adds a bit; a stale cache is recomputed on the
                    // next quote anyway.
                    topic.workers |= bit;
                }
            }
            Selector::Prefix(_) => self.generation += 1,
        }
        was_none
    }

    /// Worker `worker`'s last subscriber to `selector` left (`topic` as for
    /// [`Interest::add`]). Returns true when no worker has interest in
    /// `selector` any more.
    pub fn remove(
        &mut self,
        worker: usize,
        selector: &Selector,
        topic: Option<&mut CachedMask>,
    ) -> bool {
        let bit = 1u64 << worker;
        let mut gone = false;
        if let Some(mask) = self.by_selector.get_mut(selector) {
            *mask &= !bit;
            if *mask == 0 {
                self.by_selector.remove(selector);
                gone = true;
            }
        }
        match selector {
            // Recomputed, not cleared: another selector of the same worker
            // (a pattern) may still match the topic.
            Selector::Exact(name) => {
                if let Some(topic) = topic {
                    topic.workers = self.mask_of(name);
                }
            }
            Selector::Prefix(_) => self.generation += 1,
        }
        gone
    }

    /// The workers interested in `topic`, from its cache, recomputed first
    /// when a pattern changed since.
    pub fn workers(&self, topic: &str, cache: &mut CachedMask) -> u64 {
        if cache.generation != self.generation {
            cache.workers = self.mask_of(topic);
            cache.generation = self.generation;
        }
        cache.workers
    }

    /// The union over every selector matching `topic` (O(length of the
    /// topic) probes).
    fn mask_of(&self, topic: &str) -> u64 {
        self.by_selector
            .matching(topic)
            .fold(0, |mask, (_, m)| mask | m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn only_the_first_worker_in_and_the_last_out_are_transitions() {
        let mut interest = Interest::default();
        assert!(interest.add(0, &sel("A*"), None));
        assert!(!interest.add(3, &sel("A*"), None));
        assert!(!interest.add(0, &sel("A*"), None), "already there");
        assert!(!interest.remove(0, &sel("A*"), None));
        assert!(interest.remove(3, &sel("A*"), None));
        assert!(!interest.remove(3, &sel("A*"), None), "nothing left");
        assert!(interest.add(1, &sel("A*"), None), "a new first one");
    }

    /// A pattern's change reaches a topic's cache through the generation
    /// alone: the cache is recomputed on its next use, never eagerly.
    #[test]
    fn a_pattern_change_makes_caches_recompute_by_generation() {
        let mut interest = Interest::default();
        let mut cache = CachedMask::default();
        assert_eq!(interest.workers("A.1", &mut cache), 0);
        let computed = cache.generation;
        assert_eq!(interest.workers("A.1", &mut cache), 0);
        assert_eq!(cache.generation, computed, "current: not recomputed");

        interest.add(0, &sel("A*"), None);
        assert_ne!(interest.generation, computed);
        assert_eq!(cache.workers, 0, "untouched until used");
        assert_eq!(interest.workers("A.1", &mut cache), 0b1);
        interest.add(1, &sel("*"), None);
        assert_eq!(interest.workers("A.1", &mut cache), 0b11);
        assert_eq!(interest.workers("B.1", &mut CachedMask::default()), 0b10);
        interest.remove(0, &sel("A*"), None);
        assert_eq!(interest.workers("A.1", &mut cache), 0b10);
    }

    /// An exact selector updates its one topic without a new generation,
    /// and dropping it keeps the bits of patterns that still match.
    #[test]
    fn an_exact_selector_updates_its_topic_in_place() {
        let mut interest = Interest::default();
        interest.add(0, &sel("*"), None);
        let mut cache = CachedMask::default();
        assert_eq!(interest.workers("X", &mut cache), 0b1);
        let generation = interest.generation;

        interest.add(2, &sel("X"), Some(&mut cache));
        interest.add(0, &sel("X"), Some(&mut cache));
        assert_eq!(interest.generation, generation);
        assert_eq!(cache.workers, 0b101);
        interest.remove(0, &sel("X"), Some(&mut cache));
        assert_eq!(cache.workers, 0b101, "worker 0 still has `*`");
        interest.remove(2, &sel("X"), Some(&mut cache));
        assert_eq!(interest.workers("X", &mut cache), 0b1);
        assert_eq!(interest.generation, generation);
    }
}
