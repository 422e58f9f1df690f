//! The socket side of a worker: accepting, reading into connections, and
//! writing what they queued (when: see `cork`).

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::{Interest, Token};

use super::admission::Admit;
use super::cork::FLUSH_LIMIT;
use super::{Conn, Worker, FIRST_CONN, READS_PER_EVENT};
use crate::listener;
use crate::messages::ConnId;
use crate::metrics::{self, TlsHandshake};
use crate::session::outbound::OutFrame;
use crate::session::Connection;
use crate::transport::Transport;

impl Worker {
    /// Accepts every pending connection on the plain (`tls` false) or the
    /// TLS listener.
    pub(super) fn accept(&mut self, tls: bool) {
        loop {
            let listener = if tls {
                &self.tls_listener
            } else {
                &self.listener
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr.ip(), tls),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends. Edge-triggered: connections already
                    // in the backlog would get no new edge, so the sweep
                    // retries; don't spin on it this turn.
                    tracing::warn!(error = %e, "accept failed; retrying at the next sweep");
                    self.accept_retry = true;
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: mio::net::TcpStream, ip: std::net::IpAddr, tls: bool) {
        if !self.admission.take_connection() {
            metrics::add(&self.stats.metrics().connections_refused, 1);
            return;
        }
        if !listener::ACCEPTED_INHERIT {
            let accepted = listener::Accepted {
                send_buffer: self.settings.socket_send_buffer_bytes,
            };
            let _ = accepted.apply(&socket2::SockRef::from(&stream));
        }
        let transport = match (&self.settings.tls, tls) {
            (Some(config), true) => Transport::tls(stream, config.clone()),
            _ => Ok(Transport::Plain(stream)),
        };
        let mut transport = match transport {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start TLS");
                self.admission.give_back_connection();
                return;
            }
        };
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut transport,
            Token(slot + FIRST_CONN),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(error = %e, "cannot register connection");
            self.admission.give_back_connection();
            return;
        }
        self.next_serial = self.next_serial.wrapping_add(1);
        let id = ConnId {
            slot,
            serial: self.next_serial,
        };
        // The per-IP limit: past it, a 503 (the slot and the connection
        // limit are taken only briefly, to answer).
        let refused = self.admission.admit(slot, ip) == Admit::OverIpCap;
        let session = self.settings.session.clone();
        let link = if refused {
            metrics::add(&self.stats.metrics().ip_limit_refused, 1);
            Connection::refused(session, self.now)
        } else {
            Connection::new(session, self.now)
        };
        entry.insert(Conn {
            serial: id.serial,
            transport,
            link,
            reads_paused: false,
            maybe_unread: true,
        });
        if refused {
            self.schedule.flush_later(slot);
        }
    }

    /// Reads what `slot`'s socket holds. `short_ends`: a read shorter than
    /// the buffer ends it (see below); off where a FIN may be pending
    /// unseen (the event said so, or the read was not asked by an event).
    pub(super) fn read(&mut self, slot: usize, short_ends: bool) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            if conn.reads_paused {
                // Until the connection asks to resume (Action::ResumeRead).
                return;
            }
            if !self.router.may_read(slot) {
                // The router is behind and our queue of commands for it is
                // full: read no requests (which make commands) until it
                // drains; resumed by `retry_deferred`.
                return;
            }
            let handshaking = conn.transport.is_handshaking();
            let result = conn.transport.read(&mut self.scratch);
            // A completed TLS handshake is counted here; one that never
            // completes, when the connection is removed.
            if handshaking && !conn.transport.is_handshaking() {
                self.stats
                    .metrics()
                    .tls_handshake(if conn.transport.resumed() {
                        TlsHandshake::Resumed
                    } else {
                        TlsHandshake::Full
                    });
                // Output queued during the handshake (a refusal at accept)
                // could not be sealed then: it goes now.
                self.schedule.flush_later(slot);
            }
            match result {
                Ok(0) => {
                    // A request or close followed by FIN: the answer is
                    // written first (the connection asks to be dropped
                    // once it is out), else it is dropped now.
                    conn.link.on_peer_closed(&mut self.fx);
                    self.after_event(slot);
                    return;
                }
                Ok(n) => {
                    // A short read of a plain socket took all it held, and
                    // (the event had no RDHUP) no FIN waits behind it:
                    // anything arriving later raises a new edge, so the
                    // read that would only say EAGAIN is saved (two per
                    // connection in a storm). TLS reads go on: the stream
                    // may hold decrypted bytes the socket no longer shows.
                    let drained = short_ends && n < self.scratch.len() && !conn.transport.is_tls();
                    conn.maybe_unread = !drained;
                    let data = self.scratch.get(..n).unwrap_or_default();
                    conn.link.on_bytes(data, self.now, &mut self.fx);
                    self.after_event(slot);
                    if drained {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // TLS: the stream holds nothing undecrypted either (its
                    // read went to the socket, which had nothing).
                    conn.maybe_unread = false;
                    // A TLS handshake reply the socket had no room for.
                    if conn.transport.wants_flush() {
                        self.schedule.flush_later(slot);
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.remove(slot);
                    return;
                }
            }
        }
        self.schedule.read_again(slot);
    }

    /// Writes every corked connection. A flush can resume a paused read,
    /// which can queue output again: repeat until nothing is marked.
    pub(super) fn flush_corked(&mut self) {
        while let Some(turn) = self.schedule.take_flush() {
            for &slot in &turn {
                self.flush(slot);
            }
            self.schedule.flushed(turn);
        }
    }

    /// Writes what connection `slot` has queued: the bytes it lays out
    /// ([`Connection::poll_transmit`]: many frames copied into one
    /// contiguous buffer, one `send` on plain TCP, one plaintext run for
    /// rustls to seal into as few records as it can) until it has nothing
    /// left, the socket would block (its writable event brings it back),
    /// or [`FLUSH_LIMIT`] bytes went out (it goes on next turn).
    pub(super) fn flush(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        // The write's own time stamps its deliveries' latency; the
        // connection's clocks (progress, keepalive: deadlines of seconds)
        // take the turn's, which a worker converts once for all its
        // connections (`moment.rs`) where a fresh instant per connection
        // cost a conversion each (3.5% of a delivery's instructions).
        let now = Instant::now();
        let turn = self.now;
        let stats = &mut self.stats;
        let mut written = 0;
        let mut failed = false;
        loop {
            if written >= FLUSH_LIMIT {
                // Stopped by the limit, not by the socket: no writable
                // event will come, so it goes on next turn.
                self.schedule.write_again(slot);
                break;
            }
            // TLS records still waiting for the socket go first; while
            // some wait, the connection is not asked for more (nor told it
            // has drained: its last bytes are not out yet).
            if conn.transport.wants_flush() {
                match conn.transport.flush_tls() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            let buf = &mut self.write_buf;
            let n = conn
                .link
                .poll_transmit(buf, WRITE_CHUNK, turn, &mut self.fx);
            if n == 0 {
                break;
            }
            stats.socket_write();
            match conn.transport.write(buf.get(..n).unwrap_or_default()) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(k) => {
                    written += k;
                    let sent = &mut |frame: &OutFrame| stats.frame_sent(frame, now);
                    conn.link.on_written(k, turn, &mut self.fx, sent);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        stats.wrote(conn.link.encoding(), written);
        // TLS: records rustls still holds go out with the socket's next
        // writable event.
        match conn.transport.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => failed = true,
            _ => {}
        }
        if failed {
            self.fx.actions.clear();
            self.remove(slot);
        } else {
            self.apply_and_maybe_remove(slot);
        }
    }
}

/// At most this many bytes are laid out for one write call: a socket
/// rarely takes more at once, and a short write is handled anyway.
const WRITE_CHUNK: usize = 64 * 1024;
