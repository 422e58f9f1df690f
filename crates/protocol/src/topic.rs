//! Topic and subscription-pattern syntax.
//!
//! A topic is 1..=64 bytes of `A-Z a-z 0-9 . _ - : /`. A pattern is a topic
//! prefix followed by a final `*` (`"*"` alone matches everything); the
//! 64-byte limit covers the whole pattern, `*` included.

/// Longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 64;

fn is_topic_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/')
}

/// True for an exact topic (no `*`).
pub fn is_valid_topic(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOPIC_LEN && s.bytes().all(is_topic_byte)
}

/// What a subscriber asked for: one exact topic or every topic with a prefix.
///
/// Ordering/hashing are derived so the broker can keep selectors in maps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    Exact(String),
    /// The text before the trailing `*`; empty for `"*"`.
    Prefix(String),
}

impl Selector {
    /// Parses a topic or pattern; `None` if it breaks the syntax.
    pub fn parse(s: &str) -> Option<Selector> {
        if s.is_empty() || s.len() > MAX_TOPIC_LEN {
            return None;
        }
        match s.strip_suffix('*') {
            // The prefix may be empty ("*"), so check bytes directly rather
            // than with is_valid_topic, which requires at least one byte.
            Some(prefix) if prefix.bytes().all(is_topic_byte) => {
                Some(Selector::Prefix(prefix.to_owned()))
            }
            Some(_) => None,
            None if is_valid_topic(s) => Some(Selector::Exact(s.to_owned())),
            None => None,
        }
    }

    /// Case-sensitive match of a concrete topic.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Selector::Exact(t) => t == topic,
            Selector::Prefix(p) => topic.starts_with(p.as_str()),
        }
    }

    /// The text the subscriber wrote: `"AAPL"`, `"NASDAQ.*"`, `"*"`.
    pub fn as_written(&self) -> String {
        match self {
            Selector::Exact(t) => t.clone(),
            Selector::Prefix(p) => format!("{p}*"),
        }
    }

    /// Higher is more specific: every Exact beats every Prefix; a longer
    /// prefix beats a shorter one. Used to pick the tightest rate limit.
    pub fn specificity(&self) -> usize {
        match self {
            Selector::Exact(_) => usize::MAX,
            // A prefix is at most 63 bytes, so it never reaches usize::MAX.
            Selector::Prefix(p) => p.len(),
        }
    }
}
