//! Resumers: subscribers that lose their connection and come back with
//! v1.2 `since` (the epoch of their last ack, their last seq per topic).
//! While the broker's history covers the outage, the ack must say
//! `recovered: true` and the quotes must go on with no gap; a topic
//! resumed unrecovered is judged by its snapshot: more than the history
//! size ahead of where the resumer stopped is expected, less is a failure.

use std::time::Instant;

use tickwire_client::SubscribeOptions;

use super::conns::RETRY_AFTER;
use super::counts::{Env, KEPT_PROBLEMS};
use super::session::{Ack, Dial, Session};
use super::streams::Streams;

/// Resumer `n` on `topics`: connected for `--resume-every`, then its
/// socket dropped (a network cut), away for `--resume-outage`, back with
/// `since`. Its seq tracking runs across every connection.
pub fn run(env: &Env<'_>, n: usize, topics: &[String]) {
    let churn = &env.plan.churn;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut streams = Streams::default();
    for step in 0..env.plan.max_steps(churn.resume_every + churn.resume_outage) {
        if !env.running() || names.is_empty() {
            break;
        }
        let since = streams.since();
        let resuming = since.is_some();
        let options = SubscribeOptions {
            since,
            ..Default::default()
        };
        let dial = Dial::to(env.ws(n + step));
        let (mut s, ack) = match Session::open(env, dial, &names, options, &mut streams) {
            Ok(opened) => opened,
            Err(e) => {
                env.problem(e.describe("resumer"));
                env.sleep_until(Instant::now() + RETRY_AFTER);
                continue;
            }
        };
        if resuming {
            judge(env, &mut streams, &ack);
        }
        streams.epoch = Some(ack.epoch);
        match s.pump(env, &mut streams, env.after(churn.resume_every)) {
            // The cut: no close frame, the socket just goes.
            Ok(()) => s.close(false),
            Err(e) => env.problem(e.describe("resumer")),
        }
        env.sleep_until(Instant::now() + churn.resume_outage);
    }
    env.count(|c| {
        let r = &mut c.resumes;
        c.deliveries += streams.deliveries;
        r.history_exceeded += streams.history_exceeded;
        r.unexplained += streams.unexplained.len() as u64;
        for what in &streams.unexplained {
            if r.unexplained_topics.len() < KEPT_PROBLEMS {
                r.unexplained_topics.push(what.clone());
            }
        }
        r.seq.add(&streams.counts());
    });
}

/// Counts the ack of a resume, and prepares the tracking of the topics it
/// names unrecovered.
fn judge(env: &Env<'_>, streams: &mut Streams, ack: &Ack) {
    let history = env.plan.churn.history_size;
    if streams.epoch.as_deref() != Some(ack.epoch.as_str()) {
        // The broker restarted: seq numbering starts over, nothing to recover.
        streams.rebase_all();
        env.count(|c| {
            c.resumes.attempted += 1;
            c.resumes.new_epoch += 1;
        });
        return;
    }
    let recovered = ack.recovered == Some(true);
    if !recovered {
        for topic in &ack.unrecovered {
            streams.unrecovered(topic, history);
        }
    }
    env.count(|c| {
        c.resumes.attempted += 1;
        if recovered {
            c.resumes.recovered += 1;
        } else {
            c.resumes.unrecovered += 1;
        }
    });
}
