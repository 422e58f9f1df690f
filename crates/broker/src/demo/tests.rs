use std::collections::HashMap;

use super::*;

const UPDATES: usize = 100_000;

/// Which fields an update changed, compared bit for bit with the ticker's
/// previous quote.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Changed {
    bid: bool,
    ask: bool,
    bid_size: bool,
    ask_size: bool,
    last: bool,
    volume: bool,
}

impl Changed {
    fn of(before: &Quote, after: &Quote) -> Changed {
        let ne = |a: f64, b: f64| a.to_bits() != b.to_bits();
        Changed {
            bid: ne(before.bid, after.bid),
            ask: ne(before.ask, after.ask),
            bid_size: ne(before.bid_size, after.bid_size),
            ask_size: ne(before.ask_size, after.ask_size),
            last: ne(before.last, after.last),
            volume: ne(before.volume, after.volume),
        }
    }

    fn count(self) -> usize {
        [
            self.bid,
            self.ask,
            self.bid_size,
            self.ask_size,
            self.last,
            self.volume,
        ]
        .iter()
        .filter(|&&c| c)
        .count()
    }
}

/// The quote each ticker would have had before its first update.
fn initial(feed: &Feed) -> HashMap<&'static str, Quote> {
    feed.instruments
        .iter()
        .map(|i| {
            let q = Quote {
                topic: i.topic.to_owned(),
                bid: i.bid,
                ask: i.ask,
                bid_size: i.bid_size,
                ask_size: i.ask_size,
                last: i.last,
                volume: i.volume,
                ts: 0,
            };
            (i.topic, q)
        })
        .collect()
}

fn on_grid(price: f64, per_unit: f64) -> bool {
    let ticks = (price * per_unit).round();
    ticks >= 1.0 && (ticks / per_unit).to_bits() == price.to_bits()
}

#[derive(Debug, Default)]
struct Shares {
    size: usize,
    price: usize,
    trade: usize,
    one_field: usize,
    two_fields: usize,
}

fn run_and_check(seed: u64, updates: usize) -> Shares {
    let mut feed = Feed::new(seed);
    let mut prev = initial(&feed);
    let opens: HashMap<&str, f64> = TICKERS.iter().map(|&(t, p, ..)| (t, p)).collect();
    let mut shares = Shares::default();
    for n in 0..updates {
        let q = feed.step(n as u64);
        let inst = feed.instruments.iter().find(|i| i.topic == q.topic);
        let (topic, pu) = inst.map(|i| (i.topic, i.per_unit)).expect("a demo ticker");
        for v in [q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume] {
            assert!(v.is_finite() && v >= 0.0, "{q:?}");
        }
        assert!(q.bid > 0.0 && q.bid < q.ask, "bid < ask: {q:?}");
        assert!(q.bid_size > 0.0 && q.ask_size > 0.0, "{q:?}");
        for p in [q.bid, q.ask, q.last] {
            assert!(on_grid(p, pu), "{p} on {topic}'s tick grid: {q:?}");
        }
        let before = &prev[topic];
        assert!(q.volume >= before.volume, "volume non-decreasing: {q:?}");
        let changed = Changed::of(before, &q);
        match changed {
            Changed {
                bid: false,
                ask: false,
                last: false,
                volume: false,
                bid_size,
                ask_size,
            } if bid_size != ask_size => shares.size += 1,
            Changed {
                bid_size: false,
                ask_size: false,
                last: false,
                volume: false,
                bid,
                ask,
            } if bid != ask => shares.price += 1,
            Changed {
                bid: false,
                ask: false,
                bid_size: false,
                ask_size: false,
                volume: true,
                ..
            } => {
                assert!(
                    q.bid <= q.last && q.last <= q.ask,
                    "a trade within the book: {q:?}"
                );
                shares.trade += 1
            }
            _ => panic!("one event per update, got {changed:?}: {before:?} -> {q:?}"),
        }
        match changed.count() {
            1 => shares.one_field += 1,
            2 => shares.two_fields += 1,
            _ => unreachable!(),
        }
        let open = opens[topic];
        assert!(
            q.bid > open * 0.95 && q.ask < open * 1.05,
            "{topic} stays near its open {open}: {q:?}"
        );
        prev.insert(topic, q);
    }
    shares
}

#[test]
fn each_update_is_one_book_event_in_realistic_proportions() {
    let shares = run_and_check(7, UPDATES);
    let share = |n: usize| n as f64 / UPDATES as f64;
    eprintln!(
        "size {:.4} price {:.4} trade {:.4}; one field {:.4}, two fields {:.4}",
        share(shares.size),
        share(shares.price),
        share(shares.trade),
        share(shares.one_field),
        share(shares.two_fields),
    );
    assert!((share(shares.size) - SIZE_SHARE).abs() < 0.01, "{shares:?}");
    assert!(
        (share(shares.price) - PRICE_SHARE).abs() < 0.01,
        "{shares:?}"
    );
    let trades = 1.0 - SIZE_SHARE - PRICE_SHARE;
    assert!((share(shares.trade) - trades).abs() < 0.01, "{shares:?}");
    // A trade changes `last` and `volume` unless it prints at the last
    // price again; every other event changes exactly one field.
    assert!(share(shares.two_fields) > 0.5 * trades, "{shares:?}");
    assert!(
        share(shares.two_fields) <= share(shares.trade),
        "{shares:?}"
    );
    assert_eq!(shares.one_field + shares.two_fields, UPDATES);
}

#[test]
fn a_long_demo_keeps_every_price_near_its_open() {
    // ~5.5 minutes of the default 3000 quotes/s, every invariant checked.
    run_and_check(11, 1_000_000);
}

#[test]
fn the_same_seed_gives_the_same_feed() {
    let (mut a, mut b) = (Feed::new(42), Feed::new(42));
    let mut c = Feed::new(43);
    let mut differs = false;
    for n in 0..10_000 {
        let (qa, qb, qc) = (a.step(n), b.step(n), c.step(n));
        assert_eq!(format!("{qa:?}"), format!("{qb:?}"));
        differs |= format!("{qa:?}") != format!("{qc:?}");
    }
    assert!(differs, "another seed, another feed");
}

#[test]
fn prices_move_often_enough_for_the_dashboard() {
    // At the default rate every ticker gets rate / tickers updates a second;
    // count how many of them change a price the dashboard shows (bid, ask,
    // last) over a simulated 10 s.
    let rate = crate::config::DemoConfig::default().rate as usize;
    let seconds = 10;
    let mut feed = Feed::new(3);
    let mut prev = initial(&feed);
    let mut moves: HashMap<&str, usize> = HashMap::new();
    let mut last_moves: HashMap<&str, usize> = HashMap::new();
    for n in 0..rate * seconds {
        let q = feed.step(n as u64);
        let topic = TICKERS.iter().find(|t| t.0 == q.topic).unwrap().0;
        let c = Changed::of(&prev[topic], &q);
        if c.bid || c.ask || c.last {
            *moves.entry(topic).or_default() += 1;
        }
        if c.last {
            *last_moves.entry(topic).or_default() += 1;
        }
        prev.insert(topic, q);
    }
    let slowest = TICKERS
        .iter()
        .map(|t| moves.get(t.0).copied().unwrap_or(0))
        .min()
        .unwrap();
    let slowest_last = TICKERS
        .iter()
        .map(|t| last_moves.get(t.0).copied().unwrap_or(0))
        .min()
        .unwrap();
    let per_sec = slowest as f64 / seconds as f64;
    let last_per_sec = slowest_last as f64 / seconds as f64;
    eprintln!(
        "rate {rate}/s: the least busy ticker's bid/ask/last changes {per_sec:.1}/s, last {last_per_sec:.1}/s"
    );
    assert!(per_sec >= 5.0, "{per_sec}/s");
    assert!(last_per_sec >= 1.0, "{last_per_sec}/s");
}
