//! Which of a request's selectors a snapshot walks: none that another
//! covers or repeats.

use std::collections::{HashSet, VecDeque};

use tickwire_protocol::{PrefixIndex, Selector};

/// The request's selectors without those another one covers (`AAPL` and
/// `AA*` under `A*`) or repeats: what is left matches disjoint sets of
/// topics, since two prefixes neither of which starts the other share no
/// topic.
pub(super) fn disjoint_cover(selectors: &[Selector]) -> VecDeque<Selector> {
    if selectors.len() <= 16 && selectors.iter().all(|s| matches!(s, Selector::Exact(_))) {
        // The common request (a few exact topics, a storm of them):
        // nothing can cover another, so only repeats go, without a set.
        let mut cover = VecDeque::with_capacity(selectors.len());
        for (i, selector) in selectors.iter().enumerate() {
            if !selectors[..i].contains(selector) {
                cover.push_back(selector.clone());
            }
        }
        return cover;
    }
    let mut prefixes = PrefixIndex::new();
    for selector in selectors {
        if let Selector::Prefix(_) = selector {
            prefixes.insert(selector, ());
        }
    }
    let mut seen = HashSet::new();
    selectors
        .iter()
        .filter(|selector| match selector {
            Selector::Exact(topic) => !prefixes.matches(topic),
            // A stored prefix shorter than this one that starts it.
            Selector::Prefix(prefix) => !prefixes
                .matching(prefix)
                .any(|(key, _)| key.len() <= prefix.len()),
        })
        .filter(|selector| seen.insert(*selector))
        .cloned()
        .collect()
}
