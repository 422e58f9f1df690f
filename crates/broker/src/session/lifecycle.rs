//! Deadlines and endings: the handshake timeout, the periodic checks of
//! the framing (idle ping, dead peer) and of the core (slow consumer,
//! token expiry), shutdown, closing and leaving.

use std::time::Instant;

use crate::moment::Moment;

use super::framing::Ending;
use super::outbound::OutFrame;
use super::websocket::Liveness;
use super::{Action, Connection, Effects, Phase, Transport};
use crate::encodings::Encoding;

impl Connection {
    /// The peer closed its side (EOF). A response or close frame queued
    /// just before (a client that sends its request, or its close, and
    /// then FIN) is written first; otherwise the connection is dropped.
    pub fn on_peer_closed(&mut self, fx: &mut Effects) {
        match &mut self.phase {
            Phase::Closing { peer_closed, .. } if !self.out.is_empty() => *peer_closed = true,
            _ => fx.actions.push(Action::Drop),
        }
    }

    /// [`Connection::poll_deadline`] as an `Instant` (for the tests).
    #[cfg(test)]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poll_deadline().map(Moment::instant)
    }

    /// When [`Connection::on_tick`] next has something to do: the earliest
    /// deadline (handshake, idle ping, dead peer, stall, `disconnect`
    /// policy, token expiry, close), or now while drained queues still hold
    /// memory to give back. The shell's sweep ticks only connections whose
    /// time has come: an idle subscriber costs a comparison per sweep. In
    /// `Moment`s, 8-byte numbers: no `Instant` is made for an idle
    /// connection (made, they were ~1% of a reconnect storm's
    /// instructions, the sweep asking every connection four times a second).
    pub fn poll_deadline(&self) -> Option<Moment> {
        let c = &self.config;
        let deadline = match &self.phase {
            Phase::Http { opened_at } => *opened_at + c.handshake_timeout,
            Phase::Open(open) => {
                let core = open.core.poll_timeout(c, &self.out, self.progress_at);
                let liveness = match &open.transport {
                    Transport::Ws(ws) => ws.poll_timeout(c.idle_ping, c.dead_peer),
                    Transport::Sse(sse) => Moment::from(sse.poll_timeout()),
                };
                core.map_or(liveness, |at| at.min(liveness))
            }
            Phase::Closing { drained_at, .. } => match drained_at {
                Some(at) => *at + c.close_timeout,
                None => self.progress_at + c.stall_timeout,
            },
        };
        // Memory to give back is due at once (the last progress is past).
        if self.out.buffers_to_free() {
            return Some(self.progress_at.min(deadline));
        }
        Some(deadline)
    }

    /// Periodic check of every deadline: handshake, idle ping, dead peer,
    /// slow consumer, token expiry, closing.
    pub fn on_tick(&mut self, now: Instant, fx: &mut Effects) {
        let reading = self.wants_read();
        self.out.free_buffers();
        let c = &self.config;
        let mut ending = None;
        match &mut self.phase {
            Phase::Http { opened_at } => {
                if now.saturating_duration_since(opened_at.instant()) >= c.handshake_timeout {
                    fx.actions.push(Action::Drop);
                }
            }
            Phase::Open(open) => {
                ending = open
                    .core
                    .on_tick(c, &self.out, self.progress_at.instant(), now);
                match &mut open.transport {
                    _ if ending.is_some() => {}
                    Transport::Ws(ws) => match ws.on_tick(c.idle_ping, c.dead_peer, now) {
                        Liveness::Fine => {}
                        Liveness::Ping(ping) => self.out.push_priority(ping),
                        Liveness::Dead => fx.actions.push(Action::Drop),
                    },
                    Transport::Sse(sse) => {
                        if let Some(comment) = sse.on_tick(self.out.is_empty(), now) {
                            self.out.push_data(OutFrame::Owned(comment.into()));
                        }
                    }
                }
            }
            Phase::Closing { drained_at, .. } => {
                let expired = match drained_at {
                    Some(at) => now.saturating_duration_since(at.instant()) >= c.close_timeout,
                    // Final bytes still waiting: as long as the peer keeps
                    // reading, up to the stall timeout without progress.
                    None => {
                        now.saturating_duration_since(self.progress_at.instant()) >= c.stall_timeout
                    }
                };
                if expired {
                    fx.actions.push(Action::Drop);
                }
            }
        }
        if let Some(why) = ending {
            self.end_with(why, now, fx);
        }
        self.sync_read_interest(reading, fx);
    }

    /// Shutdown: subscribers are told the broker is going away; a
    /// connection still in its HTTP phase is dropped.
    pub fn begin_shutdown(&mut self, now: Instant, fx: &mut Effects) {
        let reading = self.wants_read();
        match self.phase {
            Phase::Open(_) => self.end_with(Ending::GoingAway, now, fx),
            Phase::Http { .. } => fx.actions.push(Action::Drop),
            Phase::Closing { .. } => {}
        }
        self.sync_read_interest(reading, fx);
    }

    /// Ends a subscriber's stream for a reason of the core, with the
    /// framing's last message for it.
    pub(super) fn end_with(&mut self, why: Ending, now: Instant, fx: &mut Effects) {
        let Phase::Open(open) = &self.phase else {
            return;
        };
        let framing = open.transport.framing();
        let (frame, code) = framing.ending(why);
        if framing.drains_before_ending(why) {
            self.out.push_data(OutFrame::Owned(frame.into()));
            self.end_after_queued(code, now, fx);
            return;
        }
        self.end(frame, code, why == Ending::SlowConsumer, now, fx);
    }

    /// Ends the stream after what is queued (SSE at shutdown).
    fn end_after_queued(&mut self, code: u16, now: Instant, fx: &mut Effects) {
        self.leave(fx);
        fx.actions.push(Action::CloseSent {
            code,
            slow_consumer: false,
        });
        self.start_closing(now);
    }

    /// Queues the last message ahead of any queued quotes (which are
    /// dropped: a closing client gets nothing more, and a slow one would
    /// otherwise have to read them all first) and starts closing.
    pub(super) fn end(
        &mut self,
        last: Vec<u8>,
        code: u16,
        slow_consumer: bool,
        now: Instant,
        fx: &mut Effects,
    ) {
        if !self.is_subscriber() {
            return;
        }
        self.leave(fx);
        self.out.clear_data();
        self.out.push_priority(last);
        fx.actions.push(Action::CloseSent {
            code,
            slow_consumer,
        });
        self.start_closing(now);
    }

    pub(super) fn start_closing(&mut self, now: Instant) {
        self.read_buf.clear();
        self.progress_at = now.into();
        self.phase = Phase::Closing {
            drained_at: None,
            write_shut: false,
            peer_closed: false,
            encoding: self.encoding(),
        };
    }

    /// What the bytes written to this connection count as
    /// (`tickwire_bytes_out_total{encoding}`): a subscriber's wire, kept
    /// while it closes; `None` for a plain HTTP exchange.
    pub fn encoding(&self) -> Option<Encoding> {
        match &self.phase {
            Phase::Http { .. } => None,
            Phase::Open(open) => Some(open.core.subs.wire().metric_label()),
            Phase::Closing { encoding, .. } => *encoding,
        }
    }

    /// The shell is dropping the connection: give back what it holds.
    pub fn on_removed(&mut self, fx: &mut Effects) {
        self.leave(fx);
    }

    /// Leaves the Open phase, giving back every entry.
    fn leave(&mut self, fx: &mut Effects) {
        if let Phase::Open(open) = &mut self.phase {
            open.core.leave(fx);
            let encoding = Some(open.core.subs.wire().metric_label());
            // Any phase but Open; the caller sets the real next one.
            self.phase = Phase::Closing {
                drained_at: None,
                write_shut: false,
                peer_closed: false,
                encoding,
            };
        }
    }
}
