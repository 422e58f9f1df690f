//! The router's side of the cluster link: quotes it numbered go out once
//! per round; quotes from other brokers come in with their `seq` and are
//! delivered only when newer than the topic's (so a quote never reaches a
//! subscriber twice and `seq` never goes backwards); a subscribe that makes
//! this broker follow a selector it was not following waits (bounded) for
//! the cluster's stored newest quotes, so its snapshot is the cluster's.
//!
//! A topic's first quote through this broker's ingest asks the link for the
//! topic's stored `seq` (a probe, one get, no subscription): when a feed
//! moves here from another broker, numbering continues from that broker's.
//! Conflicts are seen by every broker following a topic: a live quote from
//! one broker soon after one from another.
//!
//! A `seq` above [`MAX_SEQ`] (2^53 − 1, what a JSON client represents
//! exactly) is refused and counted as invalid: adopted, it would leave the
//! topic nowhere to count on (`u64::MAX` overflowed the next local quote).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use tickwire_protocol::cluster::{self as wire, ClusterQuote};
use tickwire_protocol::{Quote, Selector, MAX_SEQ};

use super::encode::{changed, encode};
use super::Router;
use crate::cluster::{LinkCmd, LinkEvent, LinkHandle, Publish};
use crate::messages::{CatchUp, ConnId};
use crate::metrics::{self, Metrics};

/// Quotes of one topic from two brokers this close together mean two
/// brokers publish it: a conflict.
pub const CONFLICT_WINDOW: Duration = Duration::from_secs(5);

/// The part of a subscribe done once its snapshot may be taken.
pub struct Activation {
    pub worker: usize,
    pub conn: ConnId,
    pub request: u32,
    pub selectors: Vec<Selector>,
    pub catch_up: CatchUp,
    /// Handed back in `Activate` (see `RouterCmd::Subscribe`).
    pub seed: Option<u64>,
}

struct Parked {
    /// The fetches this activation waits for (stored newest quotes,
    /// history); none: it only keeps its place behind earlier ones
    /// (activations leave in arrival order).
    tickets: Vec<u64>,
    deadline: Instant,
    activation: Activation,
}

pub struct RouterLink {
    pub handle: LinkHandle,
    outgoing: Vec<Publish>,
    /// Topics first ingested here this round, whose stored seq to fetch.
    probes: Vec<Arc<str>>,
    parked: VecDeque<Parked>,
    next_ticket: u64,
    fetch_timeout: Duration,
    /// Told once, when the first set-up's stored quotes are all applied:
    /// the broker's start waits for it before taking producers.
    ready: Option<Sender<()>>,
    /// Wall clock of the current ingest batch, for `sent_ns`.
    batch_wall_ns: u64,
}

impl RouterLink {
    pub fn new(handle: LinkHandle, fetch_timeout: Duration, ready: Sender<()>) -> RouterLink {
        RouterLink {
            handle,
            outgoing: Vec::new(),
            probes: Vec::new(),
            parked: VecDeque::new(),
            next_ticket: 1,
            fetch_timeout,
            ready: Some(ready),
            batch_wall_ns: 0,
        }
    }

    pub fn start_batch(&mut self) {
        self.batch_wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    }

    /// Encodes a quote this broker numbered, once, for the round's publish.
    pub fn stage(&mut self, quote: &Quote, topic: &Arc<str>, seq: u64) {
        let mut payload = Vec::new();
        wire::encode_parts(
            self.handle.origin,
            seq,
            self.batch_wall_ns,
            quote,
            &mut payload,
        );
        self.outgoing.push(Publish {
            topic: topic.clone(),
            seq,
            payload,
        });
    }

    pub fn probe(&mut self, topic: Arc<str>) {
        self.probes.push(topic);
    }

    /// Probes travel with the quotes: the link starts them first, then
    /// holds back their topics' quotes until it knows the stored seq (see
    /// `cluster/probe.rs`).
    pub fn flush(&mut self) {
        self.handle.publish(
            std::mem::take(&mut self.probes),
            std::mem::take(&mut self.outgoing),
        );
    }

    fn ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        ticket
    }

    /// Follow `selectors` over NATS and fetch their stored quotes; the
    /// ticket to wait for.
    fn watch(&mut self, selectors: Vec<Selector>) -> u64 {
        let ticket = self.ticket();
        self.handle.send(LinkCmd::Watch {
            selectors,
            ticket: Some(ticket),
        });
        ticket
    }

    /// Read the cluster's history of topics this broker does not hold
    /// far enough back; the ticket to wait for.
    fn history(&mut self, wants: Vec<(Arc<str>, u64)>) -> u64 {
        let ticket = self.ticket();
        self.handle.send(LinkCmd::History { ticket, wants });
        ticket
    }

    pub fn unwatch(&mut self, selectors: Vec<Selector>) {
        if !selectors.is_empty() {
            self.handle.send(LinkCmd::Unwatch { selectors });
        }
    }

    /// When the earliest parked activation gives up waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.parked.front().map(|p| p.deadline)
    }
}

impl Router {
    pub fn with_cluster(mut self, link: RouterLink) -> Router {
        self.cluster = Some(link);
        self
    }

    /// A subscribe whose `fresh` selectors no worker of this broker had
    /// before: follow them; with a snapshot, wait for their stored quotes.
    /// Returns the activation when it can run now.
    pub(super) fn cluster_gate(
        &mut self,
        fresh: Vec<Selector>,
        activation: Activation,
    ) -> Option<Activation> {
        let Some(link) = &mut self.cluster else {
            return Some(activation);
        };
        let up = link.handle.is_up();
        let mut tickets = Vec::new();
        if !fresh.is_empty() {
            let ticket = link.watch(fresh);
            if activation.catch_up.sends_quotes() && up {
                tickets.push(ticket);
            }
        }
        // Topics to resume whose range this broker's history lacks: the
        // cluster's (JetStream) may hold it. Newest-only resumes need no
        // more than the stored newest quote the watch brings.
        let wants: Vec<(Arc<str>, u64)> = activation
            .catch_up
            .resume
            .iter()
            .filter(|r| !r.newest_only && !self.topics.resume_holds(&r.topic, r.after, false))
            .map(|r| (r.topic.clone(), r.after))
            .collect();
        if !wants.is_empty() && up && self.topics.history_enabled() {
            tickets.push(link.history(wants));
        }
        if tickets.is_empty() && link.parked.is_empty() {
            return Some(activation);
        }
        link.parked.push_back(Parked {
            tickets,
            deadline: Instant::now() + link.fetch_timeout,
            activation,
        });
        None
    }

    /// Runs parked activations whose fetch is done or overdue, in order.
    pub(super) fn release_parked(&mut self, now: Instant) {
        loop {
            let Some(link) = &mut self.cluster else {
                return;
            };
            let ready = link
                .parked
                .front()
                .is_some_and(|p| p.tickets.is_empty() || p.deadline <= now);
            if !ready {
                return;
            }
            if let Some(p) = link.parked.pop_front() {
                self.activate(p.activation);
            }
        }
    }

    pub(super) fn on_link_event(&mut self, event: LinkEvent) {
        let now = Instant::now();
        match event {
            LinkEvent::Quotes { quotes, stored } => {
                for q in quotes {
                    self.accept_remote(q, stored, now);
                }
            }
            LinkEvent::Fetched { ticket } => self.fetched(ticket),
            LinkEvent::History { ticket, quotes } => {
                self.history_fetched(quotes, now);
                self.fetched(ticket);
            }
            LinkEvent::Loaded => {
                if let Some(ready) = self.cluster.as_mut().and_then(|l| l.ready.take()) {
                    let _ = ready.try_send(());
                }
            }
        }
        self.release_parked(now);
    }

    fn fetched(&mut self, ticket: u64) {
        if let Some(link) = &mut self.cluster {
            for p in link.parked.iter_mut() {
                p.tickets.retain(|t| *t != ticket);
            }
        }
    }

    /// Quotes read from the cluster's history: those older than what this
    /// broker holds fill its rings in from the front; a newer one is a
    /// stored quote like a watch's (the numbering moves on to it).
    fn history_fetched(&mut self, quotes: Vec<ClusterQuote>, now: Instant) {
        // The link answers topic after topic, each ascending.
        let mut groups: Vec<Vec<ClusterQuote>> = Vec::new();
        for q in quotes.into_iter().filter(|q| q.seq <= MAX_SEQ) {
            match groups.last_mut() {
                Some(group) if group.last().is_some_and(|g| g.quote.topic == q.quote.topic) => {
                    group.push(q)
                }
                _ => groups.push(vec![q]),
            }
        }
        for group in groups {
            let Some(topic) = group.first().map(|q| q.quote.topic.clone()) else {
                continue;
            };
            let Some((name, quoting)) = self.topics.quote(&topic) else {
                continue;
            };
            let held = quoting.seq();
            let (older, newer): (Vec<ClusterQuote>, Vec<ClusterQuote>) =
                group.into_iter().partition(|q| q.seq <= held);
            let older = older
                .iter()
                .map(|q| {
                    Arc::new(encode(
                        &q.quote,
                        name.clone(),
                        // Older than anything this broker accepted.
                        (q.seq, 0),
                        now,
                        None,
                        &mut self.scratch,
                    ))
                })
                .collect();
            self.topics.prepend_history(&name, older);
            for q in newer {
                self.accept_remote(q, true, now);
            }
        }
    }

    /// A quote numbered by another broker.
    fn accept_remote(&mut self, q: ClusterQuote, stored: bool, now: Instant) {
        let Some(link) = &self.cluster else {
            return;
        };
        if q.origin == link.handle.origin {
            return;
        }
        let metrics = self.stats.metrics();
        if q.seq > MAX_SEQ {
            // `decode` refuses these already; whatever else hands the router
            // a quote gets the same rule.
            if metrics.cluster.invalid.fetch_add(1, Relaxed) == 0 {
                tracing::warn!(topic = %q.quote.topic, seq = q.seq, "cluster quote with a seq above 2^53 - 1 refused (first of its kind; counted as invalid)");
            }
            return;
        }
        let Some((name, mut topic)) = self.topics.quote(&q.quote.topic) else {
            return;
        };
        let cm = &metrics.cluster;
        if !stored && topic.origin().conflicts_with(q.origin, now) {
            count_conflict(metrics, &name, q.seq, topic.seq());
        }
        if !topic.adopt(q.seq) {
            metrics::add(&cm.stale, 1);
            return;
        }
        if stored && topic.origin().ingested_here {
            // Our own quote of this topic is newer in time than a stored one
            // numbered past it: keep ours, continue the numbering from theirs.
            metrics::add(&cm.seq_adopted, 1);
            return;
        }
        if !stored {
            topic.origin().last_from = Some((q.origin, now));
        }
        // As for a quote of our own ingest: a replay or rewind still owed
        // to this topic goes before it (it is older).
        let owed = self
            .jobs
            .before_live(&name, topic.accepted_before(), &topic);
        let workers = self.interest.workers(&name, topic.mask());
        let order = (q.seq, topic.next_accepted());
        let changed = changed(topic.last(), &q.quote, q.seq);
        let shared = Arc::new(encode(
            &q.quote,
            name,
            order,
            now,
            changed,
            &mut self.scratch,
        ));
        topic.accept(shared.clone());
        self.topics.trim_history();
        self.send_owed(owed);
        self.fanout.queue(workers, &shared);
    }
}

/// Per topic, what the cluster rules need (kept in the topic table): who
/// published the topic's latest live quote (a broker's origin id, ours
/// included) and when, and whether this broker's ingest has had a quote
/// for it.
#[derive(Default)]
pub(super) struct Origin {
    last_from: Option<(u64, Instant)>,
    ingested_here: bool,
}

impl Origin {
    /// A quote of the topic through this broker's ingest (cluster only):
    /// counts a conflict when another broker published it just before.
    /// Returns true for the topic's first quote here (the caller probes its
    /// stored seq).
    pub fn local_quote(&mut self, own: u64, at: Instant, metrics: &Metrics) -> bool {
        if self.conflicts_with(own, at) {
            metrics::add(&metrics.cluster.conflicts, 1);
        }
        self.last_from = Some((own, at));
        !std::mem::replace(&mut self.ingested_here, true)
    }

    /// The previous live quote came from another broker, within the window.
    fn conflicts_with(&self, origin: u64, now: Instant) -> bool {
        self.last_from.is_some_and(|(from, at)| {
            from != origin && now.saturating_duration_since(at) < CONFLICT_WINDOW
        })
    }
}

fn count_conflict(metrics: &Metrics, topic: &str, seq: u64, ours: u64) {
    let n = metrics.cluster.conflicts.fetch_add(1, Relaxed) + 1;
    // Logged at 1, 2, 4, 8, …: visible, never a flood.
    if n.is_power_of_two() {
        tracing::warn!(%topic, seq, ours, conflicts = n, "two brokers publish this topic; only a newer seq is delivered");
    }
}

#[cfg(test)]
mod tests;
