//! The router's cluster rules, with a detached link (no NATS): what is
//! published, which remote quotes are delivered, conflicts, and subscribes
//! waiting for stored quotes.

use std::sync::atomic::Ordering::Relaxed;

use crossbeam_channel::Receiver as UnboundedReceiver;
use tickwire_protocol::MAX_SEQ;

use super::*;
use crate::messages::{CatchUp, IngestBatch, RouterCmd, WorkerMsg};
use crate::router::tests::{quote, router_with};

const OURS: u64 = 1;
const THEIRS: u64 = 2;

fn clustered(
    up: bool,
) -> (
    Router,
    crossbeam_channel::Receiver<WorkerMsg>,
    UnboundedReceiver<LinkCmd>,
    Vec<mio::Poll>,
) {
    let (router, mut rxs, polls) = router_with(1, 100);
    let metrics = router.metrics().clone();
    metrics.cluster.up.store(up, Relaxed);
    let (handle, link_rx) = LinkHandle::detached(OURS, 10, metrics);
    let (ready, _) = crossbeam_channel::bounded(1);
    let router = router.with_cluster(RouterLink::new(handle, Duration::from_secs(60), ready));
    (router, rxs.remove(0), link_rx, polls)
}

fn remote(topic: &str, origin: u64, seq: u64) -> ClusterQuote {
    ClusterQuote {
        origin,
        seq,
        sent_ns: 0,
        quote: quote(topic),
    }
}

fn subscribe(router: &mut Router, request: u32, selector: &str, snapshot: bool) {
    let selector = Selector::parse(selector).unwrap();
    router.handle_cmd(RouterCmd::Subscribe {
        worker: 0,
        conn: ConnId { slot: 0, serial: 1 },
        request,
        selectors: vec![selector.clone()],
        catch_up: CatchUp::snapshot(snapshot),
        interest_add: vec![selector],
        seed: None,
    });
}

/// Seqs of the quotes (live) and snapshots sent to the worker, in order.
fn delivered(rx: &crossbeam_channel::Receiver<WorkerMsg>) -> Vec<String> {
    let seq = |q: &crate::messages::SharedQuote| {
        let json = String::from_utf8_lossy(&q.json_frame).into_owned();
        let at = json.find("\"seq\":").map(|i| i + 6).unwrap_or(0);
        json[at..].split(',').next().unwrap_or("").to_owned()
    };
    rx.try_iter()
        .flat_map(|m| match m {
            WorkerMsg::Quotes { quotes, .. } => quotes
                .iter()
                .map(|q| format!("{}#{}", q.topic, seq(q)))
                .collect(),
            WorkerMsg::Activate {
                request, snapshots, ..
            } => std::iter::once(format!("activate {request}"))
                .chain(
                    snapshots
                        .iter()
                        .map(|q| format!("snapshot {}#{}", q.topic, seq(q))),
                )
                .collect(),
            WorkerMsg::Snapshots { .. } => vec!["slice".to_owned()],
        })
        .collect()
}

fn commands(link_rx: &mut UnboundedReceiver<LinkCmd>) -> Vec<String> {
    std::iter::from_fn(|| link_rx.try_recv().ok())
        .map(|cmd| match cmd {
            LinkCmd::Publish { probe, quotes } if probe.is_empty() => {
                format!("publish {}", quotes.len())
            }
            LinkCmd::Publish { probe, quotes } => format!(
                "publish {} probing {}",
                quotes.len(),
                probe
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            LinkCmd::Watch { selectors, ticket } => format!(
                "watch {} {}",
                selectors
                    .iter()
                    .map(Selector::as_written)
                    .collect::<Vec<_>>()
                    .join(","),
                ticket.map_or("-".into(), |t| t.to_string())
            ),
            LinkCmd::Unwatch { selectors } => format!("unwatch {}", selectors.len()),
            LinkCmd::History { ticket, wants } => format!(
                "history {ticket} {}",
                wants
                    .iter()
                    .map(|(t, after)| format!("{t}>{after}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        })
        .collect()
}

fn ingest(router: &mut Router, topics: &[&str]) {
    router.ingest(IngestBatch {
        quotes: topics.iter().map(|t| quote(t)).collect(),
        decoded_at: Instant::now(),
    });
    router.flush();
}

fn live(router: &mut Router, quotes: Vec<ClusterQuote>) {
    router.on_link_event(LinkEvent::Quotes {
        quotes,
        stored: false,
    });
    router.flush();
}

#[test]
fn local_quotes_are_numbered_probed_once_and_published_once_per_round() {
    let (mut router, _rx, mut link_rx, _polls) = clustered(true);
    ingest(&mut router, &["A", "B", "A"]);
    assert_eq!(commands(&mut link_rx), ["publish 3 probing A,B"]);
    ingest(&mut router, &["A"]);
    assert_eq!(commands(&mut link_rx), ["publish 1"], "A is probed once");
    assert_eq!(router.metrics().cluster.publish_dropped.load(Relaxed), 0);
}

#[test]
fn quotes_are_dropped_and_counted_while_the_link_is_down_or_full() {
    let (mut router, _rx, mut link_rx, _polls) = clustered(false);
    ingest(&mut router, &["A", "B"]);
    // No quote goes; the probes do (the link may be up by then).
    assert_eq!(commands(&mut link_rx), ["publish 0 probing A,B"]);
    assert_eq!(router.metrics().cluster.publish_dropped.load(Relaxed), 2);
    // Up, but the link has 10 quotes queued at most (nobody drains here).
    router.metrics().cluster.up.store(true, Relaxed);
    ingest(&mut router, &["A"; 8]);
    ingest(&mut router, &["A"; 3]);
    ingest(&mut router, &["A"]);
    // What fits of a burst goes (2 of 3); the rest is dropped and counted.
    assert_eq!(commands(&mut link_rx), ["publish 8", "publish 2"]);
    assert_eq!(
        router.metrics().cluster.publish_dropped.load(Relaxed),
        2 + 1 + 1
    );
}

#[test]
fn remote_quotes_are_delivered_only_when_newer_and_never_our_own() {
    let (mut router, rx, _link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "R", false);
    live(
        &mut router,
        vec![
            remote("R", THEIRS, 5),
            remote("R", THEIRS, 5),
            remote("R", THEIRS, 4),
        ],
    );
    live(
        &mut router,
        vec![remote("R", OURS, 9), remote("R", THEIRS, 6)],
    );
    assert_eq!(delivered(&rx), ["activate 1", "R#5", "R#6"]);
    assert_eq!(router.metrics().cluster.stale.load(Relaxed), 2);
    // Local numbering continues from the cluster's.
    ingest(&mut router, &["R"]);
    assert_eq!(delivered(&rx), ["R#7"]);
}

#[test]
fn two_brokers_publishing_a_topic_is_a_conflict_and_seq_never_goes_back() {
    let (mut router, rx, _link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "C", false);
    ingest(&mut router, &["C", "C"]);
    live(
        &mut router,
        vec![remote("C", THEIRS, 2), remote("C", THEIRS, 3)],
    );
    ingest(&mut router, &["C"]);
    assert_eq!(delivered(&rx), ["activate 1", "C#1", "C#2", "C#3", "C#4"]);
    // Ours then theirs (2, stale), theirs again after ours (3), ours after theirs.
    assert_eq!(router.metrics().cluster.conflicts.load(Relaxed), 3);
    assert_eq!(router.metrics().cluster.stale.load(Relaxed), 1);
}

#[test]
fn a_stored_quote_moves_seq_on_but_never_replaces_a_local_one() {
    let (mut router, rx, _link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "S", false);
    ingest(&mut router, &["S"]);
    router.on_link_event(LinkEvent::Quotes {
        quotes: vec![remote("S", THEIRS, 40)],
        stored: true,
    });
    ingest(&mut router, &["S"]);
    assert_eq!(delivered(&rx), ["activate 1", "S#1", "S#41"]);
    assert_eq!(
        router.metrics().cluster.conflicts.load(Relaxed),
        0,
        "stored quotes are history"
    );
    // A topic never ingested here takes the stored quote as its snapshot.
    router.on_link_event(LinkEvent::Quotes {
        quotes: vec![remote("T", THEIRS, 8)],
        stored: true,
    });
    subscribe(&mut router, 2, "T", true);
    // (tickets: 1 the watch of S, 2 the watch of T)
    router.on_link_event(LinkEvent::Fetched { ticket: 2 });
    let after = delivered(&rx);
    assert!(
        after.ends_with(&["activate 2".to_owned(), "snapshot T#8".to_owned()]),
        "{after:?}"
    );
}

#[test]
fn a_subscribe_that_needs_stored_quotes_waits_for_them_in_order() {
    let (mut router, rx, mut link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "W.*", true);
    subscribe(&mut router, 2, "Z", false);
    assert_eq!(commands(&mut link_rx), ["watch W.* 1", "watch Z 2"]);
    assert!(
        delivered(&rx).is_empty(),
        "request 1 waits, request 2 behind it"
    );
    router.on_link_event(LinkEvent::Quotes {
        quotes: vec![remote("W.A", THEIRS, 3)],
        stored: true,
    });
    router.on_link_event(LinkEvent::Fetched { ticket: 1 });
    assert_eq!(
        delivered(&rx),
        ["W.A#3", "activate 1", "snapshot W.A#3", "activate 2"]
    );
    // Interest this broker already has: no watch, no wait.
    subscribe(&mut router, 3, "W.*", true);
    assert!(commands(&mut link_rx).is_empty());
    assert_eq!(delivered(&rx), ["activate 3", "snapshot W.A#3"]);
}

#[test]
fn a_wait_ends_at_its_deadline_and_never_while_the_link_is_down() {
    let (mut router, rx, mut link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "D", true);
    assert!(delivered(&rx).is_empty());
    let deadline = router
        .cluster
        .as_ref()
        .and_then(RouterLink::next_deadline)
        .unwrap();
    router.release_parked(deadline);
    assert_eq!(delivered(&rx), ["activate 1"]);

    router.metrics().cluster.up.store(false, Relaxed);
    subscribe(&mut router, 2, "E", true);
    assert_eq!(
        delivered(&rx),
        ["activate 2"],
        "down: served from what the broker has"
    );
    assert_eq!(
        commands(&mut link_rx),
        ["watch D 1", "watch E 2"],
        "followed for when the link is back"
    );
}

#[test]
fn interest_gone_from_the_whole_broker_is_unwatched() {
    let (mut router, _rx, mut link_rx, _polls) = clustered(false);
    subscribe(&mut router, 1, "U", false);
    router.handle_cmd(RouterCmd::DropInterest {
        worker: 0,
        selectors: vec![Selector::parse("U").unwrap()],
    });
    assert_eq!(commands(&mut link_rx), ["watch U 1", "unwatch 1"]);
}

#[test]
fn a_broker_that_only_follows_a_topic_sees_two_publishers_as_a_conflict() {
    const THIRD: u64 = 3;
    let (mut router, rx, _link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "F", false);
    live(
        &mut router,
        vec![remote("F", THEIRS, 1), remote("F", THEIRS, 2)],
    );
    assert_eq!(
        router.metrics().cluster.conflicts.load(Relaxed),
        0,
        "one publisher"
    );
    live(
        &mut router,
        vec![remote("F", THIRD, 2), remote("F", THIRD, 3)],
    );
    assert_eq!(delivered(&rx), ["activate 1", "F#1", "F#2", "F#3"]);
    assert_eq!(router.metrics().cluster.conflicts.load(Relaxed), 2);
}

/// `seq` reaches browsers as a JSON number, exact only up to 2^53 − 1: a
/// message numbered beyond that (a broken or hostile peer; `u64::MAX` once
/// made the next local quote overflow) is refused and counted as invalid,
/// creates no topic and moves no numbering. At the bound itself, numbering
/// stops rather than wrap to 0 (after which every quote would be stale).
#[test]
fn a_seq_beyond_what_json_clients_can_represent_is_refused_and_never_wraps() {
    let (mut router, rx, _link_rx, _polls) = clustered(true);
    subscribe(&mut router, 1, "H", false);
    live(&mut router, vec![remote("H", THEIRS, 3)]);
    live(
        &mut router,
        vec![
            remote("H", THEIRS, u64::MAX),
            remote("H", THEIRS, MAX_SEQ + 1),
        ],
    );
    router.on_link_event(LinkEvent::Quotes {
        quotes: vec![remote("H", THEIRS, u64::MAX), remote("N", THEIRS, u64::MAX)],
        stored: true,
    });
    assert_eq!(router.metrics().cluster.invalid.load(Relaxed), 4);
    assert_eq!(router.metrics().cluster.stale.load(Relaxed), 0);
    assert_eq!(router.topics.len(), 1, "a refused quote creates no topic");
    ingest(&mut router, &["H"]);
    assert_eq!(delivered(&rx), ["activate 1", "H#3", "H#4"]);

    // The largest representable seq is taken; local numbering then stays
    // there (same seq, never 0) and peers count those quotes as stale.
    live(&mut router, vec![remote("H", THEIRS, MAX_SEQ)]);
    ingest(&mut router, &["H", "H"]);
    let at_bound = format!("H#{MAX_SEQ}");
    assert_eq!(
        delivered(&rx),
        [at_bound.clone(), at_bound.clone(), at_bound]
    );
    assert_eq!(router.metrics().cluster.invalid.load(Relaxed), 4);
}

/// A resume in slices on a broker that follows a topic from another
/// broker: a quote from the cluster of a topic whose replay is not sent
/// yet comes after that replay, as a quote of our own ingest does.
#[test]
fn a_quote_from_the_cluster_waits_behind_the_replay_owed_to_its_topic() {
    let (mut router, rx, _link_rx, _polls) = clustered(false);
    let names: Vec<String> = (0..3).map(|i| format!("C.{i:04}")).collect();
    for seq in 1..=3 {
        let quotes = names.iter().map(|n| remote(n, THEIRS, seq)).collect();
        live(&mut router, quotes);
    }
    let _ = rx.try_iter().count();
    let selector = Selector::parse("C.*").unwrap();
    router.handle_cmd(RouterCmd::Subscribe {
        worker: 0,
        conn: ConnId { slot: 0, serial: 1 },
        request: 1,
        selectors: vec![selector.clone()],
        catch_up: CatchUp {
            resume: names
                .iter()
                .map(|n| crate::messages::Resume {
                    topic: Arc::from(n.as_str()),
                    after: 1,
                    newest_only: false,
                })
                .collect(),
            // Paced to one quote a slice: the rest waits for credit.
            window: 1,
            ..CatchUp::snapshot(false)
        },
        interest_add: vec![selector],
        seed: None,
    });
    // The last topic's replay is in a later slice: its live quote first
    // flushes that replay.
    live(&mut router, vec![remote("C.0002", THEIRS, 4)]);
    let mut seqs = Vec::new();
    for msg in rx.try_iter() {
        let quotes = match msg {
            WorkerMsg::Quotes { quotes, .. }
            | WorkerMsg::Activate {
                snapshots: quotes, ..
            }
            | WorkerMsg::Snapshots { quotes, .. } => quotes,
        };
        seqs.extend(
            quotes
                .iter()
                .filter(|q| &*q.topic == "C.0002")
                .map(|q| q.seq),
        );
    }
    assert_eq!(seqs, [2, 3, 4]);
}
