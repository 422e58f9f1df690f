//! Command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "tickwire-loadtest",
    version,
    about = "Load generator for the tickwire broker (loopback by default)",
    after_help = "Scenarios: fanout (throughput), latency (paced, coordinated-omission corrected), \
                  connections (idle subscribers, broker RSS), slow (slow consumers vs fast ones), \
                  soak (a long run with churn: no gaps, RSS/fds/queues flat; exit 1 on a failure)."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker WebSocket listener, or a comma-separated list of them
    /// (`host:port,host:port`, e.g. the brokers of a cluster): subscriber s
    /// connects to entry s mod N, and the report adds `latency_by_ws`, the
    /// latency per address. Publishers always use the single --ingest.
    #[arg(
        value_name = "HOST:PORT[,HOST:PORT...]",
        long = "ws",
        visible_alias = "ws-addr",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub ws: String,
    /// Broker ingest listener.
    #[arg(
        long = "ingest",
        visible_alias = "ingest-addr",
        default_value = "127.0.0.1:7001",
        global = true
    )]
    pub ingest: String,
    /// Allow non-loopback broker addresses.
    #[arg(long, global = true)]
    pub allow_remote: bool,
    /// Length of the measured phase in seconds (publishing window; hold time for `connections`).
    #[arg(long, default_value_t = 10.0, global = true)]
    pub duration: f64,
    /// Receiving threads; subscribers are split across them, each with its own mio Poll.
    #[arg(long, default_value_t = 1, global = true)]
    pub threads: usize,
    /// Subscriber wire format.
    #[arg(long, value_enum, default_value_t = FormatArg::Json, global = true)]
    pub format: FormatArg,
    /// Subscribers ask for field deltas (`delta=1` on /ws): a quote whose
    /// predecessor (seq − 1) the subscriber received carries only the fields
    /// that changed. Deltas count as deliveries like full quotes.
    #[arg(long, global = true)]
    pub delta: bool,
    /// Subscribers offer permessage-deflate (RFC 7692) in the upgrade request;
    /// the report's `deflate_negotiated` says how many connections the broker
    /// accepted it on (a broker with `[websocket] permessage_deflate = false`
    /// declines, and those connections run uncompressed).
    #[arg(long, global = true)]
    pub deflate: bool,
    /// Deadline in seconds for connecting and subscribing every subscriber.
    #[arg(long, default_value_t = 60.0, global = true)]
    pub connect_timeout: f64,
    /// Connection set-ups (connect + upgrade + subscribe) in flight per receiving thread.
    #[arg(long, default_value_t = 256, global = true)]
    pub inflight: usize,
    /// After publishing stops, wait at most this many seconds for quotes still in flight
    /// (ends early once every expected delivery arrived or nothing arrived for 1 s).
    #[arg(long, default_value_t = 2.0, global = true)]
    pub drain: f64,
    /// Topic names are PREFIX0 .. PREFIX{T-1}.
    #[arg(long, default_value = "lt.", global = true)]
    pub topic_prefix: String,
    /// Print the machine-readable report (JSON) to stdout instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Write the latency distribution as HdrHistogram percentile text (.hgrm, values in ms).
    #[arg(long, value_name = "FILE", global = true)]
    pub hgrm: Option<PathBuf>,
    /// Write latency by percentile as an SVG plot.
    #[arg(long, value_name = "FILE.svg", global = true)]
    pub plot: Option<PathBuf>,
    /// Subscribers connect with TLS (wss://): point --ws at the broker's TLS listener
    /// (with a list, every entry is a TLS listener, verified against the same --server-name).
    #[arg(long, global = true, requires = "ca_file")]
    pub tls: bool,
    /// PEM file of the CA to trust for --tls (the broker's certificate is verified).
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Name the broker's certificate must carry (--tls).
    #[arg(long, default_value = "localhost", global = true)]
    pub server_name: String,
    /// --tls: no session resumption, every connection a full handshake.
    #[arg(long, global = true)]
    pub no_resume: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Json,
    Binary,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// S subscribers × K topics each out of T, P publishers, max rate or paced.
    Fanout(LoadArgs),
    /// Paced run; ts = scheduled send time, so stalls show up as latency.
    Latency(LatencyArgs),
    /// N idle subscribers (1 topic each): connect and subscribe-ack times, broker RSS per connection.
    Connections(ConnArgs),
    /// Fanout where a share of subscribers stops reading after subscribing.
    Slow(SlowArgs),
    /// --duration seconds with churn around a steady set of checked subscribers.
    ///
    /// The checked subscribers (never slow, no max_hz) must see every quote
    /// with no seq gap for the whole run. Around them: connections opening
    /// and closing, subscribe/unsubscribe on live connections, slow and
    /// stalled readers (closed by the broker as slow consumers: counted, not
    /// errors), publishers reconnecting, subscribers that drop and resume
    /// with `since` (must be recovered with no gap while the broker's
    /// history covers the outage) and, with --hs256-secret-file, token
    /// refreshes. Every --sample-every: the broker's RSS and open fds
    /// (--broker-pid) and queue depths (GET /metrics). Exits 1 on a gap, an
    /// unexplained unrecovered resume, an unexpected error, a silence of the
    /// checked subscribers, or a slope over --max-*-slope-*.
    Soak(Box<SoakArgs>),
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Subscribers (WebSocket connections).
    #[arg(long, short = 's', default_value_t = 100)]
    pub subscribers: usize,
    /// Topics in total.
    #[arg(long, short = 't', default_value_t = 100)]
    pub topics: usize,
    /// Topics per subscriber (K consecutive topics, mod T).
    #[arg(long, short = 'k', default_value_t = 10)]
    pub topics_per_sub: usize,
    /// Publishers (ingest connections); topics are split across them. 0 = use an external feed.
    #[arg(long, short = 'p', default_value_t = 1)]
    pub publishers: usize,
    /// Total quotes/s over all publishers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Most quotes per Batch frame.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

#[derive(Args, Debug, Clone)]
pub struct LatencyArgs {
    #[arg(long, short = 's', default_value_t = 10)]
    pub subscribers: usize,
    #[arg(long, short = 't', default_value_t = 10)]
    pub topics: usize,
    #[arg(long, short = 'k', default_value_t = 1)]
    pub topics_per_sub: usize,
    #[arg(long, short = 'p', default_value_t = 1)]
    pub publishers: usize,
    /// Total quotes/s (must be > 0).
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

impl From<LatencyArgs> for LoadArgs {
    fn from(a: LatencyArgs) -> Self {
        LoadArgs {
            subscribers: a.subscribers,
            topics: a.topics,
            topics_per_sub: a.topics_per_sub,
            publishers: a.publishers,
            rate: a.rate,
            batch: a.batch,
        }
    }
}

impl From<&SoakArgs> for LoadArgs {
    fn from(a: &SoakArgs) -> Self {
        LoadArgs {
            subscribers: a.subscribers,
            topics: a.topics,
            topics_per_sub: a.topics_per_sub,
            publishers: a.publishers,
            rate: a.rate,
            batch: a.batch,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Idle subscribers to open.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub connections: usize,
    /// Topics the subscribers are spread over (one each).
    #[arg(long, short = 't', default_value_t = 100)]
    pub topics: usize,
    /// Broker process id: report its RSS (VmRSS) before and after, per connection.
    #[arg(long)]
    pub broker_pid: Option<u32>,
}

#[derive(Args, Debug, Clone)]
pub struct SlowArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Share of subscribers that stop reading after subscribing (spread evenly).
    #[arg(long, default_value_t = 0.1)]
    pub slow_share: f64,
    /// First run a baseline phase without the slow subscribers, then the slow phase.
    #[arg(long)]
    pub compare: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    /// Checked subscribers: connected for the whole run, never slow, no
    /// max_hz; each must see every quote of its topics with no gap.
    #[arg(long, short = 's', default_value_t = 8)]
    pub subscribers: usize,
    /// Topics in total (PREFIX0 .. PREFIX{T-1}).
    #[arg(long, short = 't', default_value_t = 20)]
    pub topics: usize,
    /// Topics per connection (checked subscribers, resumers, resubscribers,
    /// churn connections: K consecutive topics, mod T).
    #[arg(long, short = 'k', default_value_t = 5)]
    pub topics_per_sub: usize,
    /// Publishers; topics are split across them.
    #[arg(long, short = 'p', default_value_t = 2)]
    pub publishers: usize,
    /// Total quotes/s (paced, > 0). A resume recovers while rate/topics ×
    /// outage stays under the broker's history size.
    #[arg(long, default_value_t = 400.0)]
    pub rate: f64,
    /// Most quotes per Batch frame.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Broker process id: sample its RSS (VmRSS) and open file descriptors
    /// (/proc/PID/fd).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Seconds at the start left out of the slopes (default: a quarter of
    /// --duration, at most 60).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 1.0)]
    pub sample_every: f64,
    /// Write every sample as CSV (t_s, rss_kib, fds, checked deliveries,
    /// broker subscribers, one column per queue).
    #[arg(long, value_name = "FILE")]
    pub samples_csv: Option<PathBuf>,
    /// Fail when the broker's RSS grows faster than this after the warm-up
    /// (KiB per minute, least-squares slope). Default: reported only.
    #[arg(long, value_name = "KIB")]
    pub max_rss_slope_kib_per_min: Option<f64>,
    /// Fail when the broker's open file descriptors grow faster than this
    /// after the warm-up (per minute). Default: reported only.
    #[arg(long, value_name = "N")]
    pub max_fd_slope_per_min: Option<f64>,
    /// Fail when the checked subscribers together get nothing for this many
    /// seconds while quotes are published; 0 = never.
    #[arg(long, default_value_t = 10.0)]
    pub max_silence: f64,
    #[command(flatten)]
    pub churn: ChurnArgs,
}

/// The soak's churn: what happens around the checked subscribers. Every
/// actor stops at the end of --duration.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Churn connections opened per second (connect, subscribe, ack; closed
    /// once --conn-pool newer ones are open); 0 = none.
    #[arg(long, default_value_t = 5.0)]
    pub conn_churn: f64,
    /// Churn connections open at once; the oldest is closed, alternately
    /// with a close frame and by dropping the socket.
    #[arg(long, default_value_t = 16)]
    pub conn_pool: usize,
    /// Connections that unsubscribe and subscribe their topics again, one
    /// request every --resubscribe-every, reading (gap-checked) meanwhile.
    #[arg(long, default_value_t = 2)]
    pub resubscribers: usize,
    /// Seconds between two requests of a resubscriber.
    #[arg(long, default_value_t = 0.5)]
    pub resubscribe_every: f64,
    /// Slow readers: subscribe to every topic (with a 4 KiB receive
    /// buffer, so what they leave unread backs up into the broker), read
    /// for a second, stop reading for --slow-pause, read again (conflated,
    /// or closed 1008 as a slow consumer: counted, not errors), reconnect.
    #[arg(long, default_value_t = 1)]
    pub slow_readers: usize,
    /// Seconds a slow reader stops reading.
    #[arg(long, default_value_t = 3.0)]
    pub slow_pause: f64,
    /// Stalled readers: subscribe to every topic (4 KiB receive buffer),
    /// read nothing for --stall-hold, then ping and read to see whether the
    /// broker closed them (its [subscriber] stall_timeout_ms), reconnect.
    #[arg(long, default_value_t = 1)]
    pub stalled_readers: usize,
    /// Seconds a stalled reader reads nothing.
    #[arg(long, default_value_t = 15.0)]
    pub stall_hold: f64,
    /// Each publisher closes its connection and connects again this often
    /// (seconds, staggered across publishers); 0 = never.
    #[arg(long, default_value_t = 10.0)]
    pub producer_reconnect_every: f64,
    /// Seconds a publisher stays away between two connections.
    #[arg(long, default_value_t = 0.2)]
    pub producer_outage: f64,
    /// Resumers: subscribers that drop their connection every
    /// --resume-every and resume with `since` after --resume-outage.
    #[arg(long, default_value_t = 2)]
    pub resumers: usize,
    /// Seconds a resumer stays connected.
    #[arg(long, default_value_t = 5.0)]
    pub resume_every: f64,
    /// Seconds a resumer stays away.
    #[arg(long, default_value_t = 0.3)]
    pub resume_outage: f64,
    /// The broker's [history] size: a resume whose topic moved on by more
    /// than this many quotes may be unrecovered (expected, counted).
    #[arg(long, default_value_t = 64)]
    pub history_size: u64,
    /// A broker with [auth] and an HS256 secret: that secret's file (its
    /// jwt_hs256_secret_file). Every connection then sends a token minted
    /// here (topics PREFIX*) before subscribing, and a fresh one every
    /// third of --token-ttl.
    #[arg(long, value_name = "FILE")]
    pub hs256_secret_file: Option<PathBuf>,
    /// Lifetime of each token, seconds (at least 3).
    #[arg(long, default_value_t = 20.0)]
    pub token_ttl: f64,
    /// With --tls: seconds between two TLS 1.3 KeyUpdates on each checked
    /// subscriber (TLS 1.2 connections send none), each asking the broker
    /// to update its keys too and followed by a ping (the quotes after it
    /// are gap-checked like any); 0 = none.
    #[arg(long, default_value_t = 10.0)]
    pub tls_key_update_every: f64,
}
