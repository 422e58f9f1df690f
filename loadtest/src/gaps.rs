//! Per-topic sequence tracking for one subscriber.
//!
//! The broker numbers quotes per topic (`seq` = 1, 2, 3, …). A subscriber
//! that sees `seq` jump by more than one has missed quotes (a *gap*); a `seq`
//! equal to the last one is a *duplicate*; a smaller one is *out of order*.
//! The first `seq` seen on a topic only sets the baseline (a subscriber joins
//! a topic mid-stream), so it is never a gap.

/// Tracks one topic on one connection. 32 bytes, no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GapTracker {
    /// Last `seq` accepted; 0 = nothing seen yet (the broker starts at 1).
    last: u64,
    pub counts: GapCounts,
}

/// Sums of what the trackers saw; added up across topics and connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GapCounts {
    /// Number of jumps by more than one.
    pub gaps: u64,
    /// Quotes skipped over by those jumps.
    pub missing: u64,
    /// `seq` equal to the previous one.
    pub duplicates: u64,
    /// `seq` below the previous one.
    pub out_of_order: u64,
}

impl GapCounts {
    pub fn add(&mut self, other: &GapCounts) {
        self.gaps += other.gaps;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
    }
}

impl GapTracker {
    #[inline]
    pub fn observe(&mut self, seq: u64) {
        let last = self.last;
        if last == 0 || seq == last.wrapping_add(1) {
            self.last = seq;
        } else if seq > last {
            self.counts.gaps += 1;
            self.counts.missing += seq - last - 1;
            self.last = seq;
        } else if seq == last {
            self.counts.duplicates += 1;
        } else {
            // Keep `last`: the stream continues from the highest seq seen.
            self.counts.out_of_order += 1;
        }
    }

    /// The last `seq` accepted; 0 before the first.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Forgets the position (not the counts): the next `seq` is a new
    /// baseline, as after an unsubscribe or an unrecovered resume.
    pub fn rebase(&mut self) {
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u64]) -> GapCounts {
        let mut t = GapTracker::default();
        for &s in seqs {
            t.observe(s);
        }
        t.counts
    }

    #[test]
    fn consecutive_is_no_gap() {
        assert_eq!(run(&[1, 2, 3]), GapCounts::default());
        // Joining mid-stream sets the baseline.
        assert_eq!(run(&[41, 42, 43, 44]), GapCounts::default());
    }

    #[test]
    fn jump_is_one_gap() {
        let c = run(&[1, 2, 5]);
        assert_eq!(c.gaps, 1);
        assert_eq!(c.missing, 2);
        assert_eq!(c.duplicates + c.out_of_order, 0);
        let c = run(&[1, 3, 4, 10]);
        assert_eq!((c.gaps, c.missing), (2, 6));
    }

    #[test]
    fn rebase_keeps_the_counts_and_takes_a_new_baseline() {
        let mut t = GapTracker::default();
        for s in [1, 3, 4] {
            t.observe(s);
        }
        assert_eq!(t.last(), 4);
        t.rebase();
        assert_eq!(t.last(), 0);
        t.observe(90);
        t.observe(91);
        assert_eq!(t.last(), 91);
        assert_eq!((t.counts.gaps, t.counts.missing), (1, 1));
    }

    #[test]
    fn duplicates_and_reordering_are_counted_separately() {
        let c = run(&[1, 2, 2, 3]);
        assert_eq!(
            c,
            GapCounts {
                duplicates: 1,
                ..GapCounts::default()
            }
        );
        let c = run(&[1, 2, 4, 3, 5]);
        assert_eq!(c.gaps, 1);
        assert_eq!(c.out_of_order, 1);
        assert_eq!(c.duplicates, 0);
    }
}
