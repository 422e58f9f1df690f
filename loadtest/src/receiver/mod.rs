//! Receiving threads: each owns a `mio::Poll` and a share of the
//! subscribers, connects them (bounded in-flight handshakes, a deadline),
//! subscribes, then reads quotes: latency into an HdrHistogram (and, with
//! several `--ws` addresses, into the histogram of the subscriber's address
//! too), `seq` into per-topic gap trackers. For a broker with `[auth]`
//! (`RecvConfig::auth`, the soak's checked subscribers) each subscribe
//! follows an `auth` request, and every streaming connection gets a fresh
//! token every `Tokens::refresh_every`.
//!
//! Receive path per read: one `read` into the thread's scratch buffer, one
//! clock read for every message in it, frames parsed in place. Complete,
//! unfragmented, unmasked, uncompressed data frames (what the broker sends
//! for quotes and deltas without permessage-deflate) are parsed without
//! `FrameDecoder`, so no per-message allocation; everything else (compressed
//! frames with `--deflate`, control frames, fragments, protocol violations)
//! goes through `tickwire_ws::FrameDecoder` with `Role::Client`, which
//! inflates. Every byte read after the 101 response is counted
//! (`wire_bytes`).
//!
//! Layout: `config` (what the threads are told and share), `result` (what
//! they measure), `conn` (a connection: set-up, writes, failure), `upgrade`
//! (the upgrade request: path, `delta`, permessage-deflate offer; whether
//! the response accepted it), `frames` (reads, handshake response, frame
//! parsing, messages), `thread` (the loop of one receiving thread).

mod config;
mod conn;
mod frames;
mod result;
mod thread;
mod upgrade;

pub use config::{
    Format, RecvConfig, Shared, SlowMode, TlsClient, PHASE_CONNECT, PHASE_MEASURE, PHASE_STOP,
};
pub use result::{new_histogram, ErrorCounts, RecvResult, WsResult};
pub use thread::run;

/// Bytes read per `read` call.
const SCRATCH: usize = 256 * 1024;
/// Reads per connection per loop turn before moving on (fairness); the
/// connection is revisited on the next turn.
const MAX_READS_PER_TURN: usize = 4;
/// Largest frame taken by the allocation-free path; larger ones go through
/// `FrameDecoder` (which enforces its own limit).
const FAST_PATH_MAX: usize = 1 << 20;
