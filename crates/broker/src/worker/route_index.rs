//! A worker's index from topics to its local subscriber connections.
//!
//! Entries are kept in a [`PrefixIndex`] per selector; the set of
//! connections a topic reaches is resolved once (O(length of the topic)
//! probes), de-duplicated (a connection matching a topic through several
//! entries gets each quote once, with the options of its most specific
//! entry), and cached until a subscription change touches that topic. The
//! cache is an ordered index too, so a pattern change invalidates only the
//! cached topics under it.
//!
//! This is the one place a topic's `max_hz` is decided: the most specific
//! entry's, carried with every live quote to the connection as a spacing
//! (the connection's throttle only remembers when it last delivered and
//! when a hold is due).

use std::sync::Arc;
use std::time::Duration;

use tickwire_protocol::{PrefixIndex, Selector, TopicName};

use crate::session::throttle::spacing;

/// One connection a topic's quotes go to, and its `max_hz` for that
/// topic. Eight bytes: a cached route holds one per subscriber of the
/// topic, walked per quote, and one per idle subscriber stays resident.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    slot: u32,
    /// 0: not throttled (a `max_hz` is always > 0).
    max_hz: f32,
}

impl Target {
    pub fn slot(&self) -> usize {
        self.slot as usize
    }

    /// The minimum spacing of deliveries, if throttled (made per delivery
    /// to a throttled target only: one division).
    pub fn min_interval(&self) -> Option<Duration> {
        (self.max_hz > 0.0).then(|| spacing(self.max_hz))
    }
}

/// An entry in the index: which connection, with which `max_hz` (0: none).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Member {
    slot: u32,
    max_hz: f32,
}

pub struct RouteIndex {
    members: PrefixIndex<Vec<Member>>,
    routes: PrefixIndex<Arc<[Target]>>,
}

impl Default for RouteIndex {
    fn default() -> Self {
        RouteIndex {
            members: PrefixIndex::new(),
            routes: PrefixIndex::ordered(),
        }
    }
}

impl RouteIndex {
    /// Connection `slot` receives live quotes matching `selector`, at most
    /// `max_hz` per second per topic (replacing its earlier rate, if any).
    ///
    /// Members are kept sorted by slot: in a reconnect storm thousands of
    /// connections join one selector, and a scan for the slot made that
    /// quadratic (4% of a storm's CPU at 1,000 per topic). A slot past the
    /// last is appended without a search: a fresh worker hands out slots
    /// in order, so a storm's subscribes mostly come that way, and the
    /// binary search's loads, each a likely cache miss in a topic's
    /// kilobytes of members, were ~2.5% of a storm's samples.
    pub fn route(&mut self, selector: &Selector, slot: usize, max_hz: Option<f32>) {
        let (members, _) = self.members.get_or_insert_with(selector, Vec::new);
        let member = Member {
            slot: slot as u32,
            max_hz: max_hz.unwrap_or(0.0),
        };
        if members.last().is_none_or(|last| last.slot < member.slot) {
            members.push(member);
        } else {
            match members.binary_search_by_key(&member.slot, |m| m.slot) {
                Ok(i) => members[i] = member,
                Err(i) => members.insert(i, member),
            }
        }
        self.invalidate(selector);
    }

    pub fn unroute(&mut self, selector: &Selector, slot: usize) {
        if let Some(members) = self.members.get_mut(selector) {
            if let Ok(i) = members.binary_search_by_key(&(slot as u32), |m| m.slot) {
                members.remove(i);
            }
            if members.is_empty() {
                self.members.remove(selector);
            }
        }
        self.invalidate(selector);
    }

    /// Connections that get a quote of `topic`, each once, with the
    /// options of the most specific entry matching it.
    pub fn targets(&mut self, topic: &Arc<str>) -> Arc<[Target]> {
        if let Some(route) = self.routes.exact(topic) {
            return route.clone();
        }
        // (slot, rank, max_hz); `matching` is most specific first, so the
        // lowest rank per slot is its most specific entry.
        let mut found: Vec<(u32, usize, f32)> = Vec::new();
        for (rank, (_, members)) in self.members.matching(topic).enumerate() {
            found.extend(members.iter().map(|m| (m.slot, rank, m.max_hz)));
        }
        found.sort_unstable_by_key(|&(slot, rank, _)| (slot, rank));
        found.dedup_by_key(|f| f.0);
        let route: Arc<[Target]> = found
            .into_iter()
            .map(|(slot, _, max_hz)| Target { slot, max_hz })
            .collect();
        self.routes
            .insert_exact(TopicName::new(topic.clone()), route.clone());
        route
    }

    /// Forgets cached routes of the topics `selector` matches.
    fn invalidate(&mut self, selector: &Selector) {
        // Nothing cached (no quote has reached this worker since the last
        // change, as in a storm after a restart): nothing to forget, and
        // no probe.
        if self.routes.is_empty() {
            return;
        }
        match selector {
            // One probe (a subscribe of exact topics does this per topic).
            Selector::Exact(topic) => {
                self.routes.remove_exact(topic);
            }
            Selector::Prefix(_) => {
                let stale: Vec<Arc<str>> = self.routes.keys_matched(selector).cloned().collect();
                for topic in stale {
                    self.routes.remove_exact(&topic);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    fn slots(index: &mut RouteIndex, topic: &str) -> Vec<usize> {
        index
            .targets(&topic.into())
            .iter()
            .map(|t| t.slot())
            .collect()
    }

    #[test]
    fn overlapping_entries_reach_a_connection_once() {
        let mut index = RouteIndex::default();
        index.route(&sel("AAPL"), 1, None);
        index.route(&sel("AA*"), 1, None);
        index.route(&sel("*"), 1, None);
        index.route(&sel("*"), 2, None);
        assert_eq!(slots(&mut index, "AAPL"), [1, 2]);
        index.unroute(&sel("*"), 2);
        assert_eq!(slots(&mut index, "AAPL"), [1]);
        index.unroute(&sel("AAPL"), 1);
        index.unroute(&sel("AA*"), 1);
        assert_eq!(slots(&mut index, "AAPL"), [1]);
        index.unroute(&sel("*"), 1);
        assert!(slots(&mut index, "AAPL").is_empty());
    }

    #[test]
    fn the_most_specific_entry_sets_the_rate_and_route_replaces_it() {
        let mut index = RouteIndex::default();
        index.route(&sel("*"), 1, Some(1.0));
        index.route(&sel("AA*"), 1, Some(4.0));
        index.route(&sel("AAPL"), 1, None);
        let interval = |index: &mut RouteIndex, t: &str| index.targets(&t.into())[0].min_interval();
        assert_eq!(interval(&mut index, "AAPL"), None, "exact beats patterns");
        assert_eq!(
            interval(&mut index, "AAL"),
            Some(Duration::from_millis(250)),
            "longer prefix"
        );
        assert_eq!(interval(&mut index, "MSFT"), Some(Duration::from_secs(1)));
        index.unroute(&sel("AAPL"), 1);
        assert_eq!(
            interval(&mut index, "AAPL"),
            Some(Duration::from_millis(250))
        );
        // Re-routing an entry replaces its rate, and the cached route.
        index.route(&sel("AA*"), 1, Some(2.0));
        assert_eq!(
            interval(&mut index, "AAPL"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(index.targets(&"AAPL".into()).len(), 1);
    }

    #[test]
    fn a_pattern_change_invalidates_only_the_routes_under_it() {
        let mut index = RouteIndex::default();
        index.route(&sel("B*"), 1, None);
        assert_eq!(slots(&mut index, "AAPL"), Vec::<usize>::new());
        assert_eq!(slots(&mut index, "BTC"), [1]);
        index.route(&sel("A*"), 2, None);
        assert_eq!(slots(&mut index, "AAPL"), [2]);
        assert_eq!(slots(&mut index, "BTC"), [1]);
    }

    /// A change while nothing is cached probes nothing, and is still seen.
    #[test]
    fn routes_added_while_nothing_is_cached_are_seen() {
        let mut index = RouteIndex::default();
        index.route(&sel("AAPL"), 1, None);
        assert_eq!(slots(&mut index, "AAPL"), [1]);
        index.unroute(&sel("AAPL"), 1);
        index.route(&sel("AAPL"), 2, None);
        index.route(&sel("AA*"), 3, None);
        assert_eq!(slots(&mut index, "AAPL"), [2, 3]);
    }

    /// Slots joining in order (appended), out of order (inserted) and again
    /// (replaced) all end up once each, in slot order, and leave alike.
    #[test]
    fn members_join_in_any_order_and_leave() {
        let mut index = RouteIndex::default();
        for slot in (0..200).chain((200..300).rev()) {
            index.route(&sel("T"), slot, Some(1.0));
        }
        for slot in [7, 250, 0] {
            index.route(&sel("T"), slot, Some(4.0));
        }
        assert_eq!(slots(&mut index, "T"), (0..300).collect::<Vec<_>>());
        let rate = |index: &mut RouteIndex, i: usize| index.targets(&"T".into())[i].min_interval();
        assert_eq!(rate(&mut index, 7), Some(spacing(4.0)), "replaced in place");
        assert_eq!(rate(&mut index, 8), Some(spacing(1.0)));
        for slot in (0..300).step_by(2) {
            index.unroute(&sel("T"), slot);
        }
        assert_eq!(
            slots(&mut index, "T"),
            (1..300).step_by(2).collect::<Vec<_>>()
        );
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_target_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Target>(), 8);
        assert_eq!(std::mem::size_of::<Member>(), 8);
    }
}
