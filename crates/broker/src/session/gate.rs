//! The reply gate: replies wait behind the subscribe commands the router
//! has not taken yet. An ack the client has seen must mean the router will
//! number every later quote after that subscribe; and replies keep their
//! order, so everything after a held ack waits too — but only for the
//! commands issued before it, not for later ones.

use std::collections::VecDeque;

#[derive(Default)]
pub(super) struct ReplyGate {
    /// Subscribe commands issued, and taken by the router (in order: the
    /// shell's path to the router is first in, first out).
    issued: u64,
    taken: u64,
    /// Held replies with the number of commands that must be taken first;
    /// boxed, since replies are held only for a moment after a subscribe
    /// and every idle connection pays for the inline size.
    held: Option<Box<Held>>,
}

#[derive(Default)]
struct Held {
    replies: VecDeque<(u64, Box<[u8]>)>,
    bytes: usize,
}

impl ReplyGate {
    /// A subscribe command is issued; call before queuing its ack.
    pub fn issue(&mut self) {
        self.issued += 1;
    }

    /// A reply: given back to be queued now, or held.
    pub fn reply(&mut self, frame: Box<[u8]>) -> Option<Box<[u8]>> {
        if self.held.is_none() && self.taken >= self.issued {
            return Some(frame);
        }
        let held = self.held.get_or_insert_with(Box::default);
        held.bytes += frame.len();
        held.replies.push_back((self.issued, frame));
        None
    }

    /// The router took the oldest command: the replies it released, in order.
    pub fn taken(&mut self) -> Vec<Box<[u8]>> {
        self.taken = (self.taken + 1).min(self.issued);
        let mut released = Vec::new();
        let Some(held) = self.held.as_mut() else {
            return released;
        };
        while let Some((needs, _)) = held.replies.front() {
            if *needs > self.taken {
                break;
            }
            if let Some((_, frame)) = held.replies.pop_front() {
                held.bytes -= frame.len();
                released.push(frame);
            }
        }
        if held.replies.is_empty() {
            self.held = None;
        }
        released
    }

    /// Commands issued and not yet taken.
    pub fn pending(&self) -> u64 {
        self.issued - self.taken
    }

    pub fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8) -> Box<[u8]> {
        vec![tag].into_boxed_slice()
    }

    #[test]
    fn a_reply_waits_only_for_the_commands_before_it() {
        let mut gate = ReplyGate::default();
        assert_eq!(gate.reply(frame(0)), Some(frame(0)), "nothing pending");
        gate.issue(); // subscribe #1
        assert_eq!(gate.reply(frame(1)), None); // ack #1
        assert_eq!(gate.reply(frame(2)), None); // an error after it keeps its place
        gate.issue(); // subscribe #2
        assert_eq!(gate.reply(frame(3)), None); // ack #2
        assert_eq!(gate.pending(), 2);
        assert_eq!(gate.held_bytes(), 3);
        // #1 taken: its ack and the error go; ack #2 still waits for #2.
        assert_eq!(gate.taken(), vec![frame(1), frame(2)]);
        assert_eq!(gate.reply(frame(4)), None, "order kept behind ack #2");
        assert_eq!(gate.taken(), vec![frame(3), frame(4)]);
        assert_eq!((gate.pending(), gate.held_bytes()), (0, 0));
        assert_eq!(gate.reply(frame(5)), Some(frame(5)));
        // A spurious extra "taken" never runs ahead of what was issued.
        assert!(gate.taken().is_empty());
        gate.issue();
        assert_eq!(gate.reply(frame(6)), None);
        assert_eq!(gate.taken(), vec![frame(6)]);
    }
}
