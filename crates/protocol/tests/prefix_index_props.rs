//! PrefixIndex against a naive model: after any sequence of inserts and
//! removes, `matching`, `most_specific` and `keys_under` agree with a linear
//! scan over a plain map of selectors.

use std::collections::HashMap;

use proptest::prelude::*;
use tickwire_protocol::{PrefixIndex, Selector};

/// Short names over a tiny alphabet, so prefixes overlap a lot.
fn name() -> impl Strategy<Value = String> {
    "[AB.]{0,4}"
}

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        "[AB.]{1,4}".prop_map(|t| Selector::Exact(t.as_str().into())),
        name().prop_map(|p| Selector::Prefix(p.into())),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Selector, u32),
    Remove(Selector),
    /// `get_or_insert_with`, then the value bumped through the reference.
    GetOrInsert(Selector, u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (selector(), any::<u32>()).prop_map(|(s, v)| Op::Insert(s, v)),
        selector().prop_map(Op::Remove),
        (selector(), 0..1000u32).prop_map(|(s, v)| Op::GetOrInsert(s, v)),
    ]
}

proptest! {
    #[test]
    fn agrees_with_a_linear_scan(
        ops in prop::collection::vec(op(), 0..80),
        topics in prop::collection::vec("[AB.]{1,5}", 1..10),
        ordered in any::<bool>(),
    ) {
        let mut index = if ordered { PrefixIndex::ordered() } else { PrefixIndex::new() };
        let mut model: HashMap<Selector, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(s, v) => prop_assert_eq!(index.insert(&s, v), model.insert(s, v)),
                Op::Remove(s) => prop_assert_eq!(index.remove(&s), model.remove(&s)),
                Op::GetOrInsert(s, v) => {
                    let absent = !model.contains_key(&s);
                    let want = model.entry(s.clone()).or_insert(v);
                    let (got, inserted) = index.get_or_insert_with(&s, || v);
                    prop_assert_eq!((*got, inserted), (*want, absent));
                    *got += 1;
                    *want += 1;
                }
            }
        }
        prop_assert_eq!(index.len(), model.len());
        for topic in &topics {
            // Most specific first: exact, then longer prefixes before shorter.
            let mut expected: Vec<(&Selector, u32)> =
                model.iter().filter(|(s, _)| s.matches(topic)).map(|(s, v)| (s, *v)).collect();
            expected.sort_by_key(|(s, _)| std::cmp::Reverse(s.specificity()));
            let got: Vec<(String, u32)> =
                index.matching(topic).map(|(k, v)| (k.to_string(), *v)).collect();
            let want: Vec<(String, u32)> =
                expected.iter().map(|(s, v)| (s.as_written().into_owned(), *v)).collect();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(index.most_specific(topic), want.first().map(|(_, v)| v));

            let mut under: Vec<String> = index.keys_under(topic).map(|k| k.to_string()).collect();
            under.sort();
            let mut want_under: Vec<String> = model
                .keys()
                .filter_map(|s| match s {
                    Selector::Exact(t) if t.starts_with(topic.as_str()) => Some(t.to_string()),
                    _ => None,
                })
                .collect();
            want_under.sort();
            prop_assert_eq!(under, want_under);
        }
    }
}

proptest! {
    /// The scans' cheap equality is plain equality, and a selector's is
    /// its kind's and text's.
    #[test]
    fn same_text_and_selector_equality_are_plain_equality(a in selector(), b in selector()) {
        let text = |s: &Selector| match s {
            Selector::Exact(t) => t.to_string(),
            Selector::Prefix(t) => t.to_string(),
        };
        let same_kind = matches!(
            (&a, &b),
            (Selector::Exact(_), Selector::Exact(_)) | (Selector::Prefix(_), Selector::Prefix(_))
        );
        prop_assert_eq!(
            tickwire_protocol::topic::same_text(&text(&a), &text(&b)),
            text(&a) == text(&b)
        );
        prop_assert_eq!(a == b, same_kind && text(&a) == text(&b));
        prop_assert_eq!(a == b, a.cmp(&b) == std::cmp::Ordering::Equal);
    }
}
