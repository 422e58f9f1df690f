//! The connection's one output channel for bytes, in the manner of
//! quinn-proto: [`Connection::poll_transmit`] lays the next bytes to write
//! into the shell's buffer, the shell writes what the socket takes and
//! reports it with [`Connection::on_written`]. The connection never sees
//! the writer, a short write or an error: a socket error is the shell's
//! (it drops the connection).

use std::time::Instant;

use super::outbound::OutFrame;
use super::{Action, Connection, Effects, Phase, Transport};

impl Connection {
    /// Lays the next bytes to write into `buf` (cleared first): up to `max`
    /// bytes from at most 64 queued frames, in wire order, copied into one
    /// contiguous buffer so the shell makes one `send` (or hands TLS one
    /// plaintext run) for many frames. Returns how many; none are consumed
    /// until [`Connection::on_written`].
    ///
    /// 0 means nothing waits. A closing connection then asks for its write
    /// side to be shut ([`Action::ShutdownWrite`]) and, when the peer has
    /// closed too, to be dropped ([`Action::Drop`]).
    pub fn poll_transmit(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        now: Instant,
        fx: &mut Effects,
    ) -> usize {
        let n = self.out.transmit(buf, max);
        if n > 0 {
            return n;
        }
        self.progress_at = now.into();
        if let Phase::Closing {
            drained_at,
            write_shut,
            peer_closed,
            ..
        } = &mut self.phase
        {
            if !*write_shut {
                *write_shut = true;
                *drained_at = Some(now.into());
                fx.actions.push(Action::ShutdownWrite);
            }
            if *peer_closed {
                fx.actions.push(Action::Drop);
            }
        }
        0
    }

    /// The socket took the first `n` bytes of the last transmit. `sent` is
    /// called for each frame now written in full (the shell counts
    /// deliveries and their latency).
    pub fn on_written(
        &mut self,
        n: usize,
        now: Instant,
        fx: &mut Effects,
        sent: &mut impl FnMut(&OutFrame),
    ) {
        if n > 0 {
            let reading = self.wants_read();
            self.progress_at = now.into();
            if let Phase::Open(open) = &mut self.phase {
                if let Transport::Sse(sse) = &mut open.transport {
                    sse.sent(now);
                }
            }
            self.out.advance(n, sent);
            self.offer_credit(fx);
            self.sync_read_interest(reading, fx);
        }
    }
}
