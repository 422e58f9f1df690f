//! tickwire wire formats.
//!
//! Pure encode/decode code: no sockets, clocks or threads live here, so every
//! format can be tested exhaustively and reused by the broker and the client.
//! Decoders treat their input as hostile: they return errors, never panic.

// Socket data is hostile: library code must not be able to panic on it, so
// the usual panicking shortcuts are rejected outside tests.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cluster;
pub mod control;
pub mod ingest;
pub mod prefix_index;
pub mod quote;
pub mod server;
pub mod topic;
pub mod topic_name;

mod bincode_legacy;
mod json_write;
mod key_map;

/// Largest `seq` a broker assigns or accepts from another broker: `seq`
/// reaches browsers as a JSON number, which JavaScript represents exactly
/// only up to 2^53 − 1 (`Number.MAX_SAFE_INTEGER`). A cluster message
/// numbered above it is refused (`cluster::decode`, the router), and a
/// topic's numbering stops here rather than wrap.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

pub use prefix_index::PrefixIndex;
pub use quote::Quote;
pub use topic::Selector;
pub use topic_name::{HashedText, KeyText, TopicName};
