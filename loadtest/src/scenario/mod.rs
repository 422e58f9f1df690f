//! Runs a scenario: connect phase, measured phase, drain, then aggregation
//! (`aggregate`) of what the threads measured into the report. The run
//! specification is `spec::LoadSpec`. The soak (`crate::soak`) runs its
//! steady part with the same pieces: `Receivers`, `pub_config`, `drain`,
//! `aggregate`.

mod aggregate;
mod spec;

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) use aggregate::{expected_deliveries, report as aggregate, round3, Outcome};
pub use spec::LoadSpec;

use crate::publisher::{self, PubConfig};
use crate::receiver::{
    self, ErrorCounts, RecvConfig, RecvResult, Shared, SlowMode, PHASE_MEASURE, PHASE_STOP,
};
use crate::report::Report;
use crate::sys;
use crate::Error;

pub(crate) fn bar(quiet: bool, len: u64, template: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// The receiving threads of a run, from their start to their results.
pub(crate) struct Receivers {
    pub cfg: Arc<RecvConfig>,
    pub shared: Arc<Shared>,
    /// Subscribers opened (slow ones skipped in `SlowMode::Skip` excluded).
    pub opened: usize,
    /// Subscribers ready when the connect phase ended.
    pub ready: usize,
    /// Length of the connect phase, s.
    pub setup_s: f64,
    handles: Vec<JoinHandle<RecvResult>>,
}

impl Receivers {
    /// Starts `spec.threads` receiving threads (subscribers split round-robin
    /// over them) and waits, with a progress bar, until each has settled
    /// (every subscriber subscribed or failed) or the connect deadline has
    /// passed. Refuses when no subscriber at all got through.
    pub(crate) fn connect(spec: &LoadSpec) -> Result<Receivers, Error> {
        let cfg = Arc::new(RecvConfig {
            ws: spec.ws.clone(),
            format: spec.format,
            delta: spec.delta,
            deflate: spec.deflate,
            topics: spec.topics,
            per_sub: spec.per_sub,
            prefix: spec.prefix.clone(),
            slow_share: spec.slow_share,
            slow_mode: spec.slow_mode,
            // Applied to loopback addresses only (see `receiver::conn`).
            spread_sources: spec.subscribers > sys::SPREAD_ABOVE,
            max_inflight: spec.inflight.max(1),
            connect_deadline: Instant::now() + spec.connect_timeout,
            tls: spec.tls.clone(),
            auth: spec.auth.clone(),
        });
        let opened: usize = (0..spec.subscribers)
            .filter(|&s| !(spec.slow_mode == SlowMode::Skip && cfg.is_slow(s)))
            .count();
        let shared = Arc::new(Shared::default());
        let setup_started = Instant::now();
        let threads = spec.threads.min(spec.subscribers.max(1));
        let mut handles = Vec::with_capacity(threads);
        for r in 0..threads {
            let subs: Vec<usize> = (0..spec.subscribers).filter(|s| s % threads == r).collect();
            let (cfg, shared) = (cfg.clone(), shared.clone());
            let h = std::thread::Builder::new()
                .name(format!("lt-recv-{r}"))
                .spawn(move || receiver::run(&cfg, subs, &shared, r))
                .map_err(|e| Error::msg(format!("spawn receiver: {e}")))?;
            handles.push(h);
        }
        let mut me = Receivers {
            cfg,
            shared,
            opened,
            ready: 0,
            setup_s: 0.0,
            handles,
        };

        // ---- connect phase (bounded by the connect deadline)
        let pb = bar(
            spec.quiet,
            opened as u64,
            "connecting {pos}/{len} [{bar:30}] {elapsed} {msg}",
        );
        let hard_stop = me.cfg.connect_deadline + Duration::from_secs(2);
        while me.shared.settled_threads.load(Ordering::Acquire) < threads
            && Instant::now() < hard_stop
        {
            let (ready, failed) = (
                me.shared.ready.load(Ordering::Relaxed),
                me.shared.failed.load(Ordering::Relaxed),
            );
            pb.set_position((ready + failed) as u64);
            if failed > 0 {
                pb.set_message(format!("{failed} failed"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        pb.finish_and_clear();
        me.setup_s = setup_started.elapsed().as_secs_f64();
        me.ready = me.shared.ready.load(Ordering::Relaxed);
        if me.ready == 0 && opened > 0 {
            let mut errors = ErrorCounts::default();
            for r in me.stop() {
                errors.add(&r.errors);
            }
            let urls: Vec<String> = spec.ws.iter().map(|a| format!("ws://{a}/ws")).collect();
            return Err(Error::msg(format!(
                "no subscriber could connect and subscribe to {} (errors: {errors:?}); is the broker running there?",
                urls.join(", ")
            )));
        }
        Ok(me)
    }

    /// Deliveries so far, over every receiving thread.
    pub(crate) fn deliveries(&self) -> u64 {
        self.shared.deliveries.load(Ordering::Relaxed)
    }

    /// Starts the measured phase.
    pub(crate) fn measure(&self) {
        self.shared.phase.store(PHASE_MEASURE, Ordering::Release);
    }

    /// Stops the threads and hands back what each measured.
    pub(crate) fn stop(self) -> Vec<RecvResult> {
        self.shared.phase.store(PHASE_STOP, Ordering::Release);
        self.handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .collect()
    }

    /// After publishing stopped: waits until `expected` deliveries arrived,
    /// or deliveries stop growing for a second, at most `max`.
    pub(crate) fn drain(&self, expected: Option<u64>, max: Duration) {
        const QUIET: Duration = Duration::from_secs(1);
        let drain_end = Instant::now() + max;
        let mut seen = self.deliveries();
        let mut still_since = Instant::now();
        while Instant::now() < drain_end {
            if expected.is_some_and(|e| seen >= e) {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
            let d = self.deliveries();
            if d != seen {
                seen = d;
                still_since = Instant::now();
            } else if still_since.elapsed() >= QUIET {
                break;
            }
        }
    }
}

/// The publishers of `spec`.
pub(crate) fn pub_config(spec: &LoadSpec) -> PubConfig {
    PubConfig {
        ingest: spec.ingest,
        publishers: spec.publishers.max(1),
        topics: spec.topics,
        prefix: spec.prefix.clone(),
        rate: spec.rate,
        batch: spec.batch,
    }
}

/// Runs one phase end to end and returns its report.
pub fn run_load(spec: &LoadSpec) -> Result<Report, Error> {
    spec.validate()?;
    let needed = spec.subscribers as u64 + spec.publishers as u64 + 2 * spec.threads as u64 + 64;
    sys::ensure_fd_limit(needed)?;

    let rss_before = match spec.broker_pid {
        Some(pid) => Some(sys::rss_bytes(pid)?),
        None => None,
    };
    let receivers = Receivers::connect(spec)?;
    let rss_after = match spec.broker_pid {
        Some(pid) => {
            // Let the broker finish what the last acks triggered.
            std::thread::sleep(Duration::from_millis(500));
            Some(sys::rss_bytes(pid)?)
        }
        None => None,
    };

    // ---- measured phase
    let ru0 = sys::rusage_self();
    let t0 = Instant::now();
    let t0_ns = sys::wall_ns();
    receivers.measure();
    let end = t0 + spec.duration;
    let pcfg = Arc::new(pub_config(spec));
    let mut pubs = Vec::with_capacity(spec.publishers);
    for p in 0..spec.publishers {
        let pcfg = pcfg.clone();
        let h = std::thread::Builder::new()
            .name(format!("lt-pub-{p}"))
            .spawn(move || publisher::run(&pcfg, p, t0, t0_ns, end, 0))
            .map_err(|e| Error::msg(format!("spawn publisher: {e}")))?;
        pubs.push(h);
    }
    let pb = bar(
        spec.quiet,
        spec.duration.as_millis() as u64,
        "{spinner} [{bar:30}] {elapsed}/{duration} {msg}",
    );
    let mut last = (Instant::now(), 0u64);
    while Instant::now() < end {
        std::thread::sleep(
            Duration::from_millis(200).min(end.saturating_duration_since(Instant::now())),
        );
        let now = Instant::now();
        let d = receivers.deliveries();
        let rate = (d - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        last = (now, d);
        pb.set_position(now.duration_since(t0).as_millis() as u64);
        pb.set_message(format!("{d} deliveries, {rate:.0}/s"));
    }
    pb.finish_and_clear();
    let pub_results: Vec<publisher::PubResult> = pubs
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| publisher::PubResult {
                error: Some("publisher thread panicked".into()),
                ..Default::default()
            })
        })
        .collect();

    // ---- drain: until every expected delivery arrived, or deliveries stop
    // growing for a second, at most `drain`.
    if spec.publishers > 0 {
        let expected_now = expected_deliveries(
            spec,
            &receivers.cfg,
            &pub_results,
            receivers.shared.ready.load(Ordering::Relaxed),
            receivers.opened,
        );
        receivers.drain(expected_now, spec.drain);
    }
    let (cfg, opened, ready, setup_s) = (
        receivers.cfg.clone(),
        receivers.opened,
        receivers.ready,
        receivers.setup_s,
    );
    let results = receivers.stop();
    let wall = t0.elapsed().as_secs_f64();
    let ru1 = sys::rusage_self();
    Ok(aggregate(
        spec,
        &cfg,
        Outcome {
            results,
            pub_results,
            opened,
            ready,
            setup_s,
            rss_before,
            rss_after,
            t0_ns,
            wall,
            ru0,
            ru1,
        },
    ))
}
