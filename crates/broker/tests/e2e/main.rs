//! The broker's end-to-end tests, one test binary: a real broker on
//! ephemeral loopback ports, real threads, real TLS, tungstenite as the
//! independent client, a real nats-server for the cluster. One binary
//! links once (the 13 that were here took most of the suite's build time
//! on two cores). `tests/scheduling.rs` stays a binary of its own: it reads
//! the scheduling policy of every thread of its process, which other
//! tests' brokers would share here.

mod common;

mod cluster;
mod cluster_epoch;
mod cluster_resume;
mod deltas;
mod entitlements;
mod http;
mod ingest;
mod large_snapshots;
mod limits;
mod metrics;
mod pressure;
mod process;
mod ready;
mod resume;
mod sse;
mod subscribe;
mod subscribe_answers;
mod tail_resume;
mod tail_sse;
mod tls;
mod tls_records;
mod tools;
mod websocket_rules;
