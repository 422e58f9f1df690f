//! The quote record shared by the ingest format and the subscriber formats.

use serde::{Deserialize, Serialize};

/// One top-of-book quote for a topic.
///
/// Field order matters: it is the bincode legacy layout producers send.
/// Numbers may be non-finite (NaN, ±inf); that is valid data, passed through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub topic: String,
    pub bid: f64,
    pub ask: f64,
    pub bid_size: f64,
    pub ask_size: f64,
    pub last: f64,
    pub volume: f64,
    /// Nanoseconds since the Unix epoch.
    pub ts: u64,
}
