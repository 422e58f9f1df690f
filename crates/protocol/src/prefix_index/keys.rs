//! The text of an index key: a selector as written (`"AAPL"`, `"FX.*"`),
//! made on the stack for lookups and turned back into a selector.

use std::sync::Arc;

use crate::topic::{Selector, MAX_TOPIC_LEN};
use crate::topic_name::{text_hash, KeyText, TopicName};

/// The key of `selector` as written, on the stack (no allocation).
pub(super) struct KeyBuf {
    buf: [u8; MAX_TOPIC_LEN + 1],
    len: usize,
}

impl KeyBuf {
    pub(super) fn prefix(prefix: &str) -> Option<KeyBuf> {
        let mut buf = [0u8; MAX_TOPIC_LEN + 1];
        let len = prefix.len() + 1;
        buf.get_mut(..prefix.len())?
            .copy_from_slice(prefix.as_bytes());
        *buf.get_mut(prefix.len())? = b'*';
        Some(KeyBuf { buf, len })
    }

    pub(super) fn as_str(&self) -> &str {
        // A str prefix plus '*' is valid UTF-8; the fallback is unreachable.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// The key of a selector as written: an exact topic's name (its hash
/// made), or a pattern's text on the stack (hashed if a hash map asks).
pub(super) enum SelectorKey<'a> {
    Topic(&'a TopicName),
    Pattern(KeyBuf),
}

impl<'a> SelectorKey<'a> {
    pub(super) fn of(selector: &'a Selector) -> Option<SelectorKey<'a>> {
        match selector {
            Selector::Exact(topic) => Some(SelectorKey::Topic(topic)),
            Selector::Prefix(prefix) => KeyBuf::prefix(prefix).map(SelectorKey::Pattern),
        }
    }
}

impl KeyText for SelectorKey<'_> {
    fn text(&self) -> &str {
        match self {
            SelectorKey::Topic(topic) => topic,
            SelectorKey::Pattern(key) => key.as_str(),
        }
    }

    fn text_hash(&self) -> u64 {
        match self {
            SelectorKey::Topic(topic) => topic.hash_value(),
            SelectorKey::Pattern(key) => text_hash(key.as_str()),
        }
    }
}

/// The selector a stored key denotes; an exact key's text is moved, not
/// copied (a closing subscriber's entries, ten per dashboard).
pub(super) fn selector_of_key(key: Arc<str>) -> Selector {
    if key.ends_with('*') {
        selector_of(&key)
    } else {
        Selector::Exact(TopicName::new(key))
    }
}

/// The selector a key denotes.
pub fn selector_of(key: &str) -> Selector {
    match key.strip_suffix('*') {
        Some(prefix) => Selector::Prefix(prefix.into()),
        None => Selector::Exact(TopicName::from(key)),
    }
}
