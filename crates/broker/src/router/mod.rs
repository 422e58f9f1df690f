//! The router thread owns all topic state: per-topic `seq`, the last-value
//! cache, and which workers have interest. It numbers each quote, encodes it
//! once per wire format, and hands one shared copy to each interested worker.
//!
//! It is made of parts, each owning its state behind its own methods:
//!
//! | part | file | what it owns |
//! |---|---|---|
//! | `TopicTable` | `topics.rs` | topics, `seq`, last values, history rings (`history.rs`), the accept counter, the topic limit |
//! | `Interest` | `interest.rs` | worker masks per selector, the generation that keeps topic masks fresh |
//! | `FanOut` | `to_workers.rs` | worker links, the round's pending quotes, outboxes, wakes |
//! | `SnapshotJobs` | `snapshots.rs` | catch-ups (snapshots, resumes, rewinds) still being walked, one slice per round |
//! | `Stats` | `stats.rs` | quotes in, ingest → router latency, history size |
//! | `RouterLink` | `cluster.rs` | the NATS side (publishing, remote quotes, parked subscribes) |
//!
//! What holds them together is order, kept here: commands before every
//! ingest batch, a worker's pending quotes before its activation or slice,
//! one flush and one wake per worker per round. The loop that drives the
//! rounds, on the thread that also reads the producers, is
//! `router_thread.rs`: this module does no I/O.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use tickwire_protocol::Quote;

use crate::cluster::LinkEvent;
use crate::messages::{IngestBatch, RouterCmd, WorkerMsg};
use crate::metrics::Metrics;
use cluster::Activation;
pub use cluster::RouterLink;
use encode::{changed, encode};
pub use history::HistoryLimits;
use interest::Interest;
use snapshots::SnapshotJobs;
pub use snapshots::SNAPSHOT_SLICE;
use stats::{Stats, PUBLISH_INTERVAL};
use to_workers::FanOut;
pub use to_workers::WorkerLink;
use topics::TopicTable;

mod cluster;
pub mod encode;
mod history;
mod interest;
mod outbox;
mod snapshots;
mod stats;
mod to_workers;
mod topics;

/// Ingest batches (and cluster events) handled before the router flushes to
/// workers, so a deep backlog still reaches subscribers in steady slices.
pub const INGEST_BATCHES_PER_ROUND: usize = 64;
/// How soon to retry handing a backed-up worker its outbox when no input
/// arrives meanwhile.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

/// The router is a composition of parts, each owning its state: the topic
/// table (numbering, last values, the accept counter), the interest (which
/// workers want which topics), the fan-out (never blocking on a worker),
/// the snapshot jobs and the stats. Its own methods only say in which
/// order they act.
pub struct Router {
    topics: TopicTable,
    interest: Interest,
    fanout: FanOut,
    jobs: SnapshotJobs,
    stats: Stats,
    /// One encoding buffer for every quote.
    scratch: Vec<u8>,
    /// The NATS link, when `[cluster]` is configured.
    cluster: Option<RouterLink>,
}

impl Router {
    pub fn new(
        workers: Vec<WorkerLink>,
        max_topics: usize,
        history: HistoryLimits,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            topics: TopicTable::new(max_topics, history, metrics.clone()),
            interest: Interest::default(),
            fanout: FanOut::new(workers, metrics.clone()),
            jobs: SnapshotJobs::default(),
            stats: Stats::new(metrics),
            scratch: Vec::with_capacity(512),
            cluster: None,
        }
    }

    /// Start of a round: quotes from other brokers (at most a round's
    /// worth) and subscribes whose wait for them is over. The thread's
    /// loop (`router_thread.rs`) calls it after handling commands.
    pub fn start_round(&mut self, link_rx: &Receiver<LinkEvent>) {
        for _ in 0..INGEST_BATCHES_PER_ROUND {
            match link_rx.try_recv() {
                Ok(event) => self.on_link_event(event),
                Err(_) => break,
            }
        }
        if self.cluster.is_some() {
            self.release_parked(Instant::now());
        }
    }

    /// End of a round: one snapshot slice, then each worker's quotes and
    /// one wake per worker; the stats at most once a second.
    pub fn end_round(&mut self) {
        self.advance_snapshots();
        self.flush();
        let held = self.topics.history_held();
        self.stats.publish(Instant::now(), held);
    }

    /// Handles every command waiting. Commands are handled before every
    /// ingest batch: a client that saw its `subscribed` ack (sent after the
    /// command was queued) must receive any quote published after that,
    /// so no batch may overtake an earlier command. False once every worker
    /// has gone.
    pub fn drain_cmds(&mut self, cmd_rx: &Receiver<RouterCmd>) -> bool {
        loop {
            match cmd_rx.try_recv() {
                Ok(cmd) => self.handle_cmd(cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    pub fn ingest(&mut self, batch: IngestBatch) {
        self.stats.batch_in(&batch);
        if let Some(link) = &mut self.cluster {
            link.start_batch();
        }
        for quote in &batch.quotes {
            self.accept(quote, batch.decoded_at);
        }
    }

    /// A quote of this broker's ingest: numbered, encoded once, kept as the
    /// topic's last value and queued for every interested worker.
    fn accept(&mut self, quote: &Quote, decoded_at: Instant) {
        let Some((name, mut topic)) = self.topics.quote(&quote.topic) else {
            return;
        };
        let metrics = self.stats.metrics();
        let first_here = self.cluster.as_ref().is_some_and(|link| {
            topic
                .origin()
                .local_quote(link.handle.origin, decoded_at, metrics)
        });
        let owed = self
            .jobs
            .before_live(&name, topic.accepted_before(), &topic);
        let workers = self.interest.workers(&name, topic.mask());
        let seq = topic.next_seq();
        // Only clustered: the name is staged for publishing below.
        let staged = self.cluster.is_some().then(|| name.clone());
        let order = (seq, topic.next_accepted());
        let changed = changed(topic.last(), quote, seq);
        let shared = Arc::new(encode(
            quote,
            name,
            order,
            decoded_at,
            changed,
            &mut self.scratch,
        ));
        topic.accept(shared.clone());
        self.topics.trim_history();
        self.send_owed(owed);
        self.fanout.queue(workers, &shared);
        if let (Some(name), Some(link)) = (staged, &mut self.cluster) {
            if first_here {
                link.probe(name.clone());
            }
            link.stage(quote, &name, seq);
        }
    }

    /// What catch-up jobs owe a topic about to get a live quote goes first,
    /// behind the quotes already numbered for its worker.
    fn send_owed(&mut self, owed: Vec<(usize, WorkerMsg)>) {
        for (worker, msg) in owed {
            self.send_pending(worker);
            // Counted like every slice: the worker counts each one handled.
            self.fanout.slice_sent(worker);
            self.send(worker, msg);
        }
    }

    pub fn handle_cmd(&mut self, cmd: RouterCmd) {
        match cmd {
            RouterCmd::Subscribe {
                worker,
                conn,
                request,
                selectors,
                catch_up,
                interest_add,
                seed,
            } => {
                let mut fresh = Vec::new();
                for selector in interest_add {
                    let topic = self.topics.mask_mut(&selector);
                    if self.interest.add(worker, &selector, topic) {
                        fresh.push(selector);
                    }
                }
                let activation = Activation {
                    worker,
                    conn,
                    request,
                    selectors,
                    catch_up,
                    seed,
                };
                if let Some(activation) = self.cluster_gate(fresh, activation) {
                    self.activate(activation);
                }
            }
            RouterCmd::CancelSnapshots { worker, conn } => self.jobs.cancel(worker, conn),
            RouterCmd::CatchUpCredit { worker, conn } => self.jobs.credit(worker, conn),
            RouterCmd::DropInterest { worker, selectors } => {
                let mut gone = Vec::new();
                for selector in selectors {
                    let topic = self.topics.mask_mut(&selector);
                    if self.interest.remove(worker, &selector, topic) {
                        gone.push(selector);
                    }
                }
                if let Some(link) = &mut self.cluster {
                    link.unwatch(gone);
                }
            }
            RouterCmd::Batch(cmds) => cmds.into_iter().for_each(|cmd| self.handle_cmd(cmd)),
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
            catch_up,
            seed,
        } = a;
        let resumed = catch_up.resume.len();
        let started = self
            .jobs
            .start(worker, conn, request, &selectors, catch_up, &self.topics);
        self.stats.resumed(started.unrecovered.as_deref(), resumed);
        // Quotes already numbered for this worker go first: the
        // activation marks the point after which quotes are newer
        // than the snapshot.
        self.send_pending(worker);
        if started.more {
            self.fanout.slice_sent(worker);
        }
        self.send(
            worker,
            WorkerMsg::Activate {
                conn,
                request,
                selectors,
                snapshots: started.first,
                replayed: started.replayed,
                more: started.more,
                unrecovered: started.unrecovered,
                seed,
            },
        );
    }

    /// Sends one slice of the oldest snapshot job whose worker keeps up.
    pub fn advance_snapshots(&mut self) {
        let fanout = &self.fanout;
        let Some((worker, slice)) = self.jobs.next_slice(&self.topics, |w| fanout.keeps_up(w))
        else {
            return;
        };
        // Quotes numbered before this slice go first, as for an activation.
        self.send_pending(worker);
        self.fanout.slice_sent(worker);
        self.send(worker, slice);
    }

    /// Whether some snapshot job can go on now (the round after this one
    /// must not wait for input).
    pub fn snapshots_ready(&self) -> bool {
        self.jobs.ready(|w| self.fanout.keeps_up(w))
    }

    /// Sends each worker its quotes of this round and wakes it once.
    pub fn flush(&mut self) {
        if let Some(link) = &mut self.cluster {
            link.flush();
        }
        for worker in 0..self.fanout.workers() {
            self.send_pending(worker);
        }
        self.fanout.wake();
    }

    /// The two ways to a worker: a worker found gone takes its snapshot
    /// jobs with it (they could never finish).
    fn send_pending(&mut self, worker: usize) {
        if self.fanout.send_pending(worker).is_err() {
            self.jobs.worker_gone(worker);
        }
    }

    fn send(&mut self, worker: usize, msg: WorkerMsg) {
        if self.fanout.send(worker, msg).is_err() {
            self.jobs.worker_gone(worker);
        }
    }

    /// How long to wait for input when idle: short while an outbox holds
    /// quotes for a worker that is catching up.
    pub fn idle_wait(&self) -> Duration {
        if self.fanout.backed_up() || !self.jobs.is_empty() {
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

    #[cfg(test)]
    fn metrics(&self) -> &Arc<Metrics> {
        self.stats.metrics()
    }
}

#[cfg(test)]
mod resume_props;
#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod tests;
