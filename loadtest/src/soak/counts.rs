//! What the churn did (`Counts`, the report's `churn`), and the context
//! every churn actor runs in (`Env`): the plan, the end of the run, the
//! shared tally, and how an unexpected event is noted.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::plan::Plan;
use crate::gaps::GapCounts;

/// Messages of unexpected events kept for the report (the count goes on).
pub const KEPT_PROBLEMS: usize = 20;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Connections {
    /// Churn connections set up (connect, upgrade, subscribe acknowledged).
    pub opened: u64,
    /// Churn connections closed by us (close frame or dropped socket).
    pub closed: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Subscriptions {
    /// Subscribe / unsubscribe requests acknowledged on live connections.
    pub subscribes: u64,
    pub unsubscribes: u64,
    /// Seq tracking of the resubscribers (reset at each unsubscribe ack):
    /// must stay all zero.
    pub seq: GapCounts,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SlowReaders {
    /// Pauses taken (a pause ends when the reader reads again).
    pub pauses: u64,
    /// Still streaming after the pause (conflated or not).
    pub resumed: u64,
    /// Closed by the broker during the pause: close 1008 `slow consumer`,
    /// or the connection dropped (expected, not an error).
    pub closed_slow_consumer: u64,
    /// Their seq tracking: gaps are conflation (expected); duplicates and
    /// out-of-order quotes must stay zero.
    pub seq: GapCounts,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StalledReaders {
    /// Connections that read nothing for --stall-hold.
    pub stalls: u64,
    /// Found closed by the broker afterwards (1008 `slow consumer` or dropped).
    pub closed_by_broker: u64,
    /// Still open afterwards: closed by us.
    pub released: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Producers {
    /// Publisher connections closed and opened again.
    pub reconnects: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Resumes {
    /// Reconnections with `since`.
    pub attempted: u64,
    /// Acks with `recovered: true`.
    pub recovered: u64,
    /// Acks with `recovered: false` in the same epoch.
    pub unrecovered: u64,
    /// Unrecovered topics whose snapshot was more than the history size
    /// ahead of the resumer's last seq: the history could not cover it.
    pub history_exceeded: u64,
    /// Unrecovered topics the history should have covered: a failure.
    pub unexplained: u64,
    /// The first of them: topic, last seq before, snapshot seq.
    pub unexplained_topics: Vec<String>,
    /// Acks with another epoch (the broker restarted): tracking reset.
    pub new_epoch: u64,
    /// Seq tracking across the resumes: must stay all zero.
    pub seq: GapCounts,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TokenCounts {
    /// `authed` replies on every connection, checked ones included.
    pub authed: u64,
    /// Fresh tokens sent on connections already authenticated.
    pub refreshes: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Problems {
    /// Unexpected events: failed connects or subscribes, error replies,
    /// closes that were not a slow-consumer close of a slow or stalled
    /// reader, protocol errors, actors that panicked.
    pub total: u64,
    /// The first of them, as text.
    pub first: Vec<String>,
}

/// Everything the churn actors counted (the report's `churn`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Quotes received by churn connections (resumers, resubscribers, slow
    /// and stalled readers; churn pool connections read only their ack).
    pub deliveries: u64,
    pub connections: Connections,
    pub subscriptions: Subscriptions,
    pub slow_readers: SlowReaders,
    pub stalled_readers: StalledReaders,
    pub producers: Producers,
    pub resumes: Resumes,
    pub tokens: TokenCounts,
    /// With --tls: KeyUpdates the checked subscribers sent, each asking the
    /// broker for one back and followed by a ping (what the client decrypts
    /// after it — the pong, the quotes — is under the broker's answer, if
    /// it made one; the client cannot tell whether it did).
    pub tls_key_updates: u64,
    pub errors: Problems,
}

/// What a churn actor works with.
pub struct Env<'a> {
    pub plan: &'a Plan,
    /// End of the publishing window: no actor starts a step after it.
    pub end: Instant,
    tally: &'a Mutex<Counts>,
}

impl<'a> Env<'a> {
    pub fn new(plan: &'a Plan, end: Instant, tally: &'a Mutex<Counts>) -> Env<'a> {
        Env { plan, end, tally }
    }

    /// Updates the shared counts.
    pub fn count(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c);
    }

    /// Notes an unexpected event.
    pub fn problem(&self, what: impl Into<String>) {
        self.count(|c| {
            c.errors.total += 1;
            if c.errors.first.len() < KEPT_PROBLEMS {
                c.errors.first.push(what.into());
            }
        });
    }

    pub fn running(&self) -> bool {
        Instant::now() < self.end
    }

    /// `now + d`, but not past the end of the run.
    pub fn after(&self, d: Duration) -> Instant {
        (Instant::now() + d).min(self.end)
    }

    /// Sleeps until `t` (at most until the end of the run).
    pub fn sleep_until(&self, t: Instant) {
        let now = Instant::now();
        let t = t.min(self.end);
        if t > now {
            std::thread::sleep(t - now);
        }
    }

    /// The broker address of churn connection `n`.
    pub fn ws(&self, n: usize) -> SocketAddr {
        self.plan.ws(n)
    }
}
