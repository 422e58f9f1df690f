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

use tickwire_protocol::Selector;

use super::topics::{Quoting, TopicTable};
use crate::messages::{CatchUp, ConnId, Resume, ResumeFrom, SharedQuote, WorkerMsg};

/// Topics walked per slice: small enough that a slice costs the router and
/// the worker well under a millisecond each.
pub const SNAPSHOT_SLICE: usize = 256;
/// Quotes per slice: a resume or rewind sends up to `[history] size`
/// quotes per topic, so a slice also ends once it holds this many.
pub const SLICE_QUOTES: usize = 1_024;

/// The rest of one subscribe's catch-up: its snapshot, rewind or resume.
struct SnapshotJob {
    worker: usize,
    conn: ConnId,
    request: u32,
    /// Recovered topics of a `since` still to replay.
    replays: VecDeque<Resume>,
    /// Topics of a `since` not recovered, still to snapshot.
    unrecovered: VecDeque<Arc<str>>,
    /// Selectors left to walk, the current one first; disjoint, so no topic
    /// is collected twice.
    selectors: VecDeque<Selector>,
    /// The last topic walked under the current selector.
    after: Option<Arc<str>>,
    /// Quotes per walked topic: 1 the snapshot, more a rewind.
    depth: usize,
    /// The topics of the `since`: the walk leaves them out.
    resumed: HashSet<Arc<str>>,
    /// The topic table's accept count when the subscription went live.
    started: u64,
    /// A replay or rewind: slices of at most `window` frame bytes, each
    /// after the connection's credit (see `CatchUp::window`).
    paced: bool,
    window: usize,
    credit: bool,
}

/// Catch-ups still being collected, oldest first, one slice per round.
#[derive(Default)]
pub(super) struct SnapshotJobs {
    jobs: VecDeque<SnapshotJob>,
    /// The newest job's `started` (accept counts only grow): a topic
    /// accepted after it is up to date in every job.
    latest_started: u64,
}

/// What the router decided for a subscribe's catch-up: the first slice,
/// whether more follow, and the `since` topics not recovered.
pub(super) struct Started {
    pub first: Vec<Arc<SharedQuote>>,
    /// How many of `first` are a resume's replay (see `WorkerMsg`).
    pub replayed: usize,
    pub more: bool,
    pub unrecovered: Option<Vec<Arc<str>>>,
}

impl SnapshotJob {
    fn full(&self, walked: usize, quotes: &[Arc<SharedQuote>]) -> bool {
        walked == SNAPSHOT_SLICE
            || quotes.len() >= SLICE_QUOTES
            || (self.paced && bytes(quotes) >= self.window)
    }

    /// Whether `next` would take a paced slice past its window (a slice
    /// holds at least one quote).
    fn would_overflow(&self, quotes: &[Arc<SharedQuote>], next: &SharedQuote) -> bool {
        !quotes.is_empty()
            && (quotes.len() >= SLICE_QUOTES
                || (self.paced && bytes(quotes) + next.json_frame.len() > self.window))
    }

    /// Whether its next slice may go now.
    fn may_go(&self, keeps_up: &impl Fn(usize) -> bool) -> bool {
        keeps_up(self.worker) && (!self.paced || self.credit)
    }

    /// The next slice: the replays, the snapshots of unrecovered topics,
    /// then the walk's last values (or rewinds) of up to
    /// [`SNAPSHOT_SLICE`] topics in all, and whether any are left.
    /// (The replays lead: the second number says how many quotes they are.)
    fn slice(&mut self, topics: &TopicTable) -> (Vec<Arc<SharedQuote>>, usize, bool) {
        // Sized for the common request, a few exact topics (one snapshot
        // each), rather than grown a quote at a time.
        let few = self.replays.len() + self.unrecovered.len() + self.selectors.len();
        let mut quotes = Vec::with_capacity(few.min(SNAPSHOT_SLICE));
        let mut walked = 0;
        while let Some(r) = self.replays.front() {
            if self.full(walked, &quotes) {
                let replayed = quotes.len();
                return (quotes, replayed, true);
            }
            walked += 1;
            // Quote by quote: one topic's replay may span slices (it
            // resumes after the last seq sent).
            let mut rest = topics
                .resume_quotes(&r.topic, r.after, r.newest_only)
                .into_iter()
                .peekable();
            let mut last_sent = None;
            while let Some(q) = rest.next_if(|q| !self.would_overflow(&quotes, q)) {
                last_sent = Some(q.seq);
                quotes.push(q);
            }
            if rest.peek().is_some() {
                if let (Some(r), Some(seq)) = (self.replays.front_mut(), last_sent) {
                    r.after = seq;
                }
                let replayed = quotes.len();
                return (quotes, replayed, true);
            }
            self.replays.pop_front();
        }
        let replayed = quotes.len();
        while let Some(name) = self.unrecovered.front() {
            if self.full(walked, &quotes) {
                return (quotes, replayed, true);
            }
            walked += 1;
            quotes.extend(topics.snapshot(name, self.started));
            self.unrecovered.pop_front();
        }
        while let Some(selector) = self.selectors.front() {
            if let (Selector::Exact(name), None) = (selector, &self.after) {
                // One topic (most requests are a few of them): looked up
                // once, with no iterator. Counted as walked whether or not
                // it exists: a lookup either way.
                if self.full(walked, &quotes) {
                    return (quotes, replayed, true);
                }
                walked += 1;
                if !self.resumed.contains(&**name) {
                    if self.depth <= 1 {
                        quotes.extend(topics.snapshot(name, self.started));
                    } else {
                        quotes.extend(topics.rewind(name, self.depth, self.started));
                    }
                }
                self.selectors.pop_front();
                continue;
            }
            let mut last: Option<&Arc<str>> = None;
            for name in topics.names(selector, self.after.as_ref()) {
                if self.full(walked, &quotes) {
                    self.after = last.cloned();
                    return (quotes, replayed, true);
                }
                walked += 1;
                last = Some(name);
                if self.resumed.contains(name) {
                    continue;
                }
                if self.depth <= 1 {
                    quotes.extend(topics.snapshot(name, self.started));
                } else {
                    quotes.extend(topics.rewind(name, self.depth, self.started));
                }
            }
            self.selectors.pop_front();
            self.after = None;
        }
        (quotes, replayed, false)
    }

    /// Whether the walk has yet to reach `name` (one of its selectors
    /// matches it, beyond where the walk stands).
    fn walk_pending(&self, name: &str) -> bool {
        self.selectors.iter().enumerate().any(|(i, s)| {
            s.matches(name) && (i > 0 || self.after.as_deref().is_none_or(|a| name > a))
        }) && !self.resumed.contains(name)
    }

    /// `topic` gets its first quote since this job started: what the job
    /// still owes of it must reach the worker before that live quote (a
    /// replay or rewind is older). A snapshot is not owed: the live quote
    /// is newer and stands in for it (and for the newest-only resume).
    /// (With how many of them are a replay: all or none.)
    fn before_live(
        &mut self,
        name: &Arc<str>,
        topic: &Quoting<'_>,
    ) -> (Vec<Arc<SharedQuote>>, usize) {
        if let Some(i) = self.replays.iter().position(|r| r.topic == *name) {
            let owed = self.replays.remove(i);
            let quotes = match owed {
                Some(r) if !r.newest_only => topic.resume_quotes(r.after, false),
                _ => Vec::new(),
            };
            let replayed = quotes.len();
            return (quotes, replayed);
        }
        if self.depth > 1 && self.walk_pending(name) {
            return (topic.recent(self.depth), 0);
        }
        (Vec::new(), 0)
    }
}

impl SnapshotJobs {
    /// Starts the catch-up of a subscribe going live now: decides which
    /// `since` topics are recovered, and gives the first slice (sent with
    /// the activation); the rest is kept as a job.
    pub fn start(
        &mut self,
        worker: usize,
        conn: ConnId,
        request: u32,
        selectors: &[Selector],
        catch_up: CatchUp,
        topics: &TopicTable,
    ) -> Started {
        let had_since = catch_up.resumes();
        let epoch_matches = catch_up.epoch_matches;
        let mut resume = catch_up.resume;
        if let Some(from) = catch_up.resume_from {
            resume.extend(positions_at(selectors, from, epoch_matches, topics));
        }
        let resumed: HashSet<Arc<str>> = resume.iter().map(|r| r.topic.clone()).collect();
        let (replays, unrecovered): (Vec<Resume>, Vec<Resume>) = resume
            .into_iter()
            .partition(|r| epoch_matches && topics.resume_holds(&r.topic, r.after, r.newest_only));
        let replays = VecDeque::from(replays);
        let unrecovered: Vec<Arc<str>> = unrecovered.into_iter().map(|r| r.topic).collect();
        let depth = match (catch_up.snapshot, catch_up.rewind) {
            (false, _) => 0,
            (true, 0) => 1,
            (true, n) => usize::from(n),
        };
        let mut job = SnapshotJob {
            worker,
            conn,
            request,
            replays,
            unrecovered: if catch_up.snapshot {
                unrecovered.iter().cloned().collect()
            } else {
                VecDeque::new()
            },
            selectors: if depth == 0 {
                VecDeque::new()
            } else {
                disjoint_cover(selectors)
            },
            after: None,
            depth,
            resumed,
            started: topics.accepted(),
            paced: false,
            window: catch_up.window,
            credit: false,
        };
        job.paced = job.window > 0 && (!job.replays.is_empty() || job.depth > 1);
        let (first, replayed, more) = job.slice(topics);
        if more {
            self.latest_started = job.started;
            self.jobs.push_back(job);
        }
        Started {
            first,
            replayed,
            more,
            unrecovered: had_since.then_some(unrecovered),
        }
    }

    /// A quote of `name` is about to be accepted, the topic's first since
    /// `accepted_before`: the replays and rewinds owed to it by jobs
    /// started since, as messages for their workers, to send before the
    /// live quote. Cheap when no job started since (the usual case).
    pub fn before_live(
        &mut self,
        name: &Arc<str>,
        accepted_before: u64,
        topic: &Quoting<'_>,
    ) -> Vec<(usize, WorkerMsg)> {
        if self.jobs.is_empty() || accepted_before > self.latest_started {
            return Vec::new();
        }
        let mut owed = Vec::new();
        for job in self.jobs.iter_mut() {
            if job.started < accepted_before {
                continue;
            }
            let (quotes, replayed) = job.before_live(name, topic);
            if !quotes.is_empty() {
                let msg = WorkerMsg::Snapshots {
                    conn: job.conn,
                    request: job.request,
                    quotes,
                    replayed,
                    more: true,
                };
                owed.push((job.worker, msg));
            }
        }
        owed
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
            if !job.may_go(&keeps_up) {
                self.jobs.push_back(job);
                continue;
            }
            job.credit = false;
            let (quotes, replayed, more) = job.slice(topics);
            let (worker, conn, request) = (job.worker, job.conn, job.request);
            if more {
                self.jobs.push_back(job);
            }
            let msg = WorkerMsg::Snapshots {
                conn,
                request,
                quotes,
                replayed,
                more,
            };
            return Some((worker, msg));
        }
        None
    }

    /// Whether some job can go on now.
    pub fn ready(&self, keeps_up: impl Fn(usize) -> bool) -> bool {
        self.jobs.iter().any(|j| j.may_go(&keeps_up))
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// A worker stopped (its channel is closed): its jobs can never finish.
    pub fn worker_gone(&mut self, worker: usize) {
        self.jobs.retain(|j| j.worker != worker);
    }

    /// The connection has room for its job's next slice.
    pub fn credit(&mut self, worker: usize, conn: ConnId) {
        for job in self.jobs.iter_mut() {
            if job.worker == worker && job.conn == conn {
                job.credit = true;
            }
        }
    }

    /// Stops the job of a connection that went away.
    pub fn cancel(&mut self, worker: usize, conn: ConnId) {
        self.jobs
            .retain(|j| !(j.worker == worker && j.conn == conn));
    }
}

/// Every topic `selectors` match, as a resume from `from` (an SSE
/// `Last-Event-ID`): O(topics matched), at the activation, since the ack
/// names the unrecovered ones. A topic whose position history no longer
/// tells (or any, from another broker's stream: `valid` false) resumes
/// from past its newest seq, which the rules make unrecovered.
fn positions_at(
    selectors: &[Selector],
    from: ResumeFrom,
    valid: bool,
    topics: &TopicTable,
) -> Vec<Resume> {
    let mut out = Vec::new();
    for selector in disjoint_cover(selectors) {
        for name in topics.names(&selector, None) {
            let position = valid
                .then(|| topics.position_at(name, from.accepted))
                .flatten();
            out.push(Resume {
                topic: name.clone(),
                after: position.unwrap_or(u64::MAX),
                newest_only: from.newest_only,
            });
        }
    }
    out
}

/// Frame bytes of a slice (the JSON frames: the larger format).
fn bytes(quotes: &[Arc<SharedQuote>]) -> usize {
    quotes.iter().map(|q| q.json_frame.len()).sum()
}

mod cover;

use cover::disjoint_cover;

#[cfg(test)]
mod tests;
