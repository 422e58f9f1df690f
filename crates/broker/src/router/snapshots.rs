//! Snapshots collected in slices. A `*` over 100,000 topics is 100,000 last
//! values to collect and then to queue on the connection; done at once it
//! stalls every other client for tens of milliseconds. So the router answers
//! a subscribe with at most [`SNAPSHOT_SLICE`] topics in its activation and
//! walks the rest one slice per loop round, between ingest batches: live
//! quotes wait for one slice at most, never for the whole snapshot.
//!
//! Why slices keep the contract ("a live quote of a topic never arrives
//! before that topic's snapshot"): the subscription is live from its
//! activation, so a topic that gets a quote while its slice has not been
//! walked yet reaches the connection as that live quote — the newest value,
//! exactly what its snapshot would have been. A slice therefore leaves out
//! every topic accepted since the activation (`Topic::accepted` against
//! `SnapshotJob::started`), and the client sees one first quote per topic,
//! never an older one after a newer.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tickwire_protocol::{PrefixIndex, Selector};

use super::Router;
use crate::messages::{ConnId, SharedQuote, WorkerMsg};

/// Topics walked per slice: small enough that a slice costs the router and
/// the worker well under a millisecond each.
pub const SNAPSHOT_SLICE: usize = 256;

/// The rest of one subscribe's snapshot.
pub struct SnapshotJob {
    pub worker: usize,
    pub conn: ConnId,
    pub request: u32,
    /// Selectors left to walk, the current one first; disjoint, so no topic
    /// is collected twice.
    selectors: VecDeque<Selector>,
    /// The last topic walked under the current selector.
    after: Option<Arc<str>>,
    /// The router's accept count when the subscription went live.
    started: u64,
}

impl SnapshotJob {
    pub fn new(
        worker: usize,
        conn: ConnId,
        request: u32,
        selectors: &[Selector],
        started: u64,
    ) -> SnapshotJob {
        SnapshotJob {
            worker,
            conn,
            request,
            selectors: disjoint_cover(selectors),
            after: None,
            started,
        }
    }
}

impl Router {
    /// The next slice of `job`'s snapshot: the last values of up to
    /// [`SNAPSHOT_SLICE`] topics walked, and whether any are left.
    pub(super) fn snapshot_slice(&self, job: &mut SnapshotJob) -> (Vec<Arc<SharedQuote>>, bool) {
        let mut quotes = Vec::new();
        let mut walked = 0;
        while let Some(selector) = job.selectors.front() {
            let keys: Box<dyn Iterator<Item = &Arc<str>>> = match (selector, &job.after) {
                (Selector::Prefix(prefix), Some(after)) => {
                    self.topics.keys_under_after(prefix, after)
                }
                _ => self.topics.keys_matched(selector),
            };
            let mut last: Option<&Arc<str>> = None;
            for name in keys {
                if walked == SNAPSHOT_SLICE {
                    job.after = last.cloned();
                    return (quotes, true);
                }
                walked += 1;
                last = Some(name);
                let Some(topic) = self.topics.exact(name) else {
                    continue;
                };
                if topic.accepted <= job.started {
                    quotes.extend(topic.last.clone());
                }
            }
            job.selectors.pop_front();
            job.after = None;
        }
        (quotes, false)
    }

    /// Sends one slice of the oldest snapshot job whose worker keeps up; a
    /// worker that is behind gets no more snapshot until it catches up.
    pub(super) fn advance_snapshots(&mut self) {
        for _ in 0..self.jobs.len() {
            let Some(mut job) = self.jobs.pop_front() else {
                return;
            };
            if !self.worker_keeps_up(job.worker) {
                self.jobs.push_back(job);
                continue;
            }
            let (quotes, more) = self.snapshot_slice(&mut job);
            let (worker, conn, request) = (job.worker, job.conn, job.request);
            if more {
                self.jobs.push_back(job);
            }
            // Quotes numbered before this slice go first, as for an
            // activation.
            self.send_pending(worker);
            self.slice_sent(worker);
            self.send(
                worker,
                WorkerMsg::Snapshots {
                    conn,
                    request,
                    quotes,
                    more,
                },
            );
            return;
        }
    }

    /// Whether some snapshot job can go on now.
    pub(super) fn snapshots_ready(&self) -> bool {
        self.jobs.iter().any(|j| self.worker_keeps_up(j.worker))
    }

    /// A worker keeps up when nothing waits for room in its queue and it
    /// has handled the last slice it was sent: slices go one at a time, at
    /// the pace the worker takes them, never piling up ahead of live quotes.
    fn worker_keeps_up(&self, worker: usize) -> bool {
        self.outboxes.get(worker).is_some_and(|o| o.is_empty())
            && self
                .workers
                .get(worker)
                .is_some_and(|w| w.slices_queued.load(Ordering::Acquire) == 0)
    }

    /// Counts a slice (or an activation with more to come) sent to `worker`.
    pub(super) fn slice_sent(&self, worker: usize) {
        if let Some(link) = self.workers.get(worker) {
            link.slices_queued.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A worker stopped (its channel is closed): its jobs can never finish.
    pub(super) fn worker_gone(&mut self, worker: usize) {
        self.jobs.retain(|j| j.worker != worker);
    }

    /// Stops the job of a connection that went away.
    pub(super) fn cancel_snapshots(&mut self, worker: usize, conn: ConnId) {
        self.jobs
            .retain(|j| !(j.worker == worker && j.conn == conn));
    }
}

/// The request's selectors without those another one covers (`AAPL` and
/// `AA*` under `A*`) or repeats: what is left matches disjoint sets of
/// topics, since two prefixes neither of which starts the other share no
/// topic.
fn disjoint_cover(selectors: &[Selector]) -> VecDeque<Selector> {
    let mut prefixes = PrefixIndex::new();
    for selector in selectors {
        if let Selector::Prefix(_) = selector {
            prefixes.insert(selector, ());
        }
    }
    let mut seen = HashSet::new();
    selectors
        .iter()
        .filter(|selector| match selector {
            Selector::Exact(topic) => !prefixes.matches(topic),
            // A stored prefix shorter than this one that starts it.
            Selector::Prefix(prefix) => !prefixes
                .matching(prefix)
                .any(|(key, _)| key.len() <= prefix.len()),
        })
        .filter(|selector| seen.insert(*selector))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn the_cover_drops_covered_and_repeated_selectors() {
        let request: Vec<Selector> = ["AAPL", "A*", "AA*", "MSFT", "MSFT", "B*", "*X", "BC"]
            .iter()
            .filter_map(|s| Selector::parse(s))
            .collect();
        let cover: Vec<Selector> = disjoint_cover(&request).into_iter().collect();
        assert_eq!(cover, [sel("A*"), sel("MSFT"), sel("B*")]);
        let everything = [sel("AAPL"), sel("*"), sel("Z*")];
        assert_eq!(disjoint_cover(&everything), [sel("*")]);
    }
}
