//! tickwire-loadtest: the operator's load generator for the tickwire broker.
//!
//! Built on mio: each receiving thread owns a `Poll` and a share of the
//! subscribers; publishers are plain TCP ingest connections writing bincode
//! `Batch` frames. See `report` for the JSON schema and `cli` for the flags;
//! `soak` is the long run with churn (its own report section and verdict).
//!
//! Library entry points (used by the binary and the tests): [`run_args`]
//! parses a command line and runs it; [`run`] runs a parsed [`Cli`];
//! [`main_with`] also prints/writes the outputs.

pub mod cli;
pub mod gaps;
pub mod ingest;
pub mod parse;
pub mod publisher;
pub mod receiver;
pub mod report;
pub mod scenario;
pub mod soak;
pub mod sys;
pub mod tokens;

use std::time::Duration;

use clap::Parser;

pub use cli::Cli;
use cli::{Command, FormatArg, LoadArgs, SoakArgs};
use receiver::{Format, SlowMode};
pub use report::Report;
use scenario::LoadSpec;

/// A run that could not start or complete; the message says why.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn msg(m: impl Into<String>) -> Error {
        Error(m.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub(crate) fn secs(flag: &str, s: f64) -> Result<Duration, Error> {
    if s.is_finite() && (0.0..=86_400.0).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(Error::msg(format!(
            "{flag} must be between 0 and 86400 seconds"
        )))
    }
}

fn spec_from(cli: &Cli, scenario: &'static str, load: &LoadArgs) -> Result<LoadSpec, Error> {
    let c = &cli.common;
    Ok(LoadSpec {
        scenario,
        ws: sys::resolve_list("--ws", &c.ws, c.allow_remote)?,
        ingest: sys::resolve("--ingest", &c.ingest, c.allow_remote)?,
        format: match c.format {
            FormatArg::Json => Format::Json,
            FormatArg::Binary => Format::Binary,
        },
        delta: c.delta,
        deflate: c.deflate,
        subscribers: load.subscribers,
        topics: load.topics,
        per_sub: load.topics_per_sub,
        publishers: load.publishers,
        rate: load.rate,
        batch: load.batch,
        threads: c.threads,
        duration: secs("--duration", c.duration)?,
        connect_timeout: secs("--connect-timeout", c.connect_timeout)?,
        drain: secs("--drain", c.drain)?,
        prefix: c.topic_prefix.clone(),
        slow_share: 0.0,
        slow_mode: SlowMode::None,
        inflight: c.inflight,
        quiet: c.quiet,
        broker_pid: None,
        connection_times: false,
        tls: tls_client(c)?,
        auth: None,
    })
}

/// The steady part of a soak: its checked subscribers and publishers.
pub(crate) fn soak_spec(cli: &Cli, a: &SoakArgs) -> Result<LoadSpec, Error> {
    spec_from(cli, "soak", &a.into())
}

/// The TLS client config of `--tls`: the CA file, resumption unless
/// `--no-resume`, one config (one session cache) shared by every receiver.
fn tls_client(c: &cli::Common) -> Result<Option<receiver::TlsClient>, Error> {
    if !c.tls {
        return Ok(None);
    }
    let Some(ca) = &c.ca_file else {
        return Err(Error::msg("--tls needs --ca-file"));
    };
    let options = tickwire_client::TlsOptions::with_ca_file(ca, &c.server_name)
        .map_err(|e| Error::msg(format!("--ca-file: {e}")))?;
    let mut config = (**options.config()).clone();
    if c.no_resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    let name = rustls::pki_types::ServerName::try_from(c.server_name.clone())
        .map_err(|e| Error::msg(format!("--server-name: {e}")))?;
    Ok(Some(receiver::TlsClient {
        config: std::sync::Arc::new(config),
        name,
        resume: !c.no_resume,
        key_update_every: None,
    }))
}

/// Runs the scenario of a parsed command line; prints nothing.
pub fn run(cli: &Cli) -> Result<Report, Error> {
    match &cli.command {
        Command::Fanout(a) => scenario::run_load(&spec_from(cli, "fanout", a)?),
        Command::Latency(a) => {
            if a.rate.is_nan() || a.rate <= 0.0 {
                return Err(Error::msg("latency: --rate must be > 0 (paced)"));
            }
            scenario::run_load(&spec_from(cli, "latency", &a.clone().into())?)
        }
        Command::Connections(a) => {
            let load = LoadArgs {
                subscribers: a.connections,
                topics: a.topics,
                topics_per_sub: 1,
                publishers: 0,
                rate: 0.0,
                batch: 1,
            };
            let mut spec = spec_from(cli, "connections", &load)?;
            spec.broker_pid = a.broker_pid;
            spec.connection_times = true;
            scenario::run_load(&spec)
        }
        Command::Slow(a) => {
            let mut spec = spec_from(cli, "slow", &a.load)?;
            spec.slow_share = a.slow_share;
            let baseline = if a.compare {
                spec.slow_mode = SlowMode::Skip;
                Some(Box::new(scenario::run_load(&spec)?))
            } else {
                None
            };
            spec.slow_mode = SlowMode::Park;
            let mut report = scenario::run_load(&spec)?;
            report.baseline = baseline;
            Ok(report)
        }
        Command::Soak(a) => soak::run(soak_spec(cli, a)?, a),
    }
}

/// Parses `args` (program name first) and runs them.
pub fn run_args<I, T>(args: I) -> Result<Report, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|e| Error::msg(e.to_string()))?;
    run(&cli)
}

/// Runs and prints: the JSON report (`--json`) or the table to stdout,
/// `--hgrm`/`--plot` files. Returns the process exit code: 2 when the run
/// could not start, 1 when a file could not be written or a soak failed
/// (its failures also go to stderr), else 0.
pub fn main_with(cli: &Cli) -> i32 {
    let report = match run(cli) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tickwire-loadtest: {e}");
            return 2;
        }
    };
    if cli.common.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("tickwire-loadtest: report: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", report.table());
    }
    let mut code = 0;
    if let Some(soak) = &report.soak {
        for f in &soak.failures {
            eprintln!("tickwire-loadtest: soak failed: {f}");
        }
        if !soak.passed {
            code = 1;
        }
    }
    if let Some(h) = &report.histogram {
        if let Some(path) = &cli.common.hgrm {
            if let Err(e) = std::fs::write(path, report::hgrm(h)) {
                eprintln!("tickwire-loadtest: {}: {e}", path.display());
                code = 1;
            }
        }
        if let Some(path) = &cli.common.plot {
            let what = if report.scenario == "connections" {
                "connect + subscribe ack"
            } else {
                "end-to-end latency"
            };
            let title = format!("tickwire {} — {what} by percentile", report.scenario);
            if let Err(e) = report::plot(h, &title, path) {
                eprintln!("tickwire-loadtest: {e}");
                code = 1;
            }
        }
    }
    code
}
