//! An instant in 8 bytes, for state every idle connection keeps.
//!
//! `std::time::Instant` is 16 bytes on Linux (seconds and nanoseconds); a
//! connection keeps several (its liveness clock, its stall clock, its rate
//! buckets), and 10,000 idle connections pay for each. A `Moment` is the
//! signed nanoseconds from one process-wide base instant (±292 years), so
//! it converts both ways exactly and orders like the instants it stands
//! for; the zero bit pattern is never produced, so `Option<Moment>` is 8
//! bytes too.

use std::num::NonZeroU64;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment(NonZeroU64);

/// The sign bit flipped, so offsets order as unsigned numbers.
const BIAS: u64 = 1 << 63;

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

thread_local! {
    /// The last instant converted on this thread, and its moment. A worker
    /// converts one `now` per turn for every connection it touches (the
    /// last progress of each write, a new connection's clocks); the
    /// subtraction behind a conversion was 7% of a delivery's instructions
    /// and 1% of a reconnect storm's.
    static LAST: std::cell::Cell<Option<(Instant, Moment)>> = const { std::cell::Cell::new(None) };
}

impl From<Instant> for Moment {
    fn from(t: Instant) -> Moment {
        if let Some((last, moment)) = LAST.get() {
            if last == t {
                return moment;
            }
        }
        let moment = Moment::convert(t);
        LAST.set(Some((t, moment)));
        moment
    }
}

impl Moment {
    fn convert(t: Instant) -> Moment {
        let base = base();
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let offset = if t >= base {
            nanos(t - base)
        } else {
            -nanos(base - t)
        };
        // Zero would need an offset of -2^63 ns (292 years before start).
        Moment(NonZeroU64::new((offset as u64) ^ BIAS).unwrap_or(NonZeroU64::MIN))
    }
}

impl std::ops::Add<Duration> for Moment {
    type Output = Moment;

    /// Later by `d`, saturating ~292 years after start: deadlines compared
    /// as 8-byte numbers, with no `Instant` made (a worker's sweep asks
    /// every connection for its next deadline four times a second).
    fn add(self, d: Duration) -> Moment {
        let offset = (self.0.get() ^ BIAS) as i64;
        let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let later = offset.saturating_add(nanos);
        // Never i64::MIN (the zero pattern): a sum of a valid offset and a
        // non-negative count is at least the offset.
        Moment(NonZeroU64::new((later as u64) ^ BIAS).unwrap_or(NonZeroU64::MIN))
    }
}

impl Moment {
    pub fn instant(self) -> Instant {
        let base = base();
        let offset = (self.0.get() ^ BIAS) as i64;
        let d = Duration::from_nanos(offset.unsigned_abs());
        if offset >= 0 {
            base.checked_add(d).unwrap_or(base)
        } else {
            base.checked_sub(d).unwrap_or(base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_and_keep_their_order() {
        let now = Instant::now();
        let times = [
            now,
            now + Duration::from_nanos(1),
            now + Duration::from_secs(86_400 * 365),
            now.checked_sub(Duration::from_secs(5)).unwrap_or(now),
            base(),
        ];
        for t in times {
            assert_eq!(Moment::from(t).instant(), t);
        }
        let mut moments: Vec<Moment> = times.iter().map(|&t| Moment::from(t)).collect();
        moments.sort();
        let mut sorted = times.to_vec();
        sorted.sort();
        assert_eq!(
            moments.iter().map(|m| m.instant()).collect::<Vec<_>>(),
            sorted
        );
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 8);
    }

    #[test]
    fn a_moment_plus_a_duration_is_the_instant_plus_it() {
        let now = Instant::now();
        let early = now.checked_sub(Duration::from_secs(5)).unwrap_or(now);
        for t in [now, early, base()] {
            for d in [
                Duration::ZERO,
                Duration::from_nanos(1),
                Duration::from_secs(30),
            ] {
                assert_eq!((Moment::from(t) + d).instant(), t + d);
            }
        }
        let far = Moment::from(now) + Duration::MAX;
        assert!(far > Moment::from(now + Duration::from_secs(86_400 * 365 * 200)));
    }
}
