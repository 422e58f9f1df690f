//! How the other threads wake the router's thread. That thread sleeps in a
//! mio poll (it reads the producers' sockets itself), so a message on one of
//! its channels must also ring its `mio::Waker`.
//!
//! A waker rung on every message would cost a syscall (an `eventfd` write)
//! per message even while the router is busy and will see the message
//! anyway. The bell rings only while the router says it is going to sleep:
//! the router raises `asleep`, then looks at its channels once more; a
//! sender pushes its message, then looks at `asleep`. With a `SeqCst` fence
//! between the write and the read on both sides, at least one of them sees
//! the other's write: either the router finds the message before sleeping,
//! or the sender finds the router asleep and wakes it.

use std::io;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use mio::{Registry, Token, Waker};

/// The router thread's waker and whether it is about to sleep.
pub struct Doorbell {
    waker: Arc<Waker>,
    asleep: AtomicBool,
}

impl Doorbell {
    pub fn new(registry: &Registry, token: Token) -> io::Result<Arc<Doorbell>> {
        Ok(Arc::new(Doorbell {
            waker: Arc::new(Waker::new(registry, token)?),
            asleep: AtomicBool::new(false),
        }))
    }

    /// The waker itself, for shutdown (which wakes unconditionally).
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The router is about to sleep: after this it must look at its
    /// channels once more, and sleep only if they are empty.
    pub fn going_to_sleep(&self) {
        self.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The router is awake (it woke, or found work before sleeping).
    pub fn awake(&self) {
        self.asleep.store(false, Ordering::Relaxed);
    }

    /// A sender has pushed a message: wakes the router if it sleeps, once
    /// for all the senders that find it asleep.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake the router");
            }
        }
    }
}

/// A channel to the router's thread: a message sent rings its bell.
pub struct BellSender<T> {
    tx: Sender<T>,
    bell: Arc<Doorbell>,
}

impl<T> Clone for BellSender<T> {
    fn clone(&self) -> Self {
        BellSender {
            tx: self.tx.clone(),
            bell: self.bell.clone(),
        }
    }
}

impl<T> BellSender<T> {
    pub fn new(tx: Sender<T>, bell: Arc<Doorbell>) -> BellSender<T> {
        BellSender { tx, bell }
    }

    /// A sender whose bell nobody hears: for tests that read the channel
    /// themselves.
    #[cfg(test)]
    pub fn unheard(tx: Sender<T>) -> BellSender<T> {
        let poll = mio::Poll::new().expect("a poll");
        let bell = Doorbell::new(poll.registry(), Token(0)).expect("a waker");
        BellSender::new(tx, bell)
    }

    /// Never blocks: the router may be busy handing this very thread work.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(msg)?;
        self.bell.ring();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    const BELL: Token = Token(7);

    /// A router's poll with its bell, and a sender over a channel of
    /// `room` messages.
    struct Setup {
        poll: Poll,
        events: Events,
        bell: Arc<Doorbell>,
        sender: BellSender<u32>,
        rx: crossbeam_channel::Receiver<u32>,
    }

    impl Setup {
        fn new(room: usize) -> Setup {
            let poll = Poll::new().unwrap();
            let bell = Doorbell::new(poll.registry(), BELL).unwrap();
            let (tx, rx) = crossbeam_channel::bounded(room);
            Setup {
                events: Events::with_capacity(8),
                sender: BellSender::new(tx, bell.clone()),
                poll,
                bell,
                rx,
            }
        }

        fn woken(&mut self) -> bool {
            self.poll
                .poll(&mut self.events, Some(Duration::ZERO))
                .unwrap();
            self.events.iter().any(|e| e.token() == BELL)
        }
    }

    #[test]
    fn rings_only_a_sleeping_router_and_once() {
        let mut s = Setup::new(4);

        // Awake: the message is sent, the waker is not rung.
        s.sender.try_send(1).unwrap();
        assert!(!s.woken());

        // Asleep: the first sender wakes it, the second finds it awake.
        s.bell.going_to_sleep();
        s.sender.try_send(2).unwrap();
        assert!(!s.bell.asleep.load(Ordering::Relaxed));
        s.sender.try_send(3).unwrap();
        assert!(s.woken());
        assert!(!s.woken());
        assert_eq!(s.rx.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn a_full_channel_is_refused_and_rings_nothing() {
        let mut s = Setup::new(1);
        s.sender.try_send(1).unwrap();
        s.bell.going_to_sleep();
        assert!(matches!(s.sender.try_send(2), Err(TrySendError::Full(2))));
        assert!(!s.woken());
    }
}
