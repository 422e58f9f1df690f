//! Per-topic seq tracking of one churn subscriber (`Streams`), kept across
//! its connections: the position a resumer sends in `since`, the
//! baselines forgotten at an unsubscribe or a new epoch, and the judgement
//! of a topic resumed unrecovered, by its snapshot.

use std::collections::HashMap;

use tickwire_client::Since;

use crate::gaps::{GapCounts, GapTracker};

/// Per-topic seq tracking of one subscriber, across its connections.
#[derive(Default)]
pub struct Streams {
    trackers: HashMap<String, GapTracker>,
    /// The epoch of the last ack.
    pub epoch: Option<String>,
    pub deliveries: u64,
    /// Topics resumed unrecovered → the last seq seen before: their next
    /// quote (the snapshot) tells whether the history could have covered it.
    awaiting_snapshot: HashMap<String, u64>,
    history_size: u64,
    /// Unrecovered topics whose snapshot was beyond / within the history.
    pub history_exceeded: u64,
    pub unexplained: Vec<String>,
}

impl Streams {
    pub(super) fn observe(&mut self, topic: &str, seq: u64) {
        self.deliveries += 1;
        if let Some(last) = self.awaiting_snapshot.remove(topic) {
            if self.history_size == 0 || seq.saturating_sub(last) > self.history_size {
                self.history_exceeded += 1;
            } else {
                self.unexplained.push(format!(
                    "{topic}: unrecovered from seq {last}, snapshot at {seq} (history {})",
                    self.history_size
                ));
            }
        }
        match self.trackers.get_mut(topic) {
            Some(t) => t.observe(seq),
            None => {
                let mut t = GapTracker::default();
                t.observe(seq);
                self.trackers.insert(topic.to_owned(), t);
            }
        }
    }

    /// The position to resume from: the epoch and every topic's last seq.
    pub fn since(&self) -> Option<Since> {
        let epoch = self.epoch.clone()?;
        let seqs: Vec<(String, u64)> = self
            .trackers
            .iter()
            .filter(|(_, t)| t.last() > 0)
            .map(|(topic, t)| (topic.clone(), t.last()))
            .collect();
        (!seqs.is_empty()).then_some(Since { epoch, seqs })
    }

    /// Forgets the position of `topic`: its next quote is a new baseline.
    pub fn rebase(&mut self, topic: &str) {
        if let Some(t) = self.trackers.get_mut(topic) {
            t.rebase();
        }
    }

    /// Forgets every position (a new epoch).
    pub fn rebase_all(&mut self) {
        self.trackers.values_mut().for_each(GapTracker::rebase);
        self.awaiting_snapshot.clear();
    }

    /// `topic` was resumed unrecovered: its position is gone, and its next
    /// quote is the snapshot, checked against a history of `history_size`.
    pub fn unrecovered(&mut self, topic: &str, history_size: u64) {
        let last = self.trackers.get(topic).map_or(0, GapTracker::last);
        self.rebase(topic);
        if last > 0 {
            self.history_size = history_size;
            self.awaiting_snapshot.insert(topic.to_owned(), last);
        }
    }

    /// Gaps, duplicates and reordering over every topic.
    pub fn counts(&self) -> GapCounts {
        let mut c = GapCounts::default();
        self.trackers.values().for_each(|t| c.add(&t.counts));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_resume_from_the_last_seq_and_judge_unrecovered_snapshots() {
        let mut s = Streams {
            epoch: Some("e1".into()),
            ..Streams::default()
        };
        for seq in [5, 6, 7] {
            s.observe("a", seq);
        }
        s.observe("b", 40);
        let mut since = s.since().unwrap();
        since.seqs.sort();
        assert_eq!(since.epoch, "e1");
        assert_eq!(since.seqs, [("a".to_string(), 7), ("b".to_string(), 40)]);
        // a: the snapshot is within 64 of 7: the history should have had it.
        s.unrecovered("a", 64);
        s.observe("a", 30);
        assert_eq!((s.history_exceeded, s.unexplained.len()), (0, 1));
        // b: 200 quotes on: out of the history, expected.
        s.unrecovered("b", 64);
        s.observe("b", 240);
        s.observe("b", 241);
        assert_eq!((s.history_exceeded, s.unexplained.len()), (1, 1));
        // No gap counted for either: the snapshot is a new baseline.
        assert_eq!(s.counts(), GapCounts::default());
        assert_eq!(s.deliveries, 7);
        s.observe("b", 243);
        assert_eq!(s.counts().gaps, 1);
    }
}
