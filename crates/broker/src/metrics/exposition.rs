//! `/metrics` in the Prometheus text exposition format, version 0.0.4.
//!
//! Written by hand rather than with prometheus-client: that crate emits
//! OpenMetrics text and has no summary type, and the contract asks for 0.0.4
//! with a summary (see docs/decisions.md). Every family's `# TYPE` line is
//! written whether or not it has samples yet.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use parking_lot::Mutex;

use super::{LatencyWindow, Metrics, RejectReason, TlsHandshake, CLOSE_CODES, ERROR_CODES};
use crate::encodings::Encoding;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(m: &Metrics) -> String {
    let mut out = String::with_capacity(4096);
    let o = &mut out;
    family(
        o,
        "tickwire_connections",
        "gauge",
        "Open connections by kind.",
    );
    sample(
        o,
        "tickwire_connections",
        &[("kind", "subscriber")],
        m.subscriber_connections.load(Relaxed),
    );
    sample(
        o,
        "tickwire_connections",
        &[("kind", "sse")],
        m.sse_connections.load(Relaxed),
    );
    sample(
        o,
        "tickwire_connections",
        &[("kind", "producer")],
        m.producer_connections.load(Relaxed),
    );
    gauge(
        o,
        "tickwire_subscriptions",
        "Subscription entries across all connections.",
        m.subscriptions.load(Relaxed),
    );
    gauge(
        o,
        "tickwire_topics",
        "Topics the broker tracks.",
        m.topics.load(Relaxed),
    );
    counter(
        o,
        "tickwire_quotes_in_total",
        "Quotes accepted from producers.",
        m.quotes_in.load(Relaxed),
    );
    counter(
        o,
        "tickwire_deliveries_total",
        "Quotes handed to subscriber sockets (snapshots included).",
        m.deliveries.load(Relaxed),
    );
    counter(
        o,
        "tickwire_frames_out_total",
        "WebSocket frames written to subscribers in full.",
        m.frames_out.load(Relaxed),
    );
    counter(
        o,
        "tickwire_socket_writes_total",
        "Write calls to subscriber sockets (one send(2) each; over TLS, calls into the TLS layer): frames_out / socket_writes = frames per syscall.",
        m.socket_writes.load(Relaxed),
    );
    family(
        o,
        "tickwire_bytes_out_total",
        "counter",
        "Bytes handed to subscriber sockets (frame headers included, after compression), by the connection's encoding (deltas count under their format).",
    );
    for encoding in Encoding::ALL {
        sample(
            o,
            "tickwire_bytes_out_total",
            &[("encoding", encoding.as_str())],
            m.bytes_out[encoding as usize].load(Relaxed),
        );
    }

    family(
        o,
        "tickwire_ingest_rejected_total",
        "counter",
        "Producer connections closed for a bad frame, by reason.",
    );
    for reason in RejectReason::ALL {
        sample(
            o,
            "tickwire_ingest_rejected_total",
            &[("reason", reason.label())],
            m.rejected(reason),
        );
    }
    family(
        o,
        "tickwire_tls_handshakes_total",
        "counter",
        "TLS handshakes on the wss/https listener, by result (full, resumed, failed).",
    );
    for result in TlsHandshake::ALL {
        sample(
            o,
            "tickwire_tls_handshakes_total",
            &[("result", result.label())],
            m.tls_handshakes(result),
        );
    }
    family(
        o,
        "tickwire_closes_total",
        "counter",
        "WebSocket close codes the broker sent.",
    );
    for code in CLOSE_CODES {
        sample(
            o,
            "tickwire_closes_total",
            &[("code", &code.to_string())],
            m.closes_sent(code),
        );
    }
    family(
        o,
        "tickwire_request_errors_total",
        "counter",
        "Error replies to subscriber requests, by code.",
    );
    for code in ERROR_CODES {
        sample(
            o,
            "tickwire_request_errors_total",
            &[("code", code.as_str())],
            m.request_errors(code),
        );
    }
    counter(
        o,
        "tickwire_connections_refused_total",
        "Connections closed at accept: over max_connections.",
        m.connections_refused.load(Relaxed),
    );
    counter(
        o,
        "tickwire_ip_limit_refused_total",
        "Connections answered 503: over server.max_connections_per_ip.",
        m.ip_limit_refused.load(Relaxed),
    );
    counter(
        o,
        "tickwire_topics_dropped_total",
        "Quotes dropped because they named a new topic past max_topics.",
        m.topics_dropped.load(Relaxed),
    );
    counter(
        o,
        "tickwire_ingest_backlog_rounds_total",
        "Router rounds that left producers' bytes unread for the next (read budget spent): the router is saturated by the feed.",
        m.ingest_backlog_rounds.load(Relaxed),
    );
    counter(
        o,
        "tickwire_conflated_total",
        "Quotes replaced by a newer one before a slow subscriber got them.",
        m.conflated.load(Relaxed),
    );
    counter(
        o,
        "tickwire_slow_consumer_closes_total",
        "Subscribers closed with 1008 slow consumer.",
        m.slow_consumer_closes.load(Relaxed),
    );

    counter_by_label(
        o,
        "tickwire_subscribes_total",
        "Subscribes accepted, by who answered them: the router, or the worker from the newest quotes it follows.",
        "answered",
        [
            ("router", &m.subscribes_routed),
            ("worker", &m.subscribes_answered_by_worker),
        ],
    );
    counter_by_label(
        o,
        "tickwire_resume_topics_total",
        "Topics of subscribes with since: resumed from history, or given the snapshot.",
        "result",
        [
            ("recovered", &m.resume_recovered),
            ("unrecovered", &m.resume_unrecovered),
        ],
    );
    gauge(
        o,
        "tickwire_history_quotes",
        "Quotes held in the history rings (sampled once a second).",
        m.history_quotes.load(Relaxed),
    );
    gauge(
        o,
        "tickwire_history_bytes",
        "Bytes the history rings stand for (sampled once a second; bound: history.max_bytes).",
        m.history_bytes.load(Relaxed),
    );

    family(
        o,
        "tickwire_queue_depth",
        "gauge",
        "Batches waiting in each router-to-worker queue (sampled).",
    );
    for (i, depth) in m.worker_queue_depth.iter().enumerate() {
        sample(
            o,
            "tickwire_queue_depth",
            &[("queue", &format!("worker-{i}"))],
            depth.load(Relaxed),
        );
    }

    let now = Instant::now();
    summary(
        o,
        "tickwire_delivery_latency_seconds",
        "Ingest decode to bytes handed to the subscriber's socket; quantiles over the last 60 s.",
        &m.delivery_latency,
        now,
    );
    summary(
        o,
        "tickwire_ingest_router_latency_seconds",
        "Ingest decode to the router numbering the batch; quantiles over the last 60 s.",
        &m.ingest_router_latency,
        now,
    );
    summary(
        o,
        "tickwire_router_worker_latency_seconds",
        "Router send to the worker picking the batch up; quantiles over the last 60 s.",
        &m.router_worker_latency,
        now,
    );
    super::cluster::render(o, &m.cluster, now);
    gauge(
        o,
        "tickwire_uptime_seconds",
        "Seconds since the broker started.",
        m.started.elapsed().as_secs_f64(),
    );
    out
}

/// A counter family with one label, one sample per value.
fn counter_by_label<const N: usize>(
    o: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: [(&str, &AtomicU64); N],
) {
    family(o, name, "counter", help);
    for (value, count) in values {
        sample(o, name, &[(label, value)], count.load(Relaxed));
    }
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    o.push_str(name);
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            // Label values here are our own identifiers: no escaping needed.
            let _ = write!(o, "{k}=\"{v}\"");
        }
        o.push('}');
    }
    let _ = writeln!(o, " {value}");
}

pub(super) fn counter(o: &mut String, name: &str, help: &str, value: u64) {
    family(o, name, "counter", help);
    sample(o, name, &[], value);
}

pub(super) fn gauge(o: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    family(o, name, "gauge", help);
    sample(o, name, &[], value);
}

pub(super) fn summary(
    o: &mut String,
    name: &str,
    help: &str,
    window: &Mutex<LatencyWindow>,
    now: Instant,
) {
    let (q, (count, sum)) = {
        let mut w = window.lock();
        (w.quantiles(now), w.totals())
    };
    family(o, name, "summary", help);
    let values = [
        ("0.5", q.p50),
        ("0.9", q.p90),
        ("0.99", q.p99),
        ("0.999", q.p999),
        ("1", q.max),
    ];
    for (quantile, value) in values {
        if q.count == 0 {
            // Prometheus convention for a quantile with no observations.
            sample(o, name, &[("quantile", quantile)], "NaN");
        } else {
            sample(o, name, &[("quantile", quantile)], value);
        }
    }
    sample(o, &format!("{name}_sum"), &[], sum);
    sample(o, &format!("{name}_count"), &[], count);
}
