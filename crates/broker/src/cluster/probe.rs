//! Probes: a topic's first quote through this broker asks the stream for
//! the topic's stored quote, so numbering continues another broker's when a
//! feed moves here. Until the answer comes, that topic's quotes are held
//! back from NATS: published first, they would replace the stored quote the
//! probe is reading (the stream keeps the *last* message per subject) with
//! one numbered from this broker's stale count. When the answer comes, held
//! quotes numbered above the stored one go out; the rest are stale for
//! every other broker and are dropped (counted as not published).

use std::collections::HashMap;
use std::sync::Arc;

use tickwire_protocol::cluster::{self, ClusterQuote};
use tokio::sync::mpsc;

use super::link::{send_stored, Shared, RECEIVE_BATCH};
use super::store::Store;
use super::Publish;
use crate::metrics;

/// Quotes held per topic while its probe runs; past it the oldest are
/// dropped (a probe takes one NATS round trip).
const HELD_PER_TOPIC: usize = 256;
/// Above this many topics in one probe, one scan of the stream replaces a
/// get per topic.
const SCAN_ABOVE: usize = 512;

/// A probe's answer: the topic and the seq stored for it (0: none, or the
/// probe failed).
pub struct Answer {
    pub topic: Arc<str>,
    pub stored_seq: u64,
}

pub struct Probes {
    held: HashMap<Arc<str>, Vec<Publish>>,
    answers_tx: mpsc::UnboundedSender<Answer>,
    answers: Option<mpsc::UnboundedReceiver<Answer>>,
}

impl Probes {
    pub fn new() -> Probes {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        Probes {
            held: HashMap::new(),
            answers_tx,
            answers: Some(answers),
        }
    }

    /// The answers, for the event loop to select on (taken once).
    pub fn take_answers(&mut self) -> mpsc::UnboundedReceiver<Answer> {
        self.answers
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    /// Starts probing `topics` in the background; their quotes are held
    /// from now on.
    pub fn start(&mut self, topics: Vec<Arc<str>>, store: Store, shared: Arc<Shared>) {
        for topic in &topics {
            self.held.entry(topic.clone()).or_default();
        }
        let answers = self.answers_tx.clone();
        tokio::spawn(async move {
            let stored = if topics.len() > SCAN_ABOVE {
                scan(&topics, &store, &shared).await
            } else {
                get_each(&topics, &store, &shared).await
            };
            let mut found = Vec::new();
            for (topic, quote) in topics.into_iter().zip(stored) {
                let stored_seq = quote.as_ref().map_or(0, |q| q.seq);
                found.extend(quote);
                let _ = answers.send(Answer { topic, stored_seq });
                if found.len() >= RECEIVE_BATCH {
                    let quotes = std::mem::take(&mut found);
                    send_stored(&shared, quotes).await;
                }
            }
            if !found.is_empty() {
                send_stored(&shared, found).await;
            }
        });
    }

    /// Returns the quote when it may go out now; holds it while its topic
    /// is being probed.
    pub fn hold(&mut self, p: Publish, shared: &Shared) -> Option<Publish> {
        let Some(held) = self.held.get_mut(&p.topic) else {
            return Some(p);
        };
        if held.len() >= HELD_PER_TOPIC {
            held.remove(0);
            metrics::add(&shared.metrics.cluster.publish_dropped, 1);
        }
        held.push(p);
        None
    }

    /// The quotes to publish now that `answer` came: those numbered above
    /// the stored seq.
    pub fn release(&mut self, answer: Answer, shared: &Shared) -> Vec<Publish> {
        let held = self.held.remove(&answer.topic).unwrap_or_default();
        let (go, stale): (Vec<Publish>, Vec<Publish>) =
            held.into_iter().partition(|p| p.seq > answer.stored_seq);
        metrics::add(&shared.metrics.cluster.publish_dropped, stale.len() as u64);
        go
    }

    /// The link went down: nothing will answer; what was held goes out
    /// (or is dropped as the link is down) as it is.
    pub fn release_all(&mut self) -> Vec<Publish> {
        self.held.drain().flat_map(|(_, held)| held).collect()
    }
}

/// The stored quote of each topic (another broker's; ours says nothing
/// new), by one get per topic: a round trip each.
async fn get_each(
    topics: &[Arc<str>],
    store: &Store,
    shared: &Shared,
) -> Vec<Option<ClusterQuote>> {
    let prefix = &shared.config.subject_prefix;
    let mut stored = Vec::with_capacity(topics.len());
    for topic in topics {
        let subject = cluster::topic_subject(prefix, topic);
        let mut newest = None;
        let result = store
            .newest_per_topic(&subject, |quotes| newest = quotes.into_iter().last())
            .await;
        if let Err(problem) = result {
            tracing::debug!(%subject, %problem, "cluster probe failed; publishing as is");
        }
        stored.push(newest.filter(|q| q.origin != shared.origin));
    }
    stored
}

/// The same for many topics at once (a feed starting up): one read of
/// every stored quote, about a second per 100,000 topics, instead of a
/// round trip per topic (about ten times as long).
async fn scan(topics: &[Arc<str>], store: &Store, shared: &Shared) -> Vec<Option<ClusterQuote>> {
    let wanted: HashMap<&str, usize> = topics.iter().enumerate().map(|(i, t)| (&**t, i)).collect();
    let mut stored: Vec<Option<ClusterQuote>> = vec![None; topics.len()];
    let all = cluster::all_subjects(&shared.config.subject_prefix);
    let result = store
        .newest_per_topic(&all, |quotes| {
            for q in quotes {
                if let Some(&i) = wanted.get(q.quote.topic.as_str()) {
                    if q.origin != shared.origin {
                        stored[i] = Some(q);
                    }
                }
            }
        })
        .await;
    if let Err(problem) = result {
        tracing::debug!(%problem, "cluster probe scan failed; publishing as is");
    }
    stored
}
