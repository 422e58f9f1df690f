//! A small blocking tickwire client, for examples, the demo feed, tests and
//! the load generator:
//! - [`Publisher`] pushes quotes into the ingest socket;
//! - [`Subscriber`] subscribes over WebSocket and reads server messages;
//! - [`SseSubscriber`] reads the same messages from a Server-Sent Events
//!   stream (`GET /sse`), for paths that pass plain HTTP only.
//!
//! All speak plain TCP or TLS (`wss://`, ingest over TLS, mutual TLS)
//! with a CA given by the caller ([`TlsOptions`]).
//!
//! They are thin: the byte formats live in `tickwire-protocol` and
//! `tickwire-ws`, this crate only adds blocking sockets.

mod deltas;
mod publisher;
pub mod sse;
mod stream;
mod subscriber;
pub mod tls_io;

pub use deltas::{Deltas, MissingBase};
pub use publisher::Publisher;
pub use sse::{sse_target, SseMessage, SseSubscriber};
pub use stream::{Stream, TlsOptions};
pub use subscriber::{ws_path, Format, SubscribeOptions, Subscriber};
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
    /// An HTTP request (`GET /sse`) answered with a status other than 200:
    /// the broker's JSON error's `code` and `message`, or (`code` empty)
    /// the first line of another body, e.g. a proxy's page.
    #[error("HTTP {status}: {}{message}", if code.is_empty() { String::new() } else { format!("{code}: ") })]
    Http {
        status: u16,
        code: String,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, ClientError>;
