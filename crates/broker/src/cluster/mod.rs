//! The cluster link: brokers joined through NATS (docs/cluster.md).
//!
//! One thread runs a current-thread tokio runtime with the async-nats
//! client; nothing else in the broker sees tokio. The router talks to it
//! through [`LinkHandle`] (an unbounded tokio channel whose quote load is
//! bounded by a counter, so the router never blocks) and hears back through
//! a bounded crossbeam channel of [`LinkEvent`]s whose sender rings the
//! router thread's doorbell (it sleeps in a mio poll: `doorbell.rs`).
//!
//! What travels: each quote a broker ingests, numbered by that broker and
//! encoded once (`tickwire_protocol::cluster`), on the subject of its topic.
//! A JetStream stream keeps the newest `history_size` messages per subject
//! (at least one): the cluster's last value and `seq` of every topic, and
//! its history, read for [`LinkCmd::History`] (`history.rs`). A JetStream
//! key-value bucket keeps the cluster `epoch`.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tickwire_protocol::cluster::ClusterQuote;
use tickwire_protocol::Selector;

use crate::config::ClusterConfig;
#[cfg(feature = "cluster")]
use crate::doorbell::BellSender;
use crate::doorbell::Doorbell;
use crate::epoch::Epoch;
use crate::metrics::{self, Metrics};

// The engine: async-nats on tokio, only in builds with the `cluster`
// feature (on by default). Without it, `[cluster]` is refused at start.
#[cfg(feature = "cluster")]
mod connect;
#[cfg(feature = "cluster")]
mod history;
#[cfg(feature = "cluster")]
mod link;
#[cfg(feature = "cluster")]
mod probe;
#[cfg(feature = "cluster")]
mod store;
#[cfg(all(test, feature = "cluster"))]
mod tests;
#[cfg(feature = "cluster")]
mod watch;

/// Link → router events waiting; past it received quotes are dropped and
/// counted (the router is saturated).
#[cfg(feature = "cluster")]
const EVENT_QUEUE: usize = 4_096;

/// One quote for the cluster: its payload, encoded once by the router.
pub struct Publish {
    pub topic: Arc<str>,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Router → link.
pub enum LinkCmd {
    /// A round's quotes, and the topics among them this broker just started
    /// ingesting. One command, so that the link starts those probes before
    /// it looks at the quotes: a probe answered before its topic's first
    /// quote arrived would let that quote, numbered from this broker's stale
    /// count, overwrite the stored one.
    Publish {
        probe: Vec<Arc<str>>,
        quotes: Vec<Publish>,
    },
    /// The broker now has subscribers for these selectors: subscribe to
    /// their subjects and fetch the newest stored quote of every topic they
    /// cover; `ticket` comes back in [`LinkEvent::Fetched`].
    Watch {
        selectors: Vec<Selector>,
        ticket: Option<u64>,
    },
    /// No subscriber for these selectors any more.
    Unwatch { selectors: Vec<Selector> },
    /// Per topic, every stored quote with a seq above the given one (a
    /// client resuming with `since`); answered by exactly one
    /// [`LinkEvent::History`] with the same `ticket`, within
    /// `fetch_timeout_ms`. At most 1,024 topics (more are not read).
    History {
        ticket: u64,
        wants: Vec<(Arc<str>, u64)>,
    },
}

/// Link → router.
pub enum LinkEvent {
    /// Quotes from other brokers: live, or fetched from the stream.
    /// `stored`: from the stream (older than anything live).
    Quotes {
        quotes: Vec<ClusterQuote>,
        stored: bool,
    },
    /// The fetch of a `Watch` is complete (or gave up).
    Fetched { ticket: u64 },
    /// The answer to [`LinkCmd::History`]: topic after topic (in the order
    /// asked), each topic's stored quotes with a seq above the one asked,
    /// ascending, at most `history_size` of them (the newest). A topic is
    /// whole or absent: absent when it has none, or its read failed or
    /// timed out (then one warning is logged). Empty while the link is down.
    /// Quotes of this broker's own origin are included. Independent of
    /// `Quotes` events: live quotes of these topics may come before or
    /// after it, and some may be in both.
    History {
        ticket: u64,
        quotes: Vec<ClusterQuote>,
    },
    /// The link is (again) set up and every stored quote was sent: the
    /// router may tell the broker's start-up it is in step.
    Loaded,
}

/// Hands a command to the link thread; false when it is gone. A closure so
/// that only the link's own modules know its channel (tokio's), and a build
/// without the `cluster` feature has no tokio at all.
pub type LinkSender = Box<dyn Fn(LinkCmd) -> bool + Send>;

/// The router's end of the link.
pub struct LinkHandle {
    send: LinkSender,
    /// Quotes handed to the link and not yet published.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// This broker's id in every message it publishes (random per start):
    /// its own quotes coming back are recognised and skipped.
    pub origin: u64,
    metrics: Arc<Metrics>,
}

impl LinkHandle {
    pub fn is_up(&self) -> bool {
        self.metrics.cluster.is_up()
    }

    /// Hands a round's quotes to the link, with the topics to probe first;
    /// drops the quotes (counted) while the link is down or its queue is
    /// full. Never blocks.
    pub fn publish(&self, probe: Vec<Arc<str>>, quotes: Vec<Publish>) {
        let n = quotes.len();
        if n == 0 && probe.is_empty() {
            return;
        }
        if !self.is_up() {
            metrics::add(&self.metrics.cluster.publish_dropped, n as u64);
            // The probes still go: the link may be up again by the time it
            // handles them (it ignores them if not), and a topic is probed
            // only at its first quote here.
            if !probe.is_empty() {
                (self.send)(LinkCmd::Publish {
                    probe,
                    quotes: Vec::new(),
                });
            }
            return;
        }
        // What fits goes; the rest of a burst is dropped and counted. The
        // probes go even when no quote fits: their topics' next quotes
        // are not first ones any more.
        let room = self.max_queued.saturating_sub(self.queued.load(Relaxed));
        let mut quotes = quotes;
        if n > room {
            quotes.truncate(room);
            metrics::add(&self.metrics.cluster.publish_dropped, (n - room) as u64);
        }
        let n = quotes.len();
        if n == 0 && probe.is_empty() {
            return;
        }
        self.queued.fetch_add(n, Relaxed);
        if !(self.send)(LinkCmd::Publish { probe, quotes }) {
            self.queued.fetch_sub(n, Relaxed);
            metrics::add(&self.metrics.cluster.publish_dropped, n as u64);
        }
    }

    /// A handle with no link thread: what the router sends arrives on the
    /// returned receiver (router unit tests).
    #[cfg(test)]
    pub fn detached(
        origin: u64,
        max_queued: usize,
        metrics: Arc<Metrics>,
    ) -> (LinkHandle, crossbeam_channel::Receiver<LinkCmd>) {
        metrics.cluster.enabled.store(true, Relaxed);
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = LinkHandle {
            send: Box::new(move |cmd| tx.send(cmd).is_ok()),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued,
            origin,
            metrics,
        };
        (handle, rx)
    }

    /// Returns false when the link thread is gone.
    pub fn send(&self, cmd: LinkCmd) -> bool {
        (self.send)(cmd)
    }
}

/// What `start` returns to the broker.
pub struct Started {
    pub handle: LinkHandle,
    pub events: Receiver<LinkEvent>,
    pub thread: JoinHandle<()>,
}

/// Starts the link thread. It connects (and keeps reconnecting) in the
/// background; `metrics.cluster.up` says when it is set up.
#[cfg(feature = "cluster")]
pub fn start(
    config: &ClusterConfig,
    metrics: Arc<Metrics>,
    epoch: Arc<Epoch>,
    router_bell: Arc<Doorbell>,
) -> io::Result<Started> {
    metrics.cluster.enabled.store(true, Relaxed);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (event_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
    let event_tx = BellSender::new(event_tx, router_bell);
    let queued = Arc::new(AtomicUsize::new(0));
    let origin = crate::epoch::random_u64();
    let handle = LinkHandle {
        send: Box::new(move |cmd| tx.send(cmd).is_ok()),
        queued: queued.clone(),
        max_queued: config.publish_queue,
        origin,
        metrics: metrics.clone(),
    };
    let shared = link::Shared {
        config: config.clone(),
        metrics,
        epoch,
        queued,
        origin,
        events: event_tx,
    };
    let thread = std::thread::Builder::new()
        .name("cluster-link".into())
        .spawn(move || link::run(shared, rx))?;
    Ok(Started {
        handle,
        events,
        thread,
    })
}

/// Sends to the router without blocking the link's runtime; a full queue
/// means the router is saturated: the event is dropped and counted.
#[cfg(feature = "cluster")]
fn to_router(events: &BellSender<LinkEvent>, metrics: &Metrics, event: LinkEvent) {
    if let Err(crossbeam_channel::TrySendError::Full(LinkEvent::Quotes { quotes, .. })) =
        events.try_send(event)
    {
        metrics::add(&metrics.cluster.receive_dropped, quotes.len() as u64);
    }
}

/// This build has no cluster link (`cargo build --no-default-features`).
#[cfg(not(feature = "cluster"))]
pub fn start(
    _config: &ClusterConfig,
    _metrics: Arc<Metrics>,
    _epoch: Arc<Epoch>,
    _router_bell: Arc<Doorbell>,
) -> io::Result<Started> {
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "[cluster] is configured, but this tickwire was built without the `cluster` feature",
    ))
}
