//! A topic's text with its hash, computed once.
//!
//! A subscribe's topic is looked up in six hash maps on its way (the
//! worker's shared texts, its route index and what it follows, at
//! subscribe, activation and close): SipHash-ing the text each time was
//! 14% of a reconnect storm's instructions. The hash is now computed when
//! the text is made (parsed or taken from a worker's shared texts) and
//! travels with it in [`crate::Selector::Exact`]; every map keyed by topic
//! text takes it from there.
//!
//! The hash stays keyed SipHash (`std`'s `RandomState`, random per
//! process): the maps are shared by every connection of a worker and
//! keyed by text any client may send, so a collision attack must stay out
//! of reach (`docs/decisions.md`). One key for the whole process is what
//! lets a hash made in one place be used in another; it never leaves the
//! process.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::topic::same_text;

/// The process's one hash key for topic texts.
fn hash_key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

/// The hash of `text` under the process's key: what every map keyed by
/// topic or selector text uses.
pub fn text_hash(text: &str) -> u64 {
    hash_key().hash_one(text)
}

/// A topic's text, shared, with its [`text_hash`]. Equality and order are
/// the text's; a clone is a count.
#[derive(Clone)]
pub struct TopicName {
    text: Arc<str>,
    hash: u64,
}

impl TopicName {
    /// Hashes `text` (once: every later lookup reuses it).
    pub fn new(text: Arc<str>) -> TopicName {
        let hash = text_hash(&text);
        TopicName { text, hash }
    }

    /// The shared text.
    pub fn text(&self) -> &Arc<str> {
        &self.text
    }

    pub fn into_text(self) -> Arc<str> {
        self.text
    }

    /// The text's [`text_hash`].
    pub fn hash_value(&self) -> u64 {
        self.hash
    }
}

/// Borrowed text with its [`text_hash`]: for looking one text up in
/// several maps, or more than once, hashing it once.
#[derive(Clone, Copy, Debug)]
pub struct HashedText<'a> {
    text: &'a str,
    hash: u64,
}

impl<'a> HashedText<'a> {
    pub fn new(text: &'a str) -> HashedText<'a> {
        HashedText {
            text,
            hash: text_hash(text),
        }
    }

    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// An owned name of the text, its hash not made again.
    pub fn to_name(&self) -> TopicName {
        TopicName {
            text: Arc::from(self.text),
            hash: self.hash,
        }
    }
}

impl From<&str> for TopicName {
    fn from(text: &str) -> TopicName {
        TopicName::new(text.into())
    }
}

impl From<Arc<str>> for TopicName {
    fn from(text: Arc<str>) -> TopicName {
        TopicName::new(text)
    }
}

impl Deref for TopicName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for TopicName {
    fn eq(&self, other: &TopicName) -> bool {
        self.hash == other.hash && same_text(&self.text, &other.text)
    }
}

impl Eq for TopicName {}

impl PartialOrd for TopicName {
    fn partial_cmp(&self, other: &TopicName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicName {
    fn cmp(&self, other: &TopicName) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl Hash for TopicName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal texts have equal hashes: consistent with `Eq`.
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A key to look up in a map keyed by topic or selector text: its text,
/// and its [`text_hash`] — carried by a [`TopicName`], computed on demand
/// for plain text (only a hash map asks; a short map compares texts).
pub trait KeyText {
    fn text(&self) -> &str;
    fn text_hash(&self) -> u64;
}

impl KeyText for str {
    fn text(&self) -> &str {
        self
    }
    fn text_hash(&self) -> u64 {
        text_hash(self)
    }
}

impl KeyText for String {
    fn text(&self) -> &str {
        self
    }
    fn text_hash(&self) -> u64 {
        text_hash(self)
    }
}

impl KeyText for Arc<str> {
    fn text(&self) -> &str {
        self
    }
    fn text_hash(&self) -> u64 {
        text_hash(self)
    }
}

impl KeyText for HashedText<'_> {
    fn text(&self) -> &str {
        self.text
    }
    fn text_hash(&self) -> u64 {
        self.hash
    }
}

impl KeyText for TopicName {
    fn text(&self) -> &str {
        &self.text
    }
    fn text_hash(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_carries_the_hash_of_its_text() {
        let a = TopicName::from("AAPL");
        let b = TopicName::new(Arc::from(String::from("AAPL")));
        assert_eq!(a, b);
        assert_eq!(a.hash_value(), text_hash("AAPL"));
        assert_eq!(a.text_hash(), "AAPL".text_hash());
        assert_ne!(a, TopicName::from("MSFT"));
        assert!(TopicName::from("A") < TopicName::from("B"));
        assert_eq!(format!("{a} {a:?}"), "AAPL \"AAPL\"");
        let borrowed = HashedText::new("AAPL");
        assert_eq!(borrowed.text_hash(), a.hash_value());
        assert_eq!(borrowed.to_name(), a);
    }
}
