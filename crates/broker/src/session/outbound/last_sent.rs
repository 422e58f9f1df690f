//! Field deltas' one piece of per-connection state: the seq of the last
//! quote of each topic that entered the connection's ordered lane (what the
//! client will have received last: that lane loses nothing but the quotes
//! of a topic being unsubscribed, which clear the topic here too).

use std::collections::HashMap;
use std::sync::Arc;

use crate::encodings::Wire;
use crate::messages::LocalQuote;

/// Topics remembered per connection. Past it, a topic not yet remembered
/// gets full quotes only: the memory stays bounded (~40 bytes a topic)
/// whatever a `*` subscription covers.
pub const MAX_DELTA_TOPICS: usize = 4_096;

#[derive(Default)]
pub struct LastSent {
    seqs: HashMap<Arc<str>, u64>,
}

impl LastSent {
    /// `wire` for `quote` entering the ordered lane: a delta only if it
    /// may be one and the client's last quote of its topic is `seq - 1`.
    pub fn decide(&self, quote: &LocalQuote, wire: Wire) -> Wire {
        let follows = || {
            quote.changed.is_some()
                && quote
                    .seq
                    .checked_sub(1)
                    .is_some_and(|prev| self.seqs.get(&*quote.topic) == Some(&prev))
        };
        Wire {
            delta: wire.delta && follows(),
            ..wire
        }
    }

    /// `quote` entered the ordered lane (full or delta).
    pub fn record(&mut self, quote: &LocalQuote) {
        if let Some(seq) = self.seqs.get_mut(&*quote.topic) {
            *seq = quote.seq;
        } else if self.seqs.len() < MAX_DELTA_TOPICS {
            self.seqs.insert(quote.topic.clone(), quote.seq);
        }
    }

    /// Forgets the topics for which `keep` is false (unsubscribed).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.seqs.retain(|topic, _| keep(topic));
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }
}
