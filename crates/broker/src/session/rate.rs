//! The request rate limit of one connection: a token bucket, full at
//! connect, refilled continuously.

use std::time::Instant;

use crate::moment::Moment;

pub(super) struct RequestBucket {
    tokens: f32,
    last: Moment,
}

impl RequestBucket {
    pub fn full(burst: u32, now: Instant) -> RequestBucket {
        RequestBucket {
            tokens: burst as f32,
            last: now.into(),
        }
    }

    /// Takes one request's token; false when the bucket is empty (the
    /// request must not run). `per_second` 0 = no limit.
    pub fn take(&mut self, per_second: u32, burst: u32, now: Instant) -> bool {
        if per_second == 0 {
            return true;
        }
        let elapsed = now
            .saturating_duration_since(self.last.instant())
            .as_secs_f32();
        self.last = now.into();
        self.tokens = (self.tokens + elapsed * per_second as f32).min(burst as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Snapshot quotes a connection may receive: a bucket of one second's
/// worth, charged after the fact (a request's snapshot count is known only
/// when they arrive) and allowed to go into debt by one request; while in
/// debt, requests for snapshots are refused. Snapshot requests of one
/// connection are taken one at a time: while one is outstanding (until its
/// last slice has arrived), the connection's further input waits (a client
/// cannot pipeline a hundred `*` snapshots before the first one is charged,
/// and the router holds one snapshot job per connection at most; with the
/// rate off, 0, requests are not held and several jobs may run);
/// well-behaved clients only see each snapshot subscribe wait for the one
/// before.
pub(super) struct SnapshotBucket {
    credit: f64,
    last: Moment,
    /// The snapshot request accepted and not yet answered by the router:
    /// its cost is unknown until then, so only one may be outstanding.
    outstanding: Option<u32>,
}

impl SnapshotBucket {
    pub fn full(per_second: u32, now: Instant) -> SnapshotBucket {
        SnapshotBucket {
            credit: f64::from(per_second),
            last: now.into(),
            outstanding: None,
        }
    }

    fn refill(&mut self, per_second: u32, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last.instant())
            .as_secs_f64();
        self.last = now.into();
        self.credit = (self.credit + elapsed * f64::from(per_second)).min(f64::from(per_second));
    }

    /// May a request for snapshots run now? `per_second` 0 = no limit.
    pub fn allows(&mut self, per_second: u32, now: Instant) -> bool {
        if per_second == 0 {
            return true;
        }
        self.refill(per_second, now);
        self.credit > 0.0
    }

    /// A snapshot request waits for its answer (input is held meanwhile).
    pub fn outstanding(&self) -> bool {
        self.outstanding.is_some()
    }

    /// Subscribe `request` (which asked for snapshots) was accepted.
    pub fn reserve(&mut self, per_second: u32, request: u32) {
        if per_second > 0 {
            self.outstanding = Some(request);
        }
    }

    /// `count` snapshot quotes arrived (an activation or a later slice).
    pub fn charge(&mut self, per_second: u32, count: usize, now: Instant) {
        if per_second == 0 {
            return;
        }
        self.refill(per_second, now);
        self.credit -= count as f64;
    }

    /// The last snapshot quotes of subscribe `request` arrived.
    pub fn answered(&mut self, request: u32) {
        if self.outstanding == Some(request) {
            self.outstanding = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = RequestBucket::full(100, t0);
        assert_eq!((0..150).filter(|_| b.take(50, 100, t0)).count(), 100);
        // 50/s: after 100 ms, 5 more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!((0..10).filter(|_| b.take(50, 100, t1)).count(), 5);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..500).filter(|_| b.take(50, 100, t2)).count(), 100);
        // Off.
        assert!((0..10_000).all(|_| b.take(0, 100, t2)));
    }

    #[test]
    fn snapshots_may_go_into_debt_once_then_wait() {
        let t0 = Instant::now();
        let mut b = SnapshotBucket::full(1000, t0);
        assert!(b.allows(1000, t0));
        b.reserve(1000, 7);
        assert!(b.outstanding(), "input waits for its answer");
        b.answered(6); // another request's answer: still outstanding
        assert!(b.outstanding());
        b.charge(1000, 4000, t0); // one `*` over 5,000 topics, in two slices
        assert!(b.outstanding(), "until its last slice");
        b.charge(1000, 1000, t0);
        b.answered(7);
        assert!(!b.outstanding());
        assert!(!b.allows(1000, t0));
        assert!(
            !b.allows(1000, t0 + Duration::from_secs(3)),
            "4,000 behind, 3,000 back"
        );
        assert!(b.allows(1000, t0 + Duration::from_millis(4001)));
        assert!(SnapshotBucket::full(0, t0).allows(0, t0), "off");
    }
}
