//! A sampled figure over the run (`Series`: start, end, max) and its
//! least-squares slope per minute after the warm-up: flat is what a
//! healthy broker's RSS, fds and queue depths look like.

use serde::Serialize;

use crate::scenario::round3;

/// A sampled figure over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    pub start: f64,
    pub end: f64,
    pub max: f64,
    /// Least-squares slope after the warm-up, per minute.
    pub slope_per_min: Option<f64>,
}

impl Series {
    /// Over `points` (seconds, value); the slope over those at or after
    /// `warmup_s`. None without points.
    pub fn of(points: &[(f64, f64)], warmup_s: f64) -> Option<Series> {
        let (first, last) = (points.first()?, points.last()?);
        let after: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|&(t, _)| t >= warmup_s)
            .collect();
        Some(Series {
            start: round3(first.1),
            end: round3(last.1),
            max: round3(points.iter().map(|p| p.1).fold(f64::MIN, f64::max)),
            slope_per_min: slope_per_min(&after).map(round3),
        })
    }
}

/// Least-squares slope of the values over time (seconds), per minute; None
/// with fewer than two distinct times.
pub fn slope_per_min(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(t, v) in points {
        num += (t - mean_t) * (v - mean_v);
        den += (t - mean_t) * (t - mean_t);
    }
    (den > 0.0).then(|| num / den * 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_least_squares_per_minute() {
        // 2 KiB per second = 120 KiB per minute; noise symmetric about the
        // middle of the run (+5, -5, -5, +5) leaves the slope alone.
        let noise = [5.0, -5.0, -5.0, 5.0];
        let pts: Vec<(f64, f64)> = (0..4)
            .map(|i| (i as f64, 1000.0 + 2.0 * i as f64 + noise[i]))
            .collect();
        let slope = slope_per_min(&pts).unwrap();
        assert!((slope - 120.0).abs() < 1e-9, "{slope}");
        let flat: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 7.0)).collect();
        assert_eq!(slope_per_min(&flat), Some(0.0));
        assert_eq!(slope_per_min(&[(1.0, 1.0)]), None);
        assert_eq!(slope_per_min(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn series_leave_the_warmup_out_of_the_slope_only() {
        let pts = [(0.0, 100.0), (1.0, 500.0), (2.0, 200.0), (3.0, 200.0)];
        let s = Series::of(&pts, 2.0).unwrap();
        assert_eq!(
            s,
            Series {
                start: 100.0,
                end: 200.0,
                max: 500.0,
                slope_per_min: Some(0.0)
            }
        );
        assert_eq!(Series::of(&[], 0.0), None);
    }
}
