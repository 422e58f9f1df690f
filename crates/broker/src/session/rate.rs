//! The request rate limit of one connection: a token bucket, full at
//! connect, refilled continuously.

use std::time::Instant;

pub(super) struct RequestBucket {
    tokens: f32,
    last: Instant,
}

impl RequestBucket {
    pub fn full(burst: u32, now: Instant) -> RequestBucket {
        RequestBucket {
            tokens: burst as f32,
            last: now,
        }
    }

    /// Takes one request's token; false when the bucket is empty (the
    /// request must not run). `per_second` 0 = no limit.
    pub fn take(&mut self, per_second: u32, burst: u32, now: Instant) -> bool {
        if per_second == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * per_second as f32).min(burst as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
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
}
