//! Watches, probes and set-up with several stored messages per subject,
//! and a stream made by an older broker raised to keep the history.

use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::cluster::Publish;

/// Watches, probes and the set-up read the newest message of a subject,
/// whatever the stream keeps before it.
#[test]
fn watches_probes_and_set_up_read_the_newest_stored_quote() {
    let nats = NatsServer::start();
    // A read that stalls until this timeout would miss every deadline
    // below (PATIENCE), so a fetch given up on cannot pass for one done.
    let config = config(&nats, 16, 120_000);
    let (link, _, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    feed.store("A.B", 1..=20);
    feed.store("A.C", 1..=5);
    feed.store("D", 1..=2);

    // Fetches for a topic's watch and for a pattern's (a consumer
    // delivering the last per subject, read until nothing is pending).
    let watch = |ticket: u64, selector: &str| {
        let selectors = vec![Selector::parse(selector).expect("selector")];
        let deadline = Instant::now() + PATIENCE;
        assert!(link.handle.send(LinkCmd::Watch {
            selectors,
            ticket: Some(ticket),
        }));
        let mut stored = Vec::new();
        loop {
            match link.events.recv_deadline(deadline) {
                Ok(LinkEvent::Quotes {
                    quotes,
                    stored: true,
                }) => stored.extend(quotes),
                Ok(LinkEvent::Fetched { ticket: t }) if t == ticket => break,
                Ok(_) => {}
                Err(e) => panic!("fetch {ticket}: {e}"),
            }
        }
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
    assert!(link.handle.send(LinkCmd::Publish {
        probe: vec![Arc::from("A.C")],
        quotes: Vec::new(),
    }));
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

/// A topic's first quotes through this broker wait for its probe: those
/// numbered at or below the stored seq are dropped (counted), the rest go
/// out. The probe travels in the same command as the quotes, so its answer
/// cannot overtake them (it once could, on a loaded machine).
#[test]
fn quotes_of_a_probed_topic_wait_for_the_stored_seq() {
    let nats = NatsServer::start();
    let config = config(&nats, 16, 10_000);
    let (link, metrics, _) = link_up(&config);
    let feed = Feed::new(&nats, &config);
    feed.store("A.C", 1..=5);
    let publish = |seq: u64| {
        let mut payload = Vec::new();
        cluster::encode(&quote("A.C", seq), &mut payload);
        Publish {
            topic: Arc::from("A.C"),
            seq,
            payload,
        }
    };
    let cm = &metrics.cluster;
    assert!(wait_until(|| cm.is_up()));
    link.handle
        .publish(vec![Arc::from("A.C")], vec![publish(1), publish(6)]);
    let (published, dropped) = (
        || cm.published.load(Relaxed),
        || cm.publish_dropped.load(Relaxed),
    );
    assert!(wait_until(|| published() + dropped() == 2));
    assert_eq!((published(), dropped()), (1, 1), "6 went out, 1 was stale");
    // The router learns the stored seq from the probe.
    let deadline = Instant::now() + PATIENCE;
    let stored = loop {
        match link.events.recv_deadline(deadline) {
            Ok(LinkEvent::Quotes {
                quotes,
                stored: true,
            }) => break quotes,
            Ok(_) => {}
            Err(e) => panic!("probe: {e}"),
        }
    };
    assert_eq!(stored.iter().map(|q| q.seq).collect::<Vec<_>>(), [5]);
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
