//! What the property tests drive the connection with: the operations, the
//! router's snapshots and a socket with limited room.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};

use proptest::prelude::*;
use tickwire_ws::frame::OpCode;

use super::super::tests::quote;
use crate::messages::{LocalQuote, SharedQuote};

pub(super) const TOPICS: [&str; 3] = ["A", "AB", "B"];
pub(super) const SELECTORS: [&str; 6] = ["A", "AB", "B", "A*", "AB*", "*"];

#[derive(Debug, Clone)]
pub(super) enum Op {
    Subscribe {
        entries: Vec<usize>,
        snapshot: bool,
        max_hz: Option<u8>,
    },
    Unsubscribe(Vec<usize>),
    /// A text frame that is not a valid request.
    BadRequest(String),
    /// A ping with this payload (pongs share the socket with quotes).
    Ping(Vec<u8>),
    /// The client closes with this code (valid or not).
    Close(u16),
    /// The router takes the oldest subscribe command waiting for it (its
    /// queue may be full for a while: commands wait in the shell).
    Take,
    /// The router answers the oldest subscribe it has taken (an odd
    /// request's snapshot of several topics in slices).
    Activate,
    /// The router sends the next slice of a sliced snapshot.
    Slice,
    Publish(usize),
    Advance(u16),
    Tick,
    /// The socket takes up to this many bytes.
    Write(u16),
    FireTimers,
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let entries = prop::collection::vec(0..SELECTORS.len(), 1..4);
    prop_oneof![
        4 => (entries.clone(), any::<bool>(), prop::option::of(1u8..20))
            .prop_map(|(entries, snapshot, max_hz)| Op::Subscribe { entries, snapshot, max_hz }),
        2 => entries.prop_map(Op::Unsubscribe),
        1 => "[ -~]{0,20}".prop_map(Op::BadRequest),
        1 => prop::collection::vec(any::<u8>(), 0..125).prop_map(Op::Ping),
        5 => Just(Op::Take),
        6 => Just(Op::Activate),
        3 => Just(Op::Slice),
        12 => (0..TOPICS.len()).prop_map(Op::Publish),
        3 => (0u16..600).prop_map(Op::Advance),
        1 => Just(Op::Tick),
        3 => (0u16..400).prop_map(Op::Write),
        2 => Just(Op::FireTimers),
    ]
}

/// The router's last value of `topic`, marked so the client can tell.
pub(super) fn snapshot_of(topic: &str, seq: u64) -> LocalQuote {
    let q = quote(topic, seq);
    let mut frame = Vec::new();
    tickwire_ws::frame::encode_frame(
        &mut frame,
        OpCode::Text,
        format!("Q {topic} {seq} S").as_bytes(),
    );
    LocalQuote::from(SharedQuote {
        topic: q.topic.clone(),
        seq: 0,
        accepted: 0,
        json_frame: frame.clone().into(),
        binary_frame: frame.into(),
        changed: None,
        lazy: Default::default(),
        decoded_at: q.decoded_at,
    })
}

pub(super) type Sliced = (u32, VecDeque<&'static str>, HashMap<&'static str, u64>);

/// A socket that takes at most `room` more bytes.
pub(super) struct Socket {
    pub bytes: Vec<u8>,
    pub room: usize,
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.bytes.extend_from_slice(&buf[..n]);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
