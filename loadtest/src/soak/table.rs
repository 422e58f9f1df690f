//! The soak's lines of the human-readable report (`--json` prints
//! [`SoakReport`] itself).

use std::fmt::Write as _;

use super::report::{Series, SoakReport};

impl SoakReport {
    /// The soak's lines of the table.
    pub fn table(&self, o: &mut String) {
        let _ = writeln!(o, "  -- soak --");
        // Values divided by `scale`; the slope as sampled, in `unit` per minute.
        let row = |o: &mut String, name: &str, s: &Series, scale: f64, unit: &str| {
            let slope = s
                .slope_per_min
                .map(|v| format!(", slope {v:+.2} {unit}/min after the warm-up"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {name:<18} {:.1} → {:.1} (max {:.1}){slope}",
                s.start / scale,
                s.end / scale,
                s.max / scale
            );
        };
        if let Some(s) = &self.broker_rss_kib {
            row(o, "broker RSS MiB", s, 1024.0, "KiB");
        }
        if let Some(s) = &self.broker_fds {
            row(o, "broker fds", s, 1.0, "fds");
        }
        if let Some(s) = &self.broker_subscribers {
            row(o, "broker subscribers", s, 1.0, "conns");
        }
        for (q, s) in &self.queue_depth {
            row(o, &format!("queue {q}"), s, 1.0, "batches");
        }
        let c = &self.churn;
        let _ = writeln!(
            o,
            "  churn              {} connections opened, {} closed; {} subscribes, {} unsubscribes; {} producer reconnects",
            c.connections.opened, c.connections.closed, c.subscriptions.subscribes,
            c.subscriptions.unsubscribes, c.producers.reconnects
        );
        let (s, st) = (&c.slow_readers, &c.stalled_readers);
        let _ = writeln!(
            o,
            "  slow readers       {} pauses: {} read on, {} closed as slow consumers ({} conflation gaps); {} stalls: {} closed by the broker, {} released",
            s.pauses, s.resumed, s.closed_slow_consumer, s.seq.gaps, st.stalls,
            st.closed_by_broker, st.released
        );
        let a = &self.broker_after;
        let opt = |v: Option<f64>, scale: f64| {
            v.map_or_else(|| "-".to_string(), |v| format!("{:.1}", v / scale))
        };
        let _ = writeln!(
            o,
            "  broker after run   RSS {} MiB, {} fds, {} subscribers; {} slow-consumer closes during the run",
            opt(a.rss_kib, 1024.0),
            opt(a.fds, 1.0),
            opt(a.subscribers, 1.0),
            opt(self.broker_slow_consumer_closes, 1.0)
        );
        let r = &c.resumes;
        let _ = writeln!(
            o,
            "  resumes            {}: {} recovered, {} unrecovered ({} beyond the history, {} unexplained), {} new epoch",
            r.attempted, r.recovered, r.unrecovered, r.history_exceeded, r.unexplained, r.new_epoch
        );
        let _ = writeln!(
            o,
            "  tokens             {} authed, {} refreshes; churn deliveries {}; checked silence at most {:.1} s",
            c.tokens.authed, c.tokens.refreshes, c.deliveries, self.checked_longest_silence_s
        );
        if c.tls_key_updates > 0 {
            let _ = writeln!(o, "  tls                {} key updates", c.tls_key_updates);
        }
        for w in &self.warnings {
            let _ = writeln!(o, "  WARNING            {w}");
        }
        if self.passed {
            let _ = writeln!(o, "  soak               PASSED");
        }
        for f in &self.failures {
            let _ = writeln!(o, "  FAILED             {f}");
        }
    }
}
