//! The run report: JSON (`--json`) and a human table; `.hgrm` percentile
//! distribution text and an SVG percentile plot are in `files`.
//!
//! JSON schema (every key is always present, `null` where not applicable,
//! except `latency_by_ws`, present only with more than one `--ws` address):
//!
//! ```text
//! scenario                 "fanout" | "latency" | "connections" | "slow" | "soak"
//! params                   object: the effective parameters of the run
//! duration_s               measured phase length (publishing window / hold time), s
//! deliveries               quotes received by all subscribers
//! deliveries_per_s         deliveries / (first publish → last delivery), per s
//! expected_deliveries      quotes_sent × subscribers per topic (null when not computable)
//! quotes_sent              quotes the publishers wrote to the ingest socket
//! quotes_per_s             quotes_sent / duration_s
//! subscribers              {requested, subscribed, failed, slow}
//! wire_bytes               bytes read from the subscriber sockets after the 101 responses:
//!                          WebSocket frames as received (headers included, compressed
//!                          with permessage-deflate), subscribe acks included; with --tls
//!                          counted after decryption (WebSocket bytes, not TLS records)
//! wire_bytes_per_delivery  wire_bytes / deliveries (null when nothing was delivered)
//! deflate_negotiated       with --deflate: connections whose upgrade response accepted
//!                          permessage-deflate (0 when the broker declines); else null
//! latency_us               {count, p50, p90, p99, p999, max, mean}  producer ts → receipt, µs
//! latency_by_ws            only with several --ws addresses (`--ws a,b,…`; subscriber s
//!                          connects to entry s mod N): one object per entry, in --ws order,
//!                          {ws: "host:port", subscribers: subscribed through it (slow
//!                          included), latency_us: same fields as latency_us, its
//!                          subscribers only}; absent (not null) with a single address
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
//! soak                     for `soak`: its verdict, samples and churn (the fields are
//!                          listed in soak/report.rs); the fields above then describe the
//!                          checked subscribers and the publishers; else null
//! ```

mod files;

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

pub use files::{hgrm, plot};

use crate::gaps::GapCounts;
use crate::receiver::ErrorCounts;

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

/// Latency of the subscribers of one `--ws` address (`latency_by_ws`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct WsLatency {
    /// The address, `host:port`.
    pub ws: String,
    /// Subscribers that subscribed through it (slow ones included).
    pub subscribers: usize,
    pub latency_us: Percentiles,
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
    /// Bytes read from subscriber sockets after the 101 responses (frames,
    /// acks included; decrypted bytes with `--tls`).
    pub wire_bytes: u64,
    /// `wire_bytes / deliveries`; `None` without deliveries.
    pub wire_bytes_per_delivery: Option<f64>,
    /// With `--deflate`: connections that negotiated permessage-deflate.
    pub deflate_negotiated: Option<usize>,
    pub latency_us: Percentiles,
    /// Per `--ws` address, in `--ws` order; `None` (and not serialized)
    /// with a single address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_by_ws: Option<Vec<WsLatency>>,
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
    /// The soak's own part (scenario `soak`), else `None`.
    pub soak: Option<Box<crate::soak::SoakReport>>,
    /// The histogram behind `--hgrm`/`--plot` (not serialized).
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

fn pct_row(out: &mut String, name: &str, p: &Percentiles) {
    pct_row_then(out, name, p, "");
}

/// A percentiles row followed by `tail` on the same line.
fn pct_row_then(out: &mut String, name: &str, p: &Percentiles, tail: &str) {
    let ms = |us: f64| us / 1000.0;
    let _ = writeln!(
        out,
        "  {name:<18} n={:<10} p50 {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  p99.9 {:>9.3}  max {:>9.3}  mean {:>9.3}  (ms){tail}",
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
        let per = self
            .wire_bytes_per_delivery
            .map(|b| format!(", {b:.1} per delivery"))
            .unwrap_or_default();
        let deflate = self
            .deflate_negotiated
            .map(|n| {
                format!(
                    "; permessage-deflate on {n} of {} connections",
                    s.subscribed
                )
            })
            .unwrap_or_default();
        let _ = writeln!(o, "  wire bytes         {}{per}{deflate}", self.wire_bytes);
        pct_row(&mut o, "latency", &self.latency_us);
        for (i, w) in self.latency_by_ws.iter().flatten().enumerate() {
            let tail = format!("  {}, {} subscribers", w.ws, w.subscribers);
            pct_row_then(&mut o, &format!(" ws[{i}]"), &w.latency_us, &tail);
        }
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
        if let Some(s) = &self.soak {
            s.table(&mut o);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_in_table_and_json() {
        let mut r = Report::default();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["wire_bytes"], 0);
        assert!(json["wire_bytes_per_delivery"].is_null(), "{json}");
        assert!(json["deflate_negotiated"].is_null(), "{json}");
        assert!(!r.table().contains("per delivery"));
        r.wire_bytes = 1000;
        r.deliveries = 8;
        r.wire_bytes_per_delivery = Some(125.0);
        r.deflate_negotiated = Some(3);
        r.subscribers.subscribed = 4;
        let table = r.table();
        let row = table.lines().find(|l| l.contains("wire bytes")).unwrap();
        assert!(
            row.ends_with("1000, 125.0 per delivery; permessage-deflate on 3 of 4 connections"),
            "{table}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["wire_bytes_per_delivery"], 125.0);
        assert_eq!(json["deflate_negotiated"], 3);
    }

    #[test]
    fn table_has_one_latency_line_per_ws_address() {
        let mut r = Report::default();
        assert!(!r.table().contains("ws["));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("latency_by_ws").is_none(), "{json}");
        r.latency_by_ws = Some(vec![
            WsLatency {
                ws: "127.0.0.1:1".into(),
                subscribers: 2,
                latency_us: Percentiles {
                    count: 5,
                    ..Percentiles::default()
                },
            },
            WsLatency {
                ws: "127.0.0.1:2".into(),
                subscribers: 3,
                latency_us: Percentiles::default(),
            },
        ]);
        let table = r.table();
        let rows: Vec<&str> = table.lines().filter(|l| l.contains(" ws[")).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[0].contains("n=5") && rows[0].ends_with("127.0.0.1:1, 2 subscribers"));
        assert!(rows[1].ends_with("127.0.0.1:2, 3 subscribers"), "{table}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["latency_by_ws"][1]["ws"], "127.0.0.1:2");
        assert_eq!(json["latency_by_ws"][0]["latency_us"]["count"], 5);
    }
}
