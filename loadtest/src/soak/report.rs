//! The soak's part of the report: `soak` in the JSON (null for the other
//! scenarios), a section of the table, and the verdict. The report's
//! top-level fields describe the checked subscribers and the publishers, as
//! for `fanout` (`deliveries`, `expected_deliveries`, `seq`, `latency_us`,
//! `errors`, …); `params.soak` holds the churn settings.
//!
//! ```text
//! soak.passed                  true when `failures` is empty; else the exit code is 1
//! soak.failures                [string]: each reason the run failed: a gap, duplicate or
//!                              out-of-order quote of a checked subscriber (or of a resumer
//!                              or resubscriber; for slow readers duplicates and reordering
//!                              only), deliveries missing, checked subscribers that did not
//!                              subscribe, errors, an unexplained unrecovered resume, a
//!                              silence over --max-silence, a slope over --max-*-slope-*,
//!                              the broker process gone
//! soak.warnings                [string]: what made the run less telling (resumes that may
//!                              outrun the history, failed scrapes, the CSV not written)
//! soak.warmup_s                seconds at the start left out of the slopes
//! soak.samples                 samples taken (every --sample-every, and one at the end)
//! soak.broker_rss_kib          {start, end, max, slope_per_min}: the broker's VmRSS in KiB
//!                              (--broker-pid, else null); slope_per_min: least-squares
//!                              slope over the samples after warmup_s, KiB per minute
//!                              (null with fewer than two such samples)
//! soak.broker_fds              the same for its open file descriptors (/proc/PID/fd)
//! soak.queue_depth             {QUEUE: {start, end, max, slope_per_min}} of
//!                              tickwire_queue_depth (worker-N), from GET /metrics
//!                              on the first --ws address
//! soak.broker_subscribers      the same of tickwire_connections{kind="subscriber"} (or null)
//! soak.broker_slow_consumer_closes  growth of tickwire_slow_consumer_closes_total (or null)
//! soak.broker_resumed_topics   {recovered, unrecovered}: growth of
//!                              tickwire_resume_topics_total (null without scrapes)
//! soak.broker_after            {rss_kib, fds, subscribers}: one sample a second after every
//!                              connection of the run closed (null where not sampled)
//! soak.checked_longest_silence_s  longest time the checked subscribers together got
//!                              nothing while quotes were published (sample resolution)
//! soak.churn                   what the churn did (soak/counts.rs):
//!   deliveries                 quotes received by churn connections
//!   connections                {opened, closed}: churn connections (--conn-churn)
//!   subscriptions              {subscribes, unsubscribes, seq}: resubscribers' requests
//!                              acknowledged, their seq counts (must be zero)
//!   slow_readers               {pauses, resumed, closed_slow_consumer, seq}: seq gaps are
//!                              conflation (expected); duplicates/out_of_order must be zero
//!   stalled_readers            {stalls, closed_by_broker, released}
//!   producers                  {reconnects}
//!   resumes                    {attempted, recovered, unrecovered, history_exceeded,
//!                              unexplained, unexplained_topics, new_epoch, seq}
//!   tokens                     {authed, refreshes}: with --hs256-secret-file, every
//!                              connection's authed replies and token refreshes
//!   tls_key_updates            with --tls: KeyUpdates the checked subscribers sent,
//!                              each asking the broker for one back
//!   errors                     {total, first[]}: unexpected events of the churn
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::counts::Counts;
use super::metrics::Scrape;
use super::plan::Plan;
use super::sampler::{longest_silence, Sample, Sampled};
pub use super::series::Series;
use crate::gaps::GapCounts;
use crate::report::Report;
use crate::scenario::round3;

#[derive(Clone, Debug, Default, Serialize)]
pub struct ResumedTopics {
    pub recovered: f64,
    pub unrecovered: f64,
}

/// The broker once every connection of the run has closed (and a second
/// more): what it still holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AfterRun {
    pub rss_kib: Option<f64>,
    pub fds: Option<f64>,
    pub subscribers: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SoakReport {
    pub passed: bool,
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    pub warmup_s: f64,
    pub samples: usize,
    pub broker_rss_kib: Option<Series>,
    pub broker_fds: Option<Series>,
    pub queue_depth: BTreeMap<String, Series>,
    pub broker_subscribers: Option<Series>,
    pub broker_slow_consumer_closes: Option<f64>,
    pub broker_resumed_topics: Option<ResumedTopics>,
    pub broker_after: AfterRun,
    pub checked_longest_silence_s: f64,
    pub churn: Counts,
}

/// `f` over the samples that have it, as (seconds, value).
fn points(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter_map(|s| Some((s.t_s, f(s)?)))
        .collect()
}

/// Growth of a broker counter between the first and the last scrape that has it.
fn growth(samples: &[Sample], f: impl Fn(&Scrape) -> Option<f64>) -> Option<f64> {
    let v = points(samples, |s| s.metrics.as_ref().and_then(&f));
    Some(v.last()?.1 - v.first()?.1)
}

fn seq_problems(what: &str, c: &GapCounts, gaps_count: bool) -> Option<String> {
    let gaps = if gaps_count { c.gaps } else { 0 };
    (gaps + c.duplicates + c.out_of_order > 0).then(|| {
        format!(
            "{what}: {gaps} gaps ({} quotes missing), {} duplicates, {} out of order",
            if gaps_count { c.missing } else { 0 },
            c.duplicates,
            c.out_of_order
        )
    })
}

impl SoakReport {
    /// The soak section from the samples and the churn counts; `report` is
    /// the checked subscribers' and publishers' part, judged with the rest.
    pub fn new(
        plan: &Plan,
        sampled: Sampled,
        after: Sample,
        churn: Counts,
        report: &Report,
    ) -> SoakReport {
        let samples = &sampled.samples;
        let warmup_s = plan.warmup.as_secs_f64();
        let series = |f: &dyn Fn(&Sample) -> Option<f64>| Series::of(&points(samples, f), warmup_s);
        let queues: std::collections::BTreeSet<String> = samples
            .iter()
            .filter_map(|s| s.metrics.as_ref())
            .flat_map(|m| m.queues.keys().cloned())
            .collect();
        let queue_depth = queues
            .into_iter()
            .filter_map(|q| {
                let s = series(&|s: &Sample| s.metrics.as_ref()?.queues.get(&q).copied())?;
                Some((q, s))
            })
            .collect();
        let recovered = growth(samples, |m| m.resumed_recovered);
        let unrecovered = growth(samples, |m| m.resumed_unrecovered);
        let mut warnings = plan.warnings();
        if let Some(e) = &sampled.metrics_error {
            warnings.push(format!(
                "{} of {} /metrics scrapes failed, first: {e}",
                sampled.metrics_errors,
                samples.len()
            ));
        }
        let mut me = SoakReport {
            passed: false,
            failures: Vec::new(),
            warnings,
            warmup_s,
            samples: samples.len(),
            broker_rss_kib: series(&|s: &Sample| s.rss_kib),
            broker_fds: series(&|s: &Sample| s.fds),
            queue_depth,
            broker_subscribers: series(&|s: &Sample| s.metrics.as_ref()?.subscribers),
            broker_slow_consumer_closes: growth(samples, |m| m.slow_consumer_closes),
            broker_resumed_topics: recovered.zip(unrecovered).map(|(r, u)| ResumedTopics {
                recovered: r,
                unrecovered: u,
            }),
            broker_after: AfterRun {
                rss_kib: after.rss_kib.map(round3),
                fds: after.fds,
                subscribers: after.metrics.and_then(|m| m.subscribers),
            },
            checked_longest_silence_s: round3(longest_silence(
                samples,
                plan.load.duration.as_secs_f64(),
            )),
            churn,
        };
        me.failures = me.judge(plan, &sampled, report);
        me.passed = me.failures.is_empty();
        me
    }

    fn judge(&self, plan: &Plan, sampled: &Sampled, report: &Report) -> Vec<String> {
        let mut f = Vec::new();
        let c = &self.churn;
        f.extend(seq_problems("checked subscribers", &report.seq, true));
        if report.subscribers.failed > 0 {
            f.push(format!(
                "{} of {} checked subscribers did not subscribe",
                report.subscribers.failed, report.subscribers.requested
            ));
        }
        if let Some(e) = report
            .expected_deliveries
            .filter(|&e| report.deliveries < e)
        {
            f.push(format!(
                "checked subscribers got {} of the {e} quotes published for them",
                report.deliveries
            ));
        }
        if report.errors.total > 0 {
            f.push(format!(
                "checked subscribers and publishers: {} errors {:?}",
                report.errors.total, report.errors.counts
            ));
        }
        f.extend(seq_problems("resumers", &c.resumes.seq, true));
        f.extend(seq_problems("resubscribers", &c.subscriptions.seq, true));
        f.extend(seq_problems("slow readers", &c.slow_readers.seq, false));
        if c.resumes.unexplained > 0 {
            f.push(format!(
                "{} topics resumed unrecovered although the history held them: {}",
                c.resumes.unexplained,
                c.resumes.unexplained_topics.join("; ")
            ));
        }
        if c.errors.total > 0 {
            f.push(format!(
                "churn: {} unexpected events: {}",
                c.errors.total,
                c.errors.first.join("; ")
            ));
        }
        if let Some(max) = plan.max_silence {
            if self.checked_longest_silence_s > max.as_secs_f64() {
                f.push(format!(
                    "checked subscribers got nothing for {:.1} s (--max-silence {:.1})",
                    self.checked_longest_silence_s,
                    max.as_secs_f64()
                ));
            }
        }
        if let (Some(pid), Some(e)) = (plan.broker_pid, &sampled.pid_error) {
            f.push(format!(
                "broker process {pid}: {} samples failed (gone?): {e}",
                sampled.pid_errors
            ));
        }
        let limits = [
            (
                "RSS",
                "KiB",
                &self.broker_rss_kib,
                plan.max_rss_slope_kib_per_min,
            ),
            (
                "open fds",
                "fds",
                &self.broker_fds,
                plan.max_fd_slope_per_min,
            ),
        ];
        for (what, unit, series, limit) in limits {
            let Some(limit) = limit else { continue };
            match series.as_ref().and_then(|s| s.slope_per_min) {
                Some(slope) if slope > limit => f.push(format!(
                    "broker {what} grew {slope:.1} {unit}/min after the warm-up (limit {limit})"
                )),
                Some(_) => {}
                None => f.push(format!(
                    "no slope of the broker's {what} to check against its limit (--broker-pid? a run past --warmup?)"
                )),
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn plan() -> Plan {
        let cli = Cli::try_parse_from(["lt", "soak", "--max-fd-slope-per-min", "5"]).unwrap();
        let Command::Soak(a) = &cli.command else {
            panic!("not soak");
        };
        Plan::new(crate::soak_spec(&cli, a).unwrap(), a).unwrap()
    }

    fn clean() -> (Sample, Counts, Report) {
        let report = Report {
            deliveries: 10,
            expected_deliveries: Some(10),
            ..Report::default()
        };
        (Sample::default(), Counts::default(), report)
    }

    #[test]
    fn a_clean_run_passes_only_with_what_its_limits_need() {
        let plan = plan();
        let (after, counts, report) = clean();
        // --max-fd-slope-per-min without samples of the broker's fds fails.
        let soak = SoakReport::new(
            &plan,
            Sampled::default(),
            after.clone(),
            counts.clone(),
            &report,
        );
        assert!(!soak.passed);
        assert!(soak.failures[0].contains("open fds"), "{:?}", soak.failures);
        let fds = |t_s: f64, fds: f64| Sample {
            t_s,
            fds: Some(fds),
            ..Sample::default()
        };
        let sampled = Sampled {
            samples: vec![fds(0.0, 40.0), fds(30.0, 40.0), fds(60.0, 41.0)],
            ..Sampled::default()
        };
        let soak = SoakReport::new(&plan, sampled, after, counts, &report);
        assert!(soak.passed, "{:?}", soak.failures);
        assert_eq!(soak.broker_fds.unwrap().max, 41.0);
    }

    #[test]
    fn gaps_missing_quotes_and_unexplained_resumes_fail_the_run() {
        let plan = plan();
        let (after, mut counts, mut report) = clean();
        report.seq.gaps = 1;
        report.seq.missing = 3;
        report.deliveries = 7;
        counts.resumes.unexplained = 1;
        counts.slow_readers.seq.gaps = 5; // conflation: fine
        counts.subscriptions.seq.duplicates = 1;
        let soak = SoakReport::new(&plan, Sampled::default(), after, counts, &report);
        let all = soak.failures.join("\n");
        for what in [
            "checked subscribers: 1 gaps (3 quotes missing)",
            "got 7 of the 10 quotes",
            "resumed unrecovered",
            "resubscribers: 0 gaps (0 quotes missing), 1 duplicates",
        ] {
            assert!(all.contains(what), "{what}: {all}");
        }
        assert!(!all.contains("slow readers"), "{all}");
        assert!(!soak.passed);
        let mut table = String::new();
        soak.table(&mut table);
        assert!(table.contains("FAILED"), "{table}");
    }
}
