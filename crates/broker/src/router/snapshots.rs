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
//! every topic accepted since the activation (the topic table's accept
//! counter, see `TopicTable::snapshot`), and the client sees one first
//! quote per topic, never an older one after a newer.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tickwire_protocol::{PrefixIndex, Selector};

use super::topics::TopicTable;
use crate::messages::{ConnId, SharedQuote, WorkerMsg};

/// Topics walked per slice: small enough that a slice costs the router and
/// the worker well under a millisecond each.
pub const SNAPSHOT_SLICE: usize = 256;

/// The rest of one subscribe's snapshot.
struct SnapshotJob {
    worker: usize,
    conn: ConnId,
    request: u32,
    /// Selectors left to walk, the current one first; disjoint, so no topic
    /// is collected twice.
    selectors: VecDeque<Selector>,
    /// The last topic walked under the current selector.
    after: Option<Arc<str>>,
    /// The topic table's accept count when the subscription went live.
    started: u64,
}

/// Snapshots still being collected, oldest first, one slice per round.
#[derive(Default)]
pub(super) struct SnapshotJobs {
    jobs: VecDeque<SnapshotJob>,
}

impl SnapshotJob {
    /// The next slice: the last values of up to [`SNAPSHOT_SLICE`] topics
    /// walked, and whether any are left.
    fn slice(&mut self, topics: &TopicTable) -> (Vec<Arc<SharedQuote>>, bool) {
        let mut quotes = Vec::new();
        let mut walked = 0;
        while let Some(selector) = self.selectors.front() {
            let mut last: Option<&Arc<str>> = None;
            for name in topics.names(selector, self.after.as_ref()) {
                if walked == SNAPSHOT_SLICE {
                    self.after = last.cloned();
                    return (quotes, true);
                }
                walked += 1;
                last = Some(name);
                quotes.extend(topics.snapshot(name, self.started));
            }
            self.selectors.pop_front();
            self.after = None;
        }
        (quotes, false)
    }
}

impl SnapshotJobs {
    /// Starts the snapshot of a subscribe going live now: its first slice
    /// (sent with the activation) and whether more follow; the rest is kept
    /// as a job.
    pub fn start(
        &mut self,
        worker: usize,
        conn: ConnId,
        request: u32,
        selectors: &[Selector],
        topics: &TopicTable,
    ) -> (Vec<Arc<SharedQuote>>, bool) {
        let mut job = SnapshotJob {
            worker,
            conn,
            request,
            selectors: disjoint_cover(selectors),
            after: None,
            started: topics.accepted(),
        };
        let (first, more) = job.slice(topics);
        if more {
            self.jobs.push_back(job);
        }
        (first, more)
    }

    /// One slice of the oldest job whose worker keeps up, as the message for
    /// that worker; a worker that is behind gets no more snapshot until it
    /// catches up (its jobs go to the back meanwhile).
    pub fn next_slice(
        &mut self,
        topics: &TopicTable,
        keeps_up: impl Fn(usize) -> bool,
    ) -> Option<(usize, WorkerMsg)> {
        for _ in 0..self.jobs.len() {
            let mut job = self.jobs.pop_front()?;
            if !keeps_up(job.worker) {
                self.jobs.push_back(job);
                continue;
            }
            let (quotes, more) = job.slice(topics);
            let (worker, conn, request) = (job.worker, job.conn, job.request);
            if more {
                self.jobs.push_back(job);
            }
            let msg = WorkerMsg::Snapshots {
                conn,
                request,
                quotes,
                more,
            };
            return Some((worker, msg));
        }
        None
    }

    /// Whether some job can go on now.
    pub fn ready(&self, keeps_up: impl Fn(usize) -> bool) -> bool {
        self.jobs.iter().any(|j| keeps_up(j.worker))
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// A worker stopped (its channel is closed): its jobs can never finish.
    pub fn worker_gone(&mut self, worker: usize) {
        self.jobs.retain(|j| j.worker != worker);
    }

    /// Stops the job of a connection that went away.
    pub fn cancel(&mut self, worker: usize, conn: ConnId) {
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
    use crate::router::topics::quote_all;

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

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("T.{i:04}")).collect()
    }

    fn table(names: &[String]) -> TopicTable {
        let mut table = TopicTable::new(10_000, Default::default());
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        quote_all(&mut table, &all);
        table
    }

    fn slice_topics(msg: &WorkerMsg) -> (Vec<String>, bool) {
        match msg {
            WorkerMsg::Snapshots { quotes, more, .. } => {
                (quotes.iter().map(|q| q.topic.to_string()).collect(), *more)
            }
            _ => panic!("a slice expected"),
        }
    }

    const CONN: ConnId = ConnId { slot: 3, serial: 1 };

    /// Slices walk the topics in order, each at most once, and leave out
    /// those accepted since the subscription went live (they reach the
    /// worker live instead).
    #[test]
    fn a_job_yields_ordered_slices_without_topics_accepted_since() {
        let all = names(600);
        let mut topics = table(&all);
        let mut jobs = SnapshotJobs::default();
        let (first, more) = jobs.start(0, CONN, 9, &[sel("T.*"), sel("T.0001")], &topics);
        assert_eq!(first.len(), SNAPSHOT_SLICE);
        assert!(more && !jobs.is_empty());
        quote_all(&mut topics, &["T.0100", "T.0300", "T.0599"]);

        let mut got: Vec<String> = first.iter().map(|q| q.topic.to_string()).collect();
        loop {
            let (worker, msg) = jobs.next_slice(&topics, |_| true).expect("a slice");
            assert_eq!(worker, 0);
            let (slice, more) = slice_topics(&msg);
            got.extend(slice);
            if !more {
                break;
            }
        }
        assert!(jobs.is_empty());
        let expected: Vec<&String> = all
            .iter()
            .filter(|t| !["T.0300", "T.0599"].contains(&t.as_str()))
            .collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            expected,
            "T.0100 was in the first slice"
        );
    }

    #[test]
    fn a_worker_behind_waits_and_cancelled_or_gone_jobs_stop() {
        let topics = table(&names(1000));
        let mut jobs = SnapshotJobs::default();
        let other = ConnId { slot: 4, serial: 1 };
        assert!(jobs.start(0, CONN, 1, &[sel("*")], &topics).1);
        assert!(jobs.start(1, other, 2, &[sel("*")], &topics).1);
        assert!(jobs.start(1, CONN, 3, &[sel("*")], &topics).1);
        let behind = |w: usize| w != 0;
        assert!(jobs.ready(behind));
        assert!(!jobs.ready(|_| false));
        assert!(jobs.next_slice(&topics, |_| false).is_none());
        // Worker 0 is behind: worker 1's oldest job goes.
        let (worker, msg) = jobs.next_slice(&topics, behind).unwrap();
        assert!(worker == 1 && matches!(msg, WorkerMsg::Snapshots { request: 2, .. }));

        jobs.cancel(1, CONN);
        jobs.cancel(0, other);
        jobs.worker_gone(1);
        assert!(!jobs.ready(behind), "only worker 0's job is left");
        let (worker, _) = jobs.next_slice(&topics, |_| true).unwrap();
        assert_eq!(worker, 0);
        jobs.worker_gone(0);
        assert!(jobs.is_empty());
    }
}
