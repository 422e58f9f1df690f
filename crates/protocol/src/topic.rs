//! Topic and subscription-pattern syntax.
//!
//! A topic is 1..=64 bytes of `A-Z a-z 0-9 . _ - : /`. A pattern is a topic
//! prefix followed by a final `*` (`"*"` alone matches everything); the
//! 64-byte limit covers the whole pattern, `*` included.

use std::borrow::Cow;
use std::sync::Arc;

pub use crate::topic_name::TopicName;

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
/// The text is shared (`Arc<str>`, an exact topic's with its hash in a
/// [`TopicName`]): a selector is handed from the request to the
/// subscription, the router command, the activation and the route index,
/// and a clone is then a count, not an allocation (a reconnect storm made
/// ~50 of them per 10-topic subscribe).
// Equality is by hand (the same relation as derived, compared the cheap
// way, see `same_text`), so the derived `Hash` agrees with it.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Clone, Debug, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// The topic, with its hash made once (see `topic_name.rs`).
    Exact(TopicName),
    /// The text before the trailing `*`; empty for `"*"`.
    Prefix(Arc<str>),
}

impl PartialEq for Selector {
    fn eq(&self, other: &Selector) -> bool {
        match (self, other) {
            (Selector::Exact(a), Selector::Exact(b)) => a == b,
            (Selector::Prefix(a), Selector::Prefix(b)) => same_text(a, b),
            _ => false,
        }
    }
}

/// `a == b` for topic text, the cheap way round: lengths, then the same
/// bytes (a worker's subscriptions share their texts), then the last
/// bytes, then the rest. A subscriber's topics are often the same length
/// and differ at the end (`T0042`, `T0017`), where `==` calls `memcmp`
/// for each comparison (8.7% of a reconnect storm's instructions, in the
/// scans of a connection's few entries and a request's few selectors).
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && (std::ptr::eq(a, b) || (a.last() == b.last() && a == b))
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
                Some(Selector::Prefix(prefix.into()))
            }
            Some(_) => None,
            None if is_valid_topic(s) => Some(Selector::Exact(TopicName::from(s))),
            None => None,
        }
    }

    /// [`Selector::parse`] with the text (the prefix's, for a pattern) made
    /// by `name`: a caller sharing texts among many selectors passes its
    /// interner.
    pub fn parse_with(s: &str, name: impl FnOnce(&str) -> TopicName) -> Option<Selector> {
        Selector::is_valid(s).then(|| Selector::of_valid_with(s, name))
    }

    /// The selector `s` denotes, its text made by `name`, for `s` that
    /// [`Selector::is_valid`] has accepted: not checked again (a request's
    /// topics are all checked before any is made, so that a refused request
    /// shares no text, and a third check was ~0.7% of a reconnect storm).
    /// Given text it never accepted, it makes a selector of it anyway: a
    /// caller's mistake, not a panic.
    pub fn of_valid_with(s: &str, name: impl FnOnce(&str) -> TopicName) -> Selector {
        match s.strip_suffix('*') {
            Some(prefix) => Selector::Prefix(name(prefix).into_text()),
            None => Selector::Exact(name(s)),
        }
    }

    /// Whether `s` parses (what [`Selector::parse`] checks, without making
    /// the selector).
    pub fn is_valid(s: &str) -> bool {
        if s.is_empty() || s.len() > MAX_TOPIC_LEN {
            return false;
        }
        match s.strip_suffix('*') {
            Some(prefix) => prefix.bytes().all(is_topic_byte),
            None => is_valid_topic(s),
        }
    }

    /// Case-sensitive match of a concrete topic.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Selector::Exact(t) => &**t == topic,
            Selector::Prefix(p) => topic.starts_with(&**p),
        }
    }

    /// The text the subscriber wrote: `"AAPL"`, `"NASDAQ.*"`, `"*"`.
    pub fn as_written(&self) -> Cow<'_, str> {
        match self {
            Selector::Exact(t) => Cow::Borrowed(t),
            Selector::Prefix(p) => Cow::Owned(format!("{p}*")),
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
