//! The seam between the subscriber core and the framing that carries its
//! messages. The core decides *what* a subscriber gets — replies, quotes,
//! the reason its stream ends; a framing (WebSocket today) decides how
//! those look on the wire. Quotes need no call here: they are encoded once
//! per wire format by the router, and the core queues the shared bytes of
//! the connection's format (`messages::Format`) without looking at them.

/// Why the core ends a subscriber's stream. The framing turns it into its
/// own last message (a WebSocket close frame with a code and a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It fell too far behind: nothing read for `stall_timeout` with
    /// quotes pending, its unread replies past the budget, or (policy
    /// `disconnect`) conflating for `disconnect_after`.
    SlowConsumer,
    /// Its token's `exp` passed without a refresh.
    TokenExpired,
    /// The broker is shutting down.
    GoingAway,
}

/// A framing as the core sees it: the bytes of a reply, and of an ending.
pub trait Framing {
    /// A reply (ack, error, `revoked`) — one JSON object — as it goes on
    /// the wire.
    fn message(&self, json: &str) -> Box<[u8]>;
    /// The last message of a stream the core ends, and the code counted
    /// for it (`tickwire_close_frames_sent_total{code}`).
    fn ending(&self, why: Ending) -> (Vec<u8>, u16);
    /// Whether what is already queued goes out before that last message
    /// (SSE at shutdown: a one-way stream loses nothing it was sent),
    /// rather than being dropped (a WebSocket close comes at once).
    fn drains_before_ending(&self, _why: Ending) -> bool {
        false
    }
}
