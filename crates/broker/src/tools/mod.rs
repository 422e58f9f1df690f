//! Terminal tools in the `tickwire` binary: `tickwire tail` (watch topics
//! live) and `tickwire pub` (publish one quote or a CSV file of quotes).
//! Client side only: they use `tickwire-client` like any other program and
//! share nothing with the broker's threads. Their text handling (the table,
//! JSON lines, CSV) is in `format.rs`, tested without sockets.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tickwire_client::TlsOptions;

mod connection;
mod format;
mod positions;
mod publish;
mod tail;

#[derive(Subcommand, Debug)]
pub enum Tool {
    /// Print live quotes of topics or patterns (AAPL, NASDAQ.*, *) as a
    /// table or JSON lines, until interrupted or --count quotes. When the
    /// connection drops it reconnects and resumes from the last seq seen.
    /// --sse reads Server-Sent Events (`GET /sse`) instead of WebSocket,
    /// e.g. to check a proxy path.
    Tail(TailArgs),
    /// Publish one quote (--bid/--ask/…) or every row of a CSV file into the
    /// ingest socket.
    Pub(PubArgs),
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Topics or patterns, e.g. AAPL MSFT "BTC*".
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// The broker's WebSocket/HTTP listener, HOST:PORT (wss or https when
    /// --ca-file is given), or a proxy in front of it; also sent as the
    /// HTTP Host header with --sse.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub ws: String,
    /// Binary frames instead of JSON (exact `ts`, smaller); not with --sse.
    #[arg(long)]
    pub binary: bool,
    /// Read Server-Sent Events (`GET /sse`) instead of WebSocket: the same
    /// quotes over plain HTTP, for checking a path (a proxy, a firewall)
    /// that passes no WebSocket. A reconnect resumes with `Last-Event-ID`
    /// (the id of the last event received); --token goes in an
    /// `Authorization: Bearer` header.
    #[arg(long, conflicts_with = "binary")]
    pub sse: bool,
    /// Ask for field deltas (v1.2 `delta=1`: only the fields that changed
    /// travel) and print the full quotes rebuilt from them, as without.
    #[arg(long)]
    pub delta: bool,
    /// With --sse: the path under which a proxy serves the broker, e.g.
    /// `--ws proxy.example:443 --path-prefix /tickwire` requests
    /// `/tickwire/sse?…` (https://proxy.example/tickwire/sse with --ca-file).
    #[arg(long, requires = "sse", value_name = "PATH")]
    pub path_prefix: Option<String>,
    /// At most this many quotes per second per topic (conflated by the broker).
    #[arg(long)]
    pub max_hz: Option<f64>,
    /// A JWT for brokers with `[auth]` (sent as the `auth` op; with --sse
    /// as an `Authorization: Bearer` header).
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No last-value snapshot on subscribe: only quotes from now on.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Exit after this many quotes.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit when the connection ends, instead of reconnecting (100 ms
    /// doubling to 2 s, until the broker is back) and resuming from the
    /// last seq printed per topic (v1.2 `since`; with --sse, the last
    /// event id).
    #[arg(long)]
    pub no_resume: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct PubArgs {
    /// The topic of the one quote (not with --csv).
    #[arg(required_unless_present = "csv", conflicts_with = "csv")]
    pub topic: Option<String>,
    /// The broker's ingest socket.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub ingest: String,
    /// A producer token (`[ingest] tokens`), sent in a Hello frame first.
    #[arg(long, env = "TICKWIRE_PRODUCER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A CSV file: header `topic,bid,ask,bid_size,ask_size,last,volume[,ts]`;
    /// "-" reads standard input.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    #[arg(long, default_value_t = f64::NAN)]
    pub bid: f64,
    #[arg(long, default_value_t = f64::NAN)]
    pub ask: f64,
    #[arg(long, default_value_t = 0.0)]
    pub bid_size: f64,
    #[arg(long, default_value_t = 0.0)]
    pub ask_size: f64,
    #[arg(long, default_value_t = f64::NAN)]
    pub last: f64,
    #[arg(long, default_value_t = 0.0)]
    pub volume: f64,
    /// Producer timestamp, ns since the Unix epoch (default: now).
    #[arg(long)]
    pub ts: Option<u64>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct TlsArgs {
    /// Speak TLS, trusting this CA (PEM) for the broker's certificate.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The name the broker's certificate must carry (default: the host of
    /// the address).
    #[arg(long)]
    pub server_name: Option<String>,
}

impl TlsArgs {
    fn options(&self, addr: &str) -> Result<Option<TlsOptions>, String> {
        let Some(ca) = &self.ca_file else {
            return Ok(None);
        };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let name = self.server_name.as_deref().unwrap_or(host);
        TlsOptions::with_ca_file(ca, name)
            .map(Some)
            .map_err(|e| format!("--ca-file {}: {e}", ca.display()))
    }
}

/// Runs a tool; the error is what to print before exiting 1.
pub fn run(tool: Tool) -> Result<(), String> {
    match tool {
        Tool::Tail(args) => tail::run(&args),
        Tool::Pub(args) => publish::run(&args),
    }
}

fn resolve(flag: &str, addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("{flag} {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{flag} {addr}: no address"))
}
