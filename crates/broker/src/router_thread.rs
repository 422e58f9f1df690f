//! The router's thread: one mio poll for the producers' sockets, the
//! router's channels beside it, and the loop that drives the router's
//! rounds.
//!
//! Ingest runs here rather than on a thread of its own so that a quote
//! costs no thread wake-up and no channel hop between its decoding and its
//! numbering: at a low rate each quote woke three threads (ingest, router,
//! worker), now two (docs/performance.md). Workers and the cluster link
//! reach the router through channels whose senders ring its doorbell
//! (`doorbell.rs`), since it sleeps in the poll, not on the channels.
//!
//! A round, in the order the router's rules need:
//! 1. every command (subscribes, interest dropped) — and again before each
//!    ingest batch, so no quote overtakes an earlier command;
//! 2. cluster events and parked subscribes ([`Router::start_round`]);
//! 3. at most [`INGEST_BATCHES_PER_ROUND`] reads' batches;
//! 4. a snapshot slice, each worker's quotes and one wake per worker
//!    ([`Router::end_round`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Poll};

use crate::cluster::LinkEvent;
use crate::doorbell::Doorbell;
use crate::ingest::Ingest;
use crate::messages::RouterCmd;
use crate::router::{Router, INGEST_BATCHES_PER_ROUND};

pub struct RouterThread {
    pub poll: Poll,
    pub bell: Arc<Doorbell>,
    pub router: Router,
    pub ingest: Ingest,
    pub cmd_rx: Receiver<RouterCmd>,
    pub link_rx: Receiver<LinkEvent>,
    pub shutdown: Arc<AtomicBool>,
}

impl RouterThread {
    /// Runs until shutdown (then handles what producers have already sent)
    /// or until every worker has gone.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.wait_limit();
            if let Err(e) = self.sleep(&mut events, timeout) {
                tracing::error!(error = %e, "router poll failed; the router stops");
                break;
            }
            if self.shutdown.load(Ordering::Acquire) {
                break;
            }
            if !self.router.drain_cmds(&self.cmd_rx) {
                // Every worker has gone (shutdown): still number what the
                // producers sent.
                break;
            }
            self.router.start_round(&self.link_rx);
            for event in events.iter() {
                self.ingest.on_event(event);
            }
            let (router, cmd_rx) = (&mut self.router, &self.cmd_rx);
            self.ingest
                .read_turn(INGEST_BATCHES_PER_ROUND, &mut |batch| {
                    router.drain_cmds(cmd_rx);
                    router.ingest(batch);
                });
            self.router.end_round();
        }
        let (router, cmd_rx) = (&mut self.router, &self.cmd_rx);
        router.drain_cmds(cmd_rx);
        self.ingest.drain_and_close(&mut |batch| {
            router.drain_cmds(cmd_rx);
            router.ingest(batch);
        });
        self.router.flush();
    }

    /// How long the next poll may sleep: not at all while reads or
    /// snapshot slices wait, else until the router's or a producer's next
    /// deadline.
    fn wait_limit(&self) -> Duration {
        if self.router.snapshots_ready() {
            return Duration::ZERO;
        }
        let router = self.router.idle_wait();
        match self.ingest.wait_limit(Instant::now()) {
            Some(producers) => producers.min(router),
            None => router,
        }
    }

    /// Polls, sleeping at most `timeout`; rings of the doorbell are heard
    /// only while it sleeps (`doorbell.rs`), so the channels are looked at
    /// once more after saying so.
    fn sleep(&mut self, events: &mut Events, timeout: Duration) -> io::Result<()> {
        let timeout = if timeout.is_zero() {
            timeout
        } else {
            self.bell.going_to_sleep();
            if self.cmd_rx.is_empty() && self.link_rx.is_empty() {
                timeout
            } else {
                Duration::ZERO
            }
        };
        let polled = self.poll.poll(events, Some(timeout));
        self.bell.awake();
        match polled {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(())
            }
            other => other,
        }
    }
}
