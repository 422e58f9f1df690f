//! Runs a scenario: connect phase, measured phase, drain, aggregation.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::gaps::GapCounts;
use crate::publisher::{self, PubConfig};
use crate::receiver::{
    self, new_histogram, ErrorCounts, Format, RecvConfig, Shared, SlowMode, PHASE_MEASURE,
    PHASE_STOP,
};
use crate::report::{Errors, LoadgenCpu, Percentiles, Report, Subscribers};
use crate::sys;
use crate::Error;

/// Everything one run needs, resolved from the command line.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub scenario: &'static str,
    pub ws: SocketAddr,
    pub ingest: SocketAddr,
    pub format: Format,
    pub subscribers: usize,
    pub topics: usize,
    pub per_sub: usize,
    pub publishers: usize,
    pub rate: f64,
    pub batch: usize,
    pub threads: usize,
    pub duration: Duration,
    pub connect_timeout: Duration,
    pub drain: Duration,
    pub prefix: String,
    pub slow_share: f64,
    pub slow_mode: SlowMode,
    pub inflight: usize,
    pub quiet: bool,
    pub broker_pid: Option<u32>,
    /// Connections scenario: report connect/ack times and use the ack
    /// histogram for --hgrm/--plot.
    pub connection_times: bool,
    /// Subscribers over TLS (`--tls`).
    pub tls: Option<crate::receiver::TlsClient>,
}

/// Receiving threads above 90% busy mean the load generator may be what
/// limits the measured figures.
const BUSY_LIMIT: f64 = 0.9;

fn bar(quiet: bool, len: u64, template: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

impl LoadSpec {
    fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::msg(m.to_owned()));
        if self.topics == 0 {
            return bad("--topics must be at least 1");
        }
        if self.per_sub == 0 || self.per_sub > self.topics {
            return bad("--topics-per-sub must be in 1..=--topics");
        }
        if self.per_sub > 1024 {
            return bad(
                "--topics-per-sub over 1024 exceeds the broker's default subscription limit",
            );
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return bad("--rate must be a finite number >= 0");
        }
        if self.threads == 0 || self.threads > 256 {
            return bad("--threads must be in 1..=256");
        }
        if !(0.0..=1.0).contains(&self.slow_share) {
            return bad("--slow-share must be in 0..=1");
        }
        if self.duration.is_zero() {
            return bad("--duration must be > 0");
        }
        if self.batch == 0 || self.batch > 10_000 {
            return bad("--batch must be in 1..=10000");
        }
        Ok(())
    }

    fn params(&self) -> serde_json::Value {
        json!({
            "ws": self.ws.to_string(),
            "ingest": self.ingest.to_string(),
            "format": self.format,
            "subscribers": self.subscribers,
            "topics": self.topics,
            "topics_per_sub": self.per_sub,
            "publishers": self.publishers,
            "rate": self.rate,
            "batch": self.batch,
            "threads": self.threads,
            "duration_s": self.duration.as_secs_f64(),
            "slow_share": if self.slow_mode == SlowMode::None { 0.0 } else { self.slow_share },
            "slow_mode": format!("{:?}", self.slow_mode).to_lowercase(),
            "topic_prefix": self.prefix,
            "tls": self.tls.is_some(),
            "tls_resume": self.tls.as_ref().map(|t| t.resume),
        })
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

    let cfg = Arc::new(RecvConfig {
        ws: spec.ws,
        format: spec.format,
        topics: spec.topics,
        per_sub: spec.per_sub,
        prefix: spec.prefix.clone(),
        slow_share: spec.slow_share,
        slow_mode: spec.slow_mode,
        spread_sources: spec.ws.ip().is_loopback() && spec.subscribers > sys::SPREAD_ABOVE,
        max_inflight: spec.inflight.max(1),
        connect_deadline: Instant::now() + spec.connect_timeout,
        tls: spec.tls.clone(),
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

    // ---- connect phase (bounded by the connect deadline)
    let pb = bar(
        spec.quiet,
        opened as u64,
        "connecting {pos}/{len} [{bar:30}] {elapsed} {msg}",
    );
    let hard_stop = cfg.connect_deadline + Duration::from_secs(2);
    while shared.settled_threads.load(Ordering::Acquire) < threads && Instant::now() < hard_stop {
        let (ready, failed) = (
            shared.ready.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
        );
        pb.set_position((ready + failed) as u64);
        if failed > 0 {
            pb.set_message(format!("{failed} failed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pb.finish_and_clear();
    let setup_s = setup_started.elapsed().as_secs_f64();
    let ready = shared.ready.load(Ordering::Relaxed);
    if ready == 0 && opened > 0 {
        shared.phase.store(PHASE_STOP, Ordering::Release);
        let mut errors = ErrorCounts::default();
        for h in handles {
            if let Ok(r) = h.join() {
                errors.add(&r.errors);
            }
        }
        return Err(Error::msg(format!(
            "no subscriber could connect and subscribe to ws://{}/ws (errors: {errors:?}); is the broker running there?",
            spec.ws
        )));
    }
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
    shared.phase.store(PHASE_MEASURE, Ordering::Release);
    let end = t0 + spec.duration;
    let pcfg = Arc::new(PubConfig {
        ingest: spec.ingest,
        publishers: spec.publishers.max(1),
        topics: spec.topics,
        prefix: spec.prefix.clone(),
        rate: spec.rate,
        batch: spec.batch,
    });
    let mut pubs = Vec::with_capacity(spec.publishers);
    for p in 0..spec.publishers {
        let pcfg = pcfg.clone();
        let h = std::thread::Builder::new()
            .name(format!("lt-pub-{p}"))
            .spawn(move || publisher::run(&pcfg, p, t0, t0_ns, end))
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
        let d = shared.deliveries.load(Ordering::Relaxed);
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
    // growing for QUIET, at most `drain`.
    let expected_now = expected_deliveries(
        spec,
        &cfg,
        &pub_results,
        shared.ready.load(Ordering::Relaxed),
        opened,
    );
    if spec.publishers > 0 {
        const QUIET: Duration = Duration::from_secs(1);
        let drain_end = Instant::now() + spec.drain;
        let mut seen = shared.deliveries.load(Ordering::Relaxed);
        let mut still_since = Instant::now();
        while Instant::now() < drain_end {
            if expected_now.is_some_and(|e| seen >= e) {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
            let d = shared.deliveries.load(Ordering::Relaxed);
            if d != seen {
                seen = d;
                still_since = Instant::now();
            } else if still_since.elapsed() >= QUIET {
                break;
            }
        }
    }
    shared.phase.store(PHASE_STOP, Ordering::Release);
    let results: Vec<receiver::RecvResult> =
        handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let wall = t0.elapsed().as_secs_f64();
    let ru1 = sys::rusage_self();

    // ---- aggregate
    let mut latency = new_histogram();
    let mut connect = new_histogram();
    let mut ack = new_histogram();
    let mut errors = ErrorCounts::default();
    let mut gaps = GapCounts::default();
    let (mut deliveries, mut negative, mut subscribed, mut slow, mut last_ns) = (0, 0, 0, 0, 0);
    let mut recv_busy = Vec::new();
    for r in &results {
        let _ = latency.add(&r.latency);
        let _ = connect.add(&r.connect);
        let _ = ack.add(&r.subscribe_ack);
        errors.add(&r.errors);
        gaps.add(&r.gaps);
        deliveries += r.deliveries;
        negative += r.negative_latency;
        subscribed += r.subscribed;
        slow += r.slow;
        last_ns = last_ns.max(r.last_delivery_ns);
        recv_busy.push(round3(r.busy_share));
    }
    let mut pub_busy = Vec::new();
    let mut quotes_sent = 0;
    let mut scheduled = 0;
    let mut pub_errors = Vec::new();
    for p in &pub_results {
        quotes_sent += p.sent;
        scheduled += p.scheduled;
        pub_busy.push(round3(p.busy_share));
        if let Some(e) = &p.error {
            errors.publisher += 1;
            pub_errors.push(e.clone());
        }
    }
    let duration_s = spec.duration.as_secs_f64();
    let active_s = if last_ns > t0_ns {
        ((last_ns - t0_ns) as f64 / 1e9).max(duration_s)
    } else {
        duration_s
    };

    let busy = recv_busy.iter().copied().fold(0.0f64, f64::max);
    let mut warnings = Vec::new();
    if busy >= BUSY_LIMIT {
        warnings.push(format!(
            "a receiving thread was {:.0}% busy: the load generator, not the broker, may have limited deliveries (use more --threads and cores)",
            busy * 100.0
        ));
    }
    if spec.rate > 0.0 && scheduled > 0 && (quotes_sent as f64) < 0.95 * scheduled as f64 {
        warnings.push(format!(
            "publishers sent {quotes_sent} of the {scheduled} quotes scheduled: the requested rate was not reached (broker back-pressure or a busy load generator)"
        ));
    }
    let pub_max = pub_busy.iter().copied().fold(0.0f64, f64::max);
    if spec.rate == 0.0 && pub_max >= BUSY_LIMIT {
        warnings.push(format!(
            "a publisher thread was {:.0}% busy: the input rate was limited by the load generator (add --publishers)",
            pub_max * 100.0
        ));
    }
    if !pub_errors.is_empty() {
        warnings.push(format!("publisher errors: {}", pub_errors.join("; ")));
    }

    let expected = expected_deliveries(spec, &cfg, &pub_results, subscribed, opened);
    if let Some(e) = expected {
        if deliveries < e {
            warnings.push(format!(
                "{} of {e} expected deliveries had not arrived when the drain ended (broker backlog or dropped quotes; see --drain)",
                e - deliveries
            ));
        }
    }
    let user_s = ru1.user.saturating_sub(ru0.user).as_secs_f64();
    let sys_s = ru1.sys.saturating_sub(ru0.sys).as_secs_f64();
    let histogram = if spec.connection_times {
        ack.clone()
    } else {
        latency.clone()
    };
    let rss_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if subscribed > 0 => {
            Some(((a as f64 - b as f64) / (subscribed) as f64).round())
        }
        _ => None,
    };
    Ok(Report {
        scenario: spec.scenario.to_owned(),
        params: spec.params(),
        duration_s,
        deliveries,
        deliveries_per_s: round3(deliveries as f64 / active_s),
        expected_deliveries: expected,
        quotes_sent,
        quotes_per_s: round3(quotes_sent as f64 / duration_s),
        subscribers: Subscribers {
            requested: opened,
            subscribed,
            failed: opened.saturating_sub(subscribed),
            slow,
        },
        latency_us: Percentiles::of(&latency),
        seq_gaps: gaps.gaps,
        seq: gaps,
        negative_latency: negative,
        errors: Errors {
            total: errors.total(),
            counts: errors,
        },
        loadgen_cpu: LoadgenCpu {
            user_s: round3(user_s),
            sys_s: round3(sys_s),
            process_cpu_share: round3(if wall > 0.0 {
                (user_s + sys_s) / wall
            } else {
                0.0
            }),
            busy_share: busy,
            receiver_busy_share: recv_busy,
            publisher_busy_share: pub_busy,
        },
        bottleneck_warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
        connect_us: spec.connection_times.then(|| Percentiles::of(&connect)),
        subscribe_ack_us: spec.connection_times.then(|| Percentiles::of(&ack)),
        setups_per_s: spec
            .connection_times
            .then(|| round3(ready as f64 / setup_s.max(1e-9))),
        broker_rss_before_bytes: rss_before,
        broker_rss_after_bytes: rss_after,
        broker_rss_per_conn_bytes: rss_per_conn,
        baseline: None,
        histogram: Some(histogram),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Quotes sent per topic × fast subscribers on that topic; only when every
/// opened subscriber subscribed (else who missed what is unknown) and the
/// feed is ours.
fn expected_deliveries(
    spec: &LoadSpec,
    cfg: &RecvConfig,
    pubs: &[publisher::PubResult],
    subscribed: usize,
    opened: usize,
) -> Option<u64> {
    if spec.publishers == 0 || subscribed != opened {
        return None;
    }
    let mut subs_per_topic = vec![0u64; spec.topics];
    for s in 0..spec.subscribers {
        if cfg.is_slow(s) {
            continue;
        }
        for t in cfg.topics_of(s) {
            subs_per_topic[t] += 1;
        }
    }
    let p_count = spec.publishers;
    let mut total = 0u64;
    for (p, res) in pubs.iter().enumerate() {
        let mine: Vec<usize> = (0..spec.topics).filter(|i| i % p_count == p).collect();
        if mine.is_empty() {
            continue;
        }
        let len = mine.len() as u64;
        for (j, &t) in mine.iter().enumerate() {
            let sent = res.sent / len + u64::from((j as u64) < res.sent % len);
            total += sent * subs_per_topic[t];
        }
    }
    Some(total)
}
