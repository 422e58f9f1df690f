//! History: the stored quotes of some topics after a seq each, read from
//! the stream (it keeps `history_size` messages per subject) for a client
//! resuming with `since` on any broker.
//!
//! Each [`LinkCmd::History`](super::LinkCmd::History) is answered exactly
//! once, by one [`LinkEvent::History`], within `fetch_timeout_ms`: a task
//! on the link's runtime reads the topics concurrently (at most
//! [`READS_AT_ONCE`] reads in flight over all commands), so live quotes,
//! watches and probes go on meanwhile. A topic is answered whole or not at
//! all: one whose read failed or did not finish in time contributes
//! nothing, and the answer carries the topics that were read.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use futures_util::StreamExt;
use tickwire_protocol::cluster::{self, ClusterQuote};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use super::link::{send_patiently, Shared};
use super::store::Store;
use super::LinkEvent;
use crate::config::ms;

/// Topics of one command read, at most; the rest are not (the router sends
/// no more: a `since` has at most 1,024 keys).
pub const MAX_TOPICS: usize = 1_024;
/// Topic reads in flight at once, over every command.
pub const READS_AT_ONCE: usize = 16;

/// The bound shared by every history read of one link.
pub fn reads_bound() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(READS_AT_ONCE))
}

/// Reads the history of `wants` in the background and answers `ticket`
/// (at once, empty, while the link is not up).
pub fn start(
    store: Option<Store>,
    ticket: u64,
    wants: Vec<(Arc<str>, u64)>,
    shared: &Arc<Shared>,
    bound: &Arc<Semaphore>,
) {
    let deadline = Instant::now() + ms(shared.config.fetch_timeout_ms);
    let shared = shared.clone();
    let bound = bound.clone();
    let store = store.filter(|_| shared.metrics.cluster.is_up());
    tokio::spawn(async move {
        let quotes = match store {
            Some(store) => read(&store, ticket, wants, deadline, &shared, &bound).await,
            None => {
                tracing::debug!(ticket, "cluster history asked while the link is down; none");
                Vec::new()
            }
        };
        send_patiently(&shared, LinkEvent::History { ticket, quotes }).await;
    });
}

/// Every topic's quotes above its seq, topic after topic in the order
/// asked; what was read by `deadline`.
async fn read(
    store: &Store,
    ticket: u64,
    mut wants: Vec<(Arc<str>, u64)>,
    deadline: Instant,
    shared: &Shared,
    bound: &Arc<Semaphore>,
) -> Vec<ClusterQuote> {
    let limit = shared.config.history_size;
    let asked = wants.len();
    let mut seen = HashSet::with_capacity(asked);
    wants.retain(|(topic, _)| seen.insert(topic.clone()));
    let left_out = wants.len().saturating_sub(MAX_TOPICS);
    wants.truncate(MAX_TOPICS);
    if limit == 0 || wants.is_empty() {
        return Vec::new();
    }
    let topics = wants.len();
    let mut answers: Vec<Option<Vec<ClusterQuote>>> = vec![None; topics];
    // The stream's first seq and subject count: asked once per command, by
    // the first topic that needs them.
    let shape = OnceCell::new();
    let shape = &shape;
    let mut reads = futures_util::stream::iter(wants.into_iter().enumerate())
        .map(|(i, (topic, after))| async move {
            // Closed never: the semaphore lives as long as the link.
            let _permit = bound.acquire().await;
            let read = read_topic(store, &topic, after, limit, shape, shared);
            (i, read.await)
        })
        .buffer_unordered(READS_AT_ONCE);
    let (mut failed, mut problem, mut timed_out) = (0usize, None, false);
    loop {
        match tokio::time::timeout_at(deadline, reads.next()).await {
            Ok(Some((i, Ok(quotes)))) => answers[i] = Some(quotes),
            Ok(Some((_, Err(p)))) => {
                failed += 1;
                problem.get_or_insert(p);
            }
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    // Reads still running end here (their consumers expire on the server).
    drop(reads);
    let read = answers.iter().filter(|a| a.is_some()).count();
    if timed_out || failed > 0 || left_out > 0 {
        tracing::warn!(
            ticket,
            asked,
            topics,
            left_out,
            read,
            failed,
            timed_out,
            problem = problem.as_deref().unwrap_or("-"),
            "cluster history incomplete; answering with the topics read"
        );
    }
    answers.into_iter().flatten().flatten().collect()
}

/// One topic's stored quotes above `after`, ascending, the newest `limit`.
/// In stream order, a quote not above every earlier one is left out (the
/// losing side of two brokers publishing one topic: no broker delivered
/// it after the higher one), so the seqs rise.
///
/// The newest stored quote is read first (one get): a topic with none,
/// none above `after`, or only the one right after it (a topic's seqs rise
/// in the stream, so nothing before it is above `after`) needs no
/// consumer. Otherwise a consumer filtered on the topic's subject reads
/// the stream from some point on. A 2.9 server finds a subject's messages
/// by reading every message of the stream after that point (of every
/// topic), so the point matters: for `k` quotes wanted (by seq), fewer
/// than `limit`, the read starts `k + 1` messages per topic stored before
/// the newest, and starts twice as far back until its first quote is not
/// above `after` (a feed that moved skips seqs), it holds `limit` quotes,
/// or it is the whole stream; for more, the whole stream is read once
/// (the server skips whole blocks without the subject).
async fn read_topic(
    store: &Store,
    topic: &str,
    after: u64,
    limit: usize,
    shape: &OnceCell<(u64, u64)>,
    shared: &Shared,
) -> Result<Vec<ClusterQuote>, String> {
    let subject = cluster::topic_subject(&shared.config.subject_prefix, topic);
    let Some((newest_at, newest)) = store.newest_of_subject(&subject).await? else {
        return Ok(Vec::new());
    };
    // One that does not decode is counted by the read below.
    let mut wanted = u64::MAX;
    if let Ok(q) = cluster::decode(&newest) {
        if q.quote.topic == topic {
            if q.seq <= after {
                return Ok(Vec::new());
            }
            if q.seq - 1 == after {
                return Ok(vec![q]);
            }
            wanted = q.seq - after;
        }
    }
    let (first_seq, subjects) = *shape.get_or_try_init(|| store.shape()).await?;
    let mut from = match wanted < limit as u64 {
        true => newest_at.saturating_sub((wanted + 1).saturating_mul(subjects.max(1))),
        false => first_seq,
    };
    loop {
        let whole = from <= first_seq;
        let mut read = Read {
            topic,
            after,
            limit,
            ..Read::default()
        };
        store
            .read_subject(&subject, from.max(first_seq), |payload| read.take(payload))
            .await?;
        let complete = read.first.is_some_and(|seq| seq <= after) || read.kept.len() >= limit;
        if whole || complete {
            if read.invalid > 0 {
                invalid(shared, &subject, read.invalid, read.error);
            }
            return Ok(read.kept.into());
        }
        from = newest_at.saturating_sub((newest_at - from).saturating_mul(2));
    }
}

/// One read of a topic's stored quotes.
#[derive(Default)]
struct Read<'a> {
    topic: &'a str,
    after: u64,
    limit: usize,
    /// The seq of the first quote read.
    first: Option<u64>,
    /// The highest seq read so far.
    top: u64,
    kept: VecDeque<ClusterQuote>,
    invalid: u64,
    error: Option<String>,
}

impl Read<'_> {
    fn take(&mut self, payload: &[u8]) {
        match cluster::decode(payload) {
            Ok(q) if q.quote.topic == self.topic => {
                self.first.get_or_insert(q.seq);
                if q.seq > self.top {
                    self.top = q.seq;
                    if q.seq > self.after {
                        if self.kept.len() == self.limit {
                            self.kept.pop_front();
                        }
                        self.kept.push_back(q);
                    }
                }
            }
            other => {
                self.invalid += 1;
                self.error.get_or_insert_with(|| match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "its topic is not its subject's".into(),
                });
            }
        }
    }
}

/// Counts stored messages that do not decode (warned at the first, like
/// live ones).
fn invalid(shared: &Shared, subject: &str, n: u64, error: Option<String>) {
    if shared.metrics.cluster.invalid.fetch_add(n, Relaxed) == 0 {
        let error = error.unwrap_or_default();
        tracing::warn!(%subject, %error, "stored cluster message does not decode (first of its kind; counted)");
    }
}
