//! Property test of field deltas: over random quote streams with random
//! conflation (a small outbound budget, partial writes), `max_hz` holds,
//! subscribes with snapshots, rewinds and replays, unsubscribes and
//! reconnects, a client that applies deltas holds exactly (bit for bit in
//! binary, NaN and -0.0 included) the quote the broker numbered with each
//! seq it receives, and never meets a delta without its base.
//!
//! `TICKWIRE_DELTA_CASES` sets the number of streams (256 by default; the
//! note of issue 23 reports a run of 1,000,000).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::deltas::{Feed, Reader};
use super::*;

const TOPICS: [&str; 3] = ["A", "B", "C"];

#[derive(Debug, Clone)]
enum Op {
    /// Catch-up: 0 none, 1 snapshot, 2 rewind of `n`, 3 replay of `n`.
    Subscribe {
        topic: usize,
        catch_up: u8,
        n: u8,
        throttled: bool,
    },
    Unsubscribe(usize),
    Live {
        topic: usize,
        field: usize,
        value: f64,
    },
    Read(u16),
    Tick(u16),
    Reconnect {
        json: bool,
    },
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (0u32..1000).prop_map(|v| f64::from(v) / 8.0),
        1 => Just(f64::NAN),
        1 => Just(-0.0),
        1 => Just(0.0),
        1 => Just(f64::INFINITY),
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..4u8, 1..5u8, any::<bool>()).prop_map(|(topic, catch_up, n, throttled)| Op::Subscribe { topic, catch_up, n, throttled }),
        1 => (0..3usize).prop_map(Op::Unsubscribe),
        10 => (0..3usize, 0..6usize, value()).prop_map(|(topic, field, value)| Op::Live { topic, field, value }),
        4 => (0u16..400).prop_map(Op::Read),
        2 => (0u16..1500).prop_map(Op::Tick),
        1 => any::<bool>().prop_map(|json| Op::Reconnect { json }),

    ]
}

struct Model {
    c: Client,
    json: bool,
    reader: Reader,
    feed: Feed,
    /// Per subscribed topic: its `max_hz`.
    entries: HashMap<usize, Option<f32>>,
    timers: Vec<(Instant, Arc<str>)>,
    next_id: u64,
}

impl Model {
    fn connect(json: bool) -> (Client, Reader) {
        let mut cfg = config();
        // Two or three quotes fit: conflation is frequent.
        cfg.outbound_budget_bytes = 256;
        cfg.requests_per_second = 0;
        let format = if json { "json" } else { "binary" };
        let c = Client::upgraded_at(cfg, &format!("/ws?format={format}&delta=1"));
        (c, Reader::default())
    }

    fn collect_timers(&mut self) {
        for action in self.c.take_actions() {
            if let Action::ArmTimer { at, topic } = action {
                self.timers.push((at, topic));
            }
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Subscribe {
                topic,
                catch_up,
                n,
                throttled,
            } => {
                let name = TOPICS[topic];
                let hz = throttled.then_some(2.0f32);
                self.next_id += 1;
                let mut text = format!(
                    r#"{{"op":"subscribe","id":{},"topics":["{name}"]"#,
                    self.next_id
                );
                match catch_up {
                    0 => text.push_str(r#","snapshot":false"#),
                    2 => text.push_str(&format!(r#","rewind":{n}"#)),
                    _ => {}
                }
                if let Some(hz) = hz {
                    text.push_str(&format!(r#","max_hz":{hz}"#));
                }
                text.push('}');
                let actions = self.c.request(&text);
                let Some(request) = actions.iter().find_map(|a| match a {
                    Action::Subscribe { request, .. } => Some(*request),
                    _ => None,
                }) else {
                    return;
                };
                let slice = match catch_up {
                    0 => CatchUpSlice::from(Vec::new()),
                    1 => self.feed.recent(name, 1).into(),
                    2 => self.feed.recent(name, usize::from(n)).into(),
                    _ => {
                        let quotes = self.feed.recent(name, usize::from(n));
                        let replayed = quotes.len();
                        CatchUpSlice { quotes, replayed }
                    }
                };
                self.c.answer_slice(request, &[sel(name)], slice);
                self.entries.insert(topic, hz);
            }
            Op::Unsubscribe(topic) => {
                self.next_id += 1;
                let text = format!(
                    r#"{{"op":"unsubscribe","id":{},"topics":["{}"]}}"#,
                    self.next_id, TOPICS[topic]
                );
                self.c.request(&text);
                self.entries.remove(&topic);
            }
            Op::Live {
                topic,
                field,
                value,
            } => {
                let q = self.feed.next(TOPICS[topic], field, value);
                if let Some(hz) = self.entries.get(&topic) {
                    self.c.live(&q, *hz);
                }
            }
            Op::Read(max) => self
                .reader
                .read(&mut self.c, usize::from(max), &self.feed, self.json),
            Op::Tick(ms) => {
                let now = self.c.at(Duration::from_millis(u64::from(ms)));
                let (due, later): (Vec<_>, Vec<_>) =
                    self.timers.drain(..).partition(|(at, _)| *at <= now);
                self.timers = later;
                for (_, topic) in due {
                    let mut fx = std::mem::take(&mut self.c.fx);
                    self.c.conn.on_timer(&topic, now, &mut fx);
                    self.c.fx = fx;
                }
            }
            Op::Reconnect { json } => {
                // Whatever was still queued is lost with the connection.
                let (c, reader) = Model::connect(json);
                (self.c, self.reader, self.json) = (c, reader, json);
                self.entries.clear();
                self.timers.clear();
            }
        }
        self.collect_timers();
    }
}

fn cases() -> u32 {
    std::env::var("TICKWIRE_DELTA_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_delta_client_holds_exactly_each_quote_it_is_sent(
        json in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let (c, reader) = Model::connect(json);
        let mut m = Model {
            c,
            json,
            reader,
            feed: Feed::default(),
            entries: HashMap::new(),
            timers: Vec::new(),
            next_id: 0,
        };
        for op in ops {
            m.step(op);
        }
        // Everything still queued, read to the end, checks out too.
        m.step(Op::Tick(1500));
        m.step(Op::Read(u16::MAX));
        m.reader.read(&mut m.c, usize::MAX, &m.feed, m.json);
    }
}
