//! The link thread's event loop: the NATS connection, its set-up (stream,
//! epoch, stored quotes), publishing, and one subscription per watched
//! subject.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event};
use crossbeam_channel::Sender;
use futures_util::{FutureExt, StreamExt};
use tickwire_protocol::cluster::{self, ClusterQuote};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::store::Store;
use super::{to_router, LinkCmd, LinkEvent};
use crate::config::{ms, ClusterConfig};
use crate::epoch::Epoch;
use crate::metrics::{self, LatencyRecorder, Metrics};

/// Received messages forwarded to the router in one event, at most.
const RECEIVE_BATCH: usize = 256;
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
    pub events: Sender<LinkEvent>,
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

struct Watched {
    count: usize,
    task: JoinHandle<()>,
}

struct Link {
    shared: Arc<Shared>,
    /// Subject → the task reading its subscription.
    watched: HashMap<String, Watched>,
    store: Option<Store>,
    setup_due: Option<Instant>,
    setup_backoff: Duration,
}

impl Link {
    fn new(shared: Arc<Shared>) -> Link {
        Link {
            shared,
            watched: HashMap::new(),
            store: None,
            setup_due: None,
            setup_backoff: SETUP_RETRY,
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<LinkCmd>) {
        let (state_tx, mut state_rx) = mpsc::unbounded_channel();
        let client = match self.connect(state_tx).await {
            Ok(client) => client,
            Err(problem) => {
                // A configuration the checks could not catch (an unreadable
                // creds file): serve alone, degraded, and say why.
                tracing::error!(%problem, "cluster link not started; serving alone");
                while rx.recv().await.is_some() {}
                return;
            }
        };
        loop {
            let setup_at = self.setup_due;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(&client, cmd).await,
                    None => break,
                },
                Some(event) = state_rx.recv() => self.on_connection_event(event),
                _ = sleep_until(setup_at), if setup_at.is_some() => self.set_up(&client).await,
            }
        }
        // Shutdown: what was published goes out before the thread ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
        for (_, w) in self.watched.drain() {
            w.task.abort();
        }
    }

    async fn connect(&self, state_tx: mpsc::UnboundedSender<Event>) -> Result<Client, String> {
        let c = &self.shared.config;
        let mut options = match &c.creds_file {
            Some(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| format!("cluster.creds_file {path:?}: {e}"))?,
            None => ConnectOptions::new(),
        };
        if let Some(token) = &c.token {
            options = options.token(token.clone());
        }
        if let (Some(user), Some(password)) = (&c.user, &c.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &c.ca_file {
            options = options.add_root_certificates(ca.into()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&c.cert_file, &c.key_file) {
            options = options.add_client_certificate(cert.into(), key.into());
        }
        let max_delay = ms(c.reconnect_max_ms);
        let shared = self.shared.clone();
        let urls: Vec<String> = std::iter::once(c.nats_url.clone())
            .chain(c.nats_urls.iter().cloned())
            .collect();
        options
            .name(format!("tickwire-{:016x}", self.shared.origin))
            // Our own quotes never come back to us.
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(move |attempts| backoff(attempts, max_delay))
            .event_callback(move |event| {
                let tx = state_tx.clone();
                let shared = shared.clone();
                async move {
                    // Marked down here, at once, even while the event loop
                    // is busy: /healthz and the router's publish gate see it.
                    if matches!(event, Event::Disconnected | Event::Closed) {
                        mark_down(&shared);
                    }
                    let _ = tx.send(event);
                }
            })
            .connect(urls.as_slice())
            .await
            .map_err(|e| format!("cluster.nats_url: {e}"))
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
            self.send_patiently(LinkEvent::Quotes {
                quotes,
                stored: true,
            })
            .await;
        }
        Ok(total)
    }

    async fn handle(&mut self, client: &Client, cmd: LinkCmd) {
        match cmd {
            LinkCmd::Publish(batch) => {
                let n = batch.len();
                let mut sent = 0u64;
                for p in batch {
                    // Checked per quote: while disconnected the client would
                    // buffer, then block this loop.
                    let connected = client.connection_state() == State::Connected;
                    if !connected || !self.shared.metrics.cluster.is_up() {
                        break;
                    }
                    let subject =
                        cluster::topic_subject(&self.shared.config.subject_prefix, &p.topic);
                    if client.publish(subject, p.payload.into()).await.is_ok() {
                        sent += 1;
                    }
                }
                self.shared.queued.fetch_sub(n, Relaxed);
                let cm = &self.shared.metrics.cluster;
                metrics::add(&cm.published, sent);
                metrics::add(&cm.publish_dropped, n as u64 - sent);
            }
            LinkCmd::Watch { selectors, ticket } => {
                let prefix = self.shared.config.subject_prefix.clone();
                let subjects: Vec<String> = selectors
                    .iter()
                    .map(|s| cluster::selector_subject(&prefix, s))
                    .collect();
                for subject in &subjects {
                    self.watch(client, subject).await;
                }
                if let Some(ticket) = ticket {
                    self.fetch(subjects, ticket);
                }
            }
            LinkCmd::Unwatch { selectors } => {
                let prefix = &self.shared.config.subject_prefix;
                for s in &selectors {
                    let subject = cluster::selector_subject(prefix, s);
                    if let Some(w) = self.watched.get_mut(&subject) {
                        w.count -= 1;
                        if w.count == 0 {
                            if let Some(w) = self.watched.remove(&subject) {
                                // Dropping the subscriber unsubscribes.
                                w.task.abort();
                            }
                        }
                    }
                }
            }
        }
    }

    async fn watch(&mut self, client: &Client, subject: &str) {
        if let Some(w) = self.watched.get_mut(subject) {
            w.count += 1;
            return;
        }
        // While disconnected the client queues the SUB and sends it (like
        // every subscription) when it reconnects.
        let subscriber = match client.subscribe(subject.to_owned()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "cluster link cannot subscribe");
                return;
            }
        };
        let shared = self.shared.clone();
        let task = tokio::spawn(forward(shared, subscriber));
        self.watched
            .insert(subject.to_owned(), Watched { count: 1, task });
    }

    /// Fetches the newest stored quote under each subject in the background,
    /// then reports the ticket (also on failure: the router stops waiting).
    fn fetch(&self, subjects: Vec<String>, ticket: u64) {
        let shared = self.shared.clone();
        let store = self
            .store
            .as_ref()
            .filter(|_| shared.metrics.cluster.is_up())
            .cloned();
        tokio::spawn(async move {
            if let Some(store) = store {
                for subject in &subjects {
                    let mut batches = Vec::new();
                    let result = store
                        .newest_per_topic(subject, |quotes| batches.push(quotes))
                        .await;
                    for quotes in batches {
                        send_patiently(
                            &shared,
                            LinkEvent::Quotes {
                                quotes,
                                stored: true,
                            },
                        )
                        .await;
                    }
                    if let Err(problem) = result {
                        tracing::warn!(%subject, %problem, "cluster fetch of stored quotes failed");
                    }
                }
            }
            send_patiently(&shared, LinkEvent::Fetched { ticket }).await;
        });
    }

    async fn send_patiently(&self, event: LinkEvent) {
        send_patiently(&self.shared, event).await
    }
}

/// Reads one subscription and hands its quotes to the router in batches of
/// what is already there.
async fn forward(shared: Arc<Shared>, mut subscriber: async_nats::Subscriber) {
    let mut lag = LatencyRecorder::default();
    while let Some(first) = subscriber.next().await {
        let mut quotes = Vec::new();
        let mut message = Some(first);
        while let Some(m) = message {
            match cluster::decode(&m.payload) {
                Ok(q) => {
                    lag.record(lag_of(&q));
                    quotes.push(q);
                }
                Err(e) => {
                    if shared.metrics.cluster.invalid.fetch_add(1, Relaxed) == 0 {
                        tracing::warn!(subject = %m.subject, error = %e, "cluster message does not decode (first of its kind; counted)");
                    }
                }
            }
            message = match quotes.len() < RECEIVE_BATCH {
                true => subscriber.next().now_or_never().flatten(),
                false => None,
            };
        }
        if !quotes.is_empty() {
            let now = std::time::Instant::now();
            shared.metrics.cluster.lag.lock().absorb(&mut lag, now);
            metrics::add(&shared.metrics.cluster.received, quotes.len() as u64);
            to_router(
                &shared.events,
                &shared.metrics,
                LinkEvent::Quotes {
                    quotes,
                    stored: false,
                },
            );
        }
    }
}

fn lag_of(q: &ClusterQuote) -> Duration {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Duration::from_nanos(now_ns.saturating_sub(q.sent_ns))
}

/// Stored quotes and tickets must reach the router: wait for room (the
/// router drains its queue continuously), within reason.
async fn send_patiently(shared: &Shared, mut event: LinkEvent) {
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

fn mark_down(shared: &Shared) {
    if shared.metrics.cluster.up.swap(false, Relaxed) {
        metrics::add(&shared.metrics.cluster.disconnects, 1);
        tracing::warn!("cluster link down; serving local producers only, reconnecting");
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Reconnect pause: doubling from 50 ms up to `max`, with ±25% jitter so a
/// fleet of brokers does not reconnect in step after a NATS restart.
fn backoff(attempts: usize, max: Duration) -> Duration {
    let exp = 50u64.saturating_mul(1u64 << attempts.min(16));
    let base = Duration::from_millis(exp).min(max);
    let jitter = crate::epoch::random_u64() % 501; // 0..=500 ‰ of a half
    base.mul_f64(0.75 + jitter as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let max = Duration::from_secs(5);
        for attempts in 0..40 {
            let d = backoff(attempts, max);
            let base = Duration::from_millis(50u64 << attempts.min(16)).min(max);
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{attempts}: {d:?}"
            );
        }
    }
}
