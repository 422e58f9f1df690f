//! Turning what the receiving and publishing threads measured into the
//! report: sums, merged histograms (overall and per `--ws` address),
//! expected deliveries and the bottleneck warnings.

use crate::gaps::GapCounts;
use crate::publisher;
use crate::receiver::{new_histogram, ErrorCounts, RecvConfig, RecvResult, WsResult};
use crate::report::{Errors, LoadgenCpu, Percentiles, Report, Subscribers, WsLatency};
use crate::sys::Rusage;

use super::LoadSpec;

/// Receiving threads above 90% busy mean the load generator may be what
/// limits the measured figures.
const BUSY_LIMIT: f64 = 0.9;

/// What one phase produced, handed over for aggregation.
pub(crate) struct Outcome {
    pub results: Vec<RecvResult>,
    pub pub_results: Vec<publisher::PubResult>,
    /// Subscribers opened (slow ones skipped in `SlowMode::Skip` excluded).
    pub opened: usize,
    /// Subscribers ready when the connect phase ended.
    pub ready: usize,
    /// Length of the connect phase, s.
    pub setup_s: f64,
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    /// Wall clock (ns since the epoch) when the measured phase began.
    pub t0_ns: u64,
    /// Seconds from the start of the measured phase to the threads' end.
    pub wall: f64,
    pub ru0: Rusage,
    pub ru1: Rusage,
}

/// The report of one phase (`baseline` left `None`).
pub(crate) fn report(spec: &LoadSpec, cfg: &RecvConfig, run: Outcome) -> Report {
    let Outcome {
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
    } = run;
    let mut latency = new_histogram();
    let mut connect = new_histogram();
    let mut ack = new_histogram();
    let mut errors = ErrorCounts::default();
    let mut gaps = GapCounts::default();
    let (mut deliveries, mut negative, mut subscribed, mut slow, mut last_ns) = (0, 0, 0, 0, 0);
    let (mut wire_bytes, mut deflate_negotiated) = (0u64, 0usize);
    let mut recv_busy = Vec::new();
    let mut by_ws: Vec<WsResult> = if cfg.per_ws() {
        cfg.ws.iter().map(|_| WsResult::new()).collect()
    } else {
        Vec::new()
    };
    for r in &results {
        for (acc, w) in by_ws.iter_mut().zip(&r.latency_by_ws) {
            acc.add(w);
        }
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
        wire_bytes += r.wire_bytes;
        deflate_negotiated += r.deflate_negotiated;
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

    let expected = expected_deliveries(spec, cfg, &pub_results, subscribed, opened);
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
    Report {
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
        wire_bytes,
        wire_bytes_per_delivery: (deliveries > 0)
            .then(|| round3(wire_bytes as f64 / deliveries as f64)),
        deflate_negotiated: spec.deflate.then_some(deflate_negotiated),
        latency_us: Percentiles::of(&latency),
        latency_by_ws: cfg.per_ws().then(|| {
            cfg.ws
                .iter()
                .zip(&by_ws)
                .map(|(addr, w)| WsLatency {
                    ws: addr.to_string(),
                    subscribers: w.subscribed,
                    latency_us: Percentiles::of(&w.latency),
                })
                .collect()
        }),
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
        soak: None,
        histogram: Some(histogram),
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Quotes sent per topic × fast subscribers on that topic; only when every
/// opened subscriber subscribed (else who missed what is unknown) and the
/// feed is ours.
pub(crate) fn expected_deliveries(
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
