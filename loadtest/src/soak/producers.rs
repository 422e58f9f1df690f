//! Publishers that reconnect: each runs `publisher::run` on one connection
//! for `--producer-reconnect-every`, closes it (after its last complete
//! frame: the broker numbers only what it accepted, so nothing a checked
//! subscriber waits for is lost), stays away `--producer-outage` and
//! carries on from its next topic on a new connection. Publisher `p`'s
//! first connection lasts (p+1)/P of the period, so the publishers take
//! turns and quotes keep flowing from the others.

use std::time::Instant;

use super::counts::Env;
use crate::publisher::{self, PubConfig, PubResult};
use crate::sys;

/// Runs publisher `p` until the end of the run; its figures over every
/// connection.
pub fn run(env: &Env<'_>, cfg: &PubConfig, p: usize) -> PubResult {
    let churn = &env.plan.churn;
    let mut total = PubResult::default();
    let every = churn.producer_reconnect_every;
    let mut period = every.map(|e| e.mul_f64((p + 1) as f64 / cfg.publishers as f64));
    let steps = every.map_or(1, |e| env.plan.max_steps(e));
    for _ in 0..steps {
        let start = Instant::now();
        if start >= env.end {
            break;
        }
        let until = period.map_or(env.end, |d| (start + d).min(env.end));
        let r = publisher::run(cfg, p, start, sys::wall_ns(), until, total.sent);
        total.add(&r);
        if r.error.is_some() || until >= env.end {
            break;
        }
        env.sleep_until(Instant::now() + churn.producer_outage);
        if !env.running() {
            break;
        }
        env.count(|c| c.producers.reconnects += 1);
        period = every;
    }
    total
}
