//! tickwire broker: listeners, worker threads, router, ingest.
//!
//! Threads and what each owns (see docs/architecture.md):
//! - `router`: topic state (seq, last value, worker interest); encodes each
//!   quote once per format → the interested workers. Its thread also reads
//!   the producer connections and decodes their frames (`ingest`).
//! - `worker-N`: its listener and its connections; queues shared frames on
//!   subscribers and writes them.

pub mod auth;
mod cluster;
pub mod config;
pub mod demo;
mod doorbell;
pub mod encodings;
mod epoch;
mod fd_table;
mod http;
mod ingest;
mod listener;
mod messages;
pub mod metrics;
mod moment;
mod reload;
mod router;
mod router_thread;
mod sched;
mod session;
pub mod tls;
mod transport;
mod worker;

/// Building blocks exposed for the criterion benchmarks only; not a stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::encodings::Wire;
    pub use crate::messages::{
        CatchUp, ConnId, Format, IngestBatch, LocalQuote, Resume, RouterCmd, SharedQuote, WorkerMsg,
    };
    pub use crate::router::encode::{changed, encode};
    pub use crate::router::{HistoryLimits, Router, WorkerLink};
    pub use crate::worker::internals::{Following, OutFrame, Outbound, Pushed, RouteIndex};
}

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use doorbell::{BellSender, Doorbell};
use mio::{Poll, Waker};
use router_thread::RouterThread;

pub use config::Config;
use config::{ms, ClusterConfig};
use metrics::Metrics;
use router::{HistoryLimits, Router, RouterLink, WorkerLink};
use worker::{Worker, WorkerParts, WorkerSettings};

/// Bound on queued messages of subscribe/interest commands from workers to
/// the router. A message is one command or a worker turn's batch of at
/// most 64 (`BATCH_MAX` in `worker/router_channel.rs`): 65,536 commands
/// at most.
const ROUTER_CMD_QUEUE: usize = 1_024;

/// A running broker. Dropping it shuts the broker down and waits for it.
pub struct Broker {
    ws_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    ingest_addr: SocketAddr,
    /// Certificates SIGHUP re-reads (wss listener, ingest).
    certs: Vec<Arc<tls::ReloadableCert>>,
    /// The JWT key SIGHUP re-reads, with `[auth]`.
    auth: Option<Arc<auth::Entitlements>>,
    epoch: Arc<epoch::Epoch>,
    metrics: Arc<Metrics>,
    shutdown: Arc<AtomicBool>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Binds every listener and starts all threads; returns once the broker
    /// accepts connections.
    pub fn start(config: &Config) -> io::Result<Broker> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let workers = config.worker_count();
        let metrics = Arc::new(Metrics::new(workers));
        let shutdown = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(epoch::Epoch::new_local());

        let accepted = listener::Accepted {
            send_buffer: config.subscriber.socket_send_buffer_bytes,
        };
        let ws_listeners = listener::bind_group("websocket", config.ws_addr(), workers, accepted)?;
        // Room for every fd it may hold, made once (`fd_table.rs`).
        let fds = config
            .server
            .max_connections
            .saturating_add(config.ingest.max_producers)
            .saturating_add(256);
        if let Err(e) = ws_listeners
            .first()
            .map_or(Ok(0), |l| fd_table::reserve(fds, l))
        {
            tracing::warn!(error = %e, "fd table not reserved; it grows as connections come");
        }
        let ws_addr = ws_listeners
            .first()
            .ok_or_else(|| io::Error::other("no worker listener"))?
            .local_addr()?;
        let mut certs = Vec::new();
        let ws_tls = match &config.tls {
            Some(t) => {
                let endpoint =
                    tls::TlsEndpoint::new(t.cert_path(), t.key_path(), None, &[b"http/1.1"])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                certs.push(endpoint.cert.clone());
                Some(endpoint.config)
            }
            None => None,
        };
        let mut tls_listeners: Vec<Option<std::net::TcpListener>> = match config.tls_addr() {
            Some(addr) if ws_tls.is_some() => listener::bind_group("wss", addr, workers, accepted)?
                .into_iter()
                .map(Some)
                .collect(),
            _ => (0..workers).map(|_| None).collect(),
        };
        let tls_addr = match tls_listeners.first() {
            Some(Some(l)) => Some(l.local_addr()?),
            _ => None,
        };
        let ingest_tls = match &config.ingest.tls {
            Some(t) => {
                let endpoint =
                    tls::TlsEndpoint::new(t.cert_path(), t.key_path(), t.client_ca_path(), &[])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                certs.push(endpoint.cert.clone());
                Some(endpoint.config)
            }
            None => None,
        };
        let ingest_listener = listener::bind_one("ingest", config.ingest_addr())?;
        let ingest_addr = ingest_listener.local_addr()?;

        // The router's thread sleeps in this poll (it reads the producers
        // too); its channels' senders ring its doorbell.
        let router_poll = Poll::new()?;
        let bell = Doorbell::new(router_poll.registry(), ingest::WAKER)?;
        let (cmd_tx, cmd_rx) = crossbeam_channel::bounded(ROUTER_CMD_QUEUE);
        let cmd_tx = BellSender::new(cmd_tx, bell.clone());
        let entitlements = match &config.auth {
            Some(a) => Some(Arc::new(auth::Entitlements::load(a).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("[auth] {e}"))
            })?)),
            None => None,
        };
        let settings = Arc::new(WorkerSettings::from_config(
            config,
            epoch.clone(),
            ws_tls,
            entitlements.clone(),
            metrics.clone(),
        ));
        let open_connections = Arc::new(AtomicUsize::new(0));
        let ip_counts: worker::IpCounts = Default::default();

        let mut threads = Vec::new();
        let mut wakers = Vec::new();
        let mut links = Vec::new();
        let mut worker_parts = Vec::new();
        for (id, listener) in ws_listeners.into_iter().enumerate() {
            let poll = Poll::new()?;
            let waker = worker::waker(&poll)?;
            let (tx, rx) = crossbeam_channel::bounded(config.server.worker_queue_batches);
            let slices_queued = Arc::new(AtomicUsize::new(0));
            links.push(WorkerLink {
                tx,
                waker: waker.clone(),
                slices_queued: slices_queued.clone(),
            });
            wakers.push(waker);
            worker_parts.push(WorkerParts {
                id,
                poll,
                listener,
                tls_listener: tls_listeners.get_mut(id).and_then(Option::take),
                rx,
                slices_queued,
                router_tx: cmd_tx.clone(),
                settings: settings.clone(),
                metrics: metrics.clone(),
                open_connections: open_connections.clone(),
                ip_counts: ip_counts.clone(),
                shutdown: shutdown.clone(),
            });
        }
        drop(cmd_tx);

        let history = HistoryLimits {
            size: config.history.size,
            max_bytes: config.history.max_bytes,
        };
        let mut router = Router::new(links, config.ingest.max_topics, history, metrics.clone());
        let mut link_rx = crossbeam_channel::never();
        let mut link_ready = None;
        if let Some(c) = &config.cluster {
            // The stream keeps as many quotes per subject as a ring.
            let c = &ClusterConfig {
                history_size: config.history.size,
                ..c.clone()
            };
            let started = cluster::start(c, metrics.clone(), epoch.clone(), bell.clone())?;
            let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
            router = router.with_cluster(RouterLink::new(
                started.handle,
                ms(c.fetch_timeout_ms),
                ready_tx,
            ));
            link_rx = started.events;
            link_ready = Some((ready_rx, ms(c.startup_wait_ms)));
            threads.push(started.thread);
        }
        let (ingest, producer_gate) = ingest::Ingest::new(
            router_poll.registry().try_clone()?,
            ingest_listener,
            config.ingest.clone(),
            ingest_tls,
            ms(config.server.handshake_timeout_ms),
            metrics.clone(),
        )?;
        wakers.push(bell.waker());
        let router_thread = RouterThread {
            poll: router_poll,
            bell,
            router,
            ingest,
            cmd_rx,
            link_rx,
            shutdown: shutdown.clone(),
        };
        threads.push(spawn("router".into(), move || {
            sched::yield_to_workers();
            router_thread.run()
        })?);
        // Subscribers and producers are taken once the cluster's epoch and
        // the stored seq of every topic are known (or the wait is over): an
        // ack never carries this broker's start-up epoch only to see it
        // replaced, and a restart continues `seq`. Until then connections
        // wait in the listeners' backlog (bound above, not yet accepting).
        if let Some((ready, wait)) = link_ready {
            if ready.recv_timeout(wait).is_err() {
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    "cluster link not up in time; serving alone until it is"
                );
            }
        }
        let started = worker_parts
            .into_iter()
            .try_for_each(|parts| {
                threads.push(Worker::spawn(format!("worker-{}", parts.id), parts)?);
                Ok(())
            })
            .and_then(|()| producer_gate.open());
        if let Err(e) = started {
            // The threads already running hold the listeners: stop them,
            // so a failed start leaves no port bound.
            shutdown.store(true, Ordering::Release);
            for waker in &wakers {
                let _ = waker.wake();
            }
            for thread in threads {
                let _ = thread.join();
            }
            return Err(e);
        }

        if config.log.summary_interval_ms > 0 {
            let (metrics, stop) = (metrics.clone(), shutdown.clone());
            let every = config::ms(config.log.summary_interval_ms);
            // Not joined: it only reads counters and ends with the process.
            spawn("stats-log".into(), move || {
                metrics::log_summaries(&metrics, &stop, every)
            })?;
        }

        let tls_shown = tls_addr.map_or_else(|| "off".to_owned(), |a| a.to_string());
        tracing::info!(%ws_addr, tls_addr = %tls_shown, %ingest_addr, ingest_tls = config.ingest.tls.is_some(), workers, epoch = %epoch.current(), cluster = config.cluster.is_some(), "tickwire listening");
        Ok(Broker {
            ws_addr,
            tls_addr,
            ingest_addr,
            certs,
            auth: entitlements,
            epoch,
            metrics,
            shutdown,
            wakers,
            threads,
        })
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest_addr
    }

    /// The wss/https listener, when `[tls]` is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The epoch acks carry now (the cluster's once the link is set up).
    pub fn epoch(&self) -> String {
        self.epoch.current().to_string()
    }

    /// True while `[cluster]` is configured and its link is up.
    pub fn cluster_up(&self) -> bool {
        self.metrics.cluster.is_up()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts shutdown: subscribers get close 1001, producers are drained
    /// and closed. Returns at once; `join` waits.
    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        for waker in &self.wakers {
            let _ = waker.wake();
        }
    }

    /// Waits for every thread to finish (after `begin_shutdown`).
    pub fn join(mut self) {
        self.join_threads();
    }

    fn join_threads(&mut self) {
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a broker thread panicked");
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.begin_shutdown();
            self.join_threads();
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}
