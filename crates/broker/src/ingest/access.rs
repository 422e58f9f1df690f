//! Who may publish what: producer tokens (`[ingest] tokens`, every topic;
//! `[[ingest.producers]]`, each with its own topic grants), checked in
//! constant time.

use std::sync::Arc;

use subtle::{Choice, ConstantTimeEq};
use tickwire_protocol::{PrefixIndex, Selector};

use crate::config::IngestConfig;

/// What an admitted producer may publish.
#[derive(Clone)]
pub enum Grants {
    /// Every topic (a v1 token, or no tokens configured).
    All,
    /// Topics covered by these grants (exact topics and `PREFIX*`).
    Topics(Arc<PrefixIndex<()>>),
}

impl Grants {
    /// Topic `topic` is covered: grant `topic`, or a grant `P*` with `topic`
    /// starting with `P`.
    pub fn covers(&self, topic: &str) -> bool {
        match self {
            Grants::All => true,
            Grants::Topics(index) => index.matches(topic),
        }
    }
}

/// The configured tokens, ready to check.
pub struct ProducerAuth {
    tokens: Vec<(Box<[u8]>, Grants)>,
}

impl ProducerAuth {
    pub fn from_config(config: &IngestConfig) -> ProducerAuth {
        let mut tokens: Vec<(Box<[u8]>, Grants)> = config
            .tokens
            .iter()
            .map(|t| (t.as_bytes().into(), Grants::All))
            .collect();
        for producer in &config.producers {
            let mut index = PrefixIndex::new();
            // Validated at start: every grant parses.
            for selector in producer.topics.iter().filter_map(|t| Selector::parse(t)) {
                index.insert(&selector, ());
            }
            tokens.push((
                producer.token.as_bytes().into(),
                Grants::Topics(Arc::new(index)),
            ));
        }
        ProducerAuth { tokens }
    }

    /// True when producers must say `Hello` with a token first.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The grants of `token`, if it is one of ours. Every configured token
    /// is compared, each in time independent of where they differ, so the
    /// time taken tells nothing about how close a guess was.
    pub fn check(&self, token: &str) -> Option<Grants> {
        let mut found: Option<Grants> = None;
        for (known, grants) in &self.tokens {
            let hit = ct_eq(known, token.as_bytes());
            if bool::from(hit) && found.is_none() {
                found = Some(grants.clone());
            }
        }
        found
    }
}

/// Constant-time equality of two byte strings: compares over the longer
/// length (the shorter padded), so neither contents nor the position of a
/// difference show in the timing; only the lengths' equality is combined in.
fn ct_eq(a: &[u8], b: &[u8]) -> Choice {
    let len = a.len().max(b.len());
    let mut same = (a.len() as u64).ct_eq(&(b.len() as u64));
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        same &= x.ct_eq(&y);
    }
    same
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProducerConfig;

    #[test]
    fn tokens_and_their_grants() {
        let config = IngestConfig {
            tokens: vec!["all-topics".into()],
            producers: vec![ProducerConfig {
                token: "nasdaq-feed".into(),
                topics: vec!["NASDAQ.*".into(), "SPY".into()],
            }],
            ..IngestConfig::default()
        };
        let auth = ProducerAuth::from_config(&config);
        assert!(auth.required());
        assert!(matches!(auth.check("all-topics"), Some(Grants::All)));
        let grants = auth.check("nasdaq-feed").expect("a known token");
        assert!(grants.covers("NASDAQ.AAPL") && grants.covers("SPY"));
        assert!(!grants.covers("NYSE.IBM") && !grants.covers("SPY2") && !grants.covers("NASDAQ"));
        for wrong in [
            "",
            "nasdaq-fee",
            "nasdaq-feed ",
            "NASDAQ-FEED",
            "all-topicsX",
        ] {
            assert!(auth.check(wrong).is_none(), "{wrong:?}");
        }
        assert!(!ProducerAuth::from_config(&IngestConfig::default()).required());
    }

    #[test]
    fn constant_time_equality_is_equality() {
        for (a, b, eq) in [
            (&b""[..], &b""[..], true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"ab\0", b"ab", false),
            (b"", b"\0", false),
        ] {
            assert_eq!(bool::from(ct_eq(a, b)), eq, "{a:?} {b:?}");
        }
    }
}
