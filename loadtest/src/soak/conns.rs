//! Connection churn: connections opening and closing at a steady rate
//! (`open_close`), and connections that unsubscribe and subscribe their
//! topics again while they stream (`resubscribe`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tickwire_client::SubscribeOptions;

use super::counts::Env;
use super::session::{Dial, Session};
use super::streams::Streams;

/// Pause before an actor tries again after an unexpected event.
pub const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Opens `--conn-churn` connections per second, each subscribing one of
/// `topic_sets` (with snapshots), and closes the oldest once more than
/// `--conn-pool` are open: alternately with a close frame and by dropping
/// the socket. Pool connections read only their ack.
pub fn open_close(env: &Env<'_>, topic_sets: &[Vec<String>]) {
    let churn = &env.plan.churn;
    if churn.conn_per_s <= 0.0 || topic_sets.is_empty() {
        return;
    }
    let every = Duration::from_secs_f64(1.0 / churn.conn_per_s);
    let mut pool: VecDeque<Session> = VecDeque::with_capacity(churn.conn_pool + 1);
    let mut next = Instant::now();
    for n in 0..env.plan.max_steps(every) {
        env.sleep_until(next);
        if !env.running() {
            break;
        }
        // Behind schedule (a slow set-up): no burst to catch up.
        let now = Instant::now();
        next = (next + every).max(now.checked_sub(every).unwrap_or(now));
        let topics: Vec<&str> = topic_sets[n % topic_sets.len()]
            .iter()
            .map(String::as_str)
            .collect();
        let mut scratch = Streams::default();
        match Session::open(
            env,
            Dial::to(env.ws(n)),
            &topics,
            SubscribeOptions::default(),
            &mut scratch,
        ) {
            Ok((s, _)) => {
                pool.push_back(s);
                env.count(|c| c.connections.opened += 1);
            }
            Err(e) => env.problem(e.describe("churn connection")),
        }
        while pool.len() > churn.conn_pool {
            if let Some(s) = pool.pop_front() {
                s.close(n % 2 == 0);
                env.count(|c| c.connections.closed += 1);
            }
        }
    }
    let left = pool.len() as u64;
    pool.into_iter().for_each(|s| s.close(true));
    env.count(|c| c.connections.closed += left);
}

/// Resubscriber `n`: streams `topics` (gap-checked); every
/// `--resubscribe-every` it unsubscribes one topic, or subscribes it again,
/// in turn. Its seq tracking of a topic starts over at each unsubscribe.
pub fn resubscribe(env: &Env<'_>, n: usize, topics: &[String]) {
    let every = env.plan.churn.resubscribe_every;
    let mut streams = Streams::default();
    let mut session: Option<Session> = None;
    let mut subscribed = vec![true; topics.len()];
    for step in 0..env.plan.max_steps(every) {
        if !env.running() || topics.is_empty() {
            break;
        }
        let s = match session.as_mut() {
            Some(s) => s,
            None => {
                let all: Vec<&str> = topics.iter().map(String::as_str).collect();
                match Session::open(
                    env,
                    Dial::to(env.ws(n)),
                    &all,
                    SubscribeOptions::default(),
                    &mut streams,
                ) {
                    Ok((s, _)) => {
                        subscribed.iter_mut().for_each(|x| *x = true);
                        session.insert(s)
                    }
                    Err(e) => {
                        env.problem(e.describe("resubscriber"));
                        env.sleep_until(Instant::now() + RETRY_AFTER);
                        continue;
                    }
                }
            }
        };
        let i = step % topics.len();
        let want = !subscribed[i];
        let result = s.pump(env, &mut streams, env.after(every)).and_then(|()| {
            if !env.running() {
                return Ok(false);
            }
            s.set_subscribed(env, &mut streams, &topics[i], want)?;
            env.count(|c| match want {
                true => c.subscriptions.subscribes += 1,
                false => c.subscriptions.unsubscribes += 1,
            });
            Ok(true)
        });
        match result {
            Ok(done) => subscribed[i] ^= done,
            Err(e) => {
                env.problem(e.describe("resubscriber"));
                // A new connection: every topic subscribed anew, new baselines.
                session = None;
                topics.iter().for_each(|t| streams.rebase(t));
            }
        }
    }
    if let Some(s) = session {
        s.close(true);
    }
    env.count(|c| {
        c.deliveries += streams.deliveries;
        c.subscriptions.seq.add(&streams.counts());
    });
}
