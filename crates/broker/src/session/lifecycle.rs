//! Deadlines and endings: handshake timeout, idle ping, dead peer, the
//! slow-consumer rules, shutdown, closing and leaving.

use std::time::Instant;

use tickwire_ws::close;
use tickwire_ws::frame::{encode_close, encode_frame, OpCode};

use super::{Action, Connection, Effects, Phase};
use crate::config::SlowConsumerPolicy;

impl Connection {
    /// The peer closed its side (EOF). True when the connection should be
    /// kept to finish writing: a response or close frame queued just before
    /// (a client that sends its request, or its close, and then FIN).
    pub fn on_peer_closed(&mut self) -> bool {
        match &mut self.phase {
            Phase::Closing { peer_closed, .. } if !self.out.is_empty() => {
                *peer_closed = true;
                true
            }
            _ => false,
        }
    }

    /// True once a closing connection has nothing left to do: its last
    /// bytes are written and the peer has closed too.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.phase,
            Phase::Closing {
                write_shut: true,
                peer_closed: true,
                ..
            }
        )
    }

    /// Periodic check of every deadline: handshake, idle ping, dead peer,
    /// slow consumer, closing.
    pub fn on_tick(&mut self, now: Instant, fx: &mut Effects) {
        self.out.free_buffers();
        if self.is_subscriber() && self.is_too_slow(now) {
            self.close_with(close::POLICY_VIOLATION, "slow consumer", now, fx);
            return;
        }
        if self.token_expired(now) {
            self.close_expired(now, fx);
            return;
        }
        let c = &self.config;
        match &mut self.phase {
            Phase::Http { opened_at } => {
                if now.saturating_duration_since(*opened_at) >= c.handshake_timeout {
                    fx.actions.push(Action::Drop);
                }
            }
            Phase::Ws(session) => {
                let quiet = now.saturating_duration_since(session.liveness_at);
                if !session.ping_sent && quiet >= c.idle_ping {
                    let mut ping = Vec::with_capacity(2);
                    encode_frame(&mut ping, OpCode::Ping, &[]);
                    self.out.push_priority(ping);
                    session.ping_sent = true;
                    session.liveness_at = now;
                } else if session.ping_sent && quiet >= c.dead_peer {
                    fx.actions.push(Action::Drop);
                }
            }
            Phase::Closing { drained_at, .. } => {
                let expired = match drained_at {
                    Some(at) => now.saturating_duration_since(*at) >= c.close_timeout,
                    // Final bytes still waiting: as long as the peer keeps
                    // reading, up to the stall timeout without progress.
                    None => now.saturating_duration_since(self.progress_at) >= c.stall_timeout,
                };
                if expired {
                    fx.actions.push(Action::Drop);
                }
            }
        }
    }

    /// The slow-consumer rules: nothing read for `stall_timeout` while
    /// quotes are pending, or (policy `disconnect`) over budget for
    /// `disconnect_after`.
    fn is_too_slow(&self, now: Instant) -> bool {
        let c = &self.config;
        if !self.out.is_empty()
            && now.saturating_duration_since(self.progress_at) >= c.stall_timeout
        {
            return true;
        }
        c.slow_consumer_policy == SlowConsumerPolicy::Disconnect
            && self
                .out
                .conflating_since()
                .is_some_and(|since| now.saturating_duration_since(since) >= c.disconnect_after)
    }

    /// Shutdown: subscribers get close 1001; a connection still in its
    /// HTTP phase is dropped.
    pub fn begin_shutdown(&mut self, now: Instant, fx: &mut Effects) {
        match self.phase {
            Phase::Ws(_) => self.close_with(close::GOING_AWAY, "going away", now, fx),
            Phase::Http { .. } => fx.actions.push(Action::Drop),
            Phase::Closing { .. } => {}
        }
    }

    /// Queues a close frame ahead of any queued quotes (which are dropped:
    /// a closing client gets nothing more, and a slow one would otherwise
    /// have to read them all first) and starts closing.
    pub fn close_with(&mut self, code: u16, reason: &str, now: Instant, fx: &mut Effects) {
        if !self.is_subscriber() {
            return;
        }
        self.leave(fx);
        self.out.clear_data();
        let mut frame = Vec::with_capacity(reason.len() + 4);
        encode_close(&mut frame, code, reason);
        self.out.push_priority(frame);
        fx.actions.push(Action::CloseSent {
            code,
            slow_consumer: code == close::POLICY_VIOLATION && reason == "slow consumer",
        });
        self.start_closing(now);
    }

    pub(super) fn start_closing(&mut self, now: Instant) {
        self.read_buf = Vec::new();
        self.progress_at = now;
        self.phase = Phase::Closing {
            drained_at: None,
            write_shut: false,
            peer_closed: false,
        };
    }

    /// The shell is dropping the connection: give back what it holds.
    pub fn on_removed(&mut self, fx: &mut Effects) {
        self.leave(fx);
    }

    /// Leaves the WebSocket phase, giving back every entry.
    pub(super) fn leave(&mut self, fx: &mut Effects) {
        if let Phase::Ws(session) = &mut self.phase {
            if session.subs.asked_snapshots() {
                // The router may still be collecting its snapshot.
                fx.actions.push(Action::CancelSnapshots);
            }
            session.subs.clear(fx);
            fx.actions.push(Action::Left);
            // Any phase but Ws; the caller sets the real next one.
            self.phase = Phase::Closing {
                drained_at: None,
                write_shut: false,
                peer_closed: false,
            };
        }
    }
}
