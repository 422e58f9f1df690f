//! tickwire wire formats.
//!
//! Pure encode/decode code: no sockets, clocks or threads live here, so every
//! format can be tested exhaustively and reused by the broker and the client.
//! Decoders treat their input as hostile: they return errors, never panic.

pub mod cluster;
pub mod control;
pub mod ingest;
pub mod prefix_index;
pub mod quote;
pub mod server;
pub mod topic;

mod bincode_legacy;
mod json_write;
mod key_map;

pub use prefix_index::PrefixIndex;
pub use quote::Quote;
pub use topic::Selector;
