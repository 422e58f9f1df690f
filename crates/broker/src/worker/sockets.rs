//! The socket side of a worker: accepting, reading into connections, and
//! writing what they queued (when: see `cork`).

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::{Interest, Token};

use super::cork::FLUSH_LIMIT;
use super::{Conn, Worker, FIRST_CONN, READS_PER_EVENT};
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
        let open = self.open_connections.fetch_add(1, Ordering::Relaxed);
        if open >= self.settings.max_connections {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
            metrics::add(&self.metrics.connections_refused, 1);
            return;
        }
        let _ = stream.set_nodelay(true);
        if self.settings.socket_send_buffer_bytes > 0 {
            let size = self.settings.socket_send_buffer_bytes;
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(size);
        }
        let transport = match (&self.settings.tls, tls) {
            (Some(config), true) => Transport::tls(stream, config.clone()),
            _ => Ok(Transport::Plain(stream)),
        };
        let mut transport = match transport {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start TLS");
                self.open_connections.fetch_sub(1, Ordering::Relaxed);
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
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.next_serial += 1;
        let id = ConnId {
            slot,
            serial: self.next_serial,
        };
        // The per-IP limit: counted while open; past it, a 503 (the slot
        // and the connection limit are taken only briefly, to answer).
        let mut refused = false;
        let cap = self.settings.max_connections_per_ip;
        if cap > 0 {
            let mut counts = self.ip_counts.lock();
            let n = counts.entry(ip).or_insert(0);
            if (*n as usize) < cap {
                *n += 1;
                self.counted_ips.insert(slot, ip);
            } else {
                refused = true;
            }
        }
        let session = self.settings.session.clone();
        let link = if refused {
            metrics::add(&self.metrics.ip_limit_refused, 1);
            Connection::refused(session, self.now)
        } else {
            Connection::new(session, self.now)
        };
        entry.insert(Conn {
            id,
            transport,
            link,
        });
        if refused {
            self.cork.mark(slot);
        }
    }

    pub(super) fn read(&mut self, slot: usize) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            if !conn.link.wants_read() {
                // Resumed from flush() once the peer reads what we queued.
                return;
            }
            if self.deferred.len() >= self.settings.deferred_limit {
                // The router is behind and our queue of commands for it is
                // full: read no requests (which make commands) until it
                // drains; resumed by `retry_deferred`.
                self.reads_held.push(slot);
                return;
            }
            let handshaking = conn.transport.is_handshaking();
            let result = conn.transport.read(&mut self.scratch);
            // A completed TLS handshake is counted here; one that never
            // completes, when the connection is removed.
            if handshaking && !conn.transport.is_handshaking() {
                self.metrics.tls_handshake(if conn.transport.resumed() {
                    TlsHandshake::Resumed
                } else {
                    TlsHandshake::Full
                });
            }
            match result {
                Ok(0) => {
                    // A request or close followed by FIN: write the answer
                    // first (flush removes it once written).
                    if !conn.link.on_peer_closed() {
                        self.remove(slot);
                    }
                    return;
                }
                Ok(n) => {
                    let data = self.scratch.get(..n).unwrap_or_default();
                    conn.link.on_bytes(data, self.now, &mut self.fx);
                    self.after_event(slot);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A TLS handshake reply the socket had no room for.
                    if conn.transport.wants_flush() {
                        self.cork.mark(slot);
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
        self.unread.push(slot);
    }

    /// Writes every corked connection. A flush can resume a paused read,
    /// which can queue output again: repeat until nothing is marked.
    pub(super) fn flush_corked(&mut self) {
        while !self.cork.is_empty() {
            let turn = self.cork.take();
            for &slot in &turn {
                self.flush(slot);
            }
            self.cork.recycle(turn);
        }
    }

    pub(super) fn flush(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let paused = conn.link.reads_held_by_output();
        let mut written = 0;
        let now = Instant::now();
        let (latency, frames, deliveries) = (
            &mut self.delivery_latency,
            &mut self.frames_out,
            &mut self.deliveries,
        );
        let mut on_sent = |frame: &OutFrame| {
            *frames += 1;
            match frame {
                OutFrame::Quote(quote, _) => {
                    *deliveries += 1;
                    latency.record(now.saturating_duration_since(quote.decoded_at));
                }
                OutFrame::Snapshot(..) => *deliveries += 1,
                OutFrame::Owned(_) | OutFrame::Control(_) => {}
            }
        };
        let coalesce = !conn.transport.is_tls();
        let mut socket = SocketWriter {
            inner: &mut conn.transport,
            calls: &mut self.socket_writes,
            buf: &mut self.write_buf,
            coalesce,
        };
        let result =
            conn.link
                .outbound()
                .write_to(&mut socket, FLUSH_LIMIT, &mut written, &mut on_sent);
        self.bytes_out += written as u64;
        // TLS: records rustls still holds count as not written yet.
        let result = result.and_then(|drained| match conn.transport.flush_tls() {
            Ok(()) => Ok(drained),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        });
        match result {
            Ok(drained) => {
                if !drained && written >= FLUSH_LIMIT {
                    // Stopped by the limit, not by the socket: no writable
                    // event will come, so it goes on next turn.
                    self.write_again.push(slot);
                }
                if conn.link.on_written(written, drained, now) {
                    conn.transport.shutdown_write();
                }
                if conn.link.is_finished() {
                    self.remove(slot);
                    return;
                }
                if paused && conn.link.wants_read() {
                    // Resume reading next turn, within the per-event read cap.
                    self.unread.push(slot);
                }
            }
            Err(_) => self.remove(slot),
        }
    }
}

/// How a flush hands frames to the socket: on plain TCP one contiguous
/// `send` of the frames copied into a per-worker buffer, not a `writev` with
/// an iovec per frame (copying ~160-byte frames costs less than the kernel's
/// per-segment work; measured in docs/performance.md); over TLS the frames
/// go to rustls as they are (it seals them into records itself). Every call
/// is counted (`tickwire_socket_writes_total`).
struct SocketWriter<'a, W> {
    inner: &'a mut W,
    calls: &'a mut u64,
    /// The worker's coalescing buffer, reused across flushes.
    buf: &'a mut Vec<u8>,
    /// Plain TCP: copy into `buf`; TLS: pass the slices through.
    coalesce: bool,
}

/// At most this many bytes are copied for one call: a socket rarely takes
/// more at once, and a short write is handled anyway.
const COALESCE_LIMIT: usize = 64 * 1024;

impl<W: Write> Write for SocketWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        *self.calls += 1;
        self.inner.write(bytes)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        *self.calls += 1;
        match bufs {
            _ if !self.coalesce => self.inner.write_vectored(bufs),
            [] => Ok(0),
            // One frame, or a first one too big to be worth a copy.
            [first, ..] if bufs.len() == 1 || first.len() >= COALESCE_LIMIT => {
                self.inner.write(first)
            }
            _ => self.inner.write(coalesce(bufs, self.buf, COALESCE_LIMIT)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The slices' bytes in order, up to `limit` of them (the last slice may be
/// cut: the caller treats the result like a short write).
fn coalesce<'b>(bufs: &[io::IoSlice<'_>], buf: &'b mut Vec<u8>, limit: usize) -> &'b [u8] {
    buf.clear();
    for b in bufs {
        let room = limit.saturating_sub(buf.len());
        if room == 0 {
            break;
        }
        buf.extend_from_slice(b.get(..room).unwrap_or(b));
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `room` bytes per call, recording calls.
    struct Calls<'a> {
        calls: &'a mut Vec<Vec<u8>>,
        room: usize,
    }

    impl Write for Calls<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room);
            self.calls.push(buf[..n].to_vec());
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Writes `frames` in one call through a coalescing writer over a
    /// socket taking `room` bytes per call: (bytes taken, calls counted,
    /// what each socket call received).
    fn write_once(frames: &[&[u8]], room: usize, calls_before: u64) -> (usize, u64, Vec<Vec<u8>>) {
        let mut sink = Vec::new();
        let (mut calls, mut buf) = (calls_before, Vec::new());
        let mut inner = Calls {
            calls: &mut sink,
            room,
        };
        let mut w = SocketWriter {
            inner: &mut inner,
            calls: &mut calls,
            buf: &mut buf,
            coalesce: true,
        };
        let slices: Vec<io::IoSlice<'_>> = frames.iter().map(|f| io::IoSlice::new(f)).collect();
        let n = w
            .write_vectored(&slices)
            .expect("the fake socket never fails");
        (n, calls, sink)
    }

    #[test]
    fn frames_of_one_call_go_out_as_one_contiguous_write_and_are_counted() {
        let frames: [&[u8]; 3] = [b"aa", b"bbb", b"c"];
        assert_eq!(
            write_once(&frames, usize::MAX, 0),
            (6, 1, vec![b"aabbbc".to_vec()])
        );
        assert_eq!(
            write_once(&frames[..1], usize::MAX, 1),
            (2, 2, vec![b"aa".to_vec()])
        );
    }

    #[test]
    fn a_short_send_and_the_copy_limit_keep_the_bytes_in_frame_order() {
        let frames: [&[u8]; 3] = [b"aa", b"bbb", b"c"];
        let (n, _, sink) = write_once(&frames, 3, 0);
        assert_eq!(n, 3, "a short send");
        assert_eq!(sink, [b"aab".to_vec()]);
        let slices = frames.map(io::IoSlice::new);
        let mut out = Vec::new();
        assert_eq!(coalesce(&slices, &mut out, 4), b"aabb", "cut at the limit");
        assert_eq!(coalesce(&slices, &mut out, 100), b"aabbbc");
    }
}
