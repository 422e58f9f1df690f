//! Field deltas on one connection: which quotes go as deltas (the quote
//! the client received last for the topic is seq - 1) and which go full
//! (the first, snapshots, a rewind's first, after a conflated or
//! throttled skip, after an unsubscribe), with real encodings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tickwire_client::Deltas;
use tickwire_protocol::server::{decode_binary, decode_json, fields, ServerMessage};
use tickwire_protocol::Quote;

use super::*;
use crate::router::encode::{changed, encode};

/// Topics' quotes as the router makes them (each changing one field of the
/// last), and every one made, to check what a client rebuilds.
#[derive(Default)]
pub(super) struct Feed {
    last: HashMap<String, (u64, Quote, Arc<SharedQuote>)>,
    /// The router's interned names: every quote of a topic shares one.
    names: HashMap<String, Arc<str>>,
    pub truth: HashMap<(String, u64), Quote>,
    pub history: HashMap<String, Vec<Arc<SharedQuote>>>,
}

impl Feed {
    /// The next quote of `topic`: field `field % 6` set to `value` (the
    /// first quote of a topic sets them all).
    pub fn next(&mut self, topic: &str, field: usize, value: f64) -> LocalQuote {
        let (seq, mut q, prev) = match self.last.get(topic) {
            Some((seq, q, prev)) => (seq + 1, q.clone(), Some(prev.clone())),
            None => (
                1,
                Quote {
                    topic: topic.into(),
                    bid: 1.0,
                    ask: 2.0,
                    bid_size: 3.0,
                    ask_size: 4.0,
                    last: 5.0,
                    volume: 6.0,
                    ts: 0,
                },
                None,
            ),
        };
        match field % 6 {
            0 => q.bid = value,
            1 => q.ask = value,
            2 => q.bid_size = value,
            3 => q.ask_size = value,
            4 => q.last = value,
            _ => q.volume = value,
        }
        q.ts = seq * 10;
        let mask = changed(prev.as_deref(), &q, seq);
        let mut scratch = Vec::new();
        let name = self
            .names
            .entry(topic.to_owned())
            .or_insert_with(|| topic.into())
            .clone();
        let shared = Arc::new(encode(
            &q,
            name,
            (seq, seq),
            Instant::now(),
            mask,
            &mut scratch,
        ));
        self.truth.insert((topic.to_owned(), seq), q.clone());
        self.history
            .entry(topic.to_owned())
            .or_default()
            .push(shared.clone());
        self.last.insert(topic.to_owned(), (seq, q, shared.clone()));
        LocalQuote::from(shared)
    }

    /// Up to `n` newest quotes of `topic`, oldest first.
    pub fn recent(&self, topic: &str, n: usize) -> Vec<LocalQuote> {
        let all = self.history.get(topic).map_or(&[][..], |h| &h[..]);
        all[all.len().saturating_sub(n)..]
            .iter()
            .cloned()
            .map(LocalQuote::from)
            .collect()
    }
}

/// What the client application gets: every message decoded, deltas
/// rebuilt (a delta without its base fails the test), each quote checked
/// against the feed.
#[derive(Default)]
pub(super) struct Reader {
    pub deltas: Deltas,
    /// (topic, seq, whether it came as a delta), in arrival order.
    pub got: Vec<(String, u64, bool)>,
}

impl Reader {
    pub fn read(&mut self, c: &mut Client, max: usize, feed: &Feed, json: bool) {
        c.conn.flush_to(&mut c.wire, max, c.now);
        let mut offset = 0;
        while let Ok((n, event)) = c.decoder.decode(&c.wire[offset..]) {
            if n == 0 {
                break;
            }
            offset += n;
            let message = match event {
                Some(Event::Text(t)) => decode_json(&t).unwrap(),
                Some(Event::Binary(b)) => decode_binary(&b).unwrap(),
                _ => continue,
            };
            let was_delta = matches!(message, ServerMessage::Delta { .. });
            let rebuilt = self
                .deltas
                .apply(message)
                .expect("a delta follows its base");
            let ServerMessage::Quote { quote, seq } = rebuilt else {
                continue;
            };
            let want = &feed.truth[&(quote.topic.clone(), seq)];
            if json {
                // JSON carries non-finite numbers as null (NaN).
                let view = |q: &Quote| fields(q).map(|x| x.is_finite().then_some(x.to_bits()));
                assert_eq!(view(&quote), view(want), "{} {seq}", quote.topic);
            } else {
                let bits = |q: &Quote| fields(q).map(f64::to_bits);
                assert_eq!(bits(&quote), bits(want), "{} {seq}", quote.topic);
            }
            assert_eq!(quote.ts, want.ts);
            self.got.push((quote.topic, seq, was_delta));
        }
        c.wire.drain(..offset);
    }

    pub fn kinds(&mut self) -> Vec<(u64, bool)> {
        std::mem::take(&mut self.got)
            .into_iter()
            .map(|(_, s, d)| (s, d))
            .collect()
    }
}

fn subscribe(c: &mut Client, topic: &str, extra: &str) -> u32 {
    let text = format!(r#"{{"op":"subscribe","topics":["{topic}"]{extra}}}"#);
    let actions = c.request(&text);
    actions
        .iter()
        .find_map(|a| match a {
            Action::Subscribe { request, .. } => Some(*request),
            _ => None,
        })
        .expect("a subscribe command")
}

fn delta_client(format: &str) -> Client {
    Client::upgraded_at(config(), &format!("/ws?format={format}&delta=1"))
}

#[test]
fn live_quotes_after_the_first_go_as_deltas_and_a_snapshot_goes_full() {
    for format in ["json", "binary"] {
        let json = format == "json";
        let (mut c, mut feed, mut r) = (delta_client(format), Feed::default(), Reader::default());
        let snap = feed.next("A", 0, 1.5);
        let request = subscribe(&mut c, "A", "");
        c.activate(request, &["A"], vec![snap]);
        for i in 0..3 {
            let q = feed.next("A", i, 7.0 + i as f64);
            c.live(&q, None);
        }
        r.read(&mut c, usize::MAX, &feed, json);
        assert_eq!(
            r.kinds(),
            [(1, false), (2, true), (3, true), (4, true)],
            "{format}"
        );
        // A re-subscribe's snapshot is full even right after seq - 1.
        let request = subscribe(&mut c, "A", "");
        let q = feed.next("A", 1, 9.0);
        c.activate(request, &["A"], vec![q]);
        r.read(&mut c, usize::MAX, &feed, json);
        assert_eq!(r.kinds(), [(5, false)], "{format}");
    }
}

#[test]
fn a_plain_connection_never_gets_a_delta() {
    let (mut c, mut feed, mut r) = (
        Client::upgraded(config()),
        Feed::default(),
        Reader::default(),
    );
    let request = subscribe(&mut c, "A", "");
    c.activate(request, &["A"], vec![]);
    for i in 0..4 {
        let q = feed.next("A", i, i as f64);
        c.live(&q, None);
    }
    r.read(&mut c, usize::MAX, &feed, true);
    assert!(r.kinds().iter().all(|(_, delta)| !delta));
}

#[test]
fn after_a_conflated_skip_the_next_quote_is_full() {
    let mut cfg = config();
    // One full binary quote (72 bytes) fits, a delta after it does not.
    cfg.outbound_budget_bytes = 100;
    let mut c = Client::upgraded_at(cfg, "/ws?format=binary&delta=1");
    let (mut feed, mut r) = (Feed::default(), Reader::default());
    let request = subscribe(&mut c, "A", "");
    c.activate(request, &["A"], vec![]);
    r.read(&mut c, usize::MAX, &feed, false);
    // Nothing read: the queue fills, then conflates (2..=5 never sent).
    for i in 0..6 {
        let q = feed.next("A", i, i as f64);
        c.live(&q, None);
    }
    r.read(&mut c, usize::MAX, &feed, false);
    let kinds = r.kinds();
    assert_eq!(kinds.first(), Some(&(1, false)));
    assert_eq!(
        kinds.last(),
        Some(&(6, false)),
        "{kinds:?}: 6 follows a skip"
    );
    assert!(kinds.iter().any(|&(_, d)| d), "{kinds:?}");
    // Back in order: deltas again.
    let q = feed.next("A", 2, 0.5);
    c.live(&q, None);
    r.read(&mut c, usize::MAX, &feed, false);
    assert_eq!(r.kinds(), [(7, true)]);
}

#[test]
fn after_a_throttled_skip_the_next_quote_is_full() {
    let mut c = delta_client("binary");
    let (mut feed, mut r) = (Feed::default(), Reader::default());
    let request = subscribe(&mut c, "A", r#","max_hz":1"#);
    c.activate(request, &["A"], vec![]);
    let first = feed.next("A", 0, 1.0);
    c.live(&first, Some(1.0));
    // Two more within the second: the newest is held, 2 is never sent.
    for i in 0..2 {
        let q = feed.next("A", i, 3.0 + i as f64);
        c.live(&q, Some(1.0));
    }
    c.at(Duration::from_secs(1));
    let topic: Arc<str> = "A".into();
    let (now, mut fx) = (c.now, Effects::default());
    c.conn.on_timer(&topic, now, &mut fx);
    r.read(&mut c, usize::MAX, &feed, false);
    assert_eq!(r.kinds(), [(1, false), (3, false)]);
}

#[test]
fn a_rewind_starts_full_and_goes_on_in_deltas_and_a_replay_follows_the_rule() {
    let mut c = delta_client("json");
    let (mut feed, mut r) = (Feed::default(), Reader::default());
    for i in 0..5 {
        feed.next("A", i, i as f64);
        feed.next("B", i, i as f64);
    }
    let actions = c.request(r#"{"op":"subscribe","topics":["A","B"],"rewind":3}"#);
    let Some(Action::Subscribe { request, .. }) = actions
        .iter()
        .find(|a| matches!(a, Action::Subscribe { .. }))
    else {
        panic!("{actions:?}");
    };
    let request = *request;
    let mut rewind = feed.recent("A", 3);
    rewind.extend(feed.recent("B", 2));
    c.answer_slice(request, &[sel("A"), sel("B")], rewind.into());
    r.read(&mut c, usize::MAX, &feed, true);
    assert_eq!(
        r.kinds(),
        [(3, false), (4, true), (5, true), (4, false), (5, true)]
    );
    // A replay (leading the slice) on a connection that has seq 5 of A
    // goes on in deltas: 6 follows 5.
    let q6 = feed.next("A", 1, 0.25);
    let request = subscribe(&mut c, "A", "");
    let slice = CatchUpSlice {
        quotes: vec![q6],
        replayed: 1,
    };
    c.answer_slice(request, &[sel("A")], slice);
    r.read(&mut c, usize::MAX, &feed, true);
    assert_eq!(r.kinds(), [(6, true)]);
}

#[test]
fn an_unsubscribed_topic_starts_again_from_a_full_quote() {
    let mut c = delta_client("binary");
    let (mut feed, mut r) = (Feed::default(), Reader::default());
    let request = subscribe(&mut c, "A", "");
    c.activate(request, &["A"], vec![]);
    let q = feed.next("A", 0, 1.0);
    c.live(&q, None);
    r.read(&mut c, usize::MAX, &feed, false);
    c.request(r#"{"op":"unsubscribe","topics":["A"]}"#);
    let request = subscribe(&mut c, "A", r#","snapshot":false"#);
    c.activate(request, &["A"], vec![]);
    let q = feed.next("A", 1, 2.0);
    c.live(&q, None);
    r.read(&mut c, usize::MAX, &feed, false);
    assert_eq!(r.kinds(), [(1, false), (2, false)]);
    assert_eq!(c.conn.out.delta_topics(), 1);
}
