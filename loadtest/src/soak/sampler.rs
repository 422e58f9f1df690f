//! The sampler: a thread that, every `--sample-every` from the start of
//! the run until it is stopped at its end, records the broker's RSS and
//! open file descriptors (`--broker-pid`), a `/metrics` scrape, and the
//! checked subscribers' deliveries so far; `--samples-csv` writes them
//! out. One more sample (`after`) once the run's connections are closed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::metrics::{MetricsAt, Scrape};
use super::plan::Plan;
use crate::receiver::Shared;
use crate::{sys, Error};

/// Samples past the planned ones before the sampler stops by itself.
const SPARE_SAMPLES: u64 = 1000;

#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Seconds since the start of the run.
    pub t_s: f64,
    pub rss_kib: Option<f64>,
    pub fds: Option<f64>,
    /// Quotes the checked subscribers had received.
    pub checked_deliveries: u64,
    /// None when the scrape failed.
    pub metrics: Option<Scrape>,
}

/// What the sampler hands back.
#[derive(Debug, Default)]
pub struct Sampled {
    pub samples: Vec<Sample>,
    /// Reads of /proc/PID that failed (the broker gone?), and the first error.
    pub pid_errors: u64,
    pub pid_error: Option<String>,
    /// Scrapes of /metrics that failed, and the first error.
    pub metrics_errors: u64,
    pub metrics_error: Option<String>,
}

impl Sampled {
    fn take(&mut self, pid: Option<u32>, at: &MetricsAt, t0: Instant, shared: &Shared) {
        let mut s = Sample {
            t_s: t0.elapsed().as_secs_f64(),
            checked_deliveries: shared.deliveries.load(Ordering::Relaxed),
            ..Sample::default()
        };
        if let Some(pid) = pid {
            match sys::rss_bytes(pid).and_then(|rss| Ok((rss, sys::open_fds(pid)?))) {
                Ok((rss, fds)) => {
                    s.rss_kib = Some(rss as f64 / 1024.0);
                    s.fds = Some(fds as f64);
                }
                Err(e) => {
                    self.pid_errors += 1;
                    self.pid_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        match at.scrape() {
            Ok(m) => s.metrics = Some(m),
            Err(e) => {
                self.metrics_errors += 1;
                self.metrics_error.get_or_insert(e);
            }
        }
        self.samples.push(s);
    }
}

/// How long the broker gets to close the run's last connections before
/// the sample `after` takes.
const SETTLE: Duration = Duration::from_secs(1);

/// One sample, `SETTLE` after every connection of the run closed: what
/// the broker holds once the load is gone.
pub fn after(plan: &Plan, shared: &Shared, t0: Instant) -> Sample {
    std::thread::sleep(SETTLE);
    let mut out = Sampled::default();
    out.take(plan.broker_pid, &plan.metrics_at(), t0, shared);
    out.samples.pop().unwrap_or_default()
}

pub struct Sampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Sampled>,
}

impl Sampler {
    /// Starts sampling now; `t0` is the start of the run.
    pub fn start(plan: &Plan, shared: Arc<Shared>, t0: Instant) -> Result<Sampler, Error> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (pid, at, every) = (plan.broker_pid, plan.metrics_at(), plan.sample_every);
        let planned = plan.load.duration.as_secs_f64() / every.as_secs_f64();
        let most = (planned.ceil() as u64).saturating_add(SPARE_SAMPLES);
        let handle = std::thread::Builder::new()
            .name("lt-soak-sampler".into())
            .spawn(move || {
                let mut out = Sampled::default();
                for _ in 0..most {
                    out.take(pid, &at, t0, &shared);
                    match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                // The last one, at the end of the run.
                out.take(pid, &at, t0, &shared);
                out
            })
            .map_err(|e| Error::msg(format!("spawn sampler: {e}")))?;
        Ok(Sampler { stop, handle })
    }

    /// Takes a last sample and hands back all of them.
    pub fn stop(self) -> Sampled {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_else(|_| Sampled {
            metrics_error: Some("the sampler panicked".into()),
            ..Sampled::default()
        })
    }
}

/// The samples as CSV: `t_s,rss_kib,fds,checked_deliveries,broker_subscribers`
/// then `queue:NAME` for every queue seen; empty where not sampled.
pub fn csv(samples: &[Sample]) -> String {
    let queues: BTreeSet<&String> = samples
        .iter()
        .filter_map(|s| s.metrics.as_ref())
        .flat_map(|m| m.queues.keys())
        .collect();
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut o = String::from("t_s,rss_kib,fds,checked_deliveries,broker_subscribers");
    for q in &queues {
        let _ = write!(o, ",queue:{q}");
    }
    o.push('\n');
    for s in samples {
        let m = s.metrics.as_ref();
        let _ = write!(
            o,
            "{:.3},{},{},{},{}",
            s.t_s,
            opt(s.rss_kib),
            opt(s.fds),
            s.checked_deliveries,
            opt(m.and_then(|m| m.subscribers))
        );
        for q in &queues {
            let _ = write!(o, ",{}", opt(m.and_then(|m| m.queues.get(*q).copied())));
        }
        o.push('\n');
    }
    o
}

/// Writes `csv(samples)` to `path`.
pub fn write_csv(path: &Path, samples: &[Sample]) -> Result<(), Error> {
    std::fs::write(path, csv(samples)).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
}

/// Longest stretch, in seconds, over which the checked subscribers'
/// deliveries did not grow, among the samples taken before `until_s`.
pub fn longest_silence(samples: &[Sample], until_s: f64) -> f64 {
    let mut longest = 0.0f64;
    let mut since: Option<(f64, u64)> = None;
    for s in samples.iter().filter(|s| s.t_s <= until_s) {
        match since {
            Some((t, d)) if s.checked_deliveries == d => longest = longest.max(s.t_s - t),
            _ => since = Some((s.t_s, s.checked_deliveries)),
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64, d: u64) -> Sample {
        Sample {
            t_s,
            checked_deliveries: d,
            ..Sample::default()
        }
    }

    #[test]
    fn silence_is_the_longest_run_without_new_deliveries() {
        let samples = [
            at(0.0, 0),
            at(1.0, 0),
            at(2.0, 5),
            at(3.0, 9),
            at(4.0, 9),
            at(5.0, 9),
            at(6.0, 9),
            at(7.0, 12),
        ];
        assert_eq!(longest_silence(&samples, 100.0), 3.0);
        assert_eq!(longest_silence(&samples, 4.5), 1.0);
        assert_eq!(longest_silence(&[], 10.0), 0.0);
    }

    #[test]
    fn csv_has_a_column_per_queue_and_blanks_where_not_sampled() {
        let mut m = Scrape::default();
        m.queues.insert("ingest".into(), 0.0);
        m.queues.insert("worker-0".into(), 2.0);
        m.subscribers = Some(7.0);
        let samples = [
            Sample {
                rss_kib: Some(1024.0),
                fds: Some(40.0),
                metrics: Some(m),
                ..at(0.0, 0)
            },
            at(1.0, 10),
        ];
        let text = csv(&samples);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "t_s,rss_kib,fds,checked_deliveries,broker_subscribers,queue:ingest,queue:worker-0",
                "0.000,1024,40,0,7,0,2",
                "1.000,,,10,,,",
            ]
        );
    }
}
