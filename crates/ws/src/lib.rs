//! RFC 6455 WebSocket building blocks for tickwire, without any I/O.
//!
//! Everything here is a plain state machine or pure function: callers own the
//! sockets, buffers and clocks, feed received bytes in, and write the returned
//! bytes out. That keeps the codec testable byte-for-byte and lets the broker
//! decide its own buffering and back-pressure policy.
//!
//! Modules:
//! - [`http`]: request-head parsing and plain HTTP responses (errors, 431, ...).
//! - [`handshake`]: upgrade validation and accept key, both server and client side.
//! - [`frame`]: frame decoder (protocol checks, reassembly) and encoders.
//! - [`close`]: close codes and their validity rules.
//! - [`deflate`]: permessage-deflate (RFC 7692): negotiation, compression
//!   once per shared frame, bounded inflate of client messages.

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

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod http;
mod mask;
mod utf8;

pub use frame::{DecoderLimits, Event, FrameDecoder, OpCode, ProtocolError, Role};
