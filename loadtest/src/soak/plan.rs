//! The resolved soak run (`Plan`): the steady part as a `LoadSpec` (checked
//! subscribers, publishers), the churn with its rates, sampling, the
//! thresholds; its checks, its warnings and the `params` of the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::metrics::MetricsAt;
use crate::cli::SoakArgs;
use crate::scenario::LoadSpec;
use crate::tokens::Tokens;
use crate::{secs, Error};

/// Most of any one actor's steps, whatever the rates say.
const MAX_STEPS: usize = 10_000_000;

/// The churn, resolved; `None` / 0 = that kind is off.
#[derive(Clone, Debug)]
pub struct Churn {
    pub conn_per_s: f64,
    pub conn_pool: usize,
    pub resubscribers: usize,
    pub resubscribe_every: Duration,
    pub slow_readers: usize,
    pub slow_pause: Duration,
    pub stalled_readers: usize,
    pub stall_hold: Duration,
    pub producer_reconnect_every: Option<Duration>,
    pub producer_outage: Duration,
    pub resumers: usize,
    pub resume_every: Duration,
    pub resume_outage: Duration,
    pub history_size: u64,
}

#[derive(Debug)]
pub struct Plan {
    /// Checked subscribers and publishers (scenario "soak").
    pub load: LoadSpec,
    pub churn: Churn,
    pub tokens: Option<Arc<Tokens>>,
    pub broker_pid: Option<u32>,
    pub warmup: Duration,
    pub sample_every: Duration,
    pub samples_csv: Option<PathBuf>,
    pub max_rss_slope_kib_per_min: Option<f64>,
    pub max_fd_slope_per_min: Option<f64>,
    pub max_silence: Option<Duration>,
}

fn positive(flag: &str, s: f64) -> Result<Duration, Error> {
    let d = secs(flag, s)?;
    if d.is_zero() {
        return Err(Error::msg(format!("{flag} must be > 0")));
    }
    Ok(d)
}

impl Plan {
    /// The soak of `load` (built from the common flags and the soak's own
    /// subscriber/topic/publisher counts) with the rest of `a`.
    pub fn new(mut load: LoadSpec, a: &SoakArgs) -> Result<Plan, Error> {
        load.validate()?;
        if load.deflate {
            return Err(Error::msg("soak: --deflate is not supported"));
        }
        if load.rate <= 0.0 || load.publishers == 0 {
            return Err(Error::msg(
                "soak: --rate must be > 0 and --publishers at least 1 (the soak publishes its own quotes)",
            ));
        }
        if load.publishers > load.topics {
            return Err(Error::msg(
                "soak: --publishers must not exceed --topics (each publisher has its own topics)",
            ));
        }
        let c = &a.churn;
        if !(c.conn_churn.is_finite() && c.conn_churn >= 0.0) {
            return Err(Error::msg("--conn-churn must be a number >= 0"));
        }
        if c.conn_churn > 0.0 && c.conn_pool == 0 {
            return Err(Error::msg("--conn-pool must be at least 1"));
        }
        let tokens = match &c.hs256_secret_file {
            Some(path) => {
                let grants = vec![format!("{}*", load.prefix)];
                let ttl = secs("--token-ttl", c.token_ttl)?;
                Some(Arc::new(Tokens::from_secret_file(path, grants, ttl)?))
            }
            None => None,
        };
        if let Some(t) = &tokens {
            // Churn connections are never read, so never refreshed.
            let life = c.conn_pool as f64 / c.conn_churn.max(1e-9);
            if c.conn_churn > 0.0 && life >= t.refresh_every().as_secs_f64() * 2.0 {
                return Err(Error::msg(format!(
                    "churn connections live about {life:.1} s, too close to --token-ttl {} s: raise --conn-churn or lower --conn-pool",
                    t.ttl().as_secs()
                )));
            }
        }
        load.auth = tokens.clone();
        let key_updates = secs("--tls-key-update-every", c.tls_key_update_every)?;
        if let Some(tls) = load.tls.as_mut() {
            tls.key_update_every = (!key_updates.is_zero()).then_some(key_updates);
        }
        let duration = load.duration;
        let warmup = match a.warmup {
            Some(w) => secs("--warmup", w)?,
            None => (duration / 4).min(Duration::from_secs(60)),
        };
        if warmup >= duration {
            return Err(Error::msg("--warmup must be shorter than --duration"));
        }
        let reconnect = secs("--producer-reconnect-every", c.producer_reconnect_every)?;
        let silence = secs("--max-silence", a.max_silence)?;
        let churn = Churn {
            conn_per_s: c.conn_churn,
            conn_pool: c.conn_pool,
            resubscribers: c.resubscribers,
            resubscribe_every: positive("--resubscribe-every", c.resubscribe_every)?,
            slow_readers: c.slow_readers,
            slow_pause: positive("--slow-pause", c.slow_pause)?,
            stalled_readers: c.stalled_readers,
            stall_hold: positive("--stall-hold", c.stall_hold)?,
            producer_reconnect_every: (!reconnect.is_zero()).then_some(reconnect),
            producer_outage: secs("--producer-outage", c.producer_outage)?,
            resumers: c.resumers,
            resume_every: positive("--resume-every", c.resume_every)?,
            resume_outage: secs("--resume-outage", c.resume_outage)?,
            history_size: c.history_size,
        };
        let actors = churn.resubscribers + churn.slow_readers + churn.stalled_readers;
        if actors + churn.resumers > 1024 {
            return Err(Error::msg(
                "soak: at most 1024 resubscribers, resumers, slow and stalled readers together",
            ));
        }
        Ok(Plan {
            load,
            churn,
            tokens,
            broker_pid: a.broker_pid,
            warmup,
            sample_every: positive("--sample-every", a.sample_every)?,
            samples_csv: a.samples_csv.clone(),
            max_rss_slope_kib_per_min: a.max_rss_slope_kib_per_min,
            max_fd_slope_per_min: a.max_fd_slope_per_min,
            max_silence: (!silence.is_zero()).then_some(silence),
        })
    }

    /// What may make the run less useful than asked, for the report.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let c = &self.churn;
        if c.resumers > 0 {
            let per_topic = self.load.rate / self.load.topics as f64;
            // The outage plus a second of slack for a resumer behind its stream.
            let behind = per_topic * (c.resume_outage.as_secs_f64() + 1.0);
            if c.history_size == 0 {
                w.push("--history-size 0: every resume is expected to be unrecovered".into());
            } else if behind > c.history_size as f64 / 2.0 {
                w.push(format!(
                    "a resume may fall out of the history: {per_topic:.0} quotes/s per topic × {:.1} s outage (+1 s) ≈ {behind:.0} quotes against a history of {}; lower --rate, raise --topics or shorten --resume-outage",
                    c.resume_outage.as_secs_f64(),
                    c.history_size
                ));
            }
        }
        w
    }

    /// Steps an actor that acts every `every` takes at most over the run.
    pub fn max_steps(&self, every: Duration) -> usize {
        let n = self.load.duration.as_secs_f64() / every.as_secs_f64().max(1e-3);
        (n.ceil() as usize).saturating_add(10).min(MAX_STEPS)
    }

    /// Where the broker's `/metrics` is scraped: the first `--ws` address.
    pub fn metrics_at(&self) -> MetricsAt {
        MetricsAt {
            ws: self.load.ws[0],
            tls: self.load.tls.as_ref().map(|t| t.client_options()),
        }
    }

    /// The `--ws` address of a churn connection `n` (round-robin).
    pub fn ws(&self, n: usize) -> SocketAddr {
        self.load.ws[n % self.load.ws.len()]
    }

    /// The pattern every topic of the run matches (`PREFIX*`).
    pub fn every_topic(&self) -> String {
        format!("{}*", self.load.prefix)
    }

    /// Connections the run holds at once at most, for the fd limit.
    pub fn connections(&self) -> u64 {
        let c = &self.churn;
        (self.load.subscribers
            + self.load.publishers
            + c.conn_pool
            + c.resubscribers
            + c.slow_readers
            + c.stalled_readers
            + c.resumers) as u64
    }

    /// `params` of the report: the steady part's, plus the churn.
    pub fn params(&self) -> serde_json::Value {
        let c = &self.churn;
        let s = |d: Duration| d.as_secs_f64();
        let mut p = self.load.params();
        p["soak"] = json!({
            "broker_pid": self.broker_pid,
            "warmup_s": s(self.warmup),
            "sample_every_s": s(self.sample_every),
            "conn_churn_per_s": c.conn_per_s,
            "conn_pool": c.conn_pool,
            "resubscribers": c.resubscribers,
            "resubscribe_every_s": s(c.resubscribe_every),
            "slow_readers": c.slow_readers,
            "slow_pause_s": s(c.slow_pause),
            "stalled_readers": c.stalled_readers,
            "stall_hold_s": s(c.stall_hold),
            "producer_reconnect_every_s": c.producer_reconnect_every.map(s),
            "producer_outage_s": s(c.producer_outage),
            "resumers": c.resumers,
            "resume_every_s": s(c.resume_every),
            "resume_outage_s": s(c.resume_outage),
            "history_size": c.history_size,
            "token_ttl_s": self.tokens.as_ref().map(|t| t.ttl().as_secs()),
            "max_rss_slope_kib_per_min": self.max_rss_slope_kib_per_min,
            "max_fd_slope_per_min": self.max_fd_slope_per_min,
            "max_silence_s": self.max_silence.map(s),
        });
        p
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn plan(extra: &[&str]) -> Result<super::Plan, crate::Error> {
        let mut args = vec!["tickwire-loadtest", "soak"];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Soak(a) = &cli.command else {
            panic!("not soak");
        };
        super::Plan::new(crate::soak_spec(&cli, a)?, a)
    }

    #[test]
    fn defaults_are_a_valid_plan_without_warnings() {
        let p = plan(&["--duration", "1800"]).unwrap();
        assert_eq!(p.warmup.as_secs(), 60);
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        assert_eq!(p.every_topic(), "lt.*");
        assert_eq!(p.max_steps(std::time::Duration::from_secs(5)), 370);
        let params = p.params();
        assert_eq!(params["soak"]["resumers"], 2);
        assert_eq!(params["subscribers"], 8);
        let short = plan(&["--duration", "20"]).unwrap();
        assert_eq!(short.warmup.as_secs(), 5);
    }

    #[test]
    fn refuses_what_cannot_run_and_warns_of_what_cannot_recover() {
        for bad in [
            &["--rate", "0"][..],
            &["--publishers", "3", "--topics", "2", "-k", "1"],
            &["--warmup", "20", "--duration", "10"],
            &["--resume-every", "0"],
            &["--deflate"],
            &["--hs256-secret-file", "/nonexistent/secret"],
        ] {
            assert!(plan(bad).is_err(), "{bad:?}");
        }
        let p = plan(&["--rate", "5000", "--topics", "20"]).unwrap();
        let w = p.warnings();
        assert!(w.len() == 1 && w[0].contains("history"), "{w:?}");
        let p = plan(&["--history-size", "0"]).unwrap();
        assert!(p.warnings()[0].contains("unrecovered"));
    }
}
