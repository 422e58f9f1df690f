//! Latency histograms.
//!
//! Each thread records into its own [`LatencyRecorder`] (no sharing, no
//! atomics) and, about once a second, merges it into the shared
//! [`LatencyWindow`] under a parking_lot mutex — the only lock, and never on
//! the per-message path. The window keeps a few time slots so `/metrics` can
//! report quantiles over a sliding window, plus totals since start.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Recorded in microseconds: 1 µs .. 60 s at 3 significant digits.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 60_000_000;
const SIGFIGS: u8 = 3;

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants known to be valid.
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIGS).unwrap_or_else(|_| unreachable!())
}

/// One thread's recent samples.
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    sum_ns: u128,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder {
            histogram: new_histogram(),
            sum_ns: 0,
        }
    }
}

impl LatencyRecorder {
    pub fn record(&mut self, elapsed: Duration) {
        self.record_n(elapsed, 1);
    }

    /// Records `count` samples of the same value (a batch stamped once).
    pub fn record_n(&mut self, elapsed: Duration, count: u64) {
        if count == 0 {
            return;
        }
        let us = (elapsed.as_micros() as u64).clamp(LOWEST_US, HIGHEST_US);
        // Clamped into range, so this cannot fail.
        let _ = self.histogram.record_n(us, count);
        self.sum_ns += elapsed.as_nanos() * u128::from(count);
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }
}

/// Quantiles of one window, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: u64,
}

pub struct LatencyWindow {
    slot: Duration,
    slots_kept: usize,
    started: Instant,
    /// (slot number since `started`, merged samples of that slot)
    slots: VecDeque<(u64, Histogram<u64>)>,
    total_count: u64,
    total_sum_ns: u128,
    /// Bumped by every absorb: the window's content changed.
    version: u64,
    /// The last quantiles, valid while (version, slot) are unchanged: a
    /// `/metrics` scrape — on a worker thread — merges the histograms at
    /// most once per change, however often it is scraped.
    cached: Option<(u64, u64, Quantiles)>,
}

impl LatencyWindow {
    /// A window of `window` length made of `slots` slots.
    pub fn new(window: Duration, slots: usize, now: Instant) -> LatencyWindow {
        let slots_kept = slots.max(1);
        LatencyWindow {
            slot: (window / slots_kept as u32).max(Duration::from_millis(1)),
            slots_kept,
            started: now,
            slots: VecDeque::new(),
            total_count: 0,
            total_sum_ns: 0,
            version: 0,
            cached: None,
        }
    }

    /// Moves a recorder's samples into the window and resets the recorder.
    pub fn absorb(&mut self, recorder: &mut LatencyRecorder, now: Instant) {
        if recorder.is_empty() {
            return;
        }
        let index = self.slot_index(now);
        if self.slots.back().map(|(i, _)| *i) != Some(index) {
            self.slots.push_back((index, new_histogram()));
        }
        if let Some((_, h)) = self.slots.back_mut() {
            let _ = h.add(&recorder.histogram);
        }
        self.total_count += recorder.histogram.len();
        self.total_sum_ns += recorder.sum_ns;
        self.version += 1;
        recorder.histogram.reset();
        recorder.sum_ns = 0;
        self.expire(index);
    }

    /// Quantiles over the last window (slots not yet expired at `now`).
    pub fn quantiles(&mut self, now: Instant) -> Quantiles {
        let index = self.slot_index(now);
        if let Some((version, at, q)) = self.cached {
            if version == self.version && at == index {
                return q;
            }
        }
        let q = self.compute(index);
        self.cached = Some((self.version, index, q));
        q
    }

    fn compute(&mut self, index: u64) -> Quantiles {
        self.expire(index);
        let mut merged = new_histogram();
        for (_, h) in &self.slots {
            let _ = merged.add(h);
        }
        if merged.is_empty() {
            return Quantiles::default();
        }
        let s = |q: f64| merged.value_at_quantile(q) as f64 / 1e6;
        Quantiles {
            p50: s(0.5),
            p90: s(0.9),
            p99: s(0.99),
            p999: s(0.999),
            max: merged.max() as f64 / 1e6,
            count: merged.len(),
        }
    }

    /// (samples, sum in seconds) since start.
    pub fn totals(&self) -> (u64, f64) {
        (self.total_count, self.total_sum_ns as f64 / 1e9)
    }

    fn slot_index(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.started).as_nanos() / self.slot.as_nanos().max(1))
            as u64
    }

    fn expire(&mut self, current: u64) {
        let oldest_kept = current.saturating_sub(self.slots_kept as u64 - 1);
        while self.slots.front().is_some_and(|(i, _)| *i < oldest_kept) {
            self.slots.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_over_the_window_and_totals_forever() {
        let t0 = Instant::now();
        let mut window = LatencyWindow::new(Duration::from_secs(60), 6, t0);
        let mut r = LatencyRecorder::default();
        for us in 1..=1000u64 {
            r.record(Duration::from_micros(us));
        }
        window.absorb(&mut r, t0);
        assert!(r.is_empty(), "absorb resets the recorder");
        let q = window.quantiles(t0);
        assert_eq!(q.count, 1000);
        assert!((q.p50 - 500e-6).abs() < 1e-6, "{q:?}");
        assert!((q.p99 - 990e-6).abs() < 2e-6, "{q:?}");
        assert!((q.max - 1000e-6).abs() < 2e-6, "{q:?}");

        // 70 s later the samples have left the window but not the totals.
        let later = t0 + Duration::from_secs(70);
        assert_eq!(window.quantiles(later).count, 0);
        let (count, sum) = window.totals();
        assert_eq!(count, 1000);
        assert!((sum - 0.5005).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn quantiles_are_recomputed_only_when_the_window_changes() {
        let t0 = Instant::now();
        let mut window = LatencyWindow::new(Duration::from_secs(60), 6, t0);
        let mut r = LatencyRecorder::default();
        r.record(Duration::from_millis(5));
        window.absorb(&mut r, t0);
        let first = window.quantiles(t0);
        assert_eq!(first.count, 1);
        assert_eq!(window.cached.map(|c| c.0), Some(window.version));
        // Same content, same slot: the cached value.
        assert_eq!(window.quantiles(t0 + Duration::from_millis(10)), first);
        // New samples: recomputed.
        r.record(Duration::from_millis(7));
        window.absorb(&mut r, t0 + Duration::from_millis(20));
        assert_eq!(window.quantiles(t0 + Duration::from_millis(20)).count, 2);
        // The window moves past the samples: recomputed (empty).
        assert_eq!(window.quantiles(t0 + Duration::from_secs(120)).count, 0);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut r = LatencyRecorder::default();
        r.record(Duration::from_nanos(10));
        r.record(Duration::from_secs(3600));
        r.record_n(Duration::from_micros(5), 0);
        let mut w = LatencyWindow::new(Duration::from_secs(10), 1, Instant::now());
        w.absorb(&mut r, Instant::now());
        assert_eq!(w.totals().0, 2);
    }
}
