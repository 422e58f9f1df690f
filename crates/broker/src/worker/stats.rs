//! A worker's own counts, added to the shared [`Metrics`] in batches: one
//! atomic add per counter per loop turn (never one per delivery or per
//! flush), latency samples merged once a second.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::encodings::Encoding;
use crate::metrics::{self, LatencyRecorder, Metrics};
use crate::session::outbound::OutFrame;

/// How often latency samples, frame and write counts are merged.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct WorkerStats {
    worker: usize,
    metrics: Arc<Metrics>,
    /// Ingest decode → bytes handed to a subscriber's socket.
    delivery_latency: LatencyRecorder,
    /// Deliveries of the current write not yet in `delivery_latency`.
    unrecorded: Unrecorded,
    /// Router send → this worker picking the batch up.
    hop_latency: LatencyRecorder,
    frames_out: u64,
    /// Write calls to subscriber sockets since the last publish.
    socket_writes: u64,
    /// Quotes handed to sockets this turn.
    deliveries: u64,
    /// Bytes handed to subscriber sockets this turn, by `Encoding`.
    bytes_out: [u64; Encoding::ALL.len()],
    last_publish: Instant,
}

impl WorkerStats {
    pub fn new(worker: usize, metrics: Arc<Metrics>, now: Instant) -> WorkerStats {
        WorkerStats {
            worker,
            metrics,
            delivery_latency: LatencyRecorder::default(),
            unrecorded: Unrecorded::new(now),
            hop_latency: LatencyRecorder::default(),
            frames_out: 0,
            socket_writes: 0,
            deliveries: 0,
            bytes_out: [0; Encoding::ALL.len()],
            last_publish: now,
        }
    }

    /// The shared metrics, for what is counted where it happens (gauges,
    /// request errors, closes: rare next to deliveries).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A frame went to a socket in full at `now`: a live quote counts as a
    /// delivery with its latency since ingest, a snapshot as a delivery.
    pub fn frame_sent(&mut self, frame: &OutFrame, now: Instant) {
        self.frames_out += 1;
        match frame {
            OutFrame::Quote(quote, _) => {
                self.deliveries += 1;
                self.unrecorded
                    .add(quote.decoded_at, now, &mut self.delivery_latency);
            }
            OutFrame::Snapshot(..) => self.deliveries += 1,
            OutFrame::Owned(_) | OutFrame::Control(_) => {}
        }
    }

    /// One write call to a socket.
    pub fn socket_write(&mut self) {
        self.socket_writes += 1;
    }

    /// Bytes a flush handed to a socket (a subscriber's, when it has an
    /// `encoding`; plain HTTP answers are not counted).
    pub fn wrote(&mut self, encoding: Option<Encoding>, bytes: usize) {
        if let Some(e) = encoding {
            self.bytes_out[e as usize] += bytes as u64;
        }
    }

    /// A batch of `quotes` quotes took `hop` from the router to here.
    pub fn router_hop(&mut self, hop: Duration, quotes: u64) {
        self.hop_latency.record_n(hop, quotes);
    }

    /// The end of a loop turn: this turn's counts go to the shared
    /// counters (`conflated`: quotes the connections conflated away).
    pub fn end_turn(&mut self, conflated: u64) {
        self.unrecorded.record(&mut self.delivery_latency);
        let m = &self.metrics;
        metrics::add(&m.deliveries, std::mem::take(&mut self.deliveries));
        metrics::add(&m.conflated, conflated);
        for (total, turn) in m.bytes_out.iter().zip(&mut self.bytes_out) {
            if *turn > 0 {
                metrics::add(total, std::mem::take(turn));
            }
        }
    }

    /// Publishes the rest once [`PUBLISH_INTERVAL`] has passed (or when
    /// `force`d, at exit). `queue_depth`: router messages waiting.
    pub fn publish(&mut self, now: Instant, queue_depth: usize, force: bool) {
        if !force && now.saturating_duration_since(self.last_publish) < PUBLISH_INTERVAL {
            return;
        }
        self.last_publish = now;
        self.unrecorded.record(&mut self.delivery_latency);
        let m = &self.metrics;
        metrics::add(&m.frames_out, std::mem::take(&mut self.frames_out));
        metrics::add(&m.socket_writes, std::mem::take(&mut self.socket_writes));
        if let Some(depth) = m.worker_queue_depth.get(self.worker) {
            depth.store(queue_depth as u64, Ordering::Relaxed);
        }
        m.delivery_latency
            .lock()
            .absorb(&mut self.delivery_latency, now);
        m.router_worker_latency
            .lock()
            .absorb(&mut self.hop_latency, now);
    }
}

/// Deliveries written at one `now`, grouped by their quotes' decode stamps.
/// The quotes of one ingest read share a stamp, so the frames of one write
/// fall into a few groups of equal latency: a group is one histogram update
/// rather than one per delivery (those were ~4% of a saturated worker's
/// time, `perf record` over peerbench A).
struct Unrecorded {
    now: Instant,
    groups: [(Instant, u64); GROUPS],
    len: usize,
}

/// Distinct stamps held before they are recorded.
const GROUPS: usize = 4;

impl Unrecorded {
    fn new(now: Instant) -> Unrecorded {
        Unrecorded {
            now,
            groups: [(now, 0); GROUPS],
            len: 0,
        }
    }

    /// One delivery of a quote decoded at `stamp`, written at `now`.
    fn add(&mut self, stamp: Instant, now: Instant, into: &mut LatencyRecorder) {
        if now != self.now {
            self.record(into);
            self.now = now;
        }
        let held = self.groups.get_mut(..self.len).unwrap_or_default();
        if let Some(group) = held.iter_mut().find(|(s, _)| *s == stamp) {
            group.1 += 1;
            return;
        }
        if self.len == GROUPS {
            self.record(into);
        }
        if let Some(slot) = self.groups.get_mut(self.len) {
            *slot = (stamp, 1);
            self.len += 1;
        }
    }

    /// Records every group held.
    fn record(&mut self, into: &mut LatencyRecorder) {
        for &(stamp, count) in self.groups.get(..self.len).unwrap_or_default() {
            into.record_n(self.now.saturating_duration_since(stamp), count);
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::encodings::Wire;
    use crate::messages::{Format, LocalQuote, SharedQuote};

    fn quote() -> LocalQuote {
        LocalQuote::from(SharedQuote {
            topic: "T".into(),
            seq: 0,
            accepted: 0,
            json_frame: b"j".as_slice().into(),
            binary_frame: b"b".as_slice().into(),
            changed: None,
            lazy: Default::default(),
            decoded_at: Instant::now(),
        })
    }

    #[test]
    fn deliveries_reach_the_shared_counters_once_per_turn_and_writes_once_per_publish() {
        let metrics = Arc::new(Metrics::new(1));
        let now = Instant::now();
        let mut stats = WorkerStats::new(0, metrics.clone(), now);
        stats.frame_sent(&OutFrame::Quote(quote(), Wire::plain(Format::Json)), now);
        stats.frame_sent(&OutFrame::Snapshot(quote(), Wire::plain(Format::Json)), now);
        stats.frame_sent(&OutFrame::Owned(b"ack".as_slice().into()), now);
        stats.socket_write();
        stats.wrote(Some(Encoding::JsonDeflate), 42);
        stats.wrote(None, 7);
        assert_eq!(metrics.deliveries.load(Relaxed), 0, "not per delivery");
        stats.end_turn(3);
        assert_eq!(metrics.deliveries.load(Relaxed), 2, "quote and snapshot");
        assert_eq!(metrics.conflated.load(Relaxed), 3);
        assert_eq!(
            metrics.bytes_out[Encoding::JsonDeflate as usize].load(Relaxed),
            42
        );
        assert_eq!(metrics.bytes_out[Encoding::Json as usize].load(Relaxed), 0);
        stats.end_turn(0);
        assert_eq!(metrics.deliveries.load(Relaxed), 2, "counted once");
        stats.publish(now, 5, false);
        assert_eq!(metrics.frames_out.load(Relaxed), 0, "not a second yet");
        stats.publish(now + PUBLISH_INTERVAL, 5, false);
        assert_eq!(metrics.frames_out.load(Relaxed), 3);
        assert_eq!(metrics.socket_writes.load(Relaxed), 1);
        assert_eq!(metrics.worker_queue_depth[0].load(Relaxed), 5);
    }

    #[test]
    fn deliveries_are_recorded_by_stamp_and_write_with_every_sample_kept() {
        use crate::metrics::LatencyWindow;
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let stamps: Vec<Instant> = (0..6).map(|k| t0 + us(10 * k)).collect();
        let (now, later) = (t0 + us(1_000), t0 + us(3_000));
        let mut recorder = LatencyRecorder::default();
        let mut unrecorded = Unrecorded::new(t0);
        // Six stamps at one `now`: more than GROUPS, so some are recorded
        // on the way; then one more at a later write.
        for k in [0, 0, 1, 0, 2, 3, 4, 5] {
            unrecorded.add(stamps[k], now, &mut recorder);
        }
        unrecorded.add(stamps[0], later, &mut recorder);
        unrecorded.record(&mut recorder);
        unrecorded.record(&mut recorder);

        let mut window = LatencyWindow::new(Duration::from_secs(60), 6, t0);
        window.absorb(&mut recorder, later);
        let (count, sum) = window.totals();
        assert_eq!(count, 9, "every delivery once");
        let expected: Duration = [0, 0, 1, 0, 2, 3, 4, 5]
            .iter()
            .map(|&k| now - stamps[k])
            .sum::<Duration>()
            + (later - stamps[0]);
        assert!(
            (sum - expected.as_secs_f64()).abs() < 1e-9,
            "{sum} against {expected:?}"
        );
    }
}
