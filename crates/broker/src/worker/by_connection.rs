//! A router message's deliveries, made connection by connection.
//!
//! A message's quotes are routed first (each quote to the connections
//! its topic goes to), then delivered grouped by connection: each
//! connection's state (its slab entry, session, subscriptions and
//! outbound queue, several cache lines) is loaded once for all its quotes
//! of the message instead of once per quote. Routed quote by quote, a
//! saturated fan-out took about five first-level misses a delivery on
//! those lines (callgrind's cache simulation over peerbench A,
//! docs/performance.md); uWebSockets' publish does the same split (a
//! message index per subscriber, then a drain subscriber by subscriber).
//!
//! Each connection's deliveries keep the order they were routed in (the
//! order of the message's quotes), so nothing a connection gets changes;
//! only the order between connections does, which nothing observes.

use super::route_index::Target;

/// Deliveries grouped at once at most: a message's quotes are routed and
/// delivered in chunks of about this many (a chunk ends between quotes),
/// so the buffers stay bounded however large a message is.
pub const CHUNK: usize = 16_384;

/// One delivery: quote `quote` (an index into the chunk's quotes) to
/// `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    pub target: Target,
    pub quote: u32,
}

#[derive(Default)]
pub struct ByConnection {
    /// The chunk's deliveries in the order routed.
    routed: Vec<Delivery>,
    /// Indexed by slot, for the slots in `slots` only (zero elsewhere):
    /// first each slot's count of deliveries, then where its next one goes
    /// in `grouped`.
    at: Vec<u32>,
    /// The slots routed to, in the order first routed to.
    slots: Vec<u32>,
    /// The deliveries, connection by connection.
    grouped: Vec<Delivery>,
}

impl ByConnection {
    /// Deliveries routed and not yet taken.
    pub fn len(&self) -> usize {
        self.routed.len()
    }

    /// Routes quote `quote` to `target`.
    pub fn route(&mut self, target: Target, quote: u32) {
        let slot = target.slot();
        if self.at.len() <= slot {
            self.at.resize(slot + 1, 0);
        }
        if let Some(count) = self.at.get_mut(slot) {
            if *count == 0 {
                self.slots.push(target.slot() as u32);
            }
            *count += 1;
        }
        self.routed.push(Delivery { target, quote });
    }

    /// Hands `each` the deliveries routed since the last call, connection
    /// by connection (its slot and its deliveries in the order routed),
    /// connections in the order first routed to. Routing then starts over.
    pub fn deliver(&mut self, mut each: impl FnMut(usize, &[Delivery])) {
        if self.slots.len() == self.routed.len() {
            // One delivery per connection (a message of one quote): the
            // order routed is already grouped.
            for d in &self.routed {
                each(d.target.slot(), std::slice::from_ref(d));
            }
        } else {
            self.group();
            // After `group`, each slot's `at` is the end of its run.
            let mut start = 0;
            for &slot in &self.slots {
                let end = self
                    .at
                    .get(slot as usize)
                    .map_or(start, |&end| end as usize);
                each(
                    slot as usize,
                    self.grouped.get(start..end).unwrap_or_default(),
                );
                start = end;
            }
        }
        for &slot in &self.slots {
            if let Some(at) = self.at.get_mut(slot as usize) {
                *at = 0;
            }
        }
        self.slots.clear();
        self.routed.clear();
        self.grouped.clear();
    }

    /// Fills `grouped` from `routed`: a counting sort by slot, stable.
    fn group(&mut self) {
        // Where each connection's deliveries start, connections in the
        // order first routed to.
        let mut start = 0;
        for &slot in &self.slots {
            if let Some(at) = self.at.get_mut(slot as usize) {
                let count = *at;
                *at = start;
                start += count;
            }
        }
        self.grouped.clear();
        self.grouped.extend_from_slice(&self.routed);
        for d in &self.routed {
            if let Some(at) = self.at.get_mut(d.target.slot()) {
                if let Some(place) = self.grouped.get_mut(*at as usize) {
                    *place = *d;
                }
                *at += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(slot: u32) -> Target {
        Target::new(slot, 0.0)
    }

    fn delivered(by: &mut ByConnection) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        by.deliver(|slot, run| {
            assert!(
                !run.is_empty(),
                "a connection is called with its deliveries"
            );
            assert!(
                out.last().is_none_or(|&(last, _)| last != slot),
                "each connection once, its deliveries together"
            );
            for d in run {
                assert_eq!(d.target.slot(), slot);
                out.push((slot, d.quote));
            }
        });
        out
    }

    #[test]
    fn deliveries_come_connection_by_connection_each_in_the_order_routed() {
        let mut by = ByConnection::default();
        // Three quotes to overlapping connections, as a message's topics go.
        for (quote, slots) in [(0, &[7, 2, 9][..]), (1, &[2, 9]), (2, &[9, 7, 40])] {
            for &slot in slots {
                by.route(target(slot), quote);
            }
        }
        assert_eq!(by.len(), 8);
        assert_eq!(
            delivered(&mut by),
            [
                (7, 0),
                (7, 2),
                (2, 0),
                (2, 1),
                (9, 0),
                (9, 1),
                (9, 2),
                (40, 2)
            ]
        );
        assert_eq!(by.len(), 0);
        // Everything starts over: counts from the last chunk do not leak.
        by.route(target(9), 5);
        by.route(target(7), 5);
        by.route(target(9), 6);
        assert_eq!(delivered(&mut by), [(9, 5), (9, 6), (7, 5)]);
        assert_eq!(delivered(&mut by), []);
    }

    #[test]
    fn one_delivery_per_connection_keeps_the_order_routed() {
        let mut by = ByConnection::default();
        for slot in [3, 1, 2] {
            by.route(target(slot), 0);
        }
        assert_eq!(delivered(&mut by), [(3, 0), (1, 0), (2, 0)]);
    }

    #[test]
    fn a_target_carries_its_spacing_through() {
        let mut by = ByConnection::default();
        by.route(Target::new(4, 2.0), 0);
        by.route(Target::new(4, 2.0), 1);
        let mut spacing = Vec::new();
        by.deliver(|_, run| spacing.extend(run.iter().map(|d| d.target.min_interval())));
        assert_eq!(spacing.len(), 2);
        assert!(spacing.iter().all(|s| s.is_some()));
    }

    proptest::proptest! {
        /// Any routing: every delivery once, each connection's in the order
        /// routed, connections in the order first routed to.
        #[test]
        fn grouping_is_a_stable_sort_by_first_appearance(
            routes in proptest::collection::vec((0u32..12, 0u32..50), 0..300),
            rounds in 1usize..3,
        ) {
            let mut by = ByConnection::default();
            for _ in 0..rounds {
                for &(slot, quote) in &routes {
                    by.route(target(slot), quote);
                }
                let mut first_seen: Vec<u32> = Vec::new();
                for &(slot, _) in &routes {
                    if !first_seen.contains(&slot) {
                        first_seen.push(slot);
                    }
                }
                let expected: Vec<(usize, u32)> = first_seen
                    .iter()
                    .flat_map(|&s| {
                        routes.iter().filter(move |r| r.0 == s).map(|&(slot, q)| (slot as usize, q))
                    })
                    .collect();
                proptest::prop_assert_eq!(delivered(&mut by), expected);
            }
        }
    }
}
