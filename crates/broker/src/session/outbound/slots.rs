//! Conflation slots: while a reader is behind, each topic keeps only its
//! newest pending quote (an `Arc`: memory bounded by the number of topics,
//! whatever the feed rate), and topics leave oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::OutFrame;

/// Topics with a conflated quote, oldest first, and the quotes.
pub(super) struct Slots {
    order: VecDeque<Arc<str>>,
    newest: HashMap<Arc<str>, OutFrame>,
    /// When conflation began (for the `disconnect` policy).
    pub since: Instant,
}

impl Slots {
    pub fn new(now: Instant) -> Slots {
        Slots {
            order: VecDeque::new(),
            newest: HashMap::new(),
            since: now,
        }
    }

    /// Keeps `frame` as `topic`'s newest; true when it replaced one (that
    /// one will now never be sent).
    pub fn put(&mut self, topic: Arc<str>, frame: OutFrame) -> bool {
        let replaced = self.newest.insert(topic.clone(), frame).is_some();
        if !replaced {
            self.order.push_back(topic);
        }
        replaced
    }

    /// The oldest topic's quote, taken out.
    pub fn take_oldest(&mut self) -> Option<(Arc<str>, OutFrame)> {
        while let Some(topic) = self.order.pop_front() {
            if let Some(frame) = self.newest.remove(&topic) {
                return Some((topic, frame));
            }
        }
        None
    }

    /// Puts back what [`Slots::take_oldest`] took (it did not fit): oldest
    /// again.
    pub fn put_back(&mut self, topic: Arc<str>, frame: OutFrame) {
        self.newest.insert(topic.clone(), frame);
        self.order.push_front(topic);
    }

    /// Keeps only the topics for which `keep` holds; true when none is
    /// left.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) -> bool {
        self.newest.retain(|topic, _| keep(topic));
        let newest = &self.newest;
        self.order.retain(|topic| newest.contains_key(topic));
        self.newest.is_empty()
    }
}
