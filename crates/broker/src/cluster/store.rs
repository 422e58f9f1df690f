//! What outlives a broker, in JetStream: a stream over every quote subject
//! keeping the newest `history_size` messages per subject (the cluster's
//! newest quote and `seq` of each topic, and its history), and a key-value
//! bucket holding the cluster `epoch`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::Client;
use futures_util::StreamExt;
use tickwire_protocol::cluster::{self, ClusterQuote};

use crate::config::ClusterConfig;

const EPOCH_KEY: &str = "epoch";
/// Stored quotes handed on per call of the callback.
const LOAD_BATCH: usize = 1_024;
/// A stored-quote read that makes no progress for this long gives up.
const READ_STALL: Duration = Duration::from_secs(5);
/// A history read's consumer, if its deletion does not reach the server,
/// is dropped by the server after this long idle.
const HISTORY_CONSUMER_IDLE: Duration = Duration::from_secs(5);
/// Messages asked for in one pull of a history read.
const HISTORY_PULL: usize = 1_024;

#[derive(Clone)]
pub struct Store {
    stream: stream::Stream,
    kv: kv::Store,
}

impl Store {
    /// Creates the stream and the bucket if this is the cluster's first
    /// broker; otherwise binds to them (same config: idempotent), and sets
    /// the stream's messages per subject to this broker's `history_size`
    /// when it differs (a stream made by an older broker keeps 1).
    pub async fn open(client: Client, config: &ClusterConfig) -> Result<Store, String> {
        let js = jetstream::new(client);
        let per_subject = config.history_size.max(1) as i64;
        let stream_config = stream::Config {
            name: config.stream_name(),
            subjects: vec![cluster::all_subjects(&config.subject_prefix)],
            max_messages_per_subject: per_subject,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            allow_direct: true,
            ..Default::default()
        };
        let stream = js
            .get_or_create_stream(stream_config)
            .await
            .map_err(|e| format!("stream {}: {e}", config.stream_name()))?;
        let stored = stream.cached_info().config.max_messages_per_subject;
        if stored != per_subject {
            // The server's own config with the one limit changed: an update
            // may not change most other settings, and a 2.9 server is given
            // back only what it sent.
            let mut updated = stream.cached_info().config.clone();
            updated.max_messages_per_subject = per_subject;
            match js.update_stream(&updated).await {
                Ok(_) => tracing::info!(
                    stream = %config.stream_name(),
                    from = stored,
                    to = per_subject,
                    "cluster stream now keeps this many quotes per topic"
                ),
                // The link works without it; only the history is shorter.
                Err(e) => tracing::warn!(
                    stream = %config.stream_name(),
                    kept = stored,
                    wanted = per_subject,
                    error = %e,
                    "cluster stream's quotes per topic cannot be changed"
                ),
            }
        }
        // The bucket's stream is made here rather than by
        // `create_key_value`, whose account-info call cannot parse a 2.9
        // server's answer; the config is what that call would create.
        let bucket = config.bucket_name();
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("bucket {bucket}: {e}"))?;
        let kv = js
            .get_key_value(&bucket)
            .await
            .map_err(|e| format!("bucket {bucket}: {e}"))?;
        Ok(Store { stream, kv })
    }

    /// The cluster's epoch: the first broker to ask creates it (an atomic
    /// create, so two brokers starting together agree), the rest read it.
    pub async fn epoch(&self) -> Result<String, String> {
        let fresh = crate::epoch::new_epoch();
        match self.kv.create(EPOCH_KEY, fresh.clone().into()).await {
            Ok(_) => return Ok(fresh),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("epoch: {e}")),
        }
        match self.kv.get(EPOCH_KEY).await {
            Ok(Some(bytes)) => String::from_utf8(bytes.to_vec())
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 64)
                .ok_or_else(|| "epoch: stored value is not a short string".into()),
            Ok(None) => Err("epoch: deleted meanwhile; retrying".into()),
            Err(e) => Err(format!("epoch: {e}")),
        }
    }

    /// The newest stored quote of every topic under `subject` (a topic's
    /// subject or a `>` wildcard), handed to `each` in batches. Reads an
    /// ordered consumer delivering the last message per subject, until the
    /// server says nothing is pending.
    pub async fn newest_per_topic(
        &self,
        subject: &str,
        mut each: impl FnMut(Vec<ClusterQuote>),
    ) -> Result<(), String> {
        if !subject.ends_with('>') {
            // One topic: a single get, no consumer for the server to set up
            // (a broker follows every topic it ingests, so these are many).
            return match self.stream.get_last_raw_message_by_subject(subject).await {
                Ok(message) => {
                    if let Ok(q) = cluster::decode(&message.payload) {
                        each(vec![q]);
                    }
                    Ok(())
                }
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(()),
                Err(e) => Err(format!("last of {subject}: {e}")),
            };
        }
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject.to_owned(),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("consumer on {subject}: {e}"))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| format!("reading {subject}: {e}"))?;
        let mut batch = Vec::new();
        loop {
            let next = tokio::time::timeout(READ_STALL, messages.next()).await;
            let message = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(format!("reading {subject}: {e}")),
                Ok(None) => break,
                Err(_) => return Err(format!("reading {subject}: stalled")),
            };
            let pending = message.info().map(|i| i.pending).unwrap_or(0);
            // A message that does not decode is skipped (counted when live).
            if let Ok(q) = cluster::decode(&message.payload) {
                batch.push(q);
            }
            if batch.len() >= LOAD_BATCH {
                each(std::mem::take(&mut batch));
            }
            if pending == 0 {
                break;
            }
        }
        if !batch.is_empty() {
            each(batch);
        }
        Ok(())
    }

    /// The newest stored message of one subject (a topic's): its stream
    /// sequence and payload, undecoded. One get, no consumer.
    pub async fn newest_of_subject(&self, subject: &str) -> Result<Option<(u64, Vec<u8>)>, String> {
        match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => Ok(Some((message.sequence, message.payload.to_vec()))),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(format!("last of {subject}: {e}")),
        }
    }

    /// The stream sequence of the oldest message stored now, and how many
    /// subjects (topics) the stream holds.
    pub async fn shape(&self) -> Result<(u64, u64), String> {
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| format!("stream info: {e}"))?;
        Ok((info.state.first_sequence, info.state.subjects_count))
    }

    /// Every stored message of one subject (a topic's) from stream
    /// sequence `from` on, oldest first, handed to `each` undecoded: an
    /// ephemeral consumer filtered on the subject, read by no-wait pulls
    /// up to what the server counted pending when it was made (a busy
    /// topic's newer quotes are live, not history). The consumer is
    /// deleted afterwards.
    pub async fn read_subject(
        &self,
        subject: &str,
        from: u64,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        let consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                filter_subject: subject.to_owned(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: HISTORY_CONSUMER_IDLE,
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("consumer on {subject}: {e}"))?;
        let name = consumer.cached_info().name.clone();
        let mut left = consumer.cached_info().num_pending as usize;
        let result = async {
            while left > 0 {
                let mut messages = consumer
                    .fetch()
                    .max_messages(left.min(HISTORY_PULL))
                    .messages()
                    .await
                    .map_err(|e| format!("reading {subject}: {e}"))?;
                let mut got = 0;
                while let Some(message) = messages.next().await {
                    let message = message.map_err(|e| format!("reading {subject}: {e}"))?;
                    each(&message.payload);
                    got += 1;
                }
                if got == 0 {
                    // Fewer than counted: older ones were replaced meanwhile.
                    break;
                }
                left = left.saturating_sub(got);
            }
            Ok(())
        }
        .await;
        let stream = self.stream.clone();
        tokio::spawn(async move {
            let _ = stream.delete_consumer(&name).await;
        });
        result
    }
}
