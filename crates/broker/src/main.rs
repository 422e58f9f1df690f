//! `tickwire`: the broker binary, and its terminal tools (`tickwire tail`,
//! `tickwire pub`; see `tools/`).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tickwire_broker::{demo, Broker, Config};

// The tools are client programs that ship in the broker's binary; they are
// modules of the binary, not of the broker library.
mod tools;

/// Real-time market-data pub/sub broker: binary quotes in, WebSocket out.
#[derive(Parser, Debug)]
#[command(name = "tickwire", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    tool: Option<tools::Tool>,
    /// TOML config file (every key and default: config/tickwire.toml).
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Also run a simulated feed of ~50 tickers through the ingest socket.
    #[arg(long)]
    demo: bool,
    /// Overrides [demo] rate: quotes per second in total.
    #[arg(long)]
    demo_rate: Option<u32>,
    /// Overrides [server] ws_addr, e.g. 127.0.0.1:8080.
    #[arg(long)]
    ws_addr: Option<String>,
    /// Overrides [ingest] addr, e.g. 127.0.0.1:7001.
    #[arg(long)]
    ingest_addr: Option<String>,
    /// Overrides [tls] cert_file: PEM chain for wss/https (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// Overrides [tls] key_file: PEM private key for wss/https.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// Overrides [tls] addr, e.g. 127.0.0.1:8443.
    #[arg(long)]
    tls_addr: Option<String>,
    /// Overrides [server] workers (0 = one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Overrides [log] level (RUST_LOG overrides both).
    #[arg(long)]
    log_level: Option<String>,
    /// Once every listener is bound, print one line of JSON to stdout, e.g.
    /// {"ready":true,"ws":"127.0.0.1:41234","wss":null,"ingest":"127.0.0.1:41235","pid":1234}
    /// (wss: the [tls] listener, null when off). With addresses on port 0
    /// (--ws-addr 127.0.0.1:0 ...) it tells a test harness the ports the
    /// broker got, with no race for a free port and no log scraping.
    #[arg(long)]
    print_ready: bool,
}

/// The `--print-ready` line: the bound addresses, in this order.
#[derive(serde::Serialize)]
struct Ready {
    ready: bool,
    ws: SocketAddr,
    wss: Option<SocketAddr>,
    ingest: SocketAddr,
    pid: u32,
}

/// Writes the `--print-ready` line. The log goes to stdout too, from any
/// thread: one write under the stdout lock keeps the line whole, on a line
/// of its own (tracing writes each event, newline included, the same way).
fn print_ready(broker: &Broker) -> std::io::Result<()> {
    let ready = Ready {
        ready: true,
        ws: broker.ws_addr(),
        wss: broker.tls_addr(),
        ingest: broker.ingest_addr(),
        pid: std::process::id(),
    };
    let mut line = serde_json::to_vec(&ready).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line)?;
    out.flush()
}

/// Exit code for configuration errors (clap uses 2 for bad flags too).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(tool) = cli.tool.take() {
        return match tools::run(tool) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("tickwire: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("tickwire: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&config.log.level);

    let broker = match Broker::start(&config) {
        Ok(broker) => broker,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            // A certificate or key file that cannot be used is a
            // configuration error, like an invalid key; so is a listen
            // address that is taken or not this host's (the error names the
            // listener and the address).
            use std::io::ErrorKind::{AddrInUse, AddrNotAvailable, InvalidInput};
            if matches!(e.kind(), InvalidInput | AddrInUse | AddrNotAvailable) {
                return ExitCode::from(EXIT_CONFIG);
            }
            return ExitCode::FAILURE;
        }
    };
    let stop_demo = Arc::new(AtomicBool::new(false));
    let demo_thread = if cli.demo {
        match demo::spawn(broker.ingest_addr(), config.demo.rate, stop_demo.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the demo feed");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };

    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    // Ready once every listener is bound, the demo feed runs and SIGTERM is
    // handled: a harness may stop the broker as soon as it reads the line.
    // A ready line that cannot be written (stdout closed) stops the broker:
    // whoever asked for it would wait for it in vain.
    let mut code = ExitCode::SUCCESS;
    if cli.print_ready {
        if let Err(e) = print_ready(&broker) {
            tracing::error!(error = %e, "cannot print the ready line");
            code = ExitCode::FAILURE;
        }
    }
    if code == ExitCode::SUCCESS {
        for signal in signals.forever() {
            if signal == SIGHUP {
                // Re-read certificates and the JWT key; errors are logged by
                // the broker, naming the file, and the old ones stay.
                broker.reload();
                continue;
            }
            tracing::info!(signal, "shutting down");
            break;
        }
    }
    stop_demo.store(true, Ordering::Relaxed);
    if let Some(t) = demo_thread {
        let _ = t.join();
    }
    broker.begin_shutdown();
    broker.join();
    tracing::info!("stopped");
    code
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(rate) = cli.demo_rate {
        config.demo.rate = rate;
    }
    if let Some(addr) = &cli.ws_addr {
        config.server.ws_addr = addr.clone();
    }
    if let Some(addr) = &cli.ingest_addr {
        config.ingest.addr = addr.clone();
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        let addr = config.tls.as_ref().map(|t| t.addr.clone());
        config.tls = Some(tickwire_broker::config::TlsConfig {
            addr: addr.unwrap_or_else(|| "0.0.0.0:8443".into()),
            cert_file: cert.clone(),
            key_file: key.clone(),
        });
    }
    if let Some(addr) = &cli.tls_addr {
        match config.tls.as_mut() {
            Some(tls) => tls.addr = addr.clone(),
            None => return Err(
                "--tls-addr needs a certificate: [tls] in the config, or --tls-cert and --tls-key"
                    .into(),
            ),
        }
    }
    if let Some(workers) = cli.workers {
        config.server.workers = workers;
    }
    if let Some(level) = &cli.log_level {
        config.log.level = level.clone();
    }
    config.validate().map_err(|e| e.to_string())?;
    if tracing_subscriber::EnvFilter::try_new(&config.log.level).is_err() {
        return Err(format!(
            "invalid config: `log.level` is not a tracing filter: {:?}",
            config.log.level
        ));
    }
    Ok(config)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")); // level was validated

    // Colour only on a terminal, and not with NO_COLOR set (`with_ansi`
    // would override tracing-subscriber's own NO_COLOR check): escape codes
    // in a file, a pipe or the journal are noise. The log goes to stdout,
    // tracing-subscriber's default writer, so that is the stream to ask.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal() && !no_color)
        .init();
}
