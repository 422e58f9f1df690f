//! The entries a subscribe request named, for deciding which of its
//! snapshot quotes go out (`Subscriptions::snapshot_wanted`), and the
//! request's topics counted once. A request of a few topics (the common
//! one, a reconnect storm of them) is compared by scanning, with no set,
//! no hashing and no copy of the text; a long one uses a hash set, so it
//! stays linear.

use std::borrow::Cow;
use std::collections::HashSet;

use tickwire_protocol::topic::same_text;
use tickwire_protocol::{Selector, TopicName};

use super::topic_names::TopicNames;

/// Up to this many selectors, a scan beats hashing.
const FEW: usize = 16;

pub(super) enum Named {
    Few(Vec<Selector>),
    /// As written (`"AAPL"`, `"FX.*"`): what entry keys are.
    Many(HashSet<String>),
}

impl Named {
    pub fn new(selectors: &[Selector]) -> Named {
        if selectors.len() <= FEW {
            Named::Few(selectors.to_vec())
        } else {
            Named::Many(
                selectors
                    .iter()
                    .map(|s| s.as_written().into_owned())
                    .collect(),
            )
        }
    }

    /// Whether an entry whose key (as written) is `key` was named.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            Named::Few(selectors) => selectors.iter().any(|s| is_written_as(s, key)),
            Named::Many(keys) => keys.contains(key),
        }
    }
}

/// Whether `selector` is written `key`, without writing it out.
fn is_written_as(selector: &Selector, key: &str) -> bool {
    match selector {
        Selector::Exact(topic) => same_text(topic, key),
        Selector::Prefix(prefix) => key.strip_suffix('*') == Some(&**prefix),
    }
}

/// Request topics as selectors, a topic repeated in one request counted
/// once; the first topic that does not parse, if any. The texts come from
/// `names` (shared with the worker's other subscriptions) only when
/// `share`: a request that may yet be refused (near the subscription cap)
/// makes its own, and a request with a bad topic shares nothing, so
/// refused requests never fill the table.
pub(super) fn unique_selectors<'t>(
    topics: &'t [Cow<'_, str>],
    names: &mut TopicNames,
    share: bool,
) -> Result<Vec<Selector>, &'t str> {
    if let Some(bad) = topics.iter().find(|t| !Selector::is_valid(t)) {
        return Err(&**bad);
    }
    let mut out: Vec<Selector> = Vec::with_capacity(topics.len());
    let mut seen: Option<HashSet<&str>> =
        (topics.len() > FEW).then(|| HashSet::with_capacity(topics.len()));
    for (i, topic) in topics.iter().enumerate() {
        let first = match &mut seen {
            Some(seen) => seen.insert(&**topic),
            None => !topics.iter().take(i).any(|t| same_text(t, topic)),
        };
        if !first {
            continue;
        }
        // Every topic was checked above: not again.
        out.push(if share {
            names.valid_selector(topic)
        } else {
            Selector::of_valid_with(topic, |text| TopicName::from(text))
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn a_named_entry_is_found_by_its_written_key_few_or_many() {
        let few = [sel("AAPL"), sel("FX.*"), sel("*")];
        let many: Vec<Selector> = (0..40)
            .map(|i| sel(&format!("T{i}")))
            .chain(few.iter().cloned())
            .collect();
        for named in [Named::new(&few), Named::new(&many)] {
            for key in ["AAPL", "FX.*", "*"] {
                assert!(named.contains(key), "{key}");
            }
            for key in ["AAP", "FX.", "FX", "FX.**", "AAPL*", "**", ""] {
                assert!(!named.contains(key), "{key}");
            }
        }
        assert!(matches!(Named::new(&few), Named::Few(_)));
        assert!(matches!(Named::new(&many), Named::Many(_)));
    }

    #[test]
    fn repeats_count_once_in_order_and_the_first_bad_topic_is_named() {
        let topics = |v: &[&str]| {
            v.iter()
                .map(|s| Cow::Owned(s.to_string()))
                .collect::<Vec<_>>()
        };
        let short = topics(&["B", "A", "B", "A*", "A"]);
        assert_eq!(
            unique_selectors(&short, &mut TopicNames::default(), true).unwrap(),
            [sel("B"), sel("A"), sel("A*")]
        );
        let mut long: Vec<Cow<'_, str>> = (0..30).map(|i| format!("T{}", i % 20).into()).collect();
        long.push("T0".into());
        let unique = unique_selectors(&long, &mut TopicNames::default(), true).unwrap();
        assert_eq!(unique.len(), 20);
        assert_eq!(unique[0], sel("T0"));
        for bad in [topics(&["A", "bad topic", "also bad"]), {
            let mut v = long.clone();
            v.push("bad topic".into());
            v.push("also bad".into());
            v
        }] {
            assert_eq!(
                unique_selectors(&bad, &mut TopicNames::default(), true),
                Err("bad topic")
            );
        }
    }

    #[test]
    fn texts_are_shared_only_by_requests_that_can_pass() {
        let topics = |v: &[&str]| {
            v.iter()
                .map(|s| Cow::Owned(s.to_string()))
                .collect::<Vec<_>>()
        };
        let mut names = TopicNames::default();
        // A bad topic anywhere: nothing enters the table.
        let with_bad = topics(&["A", "B", "bad topic"]);
        let refused = unique_selectors(&with_bad, &mut names, true);
        assert_eq!(refused, Err("bad topic"));
        assert_eq!(names.len(), 0);
        // Not shared (near the cap): its own texts.
        let own = unique_selectors(&topics(&["A"]), &mut names, false).unwrap();
        assert_eq!(names.len(), 0);
        let shared = unique_selectors(&topics(&["A"]), &mut names, true).unwrap();
        let again = unique_selectors(&topics(&["A"]), &mut names, true).unwrap();
        let text = |s: &Selector| match s {
            Selector::Exact(t) => t.text().clone(),
            Selector::Prefix(t) => t.clone(),
        };
        assert!(std::sync::Arc::ptr_eq(&text(&shared[0]), &text(&again[0])));
        assert!(!std::sync::Arc::ptr_eq(&text(&own[0]), &text(&shared[0])));
        assert_eq!(names.len(), 1);
    }
}
