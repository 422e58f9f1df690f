//! A small blocking tickwire client, for examples, the demo feed, tests and
//! the load generator:
//! - [`Publisher`] pushes quotes into the ingest socket;
//! - [`Subscriber`] subscribes over WebSocket and reads server messages.
//!
//! Both speak plain TCP or TLS (`wss://`, ingest over TLS, mutual TLS)
//! with a CA given by the caller ([`TlsOptions`]).
//!
//! Both are thin: the byte formats live in `tickwire-protocol` and
//! `tickwire-ws`, this crate only adds blocking sockets.

mod publisher;
mod stream;
mod subscriber;
pub mod tls_io;

pub use publisher::Publisher;
pub use stream::{Stream, TlsOptions};
pub use subscriber::{Format, SubscribeOptions, Subscriber};
pub use tickwire_protocol::control::Since;
pub use tickwire_protocol::server::ServerMessage;
pub use tickwire_protocol::Quote;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("protocol error from server: {0}")]
    Protocol(String),
    #[error("connection closed by the server (code {code:?}, reason {reason:?})")]
    Closed { code: Option<u16>, reason: String },
}

pub type Result<T> = std::result::Result<T, ClientError>;
