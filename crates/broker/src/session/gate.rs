//! The reply gate: replies wait behind the subscribe commands the router
//! has not taken yet. An ack the client has seen must mean the router will
//! number every later quote after that subscribe; and replies keep their
//! order, so everything after a held ack waits too — but only for the
//! commands issued before it, not for later ones.
//!
//! An ack whose command is taken goes with the next thing delivered to the
//! connection — its own activation (the router's answer) at the latest —
//! so the snapshot follows it in the same write: one `send` per subscribe
//! rather than two in a reconnect storm, and still before any quote. The
//! ack of a subscribe with `since` (v1.2) says which topics were
//! recovered, which only the router knows: it is held as a placeholder
//! and made by the activation. What follows an ack waits for it.

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
    replies: VecDeque<(u64, Reply)>,
    bytes: usize,
}

enum Reply {
    Ready(Box<[u8]>),
    /// An ack: once its command is taken, it goes with the next delivery.
    Ack(Box<[u8]>),
    /// An ack made once the router answers.
    Awaiting(Box<AwaitedAck>),
}

/// What the ack of a subscribe with `since` echoes.
pub(super) struct AwaitedAck {
    pub request: u32,
    pub id: Option<u64>,
    pub topics: Vec<String>,
}

impl AwaitedAck {
    /// What it counts for against the reply budget while held.
    fn weight(&self) -> usize {
        64 + self.topics.iter().map(|t| t.len() + 3).sum::<usize>()
    }
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
        held.replies.push_back((self.issued, Reply::Ready(frame)));
        None
    }

    /// The ack of the subscribe issued just before: it goes with the next
    /// delivery once the command is taken ([`ReplyGate::delivering`]).
    pub fn ack(&mut self, frame: Box<[u8]>) {
        let held = self.held.get_or_insert_with(Box::default);
        held.bytes += frame.len();
        held.replies.push_back((self.issued, Reply::Ack(frame)));
    }

    /// Something is delivered to the connection (an activation, a slice,
    /// a quote): the acks of taken commands go first, with what they
    /// released.
    pub fn delivering(&mut self) -> Vec<Box<[u8]>> {
        let Some(held) = self.held.as_mut() else {
            return Vec::new();
        };
        for (needs, reply) in held.replies.iter_mut() {
            if *needs > self.taken {
                break;
            }
            if let Reply::Ack(frame) = reply {
                *reply = Reply::Ready(std::mem::take(frame));
            }
        }
        self.release()
    }

    /// The ack of a subscribe (issued just before) is made when the router
    /// activates it.
    pub fn await_activation(&mut self, ack: AwaitedAck) {
        let held = self.held.get_or_insert_with(Box::default);
        held.bytes += ack.weight();
        held.replies
            .push_back((self.issued, Reply::Awaiting(Box::new(ack))));
    }

    /// The router activated subscribe `request`: its ack, if awaited, is
    /// made now by `make`, and the replies that can go now go, in order.
    pub fn activated(
        &mut self,
        request: u32,
        make: impl FnOnce(&AwaitedAck) -> Box<[u8]>,
    ) -> Vec<Box<[u8]>> {
        if let Some(held) = self.held.as_mut() {
            let slot = held
                .replies
                .iter_mut()
                .find(|(_, r)| matches!(r, Reply::Awaiting(a) if a.request == request));
            if let Some((_, reply)) = slot {
                if let Reply::Awaiting(awaited) = reply {
                    let ack = make(awaited);
                    held.bytes = held.bytes - awaited.weight() + ack.len();
                    *reply = Reply::Ready(ack);
                }
            }
        }
        self.release()
    }

    /// The router took the oldest command: the replies it released, in order.
    pub fn taken(&mut self) -> Vec<Box<[u8]>> {
        self.taken = (self.taken + 1).min(self.issued);
        self.release()
    }

    fn release(&mut self) -> Vec<Box<[u8]>> {
        let mut released = Vec::new();
        let Some(held) = self.held.as_mut() else {
            return released;
        };
        while let Some((needs, Reply::Ready(_))) = held.replies.front() {
            if *needs > self.taken {
                break;
            }
            if let Some((_, Reply::Ready(frame))) = held.replies.pop_front() {
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

    /// A resume's ack is made by the activation: it and every reply after
    /// it wait for that, even once the router took the command.
    #[test]
    fn a_resume_ack_waits_for_its_activation() {
        let mut gate = ReplyGate::default();
        gate.issue(); // subscribe #7 with since
        let ack = AwaitedAck {
            request: 7,
            id: Some(5),
            topics: vec!["AAPL".into()],
        };
        let weight = ack.weight();
        gate.await_activation(ack);
        assert_eq!(gate.reply(frame(1)), None); // an error after it
        assert_eq!(gate.held_bytes(), weight + 1);
        assert!(
            gate.taken().is_empty(),
            "taken, but the ack is not made yet"
        );
        gate.issue(); // a plain subscribe
        assert_eq!(gate.reply(frame(2)), None);
        let made = gate.activated(7, |a| {
            assert_eq!((a.id, a.topics.len()), (Some(5), 1));
            frame(9)
        });
        assert_eq!(made, vec![frame(9), frame(1)]);
        assert_eq!(gate.held_bytes(), 1);
        assert_eq!(gate.taken(), vec![frame(2)]);
        assert_eq!((gate.pending(), gate.held_bytes()), (0, 0));
        // An activation with nothing awaited makes and releases nothing.
        assert!(gate.activated(3, |_| panic!("nothing awaited")).is_empty());
    }
}
