//! Where `tickwire tail` is in each topic's stream: the epoch of its last
//! ack and the last seq printed per topic — what a resume sends as `since`,
//! and how a duplicate or a gap is recognised.

use std::collections::HashMap;

use tickwire_protocol::control::{Since, MAX_SINCE_KEYS};
use tickwire_protocol::Selector;

/// Topics tracked at most; past it the least recently quoted half is
/// forgotten (a `since` names at most 1,024 anyway).
pub const MAX_TRACKED: usize = 65_536;

/// Where tail is: the epoch of its last ack and, per topic, the last seq
/// printed (and when, for the `since` limit of 1,024 keys).
#[derive(Default)]
pub struct Positions {
    epoch: Option<String>,
    topics: HashMap<String, Position>,
    clock: u64,
}

struct Position {
    seq: u64,
    /// `clock` when last quoted: higher is more recent.
    stamp: u64,
}

#[derive(Debug, PartialEq)]
pub enum Seen {
    /// The first quote of the topic, or the one after the last.
    Next,
    /// Quotes between `last` and this one were not received.
    Gap { last: u64 },
    /// At or below the last seq printed (same epoch): printed already.
    Duplicate,
}

impl Positions {
    pub fn observe(&mut self, topic: &str, seq: u64) -> Seen {
        self.clock += 1;
        let stamp = self.clock;
        if let Some(p) = self.topics.get_mut(topic) {
            if seq <= p.seq {
                return Seen::Duplicate;
            }
            let last = std::mem::replace(p, Position { seq, stamp }).seq;
            return if seq == last + 1 {
                Seen::Next
            } else {
                Seen::Gap { last }
            };
        }
        if self.topics.len() >= MAX_TRACKED {
            self.forget_oldest_half();
        }
        self.topics
            .insert(topic.to_owned(), Position { seq, stamp });
        Seen::Next
    }

    fn forget_oldest_half(&mut self) {
        let mut stamps: Vec<u64> = self.topics.values().map(|p| p.stamp).collect();
        let mid = stamps.len() / 2;
        let (_, cut, _) = stamps.select_nth_unstable(mid);
        let cut = *cut;
        self.topics.retain(|_, p| p.stamp >= cut);
    }

    /// An ack's epoch; true when it differs from the last one (seq numbering
    /// restarted: the positions no longer mean anything).
    pub fn on_ack(&mut self, epoch: &str) -> bool {
        let changed = self.epoch.as_deref().is_some_and(|e| e != epoch);
        if changed {
            self.topics.clear();
        }
        self.epoch = Some(epoch.to_owned());
        changed
    }

    /// The `since` of a resume: the most recently quoted topics (at most
    /// 1,024) that tail's topics cover; `None` before any ack or quote.
    pub fn since(&self, selectors: &[Selector]) -> Option<Since> {
        let epoch = self.epoch.clone()?;
        let mut seen: Vec<(&String, &Position)> = self
            .topics
            .iter()
            .filter(|(t, _)| selectors.iter().any(|s| s.matches(t)))
            .collect();
        if seen.is_empty() {
            return None;
        }
        seen.sort_unstable_by_key(|(_, p)| std::cmp::Reverse(p.stamp));
        seen.truncate(MAX_SINCE_KEYS);
        let seqs = seen.into_iter().map(|(t, p)| (t.clone(), p.seq)).collect();
        Some(Since { epoch, seqs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selectors(topics: &[&str]) -> Vec<Selector> {
        topics.iter().map(|t| Selector::parse(t).unwrap()).collect()
    }

    #[test]
    fn positions_note_gaps_and_drop_duplicates() {
        let mut p = Positions::default();
        p.on_ack("e1");
        assert_eq!(p.observe("A", 5), Seen::Next);
        assert_eq!(p.observe("A", 6), Seen::Next);
        assert_eq!(p.observe("A", 9), Seen::Gap { last: 6 });
        assert_eq!(p.observe("A", 9), Seen::Duplicate);
        assert_eq!(p.observe("A", 2), Seen::Duplicate);
        assert_eq!(p.observe("B", 1), Seen::Next);
        // A new epoch: numbering restarted, nothing is a duplicate.
        assert!(p.on_ack("e2"));
        assert!(!p.on_ack("e2"));
        assert_eq!(p.observe("A", 1), Seen::Next);
    }

    #[test]
    fn since_holds_the_covered_topics_most_recent_first() {
        let mut p = Positions::default();
        assert_eq!(p.since(&selectors(&["*"])), None, "no ack yet");
        p.on_ack("e");
        assert_eq!(p.since(&selectors(&["*"])), None, "nothing seen");
        p.observe("FX.EUR", 3);
        p.observe("AAPL", 10);
        p.observe("FX.GBP", 4);
        p.observe("FX.EUR", 5);
        let since = p.since(&selectors(&["FX.*"])).unwrap();
        assert_eq!(since.epoch, "e");
        assert_eq!(
            since.seqs,
            [("FX.EUR".to_owned(), 5), ("FX.GBP".to_owned(), 4)]
        );
    }

    #[test]
    fn since_keeps_at_most_the_1024_most_recent_topics() {
        let mut p = Positions::default();
        p.on_ack("e");
        for i in 0..1500u64 {
            p.observe(&format!("T{i}"), i + 1);
        }
        let since = p.since(&selectors(&["T*"])).unwrap();
        assert_eq!(since.seqs.len(), MAX_SINCE_KEYS);
        assert_eq!(since.seqs[0], ("T1499".to_owned(), 1500));
        assert!(since.seqs.iter().all(|(_, seq)| *seq > 1500 - 1024));
    }

    #[test]
    fn tracking_is_bounded() {
        let mut p = Positions::default();
        p.on_ack("e");
        for i in 0..(MAX_TRACKED as u64 + 10) {
            p.observe(&format!("T{i}"), 1);
        }
        assert!(p.topics.len() <= MAX_TRACKED);
        assert!(p.topics.contains_key(&format!("T{}", MAX_TRACKED + 9)));
        assert!(!p.topics.contains_key("T0"));
    }
}
