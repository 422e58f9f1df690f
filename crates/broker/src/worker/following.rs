//! What a worker follows: how many entries of its connections name each
//! selector (the router hears only about the first and the last) and, per
//! exact topic, the newest quote the worker has had of it — so a subscribe
//! of topics the worker already follows, each with its newest known, is
//! answered here, with its snapshot, and no round trip to the router (a reconnect storm's common
//! case: thousands of dashboards asking for the same topics).
//!
//! Why the worker's newest quote is the router's snapshot. While the
//! worker follows a topic the router sends it every quote of the topic,
//! in order, on the channel that carries its activations (a full queue
//! conflates to the newest, never across an activation, never dropping
//! it). A plain snapshot's activation carries the router's last value at
//! that point of the channel, and every later quote of the topic follows
//! it. So once such an activation has come, for a subscribe made while
//! the worker already followed the topic, the worker's newest quote is
//! what the router would answer at the same point of the channel. A topic
//! given up and followed again starts over: the router sent nothing in
//! between, so its newest stays unknown until the next such activation.
//! Subscribe numbers (`stamp`) tell the two apart.

use std::sync::Arc;

use tickwire_protocol::{KeyText, PrefixIndex, Selector};

use crate::messages::{LocalQuote, SharedQuote};

/// One followed selector.
struct Followed {
    /// Entries of this worker's connections naming it.
    entries: u32,
    /// The number of the subscribe that started following it.
    since: u64,
    /// For an exact topic, its newest quote if known.
    newest: Newest,
}

enum Newest {
    Unknown,
    /// Known: the topic has no quote yet.
    NoQuoteYet,
    Quote(LocalQuote),
}

#[derive(Default)]
pub struct Following {
    followed: PrefixIndex<Followed>,
    /// The number the next subscribe gets.
    next_stamp: u64,
}

impl Following {
    /// A number for the subscribe being made, ordering it with the others.
    pub fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    /// Counts one more entry for `selector`, named by subscribe `stamp`;
    /// true if it is this worker's first.
    pub fn add_ref(&mut self, selector: &Selector, stamp: u64) -> bool {
        let (followed, _) = self.followed.get_or_insert_with(selector, || Followed {
            entries: 0,
            since: stamp,
            newest: Newest::Unknown,
        });
        followed.entries += 1;
        followed.entries == 1
    }

    /// Counts one entry less; true if it was this worker's last (what it
    /// knew of the topic goes with it).
    pub fn remove_ref(&mut self, selector: &Selector) -> bool {
        match self.followed.get_mut(selector) {
            Some(followed) if followed.entries > 1 => {
                followed.entries -= 1;
                false
            }
            Some(_) => {
                self.followed.remove(selector);
                true
            }
            None => false,
        }
    }

    /// A live quote reached this worker: the newest of its topic, where
    /// that is known.
    pub fn on_quote(&mut self, quote: &LocalQuote) {
        if let Some(followed) = self.followed.exact_mut(&quote.topic) {
            if !matches!(followed.newest, Newest::Unknown) {
                followed.newest = Newest::Quote(quote.clone());
            }
        }
    }

    /// The activation of plain-snapshot subscribe `stamp`, naming
    /// `selectors`, came with `snapshots` (all of them): the newest of
    /// each exact topic followed since `stamp` or before.
    pub fn seed(&mut self, stamp: u64, selectors: &[Selector], snapshots: &[Arc<SharedQuote>]) {
        for selector in selectors {
            if let Selector::Exact(topic) = selector {
                if let Some(followed) = self.followed_since(topic, stamp) {
                    followed.newest = Newest::NoQuoteYet;
                }
            }
        }
        for quote in snapshots {
            if let Some(followed) = self.followed_since(&quote.topic, stamp) {
                // A worker-local handle: the snapshots answered from it are
                // counted here, not on the router's shared count.
                followed.newest = Newest::Quote(LocalQuote::from(quote.clone()));
            }
        }
    }

    fn followed_since<K: KeyText + ?Sized>(
        &mut self,
        topic: &K,
        stamp: u64,
    ) -> Option<&mut Followed> {
        self.followed
            .exact_mut(topic)
            .filter(|followed| followed.since <= stamp)
    }

    /// The snapshot of `selectors` as the router would answer it now, if
    /// every one is an exact topic whose newest is known here.
    pub fn snapshots(&self, selectors: &[Selector]) -> Option<Vec<LocalQuote>> {
        let mut quotes = Vec::with_capacity(selectors.len());
        for selector in selectors {
            let Selector::Exact(topic) = selector else {
                return None;
            };
            match &self.followed.exact(topic)?.newest {
                Newest::Unknown => return None,
                Newest::NoQuoteYet => {}
                Newest::Quote(quote) => quotes.push(quote.clone()),
            }
        }
        Some(quotes)
    }
}

#[cfg(test)]
mod tests;
