//! Field deltas' one piece of per-connection state: the seq of the last
//! quote of each topic that entered the connection's ordered lane (what the
//! client will have received last: that lane loses nothing but the quotes
//! of a topic being unsubscribed, which clear the topic here too).
//!
//! It is looked up once per delivery, and with a thousand subscribers each
//! lookup is a cache miss, so the table is made for that: keyed by the
//! address of the topic's name (the router gives every quote of a topic the
//! same interned `Arc<str>`), open addressing over 16-byte (address, seq)
//! pairs, so a lookup reads one cache line. The names themselves are kept
//! beside it (touched only when a topic is added or dropped), which also
//! keeps each address from being reused by another topic while it is here;
//! a topic the router re-creates gets a new name and starts from a full
//! quote.

use std::sync::Arc;

use crate::encodings::Wire;
use crate::messages::LocalQuote;

/// Topics remembered per connection. Past it, a topic not yet remembered
/// gets full quotes only: the memory stays bounded (at most 128 KiB of
/// table, ~48 bytes a topic) whatever a `*` subscription covers.
pub const MAX_DELTA_TOPICS: usize = 4_096;

/// Slots while empty; the table doubles past half full.
const FIRST_CAPACITY: usize = 16;

#[derive(Default)]
pub struct LastSent {
    /// (address of the topic's name, seq); address 0 marks a free slot.
    table: Box<[(usize, u64)]>,
    names: Vec<Arc<str>>,
}

fn key(quote: &LocalQuote) -> usize {
    Arc::as_ptr(&quote.topic).cast::<u8>() as usize
}

impl LastSent {
    /// `quote` on `wire`, decided (a delta only if it may be one and the
    /// client's last quote of its topic is `seq - 1`), if `fits` takes it
    /// on that wire: then it counts as entered. Nothing changes otherwise.
    pub fn admit(
        &mut self,
        quote: &LocalQuote,
        wire: Wire,
        fits: impl FnOnce(Wire) -> bool,
    ) -> Option<Wire> {
        let k = key(quote);
        let at = self.find(k);
        let held = at.and_then(|i| self.table.get(i)).filter(|e| e.0 == k);
        let decided = Wire {
            delta: wire.delta
                && quote.changed.is_some()
                && held.is_some_and(|e| e.1.checked_add(1) == Some(quote.seq)),
            ..wire
        };
        if !fits(decided) {
            return None;
        }
        match (at, held.is_some()) {
            (Some(i), true) => {
                if let Some(e) = self.table.get_mut(i) {
                    e.1 = quote.seq;
                }
            }
            _ => self.insert(quote, k),
        }
        Some(decided)
    }

    /// The slot holding `k`, or the free slot where it would go (None
    /// while the table is unallocated).
    fn find(&self, k: usize) -> Option<usize> {
        let mask = self.table.len().checked_sub(1)?;
        let mut i = slot_of(k, mask);
        // Never full (at most half): the probe ends at `k` or a free slot.
        loop {
            match self.table.get(i) {
                Some(&(key, _)) if key == k || key == 0 => return Some(i),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    fn insert(&mut self, quote: &LocalQuote, k: usize) {
        if self.names.len() >= MAX_DELTA_TOPICS {
            return;
        }
        if (self.names.len() + 1) * 2 > self.table.len() {
            let capacity = (self.table.len() * 2).max(FIRST_CAPACITY);
            self.rebuild(capacity);
        }
        if let Some(slot) = self.find(k).and_then(|i| self.table.get_mut(i)) {
            *slot = (k, quote.seq);
            self.names.push(quote.topic.clone());
        }
    }

    /// The table re-laid at `capacity` (a power of two) with what it holds.
    fn rebuild(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.table, vec![(0, 0); capacity].into_boxed_slice());
        for entry in old.iter().filter(|e| e.0 != 0) {
            if let Some(slot) = self.find(entry.0).and_then(|i| self.table.get_mut(i)) {
                *slot = *entry;
            }
        }
    }

    /// Forgets the topics for which `keep` is false (unsubscribed).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let before = self.names.len();
        let mut dropped = Vec::new();
        self.names.retain(|name| {
            let kept = keep(name);
            if !kept {
                dropped.push(Arc::as_ptr(name).cast::<u8>() as usize);
            }
            kept
        });
        if self.names.len() == before {
            return;
        }
        for entry in self.table.iter_mut() {
            if dropped.contains(&entry.0) {
                *entry = (0, 0);
            }
        }
        // Linear probing needs the survivors re-laid around the holes.
        self.rebuild(self.table.len());
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// An address's home slot: one multiply, the high bits (an address's low
/// bits are alignment zeros).
fn slot_of(k: usize, mask: usize) -> usize {
    let h = (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Format, SharedQuote};
    use std::time::Instant;

    fn quote(name: &Arc<str>, seq: u64) -> LocalQuote {
        LocalQuote::from(SharedQuote {
            topic: name.clone(),
            seq,
            accepted: 0,
            json_frame: Box::new([]),
            binary_frame: Box::new([]),
            changed: Some(1),
            lazy: Default::default(),
            decoded_at: Instant::now(),
        })
    }

    const MAY: Wire = Wire {
        format: Format::Binary,
        delta: true,
        deflate: false,
    };

    #[test]
    fn many_topics_grow_the_table_and_each_keeps_its_seq() {
        let names: Vec<Arc<str>> = (0..300).map(|i| Arc::from(format!("T{i}"))).collect();
        let mut last = LastSent::default();
        for name in &names {
            assert_eq!(
                last.admit(&quote(name, 1), MAY, |_| true),
                Some(Wire {
                    delta: false,
                    ..MAY
                })
            );
        }
        for name in &names {
            assert_eq!(
                last.admit(&quote(name, 2), MAY, |_| true),
                Some(MAY),
                "{name}"
            );
        }
        assert_eq!(last.len(), 300);
        // Dropped ones start over; the rest still follow on.
        last.retain(|n| !n.ends_with('7'));
        assert_eq!(last.len(), 270);
        for name in &names {
            let delta = !name.ends_with('7');
            assert_eq!(
                last.admit(&quote(name, 3), MAY, |_| true).map(|w| w.delta),
                Some(delta),
                "{name}"
            );
        }
    }

    #[test]
    fn what_does_not_fit_is_not_noted_and_the_bound_holds() {
        let name: Arc<str> = "A".into();
        let mut last = LastSent::default();
        assert_eq!(last.admit(&quote(&name, 1), MAY, |_| false), None);
        assert_eq!(last.len(), 0);
        let names: Vec<Arc<str>> = (0..MAX_DELTA_TOPICS + 10)
            .map(|i| Arc::from(format!("T{i}")))
            .collect();
        for name in &names {
            last.admit(&quote(name, 1), MAY, |_| true);
        }
        assert_eq!(last.len(), MAX_DELTA_TOPICS);
        let over = names.last().unwrap();
        assert_eq!(
            last.admit(&quote(over, 2), MAY, |_| true).map(|w| w.delta),
            Some(false),
            "past the bound: full"
        );
    }
}
