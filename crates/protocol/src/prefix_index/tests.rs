use super::*;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn matching_is_most_specific_first() {
    let mut index = PrefixIndex::new();
    for (s, v) in [("*", 0), ("A*", 1), ("AAP*", 3), ("AAPL", 9), ("B*", 5)] {
        index.insert(&sel(s), v);
    }
    let found: Vec<i32> = index.matching("AAPL").map(|(_, v)| *v).collect();
    assert_eq!(found, [9, 3, 1, 0]);
    let keys: Vec<&str> = index.matching("AAPX").map(|(k, _)| &**k).collect();
    assert_eq!(keys, ["AAP*", "A*", "*"]);
    assert_eq!(index.most_specific("MSFT"), Some(&0));
    index.remove(&sel("*"));
    assert!(!index.matches("MSFT"));
    assert_eq!(index.most_specific("AAPL"), Some(&9));
}

#[test]
fn a_prefix_key_is_not_an_exact_topic() {
    let mut index = PrefixIndex::new();
    index.insert(&sel("AB*"), 1);
    assert_eq!(index.exact("AB*"), None);
    assert_eq!(index.get(&sel("AB*")), Some(&1));
    assert_eq!(index.get(&sel("AB")), None);
    // A topic never contains '*', but a lookup with one finds nothing odd.
    assert_eq!(index.matching("AB*").count(), 1);
}

#[test]
fn keys_under_is_a_range_in_an_ordered_index() {
    for mut index in [PrefixIndex::ordered(), PrefixIndex::new()] {
        for t in ["AAPL", "AAL", "AB", "B", "A"] {
            index.insert(&sel(t), ());
        }
        index.insert(&sel("A*"), ());
        let mut under: Vec<&str> = index.keys_under("AA").map(|k| &**k).collect();
        under.sort();
        assert_eq!(under, ["AAL", "AAPL"]);
        assert_eq!(index.keys_under("").count(), 5);
        index.remove(&sel("AAL"));
        assert_eq!(index.keys_matched(&sel("A*")).count(), 3);
    }
}

#[test]
fn a_range_walked_in_slices_sees_each_key_once_in_order() {
    for mut index in [PrefixIndex::ordered(), PrefixIndex::new()] {
        for t in ["B", "AAPL", "AAL", "AB", "A", "AAA", "ABC"] {
            index.insert(&sel(t), ());
        }
        let mut walked: Vec<String> = Vec::new();
        let mut after = String::new();
        loop {
            let slice: Vec<String> = index
                .keys_under_after("A", &after)
                .take(2)
                .map(|k| k.to_string())
                .collect();
            let Some(last) = slice.last() else { break };
            after = last.clone();
            walked.extend(slice);
        }
        assert_eq!(walked, ["A", "AAA", "AAL", "AAPL", "AB", "ABC"]);
        let rest: Vec<&str> = index.keys_under_after("AA", "AAL").map(|k| &**k).collect();
        assert_eq!(rest, ["AAPL"]);
    }
}

#[test]
fn get_or_insert_reports_insertion() {
    let mut index = PrefixIndex::new();
    let (v, inserted) = index.get_or_insert_with(&sel("X*"), || 1);
    assert!(inserted);
    *v += 1;
    let (v, inserted) = index.get_or_insert_with(&sel("X*"), || 7);
    assert!(!inserted);
    assert_eq!(*v, 2);
    let drained: Vec<(Selector, i32)> = index.drain().collect();
    assert_eq!(drained, [(sel("X*"), 2)]);
    assert!(index.is_empty() && !index.matches("XY"));
}
