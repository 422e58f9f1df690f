//! The link thread's event loop: the NATS connection's events, its set-up
//! (stream, epoch, stored quotes), the router's commands (publish, watch,
//! probe, history) and probe answers.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, Event};
use tickwire_protocol::cluster;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::connect::{connect, mark_down};
use super::history;
use super::probe::{Answer, Probes};
use super::store::Store;
use super::watch::{fetch, Watches};
use super::{to_router, LinkCmd, LinkEvent, Publish};
use crate::config::{ms, ClusterConfig};
use crate::doorbell::BellSender;
use crate::epoch::Epoch;
use crate::metrics::{self, Metrics};

/// Received messages forwarded to the router in one event, at most.
pub const RECEIVE_BATCH: usize = 256;
/// How long stored quotes may wait for room in the router's queue.
const STORED_SEND_PATIENCE: Duration = Duration::from_secs(5);
/// First pause before retrying a failed set-up (doubles up to
/// `reconnect_max_ms`).
const SETUP_RETRY: Duration = Duration::from_millis(200);

pub struct Shared {
    pub config: ClusterConfig,
    pub metrics: Arc<Metrics>,
    pub epoch: Arc<Epoch>,
    pub queued: Arc<AtomicUsize>,
    pub origin: u64,
    pub events: BellSender<LinkEvent>,
}

pub fn run(shared: Shared, rx: mpsc::UnboundedReceiver<LinkCmd>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cluster link cannot start its runtime; serving alone");
            return;
        }
    };
    runtime.block_on(Link::new(Arc::new(shared)).run(rx));
}

struct Link {
    shared: Arc<Shared>,
    watches: Watches,
    probes: Probes,
    store: Option<Store>,
    setup_due: Option<Instant>,
    setup_backoff: Duration,
    /// Bounds the history reads in flight.
    history_reads: Arc<Semaphore>,
}

impl Link {
    fn new(shared: Arc<Shared>) -> Link {
        Link {
            shared,
            watches: Watches::default(),
            probes: Probes::new(),
            store: None,
            setup_due: None,
            setup_backoff: SETUP_RETRY,
            history_reads: history::reads_bound(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<LinkCmd>) {
        let (state_tx, mut state_rx) = mpsc::unbounded_channel();
        let client = match connect(&self.shared, state_tx).await {
            Ok(client) => client,
            Err(problem) => {
                // A configuration the checks could not catch (an unreadable
                // creds file): serve alone, degraded, and say why.
                tracing::error!(%problem, "cluster link not started; serving alone");
                while let Some(cmd) = rx.recv().await {
                    // Every history ticket is answered, here with nothing.
                    if let LinkCmd::History { ticket, .. } = cmd {
                        history::start(None, ticket, Vec::new(), &self.shared, &self.history_reads);
                    }
                }
                return;
            }
        };
        let mut answers = self.probes.take_answers();
        loop {
            let setup_at = self.setup_due;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(&client, cmd).await,
                    None => break,
                },
                Some(event) = state_rx.recv() => self.on_connection_event(event),
                Some(answer) = answers.recv() => self.on_answer(&client, answer).await,
                _ = sleep_until(setup_at), if setup_at.is_some() => self.set_up(&client).await,
            }
        }
        // Shutdown: what was published goes out before the thread ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
        self.watches.abort_all();
    }

    fn on_connection_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                tracing::info!("cluster link connected; setting up");
                self.setup_backoff = SETUP_RETRY;
                self.setup_due = Some(Instant::now());
            }
            Event::Disconnected | Event::Closed => {
                mark_down(&self.shared);
                self.setup_due = None;
                // Nothing will answer the probes; the link is down, so what
                // they held is dropped and counted.
                let held = self.probes.release_all();
                metrics::add(
                    &self.shared.metrics.cluster.publish_dropped,
                    held.len() as u64,
                );
            }
            Event::SlowConsumer(_) => {
                tracing::warn!("cluster link: NATS dropped messages for a slow subscription")
            }
            other => tracing::info!(event = %other, "cluster link event"),
        }
    }

    /// Stream, epoch, stored quotes; then the link is up. A failure retries
    /// with backoff while the connection stays.
    async fn set_up(&mut self, client: &Client) {
        self.setup_due = None;
        let config = &self.shared.config;
        let result = async {
            let store = Store::open(client.clone(), config).await?;
            let epoch = store.epoch().await?;
            if self.shared.epoch.set(&epoch) {
                tracing::info!(epoch = %epoch, "cluster epoch adopted");
            }
            let topics = self.load_stored(&store).await?;
            Ok::<_, String>((store, topics))
        }
        .await;
        match result {
            Ok((store, topics)) => {
                self.store = Some(store);
                self.send_patiently(LinkEvent::Loaded).await;
                self.shared.metrics.cluster.up.store(true, Relaxed);
                tracing::info!(stored_topics = topics, "cluster link up");
            }
            Err(problem) => {
                tracing::warn!(%problem, retry_in_ms = self.setup_backoff.as_millis() as u64, "cluster link set-up failed");
                self.setup_due = Some(Instant::now() + self.setup_backoff);
                self.setup_backoff = (self.setup_backoff * 2).min(ms(config.reconnect_max_ms));
            }
        }
    }

    /// Sends the router the newest stored quote of every topic: the seq to
    /// continue from and the snapshots of topics this broker has not seen.
    async fn load_stored(&self, store: &Store) -> Result<usize, String> {
        let all = cluster::all_subjects(&self.shared.config.subject_prefix);
        let mut total = 0;
        let mut batches = Vec::new();
        store
            .newest_per_topic(&all, |quotes| {
                total += quotes.len();
                batches.push(quotes);
            })
            .await?;
        for quotes in batches {
            send_stored(&self.shared, quotes).await;
        }
        Ok(total)
    }

    async fn handle(&mut self, client: &Client, cmd: LinkCmd) {
        match cmd {
            LinkCmd::Publish { probe, quotes } => {
                if !probe.is_empty() {
                    if let Some(store) = self
                        .store
                        .clone()
                        .filter(|_| self.shared.metrics.cluster.is_up())
                    {
                        self.probes.start(probe, store, self.shared.clone());
                    }
                }
                let n = quotes.len();
                let mut ready = Vec::with_capacity(n);
                for p in quotes {
                    ready.extend(self.probes.hold(p, &self.shared));
                }
                self.publish(client, ready).await;
                self.shared.queued.fetch_sub(n, Relaxed);
            }
            LinkCmd::Watch { selectors, ticket } => {
                let prefix = self.shared.config.subject_prefix.clone();
                let subjects: Vec<String> = selectors
                    .iter()
                    .map(|s| cluster::selector_subject(&prefix, s))
                    .collect();
                for subject in &subjects {
                    self.watches.watch(client, subject, &self.shared).await;
                }
                if let Some(ticket) = ticket {
                    fetch(self.store.clone(), subjects, ticket, &self.shared);
                }
            }
            LinkCmd::History { ticket, wants } => {
                history::start(
                    self.store.clone(),
                    ticket,
                    wants,
                    &self.shared,
                    &self.history_reads,
                );
            }
            LinkCmd::Unwatch { selectors } => {
                let prefix = &self.shared.config.subject_prefix;
                for s in &selectors {
                    self.watches.unwatch(&cluster::selector_subject(prefix, s));
                }
            }
        }
    }

    async fn on_answer(&mut self, client: &Client, answer: Answer) {
        let ready = self.probes.release(answer, &self.shared);
        self.publish(client, ready).await;
    }

    /// Publishes what the link may send now; the rest is dropped and
    /// counted. Checked per quote: while disconnected the client would
    /// buffer, then block this loop.
    async fn publish(&self, client: &Client, quotes: Vec<Publish>) {
        let n = quotes.len() as u64;
        let mut sent = 0u64;
        for p in quotes {
            let connected = client.connection_state() == State::Connected;
            if !connected || !self.shared.metrics.cluster.is_up() {
                break;
            }
            let subject = cluster::topic_subject(&self.shared.config.subject_prefix, &p.topic);
            if client.publish(subject, p.payload.into()).await.is_ok() {
                sent += 1;
            }
        }
        let cm = &self.shared.metrics.cluster;
        metrics::add(&cm.published, sent);
        metrics::add(&cm.publish_dropped, n - sent);
    }

    async fn send_patiently(&self, event: LinkEvent) {
        send_patiently(&self.shared, event).await
    }
}

/// Stored quotes and tickets must reach the router: wait for room (the
/// router drains its queue continuously), within reason.
/// Stored quotes for the router (see [`send_patiently`]).
pub async fn send_stored(shared: &Shared, quotes: Vec<cluster::ClusterQuote>) {
    send_patiently(
        shared,
        LinkEvent::Quotes {
            quotes,
            stored: true,
        },
    )
    .await
}

pub async fn send_patiently(shared: &Shared, mut event: LinkEvent) {
    let deadline = Instant::now() + STORED_SEND_PATIENCE;
    loop {
        match shared.events.try_send(event) {
            Ok(()) => return,
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
            Err(crossbeam_channel::TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    to_router(&shared.events, &shared.metrics, back);
                    return;
                }
                event = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}
