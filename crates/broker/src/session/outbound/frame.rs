//! What an outbound queue holds: shared quote frames on a connection's
//! wire, and the connection's own frames.

use crate::encodings::Wire;
use crate::messages::LocalQuote;

pub enum OutFrame {
    /// A live quote.
    Quote(LocalQuote, Wire),
    /// A last value sent as a snapshot (not a fresh delivery: its age is
    /// not delivery latency).
    Snapshot(LocalQuote, Wire),
    /// A reply (ack, error) or other frame in the data lane.
    Owned(Box<[u8]>),
    /// A control-lane frame (pong, ping, close, HTTP response).
    Control(Box<[u8]>),
}

impl OutFrame {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            OutFrame::Quote(q, wire) | OutFrame::Snapshot(q, wire) => q.frame(*wire),
            OutFrame::Owned(b) | OutFrame::Control(b) => b,
        }
    }

    /// A quote frame on `wire` (the delta decided); others as they are.
    pub(super) fn on_wire(self, wire: Wire) -> OutFrame {
        match self {
            OutFrame::Quote(q, _) => OutFrame::Quote(q, wire),
            OutFrame::Snapshot(q, _) => OutFrame::Snapshot(q, wire),
            other => other,
        }
    }

    /// The wire a quote frame goes on.
    pub fn wire(&self) -> Option<Wire> {
        match self {
            OutFrame::Quote(_, wire) | OutFrame::Snapshot(_, wire) => Some(*wire),
            OutFrame::Owned(_) | OutFrame::Control(_) => None,
        }
    }

    /// The shared quote a quote or snapshot frame carries.
    pub fn shared(&self) -> Option<&LocalQuote> {
        match self {
            OutFrame::Quote(q, _) | OutFrame::Snapshot(q, _) => Some(q),
            OutFrame::Owned(_) | OutFrame::Control(_) => None,
        }
    }
}
