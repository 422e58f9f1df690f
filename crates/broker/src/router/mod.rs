//! The router thread owns all topic state: per-topic `seq`, the last-value
//! cache, and which workers have interest. It numbers each quote, encodes it
//! once per wire format, and hands one shared copy to each interested worker.
//!
//! Workers report interest only on transitions (their first subscriber to a
//! selector, their last one leaving), so the router's state is a bit mask of
//! workers per selector, independent of the number of subscribers. Each
//! topic caches the union of the masks matching it; a change of pattern
//! interest only bumps a generation, and each topic recomputes its cache on
//! its next quote (O(length of the topic)), so no interest change ever
//! walks every topic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TryRecvError};
use mio::Waker;
use tickwire_protocol::{PrefixIndex, Quote, Selector};

use crate::cluster::LinkEvent;
use crate::messages::{IngestBatch, RouterCmd, SharedQuote, WorkerMsg};
use cluster::Activation;
pub use cluster::RouterLink;
use outbox::Outbox;
use snapshots::SnapshotJob;

mod cluster;
mod encode;
mod outbox;
mod snapshots;
mod to_workers;
use crate::metrics::{self, LatencyRecorder, Metrics};
use encode::encode;

/// Ingest batches handled before the router flushes to workers, so a deep
/// backlog still reaches subscribers in steady slices.
const INGEST_BATCHES_PER_ROUND: usize = 64;
/// How often local latency samples are merged into the shared window.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// How soon to retry handing a backed-up worker its outbox when no input
/// arrives meanwhile.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

pub struct WorkerLink {
    pub tx: Sender<WorkerMsg>,
    pub waker: Arc<Waker>,
    /// Snapshot slices sent and not yet handled by the worker: the next
    /// slice waits until it is 0, so slices never pile up in the worker's
    /// queue ahead of live quotes.
    pub slices_queued: Arc<AtomicUsize>,
}

pub(super) struct Topic {
    seq: u64,
    last: Option<Arc<SharedQuote>>,
    /// Bit w set: worker w has a subscriber matching this topic; valid when
    /// `interest_gen` is the router's.
    workers: u64,
    interest_gen: u64,
    /// The router's accept count at this topic's last quote.
    accepted: u64,
    /// Cluster only (see `cluster.rs`): who published the topic's latest
    /// live quote (a broker's origin id, ours included) and when.
    last_from: Option<(u64, Instant)>,
    /// Cluster only: this broker's ingest has had a quote for it.
    ingested_here: bool,
}

pub struct Router {
    /// Ordered: the topics under a pattern are a range scan, so a `*`
    /// subscribe costs O(topics it matches).
    topics: PrefixIndex<Topic>,
    /// Per selector, the workers with a subscriber for it.
    interest: PrefixIndex<u64>,
    workers: Vec<WorkerLink>,
    /// Quotes for each worker, sent as one message per round.
    pending: Vec<Vec<Arc<SharedQuote>>>,
    /// Per worker, what its full queue could not take yet.
    outboxes: Vec<Outbox>,
    to_wake: u64,
    /// Bumped by every change of pattern interest: topic masks of an older
    /// generation are stale.
    interest_gen: u64,
    /// Quotes accepted so far (orders quotes against snapshot jobs).
    accepted: u64,
    /// Snapshots still being collected, one slice per round.
    jobs: VecDeque<SnapshotJob>,
    max_topics: usize,
    metrics: Arc<Metrics>,
    scratch: Vec<u8>,
    /// Ingest decode → router pickup, merged into `metrics` periodically.
    hop_latency: LatencyRecorder,
    last_publish: Instant,
    /// The NATS link, when `[cluster]` is configured.
    cluster: Option<RouterLink>,
}

impl Router {
    pub fn new(workers: Vec<WorkerLink>, max_topics: usize, metrics: Arc<Metrics>) -> Router {
        let pending = workers.iter().map(|_| Vec::new()).collect();
        let outboxes = workers.iter().map(|_| Outbox::default()).collect();
        Router {
            topics: PrefixIndex::ordered(),
            interest: PrefixIndex::new(),
            workers,
            pending,
            outboxes,
            to_wake: 0,
            interest_gen: 0,
            accepted: 0,
            jobs: VecDeque::new(),
            max_topics,
            metrics,
            scratch: Vec::with_capacity(512),
            hop_latency: LatencyRecorder::default(),
            last_publish: Instant::now(),
            cluster: None,
        }
    }

    /// Runs until ingest has gone away (shutdown) or every worker has.
    ///
    /// Commands are drained before every ingest batch: a client that saw its
    /// `subscribed` ack (sent after the command was queued) must receive any
    /// quote published after that, so no batch may overtake an earlier
    /// command.
    pub fn run(
        mut self,
        ingest_rx: Receiver<IngestBatch>,
        cmd_rx: Receiver<RouterCmd>,
        link_rx: Receiver<LinkEvent>,
    ) {
        loop {
            self.drain_cmds(&cmd_rx);
            // Quotes from other brokers, bounded per round like ingest.
            for _ in 0..INGEST_BATCHES_PER_ROUND {
                match link_rx.try_recv() {
                    Ok(event) => self.on_link_event(event),
                    Err(_) => break,
                }
            }
            if self.cluster.is_some() {
                self.release_parked(Instant::now());
            }
            let mut handled = 0;
            let mut ingest_open = true;
            while handled < INGEST_BATCHES_PER_ROUND {
                match ingest_rx.try_recv() {
                    Ok(batch) => {
                        self.drain_cmds(&cmd_rx);
                        self.ingest(batch);
                        handled += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ingest_open = false;
                        break;
                    }
                }
            }
            self.advance_snapshots();
            self.flush();
            self.publish_stats(&ingest_rx);
            if !ingest_open {
                return;
            }
            if handled == 0 && !self.snapshots_ready() {
                select! {
                    recv(cmd_rx) -> cmd => match cmd {
                        Ok(cmd) => self.handle_cmd(cmd),
                        Err(_) => return,
                    },
                    recv(ingest_rx) -> batch => match batch {
                        Ok(batch) => {
                            self.drain_cmds(&cmd_rx);
                            self.ingest(batch);
                        }
                        Err(_) => return,
                    },
                    recv(link_rx) -> event => {
                        if let Ok(event) = event {
                            self.on_link_event(event);
                        }
                    },
                    // Wake now and then to publish stats even when idle.
                    default(self.idle_wait()) => {}
                }
            }
        }
    }

    fn publish_stats(&mut self, ingest_rx: &Receiver<IngestBatch>) {
        let now = Instant::now();
        if now.duration_since(self.last_publish) < PUBLISH_INTERVAL {
            return;
        }
        self.last_publish = now;
        self.metrics
            .ingest_queue_depth
            .store(ingest_rx.len() as u64, Ordering::Relaxed);
        self.metrics
            .ingest_router_latency
            .lock()
            .absorb(&mut self.hop_latency, now);
    }

    fn drain_cmds(&mut self, cmd_rx: &Receiver<RouterCmd>) {
        while let Ok(cmd) = cmd_rx.try_recv() {
            self.handle_cmd(cmd);
        }
    }

    pub fn ingest(&mut self, batch: IngestBatch) {
        metrics::add(&self.metrics.quotes_in, batch.quotes.len() as u64);
        self.hop_latency
            .record_n(batch.decoded_at.elapsed(), batch.quotes.len() as u64);
        if let Some(link) = &mut self.cluster {
            link.start_batch();
        }
        for quote in &batch.quotes {
            self.accept(quote, batch.decoded_at);
        }
    }

    /// The topic's shared name, creating the topic if there is room.
    fn topic_name(&mut self, topic: &str) -> Option<Arc<str>> {
        if let Some((name, _)) = self.topics.exact_key_value(topic) {
            return Some(name.clone());
        }
        if self.topics.len() >= self.max_topics {
            if self.metrics.topics_dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(max_topics = self.max_topics, %topic, "topic limit reached; quotes for new topics are dropped");
            }
            return None;
        }
        let name: Arc<str> = Arc::from(topic);
        let workers = interest_mask(&self.interest, &name);
        self.topics.insert_exact(
            name.clone(),
            Topic {
                seq: 0,
                last: None,
                workers,
                interest_gen: self.interest_gen,
                accepted: 0,
                last_from: None,
                ingested_here: false,
            },
        );
        metrics::gauge_add(&self.metrics.topics, 1);
        Some(name)
    }

    fn accept(&mut self, quote: &Quote, decoded_at: Instant) {
        let Some(name) = self.topic_name(&quote.topic) else {
            return;
        };
        let Some(topic) = self.topics.exact_mut(&name) else {
            return;
        };
        let own = self.cluster.as_ref().map(|link| link.handle.origin);
        let first_here = own
            .is_some_and(|own| self::cluster::local_quote(topic, own, decoded_at, &self.metrics));
        if topic.interest_gen != self.interest_gen {
            topic.workers = interest_mask(&self.interest, &name);
            topic.interest_gen = self.interest_gen;
        }
        self.accepted += 1;
        topic.accepted = self.accepted;
        // Never wraps: a topic at the bound keeps its seq (its quotes are
        // then stale elsewhere) rather than restart at 0, stale everywhere.
        topic.seq = topic.seq.saturating_add(1).min(tickwire_protocol::MAX_SEQ);
        // Only clustered: the name is staged for publishing below.
        let staged = self.cluster.is_some().then(|| name.clone());
        let shared = Arc::new(encode(
            quote,
            name,
            topic.seq,
            decoded_at,
            &mut self.scratch,
        ));
        let mut mask = topic.workers;
        topic.last = Some(shared.clone());
        let seq = topic.seq;
        while mask != 0 {
            let w = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(pending) = self.pending.get_mut(w) {
                pending.push(shared.clone());
            }
        }
        if let (Some(name), Some(link)) = (staged, &mut self.cluster) {
            if first_here {
                link.probe(name.clone());
            }
            link.stage(quote, &name, seq);
        }
    }

    pub fn handle_cmd(&mut self, cmd: RouterCmd) {
        match cmd {
            RouterCmd::Subscribe {
                worker,
                conn,
                request,
                selectors,
                snapshot,
                interest_add,
            } => {
                let mut fresh = Vec::new();
                for selector in interest_add {
                    if self.add_interest(worker, &selector) {
                        fresh.push(selector);
                    }
                }
                let activation = Activation {
                    worker,
                    conn,
                    request,
                    selectors,
                    snapshot,
                };
                if let Some(activation) = self.cluster_gate(fresh, activation) {
                    self.activate(activation);
                }
            }
            RouterCmd::CancelSnapshots { worker, conn } => self.cancel_snapshots(worker, conn),
            RouterCmd::DropInterest { worker, selectors } => {
                let mut gone = Vec::new();
                for selector in selectors {
                    if self.drop_interest(worker, &selector) {
                        gone.push(selector);
                    }
                }
                if let Some(link) = &mut self.cluster {
                    link.unwatch(gone);
                }
            }
        }
    }

    /// The router's half of a subscribe: the snapshot (first slice) and the
    /// `Activate` that marks where live quotes start.
    fn activate(&mut self, a: Activation) {
        let Activation {
            worker,
            conn,
            request,
            selectors,
            snapshot,
        } = a;
        let (snapshots, more) = if snapshot {
            let mut job = SnapshotJob::new(worker, conn, request, &selectors, self.accepted);
            let (first, more) = self.snapshot_slice(&mut job);
            if more {
                self.jobs.push_back(job);
            }
            (first, more)
        } else {
            (Vec::new(), false)
        };
        // Quotes already numbered for this worker go first: the
        // activation marks the point after which quotes are newer
        // than the snapshot.
        self.send_pending(worker);
        if more {
            self.slice_sent(worker);
        }
        self.send(
            worker,
            WorkerMsg::Activate {
                conn,
                request,
                selectors,
                snapshots,
                more,
            },
        );
    }

    /// Returns true when no worker had interest in `selector` before.
    fn add_interest(&mut self, worker: usize, selector: &Selector) -> bool {
        let bit = 1u64 << worker;
        let mask = self.interest.get_or_insert_with(selector, || 0).0;
        let was_none = *mask == 0;
        *mask |= bit;
        match selector {
            Selector::Exact(name) => {
                if let Some(topic) = self.topics.exact_mut(name) {
                    // A stale mask is recomputed on the next quote anyway.
                    topic.workers |= bit;
                }
            }
            Selector::Prefix(_) => self.interest_gen += 1,
        }
        was_none
    }

    /// Returns true when no worker has interest in `selector` any more.
    fn drop_interest(&mut self, worker: usize, selector: &Selector) -> bool {
        let bit = 1u64 << worker;
        let mut gone = false;
        if let Some(mask) = self.interest.get_mut(selector) {
            *mask &= !bit;
            if *mask == 0 {
                self.interest.remove(selector);
                gone = true;
            }
        }
        match selector {
            // Another selector of the same worker may still match.
            Selector::Exact(name) => {
                let mask = interest_mask(&self.interest, name);
                if let Some(topic) = self.topics.exact_mut(name) {
                    topic.workers = mask;
                }
            }
            Selector::Prefix(_) => self.interest_gen += 1,
        }
        gone
    }

    /// How long to wait for input when idle: short while an outbox holds
    /// quotes for a worker that is catching up.
    fn idle_wait(&self) -> Duration {
        if self.outboxes.iter().any(|o| !o.is_empty()) || !self.jobs.is_empty() {
            return BACKLOG_RETRY;
        }
        // A subscribe waiting for the cluster's stored quotes gives up on time.
        match self.cluster.as_ref().and_then(RouterLink::next_deadline) {
            Some(at) => at
                .saturating_duration_since(Instant::now())
                .min(PUBLISH_INTERVAL),
            None => PUBLISH_INTERVAL,
        }
    }
}

/// Workers interested in `topic`: the union over every selector matching it
/// (O(length of the topic) probes).
fn interest_mask(interest: &PrefixIndex<u64>, topic: &str) -> u64 {
    interest.matching(topic).fold(0, |mask, (_, m)| mask | m)
}

#[cfg(test)]
mod tests;
