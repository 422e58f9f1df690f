//! What outlives a broker, in JetStream: a stream over every quote subject
//! keeping one message per subject (the cluster's newest quote and `seq` of
//! each topic), and a key-value bucket holding the cluster `epoch`.

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

#[derive(Clone)]
pub struct Store {
    stream: stream::Stream,
    kv: kv::Store,
}

impl Store {
    /// Creates the stream and the bucket if this is the cluster's first
    /// broker; otherwise binds to them (same config: idempotent).
    pub async fn open(client: Client, config: &ClusterConfig) -> Result<Store, String> {
        let js = jetstream::new(client);
        let stream_config = stream::Config {
            name: config.stream_name(),
            subjects: vec![cluster::all_subjects(&config.subject_prefix)],
            max_messages_per_subject: 1,
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
}
