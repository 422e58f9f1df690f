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
#[path = "../../tests/e2e/common/nats.rs"]
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
    let started = start(config, metrics.clone(), Arc::new(Epoch::new_local())).expect("link");
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

#[test]
fn history_is_the_stored_quotes_after_a_seq_in_order() {
    let nats = NatsServer::start();
    let config = config(&nats, 8, 10_000);
    let (link, metrics, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    feed.store("A.B", 1..=20);
    feed.store("C", 1..=3);
    // The losing side of a conflict (not above what came before it), and
    // a message that does not decode: neither is history.
    feed.store("C", [2]);
    feed.store_raw("C", b"not a quote".to_vec());

    // The stream keeps `history_size` messages of a subject.
    let info = feed.stream_info();
    assert_eq!(info.config.max_messages_per_subject, 8);
    assert_eq!(info.state.messages, 8 + 5);

    ask(&link, 1, &[("A.B", 15), ("NOPE", 0), ("C", 0)]);
    let quotes = answer(&link.events, 1, PATIENCE);
    assert_eq!(topics_in_order(&quotes), ["A.B", "C"]);
    assert_eq!(seqs_of(&quotes, "A.B"), [16, 17, 18, 19, 20]);
    assert_eq!(seqs_of(&quotes, "C"), [1, 2, 3]);
    assert_eq!(quotes[0], quote("A.B", 16), "the stored quote, whole");
    assert_eq!(
        metrics
            .cluster
            .invalid
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // From the start: the newest 8, all the stream keeps.
    ask(&link, 2, &[("A.B", 0)]);
    assert_eq!(
        seqs_of(&answer(&link.events, 2, PATIENCE), "A.B"),
        (13..=20).collect::<Vec<_>>()
    );
    // Up to date, unknown, both: an empty answer, still one.
    ask(&link, 3, &[("A.B", 20), ("NOPE", 0)]);
    assert!(answer(&link.events, 3, PATIENCE).is_empty());
    ask(&link, 4, &[]);
    assert!(answer(&link.events, 4, PATIENCE).is_empty());

    // Several at once: one answer each.
    for ticket in 10..20 {
        ask(&link, ticket, &[("A.B", ticket), ("C", 1)]);
    }
    let mut answered = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while answered.len() < 10 {
        match link.events.recv_deadline(deadline) {
            Ok(LinkEvent::History { ticket, quotes }) => {
                let kept = (ticket + 1).max(13);
                assert_eq!(seqs_of(&quotes, "A.B"), (kept..=20).collect::<Vec<_>>());
                assert_eq!(seqs_of(&quotes, "C"), [2, 3]);
                answered.push(ticket);
            }
            Ok(_) => {}
            Err(e) => panic!("answers {answered:?}, then: {e}"),
        }
    }
    answered.sort_unstable();
    assert_eq!(answered, (10..20).collect::<Vec<_>>());
    stop(link);
}

/// A read starts near the newest quote and reaches back as far as needed:
/// a quiet topic among a busy one, a feed that moved on (its seq jumped).
#[test]
fn history_reaches_back_as_far_as_needed() {
    let nats = NatsServer::start();
    let config = config(&nats, 64, 10_000);
    let (link, _, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    for seq in 1..=6 {
        feed.store("SLOW", [seq]);
        feed.store("FAST", (seq - 1) * 50 + 1..=seq * 50);
    }
    feed.store("JUMP", [1, 2, 3, 100, 101]);

    let cases: [(&str, u64, Vec<u64>); 7] = [
        ("SLOW", 3, vec![4, 5, 6]),
        ("SLOW", 0, (1..=6).collect()),
        ("SLOW", 5, vec![6]),
        ("FAST", 290, (291..=300).collect()),
        ("FAST", 0, (237..=300).collect()),
        ("JUMP", 2, vec![3, 100, 101]),
        ("JUMP", 99, vec![100, 101]),
    ];
    for (ticket, (topic, after, expected)) in cases.into_iter().enumerate() {
        ask(&link, ticket as u64, &[(topic, after)]);
        let quotes = answer(&link.events, ticket as u64, PATIENCE);
        assert_eq!(seqs_of(&quotes, topic), expected, "{topic} after {after}");
    }
    stop(link);
}

/// Watches, probes and the set-up read the newest message of a subject,
/// whatever the stream keeps before it.
#[test]
fn watches_probes_and_set_up_read_the_newest_stored_quote() {
    let nats = NatsServer::start();
    let config = config(&nats, 16, 10_000);
    let (link, _, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    feed.store("A.B", 1..=20);
    feed.store("A.C", 1..=5);
    feed.store("D", 1..=2);

    // Fetches for a topic's watch and for a pattern's (a consumer
    // delivering the last per subject, read until nothing is pending).
    let watch = |ticket: u64, selector: &str| {
        let selectors = vec![Selector::parse(selector).expect("selector")];
        let started = Instant::now();
        assert!(link.handle.send(LinkCmd::Watch {
            selectors,
            ticket: Some(ticket),
        }));
        let mut stored = Vec::new();
        loop {
            match link.events.recv_deadline(started + PATIENCE) {
                Ok(LinkEvent::Quotes {
                    quotes,
                    stored: true,
                }) => stored.extend(quotes),
                Ok(LinkEvent::Fetched { ticket: t }) if t == ticket => break,
                Ok(_) => {}
                Err(e) => panic!("fetch {ticket}: {e}"),
            }
        }
        // Not a stalled read given up on.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        let mut found: Vec<(String, u64)> =
            stored.into_iter().map(|q| (q.quote.topic, q.seq)).collect();
        found.sort();
        found
    };
    assert_eq!(watch(1, "A.B"), [("A.B".to_string(), 20)]);
    assert_eq!(
        watch(2, "A.*"),
        [("A.B".to_string(), 20), ("A.C".to_string(), 5)]
    );

    // A probe: the stored quote of a topic.
    assert!(link.handle.send(LinkCmd::Probe(vec![Arc::from("A.C")])));
    let deadline = Instant::now() + PATIENCE;
    loop {
        match link.events.recv_deadline(deadline) {
            Ok(LinkEvent::Quotes {
                quotes,
                stored: true,
            }) => {
                assert_eq!(quotes.iter().map(|q| q.seq).collect::<Vec<_>>(), [5]);
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("probe: {e}"),
        }
    }
    stop(link);

    // A link setting up reads the newest quote of every topic.
    let (link, _, before) = link_up(&config);
    let mut loaded: Vec<(String, u64)> = before
        .into_iter()
        .flat_map(|e| match e {
            LinkEvent::Quotes {
                quotes,
                stored: true,
            } => quotes,
            _ => Vec::new(),
        })
        .map(|q| (q.quote.topic, q.seq))
        .collect();
    loaded.sort();
    assert_eq!(
        loaded,
        [
            ("A.B".to_string(), 20),
            ("A.C".to_string(), 5),
            ("D".to_string(), 2)
        ]
    );
    stop(link);
}

/// A stream made by an older broker keeps one message per subject: a link
/// opening it raises the limit to its `history_size`.
#[test]
fn an_older_stream_is_updated_to_keep_the_history() {
    let nats = NatsServer::start();
    let config = config(&nats, 4, 10_000);
    let feed = Feed::new(&nats, &config);
    feed.rt.block_on(async {
        feed.js
            .create_stream(stream::Config {
                name: config.stream_name(),
                subjects: vec![cluster::all_subjects(&config.subject_prefix)],
                max_messages_per_subject: 1,
                discard: stream::DiscardPolicy::Old,
                storage: stream::StorageType::File,
                num_replicas: 1,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .expect("an old broker's stream");
    });
    feed.store("T", 1..=3);
    assert_eq!(feed.stream_info().state.messages, 1);

    let (link, _, _) = link_up(&config);
    assert_eq!(feed.stream_info().config.max_messages_per_subject, 4);
    feed.store("T", 4..=9);
    ask(&link, 1, &[("T", 0)]);
    assert_eq!(
        seqs_of(&answer(&link.events, 1, PATIENCE), "T"),
        [6, 7, 8, 9]
    );
    stop(link);

    // And back down, for a broker configured with less.
    let (link, _, _) = link_up(&ClusterConfig {
        history_size: 2,
        ..config.clone()
    });
    let info = feed.stream_info();
    assert_eq!(info.config.max_messages_per_subject, 2);
    assert_eq!(info.state.messages, 2);
    stop(link);
}

/// NATS gone: every ticket still gets its one answer, within the timeout.
#[test]
fn history_answers_once_when_nats_is_gone() {
    let mut nats = NatsServer::start();
    let fetch_timeout = Duration::from_millis(500);
    let config = config(&nats, 8, fetch_timeout.as_millis() as u64);
    let (link, metrics, _) = link_up(&config);
    Feed::new(&nats, &config).store("A", 1..=3);

    nats.kill();
    // Asked at once (the link may not know yet) and once it is down.
    let asked = Instant::now();
    ask(&link, 1, &[("A", 0), ("B", 0)]);
    assert!(answer(&link.events, 1, PATIENCE).is_empty());
    let took = asked.elapsed();
    assert!(took < fetch_timeout + Duration::from_secs(5), "{took:?}");
    assert!(wait_until(|| !metrics.cluster.is_up()));
    ask(&link, 2, &[("A", 0)]);
    assert!(answer(&link.events, 2, PATIENCE).is_empty());
    // Exactly one answer each: nothing more comes.
    let more = link.events.recv_timeout(fetch_timeout * 2);
    assert!(
        !matches!(more, Ok(LinkEvent::History { .. })),
        "a second answer"
    );
    stop(link);
}

/// A read that cannot finish in time answers with the topics read by then,
/// each whole.
#[test]
fn a_slow_history_answers_within_the_timeout_with_whole_topics() {
    let nats = NatsServer::start();
    let config = config(&nats, 8, 1);
    let (link, _, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    let topics: Vec<String> = (0..300).map(|i| format!("T{i}")).collect();
    for topic in &topics {
        feed.store(topic, 1..=4);
    }
    let wants: Vec<(&str, u64)> = topics.iter().map(|t| (t.as_str(), 1)).collect();
    let asked = Instant::now();
    ask(&link, 7, &wants);
    let quotes = answer(&link.events, 7, PATIENCE);
    let took = asked.elapsed();
    // 1 ms asked; a loaded machine's scheduling allowed for.
    assert!(took < Duration::from_secs(3), "{took:?}");
    let read = topics_in_order(&quotes);
    assert!(
        read.len() < topics.len(),
        "300 topics in 1 ms: {}",
        read.len()
    );
    for topic in read {
        assert_eq!(seqs_of(&quotes, topic), [2, 3, 4], "{topic}");
    }
    stop(link);
}

/// The figures in docs/cluster.md: 100 topics of 64 stored quotes each,
/// alone in the stream or among `TICKWIRE_HISTORY_FILLER` other topics
/// (64 quotes each too, interleaved as a live feed stores them):
/// `TICKWIRE_HISTORY_FILLER=5000 cargo test -p tickwire-broker --lib
/// cluster::tests::history_timing -- --ignored --nocapture`
#[test]
#[ignore]
fn history_timing() {
    let nats = NatsServer::start();
    let config = config(&nats, 64, 60_000);
    let (link, _, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    let filler: usize = std::env::var("TICKWIRE_HISTORY_FILLER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let topics: Vec<String> = (0..100).map(|i| format!("NASDAQ.S{i}")).collect();
    let fillers: Vec<String> = (0..filler).map(|i| format!("F.X{i}")).collect();
    feed.rt.block_on(async {
        let mut acks = Vec::new();
        for seq in 1..=64 {
            for topic in fillers.iter().chain(&topics) {
                let mut payload = Vec::new();
                cluster::encode(&quote(topic, seq), &mut payload);
                let subject = cluster::topic_subject(&config.subject_prefix, topic);
                let ack = feed.js.publish(subject, payload.into()).await;
                acks.push(ack.expect("publish"));
                if acks.len() >= 1_000 {
                    for ack in acks.drain(..) {
                        ack.await.expect("stored");
                    }
                }
            }
        }
        for ack in acks {
            ack.await.expect("stored");
        }
    });
    let stored = feed.stream_info().state.messages;
    // Everything, a few quotes, the newest one, nothing new.
    for (round, after) in [0, 0, 0, 60, 63, 64].into_iter().enumerate() {
        let wants: Vec<(&str, u64)> = topics.iter().map(|t| (t.as_str(), after)).collect();
        let asked = Instant::now();
        ask(&link, round as u64, &wants);
        let quotes = answer(&link.events, round as u64, PATIENCE);
        println!(
            "history of 100 topics after seq {after} of 64, {stored} messages stored: {} quotes in {:?}",
            quotes.len(),
            asked.elapsed()
        );
        assert_eq!(quotes.len(), 100 * (64 - after as usize));
    }
    stop(link);
}
