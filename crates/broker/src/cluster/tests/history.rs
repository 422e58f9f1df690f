//! History reads: the stored quotes after a seq, bounded in count and time.

use super::*;

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
