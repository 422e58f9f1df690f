//! The run report: JSON (`--json`), a human table, `.hgrm` percentile
//! distribution text and an SVG percentile plot.
//!
//! JSON schema (every key is always present; `null` where not applicable):
//!
//! ```text
//! scenario                 "fanout" | "latency" | "connections" | "slow"
//! params                   object: the effective parameters of the run
//! duration_s               measured phase length (publishing window / hold time), s
//! deliveries               quotes received by all subscribers
//! deliveries_per_s         deliveries / (first publish → last delivery), per s
//! expected_deliveries      quotes_sent × subscribers per topic (null when not computable)
//! quotes_sent              quotes the publishers wrote to the ingest socket
//! quotes_per_s             quotes_sent / duration_s
//! subscribers              {requested, subscribed, failed, slow}
//! latency_us               {count, p50, p90, p99, p999, max, mean}  producer ts → receipt, µs
//! seq_gaps                 seq jumps by more than 1, summed over subscribers and topics
//! seq                      {gaps, missing, duplicates, out_of_order}
//! negative_latency         quotes whose ts was in the future (recorded as 1 µs)
//! errors                   {total, connect, handshake, subscribe, server_error,
//!                           unexpected_close, protocol, unexpected_topic, publisher}
//! loadgen_cpu              {user_s, sys_s, process_cpu_share, busy_share,
//!                           receiver_busy_share[], publisher_busy_share[]}
//! bottleneck_warning       string or null
//! connect_us               percentiles of TCP connect time (connections scenario, else null)
//! subscribe_ack_us         percentiles of connect + upgrade + subscribe ack (connections, else null)
//! setups_per_s             subscribers set up per second, TLS handshake included (connections, else null)
//! broker_rss_before_bytes  VmRSS before connecting (connections with --broker-pid, else null)
//! broker_rss_after_bytes   VmRSS with every connection subscribed (same)
//! broker_rss_per_conn_bytes (after − before) / subscribed (same)
//! baseline                 for `slow --compare`: the report of the phase without slow
//!                          subscribers (same schema, its own baseline null), else null
//! ```

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::gaps::GapCounts;
use crate::receiver::ErrorCounts;
use crate::Error;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5) as f64,
            p90: h.value_at_quantile(0.9) as f64,
            p99: h.value_at_quantile(0.99) as f64,
            p999: h.value_at_quantile(0.999) as f64,
            max: h.max() as f64,
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Subscribers {
    pub requested: usize,
    pub subscribed: usize,
    pub failed: usize,
    pub slow: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Errors {
    pub total: u64,
    #[serde(flatten)]
    pub counts: ErrorCounts,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadgenCpu {
    pub user_s: f64,
    pub sys_s: f64,
    /// (user + sys) / wall over the measured phase; 1.0 = one core.
    pub process_cpu_share: f64,
    /// The busiest receiving thread's CPU / wall (0..1).
    pub busy_share: f64,
    pub receiver_busy_share: Vec<f64>,
    pub publisher_busy_share: Vec<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub params: serde_json::Value,
    pub duration_s: f64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub expected_deliveries: Option<u64>,
    pub quotes_sent: u64,
    pub quotes_per_s: f64,
    pub subscribers: Subscribers,
    pub latency_us: Percentiles,
    pub seq_gaps: u64,
    pub seq: GapCounts,
    pub negative_latency: u64,
    pub errors: Errors,
    pub loadgen_cpu: LoadgenCpu,
    pub bottleneck_warning: Option<String>,
    pub connect_us: Option<Percentiles>,
    pub subscribe_ack_us: Option<Percentiles>,
    /// Connections scenario: subscribers set up (connect, TLS handshake if
    /// any, upgrade, subscribe ack) per second over the set-up phase.
    pub setups_per_s: Option<f64>,
    pub broker_rss_before_bytes: Option<u64>,
    pub broker_rss_after_bytes: Option<u64>,
    pub broker_rss_per_conn_bytes: Option<f64>,
    pub baseline: Option<Box<Report>>,
    /// The histogram behind `--hgrm`/`--plot` (not serialized).
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

fn pct_row(out: &mut String, name: &str, p: &Percentiles) {
    let ms = |us: f64| us / 1000.0;
    let _ = writeln!(
        out,
        "  {name:<18} n={:<10} p50 {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  p99.9 {:>9.3}  max {:>9.3}  mean {:>9.3}  (ms)",
        p.count,
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.max),
        ms(p.mean)
    );
}

impl Report {
    /// The human-readable summary printed without `--json`.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "tickwire-loadtest {}  ({:.2} s)",
            self.scenario, self.duration_s
        );
        let _ = writeln!(o, "  params             {}", self.params);
        let s = &self.subscribers;
        let _ = writeln!(
            o,
            "  subscribers        {} requested, {} subscribed, {} failed, {} slow",
            s.requested, s.subscribed, s.failed, s.slow
        );
        let _ = writeln!(
            o,
            "  quotes sent        {} ({:.0}/s)",
            self.quotes_sent, self.quotes_per_s
        );
        let expected = self
            .expected_deliveries
            .map(|e| format!(" of {e} expected"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  deliveries         {}{expected} ({:.0}/s)",
            self.deliveries, self.deliveries_per_s
        );
        pct_row(&mut o, "latency", &self.latency_us);
        if let Some(p) = &self.connect_us {
            pct_row(&mut o, "tcp connect", p);
        }
        if let Some(p) = &self.subscribe_ack_us {
            pct_row(&mut o, "connect+sub ack", p);
        }
        if let Some(rate) = self.setups_per_s {
            let _ = writeln!(o, "  {:<18} {rate:.0}/s over the set-up phase", "set-ups");
        }
        let _ = writeln!(
            o,
            "  seq                {} gaps ({} missing), {} duplicates, {} out of order",
            self.seq.gaps, self.seq.missing, self.seq.duplicates, self.seq.out_of_order
        );
        let e = &self.errors.counts;
        let _ = writeln!(
            o,
            "  errors             {} (connect {}, handshake {}, subscribe {}, server {}, closed {}, protocol {}, topic {}, publisher {})",
            self.errors.total, e.connect, e.handshake, e.subscribe, e.server_error,
            e.unexpected_close, e.protocol, e.unexpected_topic, e.publisher
        );
        if let (Some(b), Some(a), Some(per)) = (
            self.broker_rss_before_bytes,
            self.broker_rss_after_bytes,
            self.broker_rss_per_conn_bytes,
        ) {
            let _ = writeln!(
                o,
                "  broker RSS         {:.1} MiB → {:.1} MiB, {:.0} bytes per connection",
                b as f64 / 1048576.0,
                a as f64 / 1048576.0,
                per
            );
        }
        let c = &self.loadgen_cpu;
        let _ = writeln!(
            o,
            "  loadgen CPU        user {:.2} s, sys {:.2} s ({:.0}% of one core); busiest receiver {:.0}%",
            c.user_s,
            c.sys_s,
            c.process_cpu_share * 100.0,
            c.busy_share * 100.0
        );
        if let Some(w) = &self.bottleneck_warning {
            let _ = writeln!(o, "  WARNING            {w}");
        }
        if let Some(b) = &self.baseline {
            let _ = writeln!(o, "  -- baseline (no slow subscribers) --");
            pct_row(&mut o, "latency", &b.latency_us);
            let _ = writeln!(
                o,
                "  deliveries         {} ({:.0}/s), {} gaps, {} errors",
                b.deliveries, b.deliveries_per_s, b.seq_gaps, b.errors.total
            );
        }
        o
    }
}

/// HdrHistogram percentile distribution (`.hgrm`), values in milliseconds,
/// the same layout as HdrHistogram's `outputPercentileDistribution`.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let scale = 1000.0; // recorded in µs, printed in ms
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let p = v.quantile_iterated_to();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
            if p < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:>12.3} {p:>14.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - p)
                );
            } else {
                let _ = writeln!(o, "{value:>12.3} {p:>14.12} {total:>10}");
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let _ = writeln!(o, "#[Mean    = {mean:>12.3}, StdDeviation   = {sd:>12.3}]");
    let _ = writeln!(
        o,
        "#[Max     = {max:>12.3}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
    o
}

/// Latency by percentile as SVG: x = 1/(1-p) on a log scale (labelled as
/// percentiles), y = latency in ms.
pub fn plot(h: &Histogram<u64>, title: &str, path: &Path) -> Result<(), Error> {
    use plotters::prelude::*;

    let mut points: Vec<(f64, f64)> = Vec::new();
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            let p = v.quantile_iterated_to();
            if p >= 1.0 {
                continue;
            }
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            points.push((1.0 / (1.0 - p), value));
        }
    }
    let x_max = points
        .iter()
        .map(|p| p.0)
        .fold(10.0f64, f64::max)
        .max(h.len() as f64)
        .max(10.0);
    let y_max = points.iter().map(|p| p.1).fold(0.001f64, f64::max) * 1.1;
    let e = |e: &dyn std::fmt::Display| Error::msg(format!("plot {}: {e}", path.display()));

    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0f64..x_max).log_scale(), 0.0f64..y_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 1.0 / x);
            let s = format!("{p:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        })
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(points, &BLUE))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::new_histogram;

    #[test]
    fn hgrm_has_the_standard_columns_and_footer() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = hgrm(&h);
        let first = text.lines().next().unwrap();
        for col in ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
            assert!(first.contains(col), "{first}");
        }
        assert!(text.contains("#[Mean    ="));
        assert!(text.contains("Total count    =         1000]"));
        // The last data row reaches percentile 1 and the total count.
        let last_row = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        assert!(last_row.contains("1.000000000000"), "{last_row}");
        assert!(last_row.contains("1000"), "{last_row}");
    }

    #[test]
    fn plot_writes_an_svg() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let path = std::env::temp_dir().join(format!("lt-plot-{}.svg", std::process::id()));
        plot(&h, "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        let _ = std::fs::remove_file(&path);
    }
}
