//! Topic and pattern syntax, Selector matching and specificity.

use tickwire_protocol::topic::{is_valid_topic, MAX_TOPIC_LEN};
use tickwire_protocol::Selector;

fn exact(s: &str) -> Selector {
    Selector::Exact(s.into())
}
fn prefix(s: &str) -> Selector {
    Selector::Prefix(s.into())
}

#[test]
fn length_limits_for_exact_topics() {
    assert_eq!(MAX_TOPIC_LEN, 64);
    assert!(!is_valid_topic(""));
    assert!(is_valid_topic("A"));
    let at = "a".repeat(64);
    let over = "a".repeat(65);
    assert!(is_valid_topic(&at));
    assert!(!is_valid_topic(&over));
    assert_eq!(Selector::parse(&at), Some(exact(&at)));
    assert_eq!(Selector::parse(&over), None);
    assert_eq!(Selector::parse(""), None);
}

#[test]
fn length_limits_for_patterns_count_the_star() {
    let at = format!("{}*", "a".repeat(63));
    let over = format!("{}*", "a".repeat(64));
    assert_eq!(Selector::parse(&at), Some(prefix(&"a".repeat(63))));
    assert_eq!(Selector::parse(&over), None);
}

#[test]
fn every_allowed_character_class() {
    let allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:/";
    for c in allowed.chars() {
        let s = c.to_string();
        assert!(is_valid_topic(&s), "{c:?}");
        assert_eq!(Selector::parse(&s), Some(exact(&s)));
        assert_eq!(Selector::parse(&format!("{c}*")), Some(prefix(&s)));
    }
    assert!(is_valid_topic("NASDAQ:AAPL/x_y-z.1"));
}

#[test]
fn every_forbidden_byte_is_rejected() {
    let allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:/";
    for b in 0u8..=127 {
        let c = b as char;
        if allowed.contains(c) {
            continue;
        }
        let s = format!("A{c}B");
        assert!(!is_valid_topic(&s), "{b}");
        if c != '*' {
            assert_eq!(Selector::parse(&s), None, "{b}");
            assert_eq!(Selector::parse(&format!("A{c}*")), None, "{b}");
        }
    }
    for s in ["é", "A B", "日本", "\u{0}", "a\tb", "AAPL\n"] {
        assert!(!is_valid_topic(s));
        assert_eq!(Selector::parse(s), None);
    }
}

#[test]
fn star_only_last() {
    assert_eq!(Selector::parse("*"), Some(prefix("")));
    assert_eq!(Selector::parse("NASDAQ.*"), Some(prefix("NASDAQ.")));
    for bad in ["**", "*A", "A*B", "A**", "*.*"] {
        assert_eq!(Selector::parse(bad), None, "{bad}");
    }
    assert!(!is_valid_topic("A*"));
    assert!(!is_valid_topic("*"));
}

#[test]
fn matching_is_prefix_or_exact_and_case_sensitive() {
    let all = Selector::parse("*").unwrap();
    let nas = Selector::parse("NASDAQ.*").unwrap();
    let aapl = Selector::parse("AAPL").unwrap();
    assert!(all.matches("X"));
    assert!(nas.matches("NASDAQ.AAPL"));
    assert!(nas.matches("NASDAQ."));
    assert!(!nas.matches("NASDAQ"));
    assert!(!nas.matches("nasdaq.AAPL"));
    assert!(!nas.matches("NYSE.IBM"));
    assert!(aapl.matches("AAPL"));
    assert!(!aapl.matches("AAPL2"));
    assert!(!aapl.matches("aapl"));
    assert!(!aapl.matches("AAP"));
}

#[test]
fn as_written_round_trips() {
    for s in ["AAPL", "NASDAQ.*", "*", "a:b/c-d_e.*"] {
        let sel = Selector::parse(s).unwrap();
        assert_eq!(sel.as_written(), s);
        assert_eq!(Selector::parse(&sel.as_written()), Some(sel));
    }
}

#[test]
fn specificity_orders_exact_over_longer_over_shorter() {
    let e = exact("A").specificity();
    let long = Selector::parse(&format!("{}*", "a".repeat(63)))
        .unwrap()
        .specificity();
    let mid = prefix("NASDAQ.").specificity();
    let all = prefix("").specificity();
    assert!(e > long);
    assert!(long > mid);
    assert!(mid > all);
    assert_eq!(
        exact("A").specificity(),
        exact(&"Z".repeat(64)).specificity()
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_agrees_with_syntax(s in "[A-Za-z0-9._:/* -]{0,70}") {
            let valid_chars = |t: &str| t.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:/".contains(&b));
            let expect = if s.is_empty() || s.len() > 64 {
                None
            } else if let Some(p) = s.strip_suffix('*') {
                valid_chars(p).then(|| Selector::Prefix(p.into()))
            } else {
                valid_chars(&s).then(|| Selector::Exact(s.as_str().into()))
            };
            prop_assert_eq!(Selector::parse(&s), expect);
        }

        #[test]
        fn prefix_matches_iff_starts_with(p in "[A-Z.]{0,5}", t in "[A-Z.]{1,8}") {
            let sel = Selector::parse(&format!("{p}*")).unwrap();
            prop_assert_eq!(sel.matches(&t), t.starts_with(&p));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = is_valid_topic(&s);
            if let Some(sel) = Selector::parse(&s) {
                prop_assert_eq!(sel.as_written(), s);
            }
        }
    }
}
