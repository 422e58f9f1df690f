//! The link against a real `nats-server -js` (the e2e tests' helper, on a
//! free loopback port): history reads, and watches, probes and set-up with
//! several stored messages per subject.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use crossbeam_channel::Receiver;
use tickwire_protocol::cluster::{self, ClusterQuote};
use tickwire_protocol::{Quote, Selector};

use super::{start, LinkCmd, LinkEvent, Started};
use crate::config::ClusterConfig;
use crate::epoch::Epoch;
use crate::metrics::Metrics;

#[allow(dead_code)]
#[path = "../../../tests/e2e/common/nats.rs"]
mod nats;

use nats::NatsServer;

/// Generous: a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(30);
/// The publishing broker of the quotes a test stores (not the link's).
const OTHER: u64 = 0xfeed;

/// For `nats.rs`: polls `cond` with backoff until it holds or the patience
/// runs out.
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(1);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    cond()
}

/// A test's side of NATS: a client of its own, publishing with acks.
struct Feed {
    rt: tokio::runtime::Runtime,
    js: jetstream::Context,
    prefix: String,
    stream: String,
}

impl Feed {
    fn new(nats: &NatsServer, config: &ClusterConfig) -> Feed {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // The context spawns a task: made on the runtime.
        let js = rt.block_on(async {
            let client = async_nats::connect(nats.url())
                .await
                .expect("test client connects");
            jetstream::new(client)
        });
        Feed {
            rt,
            js,
            prefix: config.subject_prefix.clone(),
            stream: config.stream_name(),
        }
    }

    /// Stores `payload` on `topic`'s subject (acked: in the stream).
    fn store_raw(&self, topic: &str, payload: Vec<u8>) {
        let subject = cluster::topic_subject(&self.prefix, topic);
        self.rt.block_on(async {
            self.js
                .publish(subject, payload.into())
                .await
                .expect("publish")
                .await
                .expect("stored");
        });
    }

    fn store(&self, topic: &str, seqs: impl IntoIterator<Item = u64>) {
        for seq in seqs {
            let mut payload = Vec::new();
            cluster::encode(&quote(topic, seq), &mut payload);
            self.store_raw(topic, payload);
        }
    }

    fn stream_info(&self) -> stream::Info {
        self.rt.block_on(async {
            let mut s = self.js.get_stream(&self.stream).await.expect("stream");
            s.info().await.expect("stream info").clone()
        })
    }
}

fn quote(topic: &str, seq: u64) -> ClusterQuote {
    ClusterQuote {
        origin: OTHER,
        seq,
        sent_ns: 1,
        quote: Quote {
            topic: topic.into(),
            bid: seq as f64,
            ask: seq as f64 + 0.5,
            bid_size: 1.0,
            ask_size: 1.0,
            last: seq as f64,
            volume: 10.0,
            ts: seq,
        },
    }
}

fn config(nats: &NatsServer, history_size: usize, fetch_timeout_ms: u64) -> ClusterConfig {
    let mut config = ClusterConfig::new(nats.url());
    config.history_size = history_size;
    config.fetch_timeout_ms = fetch_timeout_ms;
    config.reconnect_max_ms = 200;
    config
}

/// A started link, set up (its `Loaded` seen); the events before it are
/// returned too.
fn link_up(config: &ClusterConfig) -> (Started, Arc<Metrics>, Vec<LinkEvent>) {
    let metrics = Arc::new(Metrics::new(1));
    let poll = mio::Poll::new().expect("a poll");
    let bell = crate::doorbell::Doorbell::new(poll.registry(), mio::Token(0)).expect("a waker");
    let started = start(config, metrics.clone(), Arc::new(Epoch::new_local()), bell).expect("link");
    let mut before = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match started.events.recv_deadline(deadline) {
            Ok(LinkEvent::Loaded) => break,
            Ok(other) => before.push(other),
            Err(e) => panic!("the link did not set up: {e}"),
        }
    }
    (started, metrics, before)
}

/// Stops a link (its handle dropped: the thread ends).
fn stop(started: Started) {
    let Started { handle, thread, .. } = started;
    drop(handle);
    thread.join().expect("link thread");
}

fn ask(started: &Started, ticket: u64, wants: &[(&str, u64)]) {
    let wants = wants.iter().map(|(t, s)| (Arc::from(*t), *s)).collect();
    assert!(started.handle.send(LinkCmd::History { ticket, wants }));
}

/// The answer to `ticket`, within `within`; other events are skipped.
fn answer(events: &Receiver<LinkEvent>, ticket: u64, within: Duration) -> Vec<ClusterQuote> {
    let deadline = Instant::now() + within;
    loop {
        match events.recv_deadline(deadline) {
            Ok(LinkEvent::History { ticket: t, quotes }) if t == ticket => return quotes,
            Ok(_) => {}
            Err(e) => panic!("no history answer for ticket {ticket}: {e}"),
        }
    }
}

fn seqs_of(quotes: &[ClusterQuote], topic: &str) -> Vec<u64> {
    quotes
        .iter()
        .filter(|q| q.quote.topic == topic)
        .map(|q| q.seq)
        .collect()
}

fn topics_in_order(quotes: &[ClusterQuote]) -> Vec<&str> {
    let mut topics: Vec<&str> = quotes.iter().map(|q| q.quote.topic.as_str()).collect();
    topics.dedup();
    topics
}

mod history;
mod stored;
