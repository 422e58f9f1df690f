//! Readers the broker must cope with: slow ones (stop reading for a while,
//! then read again) and stalled ones (read nothing until the broker gives
//! up on them). Both subscribe to every topic with a small receive buffer,
//! so what they leave unread backs up into the broker; a broker that closes
//! them as slow consumers does what it should (counted, not an error).

use std::time::{Duration, Instant};

use tickwire_client::SubscribeOptions;

use super::conns::RETRY_AFTER;
use super::counts::Env;
use super::session::{Dial, Ended, Session};
use super::streams::Streams;

/// Receive buffer of slow and stalled readers (the kernel doubles it).
const READER_BUFFER: usize = 4096;
/// How long a slow reader reads before and after its pause.
const READ_FOR: Duration = Duration::from_secs(1);
/// How long a stalled reader reads, after its hold and a ping, to find out
/// whether the broker closed it (its queued quotes first, then the close
/// frame, or the reset the ping drew).
const LOOK_FOR: Duration = Duration::from_secs(2);

/// Whether the broker ended a reader for being slow: the 1008 close, or
/// the connection dropped (what a reader that does not even read its close
/// frame finds).
fn closed_as_slow(e: &Ended) -> bool {
    matches!(e, Ended::SlowConsumer | Ended::Dropped(_))
}

/// Connects reader `n` to `topics`, with a small receive buffer.
fn open(
    env: &Env<'_>,
    n: usize,
    topics: &[String],
    streams: &mut Streams,
    who: &str,
) -> Option<Session> {
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let dial = Dial {
        ws: env.ws(n),
        receive_buffer: Some(READER_BUFFER),
    };
    match Session::open(env, dial, &topics, SubscribeOptions::default(), streams) {
        Ok((s, _)) => Some(s),
        Err(e) => {
            env.problem(e.describe(who));
            env.sleep_until(Instant::now() + RETRY_AFTER);
            None
        }
    }
}

/// Slow reader `n` on `topics` (every topic): reads a second, pauses
/// `--slow-pause`, reads a second again (or finds itself closed as a slow
/// consumer), reconnects. Gaps after a pause are conflation; duplicates or
/// reordering are not allowed.
pub fn slow(env: &Env<'_>, n: usize, topics: &[String]) {
    let pause = env.plan.churn.slow_pause;
    let mut streams = Streams::default();
    for _ in 0..env.plan.max_steps(pause + 2 * READ_FOR) {
        if !env.running() {
            break;
        }
        // Every connection starts its own seq tracking.
        streams.rebase_all();
        let Some(mut s) = open(env, n, topics, &mut streams, "slow reader") else {
            continue;
        };
        if let Err(e) = s.pump(env, &mut streams, env.after(READ_FOR)) {
            env.problem(e.describe("slow reader"));
            continue;
        }
        if !env.running() {
            s.close(true);
            break;
        }
        env.count(|c| c.slow_readers.pauses += 1);
        // A token refresh sent while paused may find the connection
        // already dropped by the broker: that too is a slow-consumer close.
        let read_again = s
            .hold(env, Instant::now() + pause)
            .and_then(|()| s.ping())
            .and_then(|()| s.pump(env, &mut streams, Instant::now() + READ_FOR));
        match read_again {
            Ok(()) => {
                env.count(|c| c.slow_readers.resumed += 1);
                s.close(true);
            }
            Err(e) if closed_as_slow(&e) => env.count(|c| c.slow_readers.closed_slow_consumer += 1),
            Err(e) => env.problem(e.describe("slow reader")),
        }
    }
    env.count(|c| {
        c.deliveries += streams.deliveries;
        c.slow_readers.seq.add(&streams.counts());
    });
}

/// Stalled reader `n` on `topics` (every topic): reads nothing for
/// `--stall-hold` (its token still refreshed), then reads for a while to
/// see whether the broker closed it; closes it if not, and connects again.
pub fn stalled(env: &Env<'_>, n: usize, topics: &[String]) {
    let hold = env.plan.churn.stall_hold;
    let mut streams = Streams::default();
    for _ in 0..env.plan.max_steps(hold + LOOK_FOR) {
        if !env.running() {
            break;
        }
        streams.rebase_all();
        let Some(mut s) = open(env, n, topics, &mut streams, "stalled reader") else {
            continue;
        };
        env.count(|c| c.stalled_readers.stalls += 1);
        let looked = s
            .hold(env, env.after(hold))
            .and_then(|()| s.ping())
            .and_then(|()| s.pump(env, &mut streams, Instant::now() + LOOK_FOR));
        match looked {
            Ok(()) => {
                env.count(|c| c.stalled_readers.released += 1);
                s.close(true);
            }
            Err(e) if closed_as_slow(&e) => env.count(|c| c.stalled_readers.closed_by_broker += 1),
            Err(e) => env.problem(e.describe("stalled reader")),
        }
    }
    env.count(|c| c.deliveries += streams.deliveries);
}
