//! A TLS server connection over a non-blocking socket, holding no buffer
//! while idle: rustls' unbuffered API for the handshake (and for TLS 1.2
//! to the end), then, on TLS 1.3, this broker's own record layer
//! ([`super::tls_records`]) with the keys rustls hands over.
//!
//! rustls' buffered `ServerConnection` keeps a 4 KiB receive buffer per
//! connection for life (half of an idle wss subscriber's memory). Here the
//! records are read into, and sealed in, per-thread buffers
//! ([`super::tls_buffers`]); a connection keeps only what is left between
//! calls: the first bytes of a record not yet whole, plaintext a read had
//! no room for, records the socket had no room for. All three are empty,
//! and unallocated, on an idle connection.

use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::Arc;

mod drive;
mod records;

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::ServerConfig;

use super::tls_buffers::{self, Received, Sealed};
use super::tls_records::RecordLayer;
use super::tls_secrets::Captured;
use drive::{Seal, Stop};

/// Ciphertext read from the socket per read: two full records.
const READ_SIZE: usize = 34 * 1024;

/// Ciphertext a peer may leave unprocessed: rustls refuses a record past
/// 16 KiB + 2 KiB and a handshake message past 64 KiB, so more means a bug,
/// not a peer; it is refused rather than buffered.
const MAX_RECEIVED: usize = 128 * 1024;

/// Who seals and opens the records.
// The record layer is a connection's state for life: inline in the boxed
// stream (one allocation), the short-lived rustls connection boxed.
#[allow(clippy::large_enum_variant)]
enum Session {
    /// rustls: the handshake, and a TLS 1.2 connection for life. Boxed:
    /// it is the 1 KB a TLS 1.3 connection gives back after its handshake.
    Rustls(Box<UnbufferedServerConnection>),
    /// A TLS 1.3 connection after its handshake.
    Records(RecordLayer),
    /// The hand-over from rustls failed: the connection is over.
    Gone,
}

pub struct TlsStream {
    sock: TcpStream,
    session: Session,
    /// The handshake resumed a session (kept: rustls is gone after it).
    resumed: bool,
    /// The traffic secrets the key log took during this handshake, until
    /// the hand-over ([`super::tls_secrets`]).
    captured: Option<Box<Captured>>,
    /// Received ciphertext not processed yet: the start of a record that
    /// is not whole.
    received: Vec<u8>,
    /// Decrypted bytes the last read had no room for.
    plaintext: Vec<u8>,
    /// Records the socket had no room for: written before anything else.
    unsent: Vec<u8>,
    /// close_notify or TCP EOF: reads end once `plaintext` is read.
    peer_closed: bool,
    /// A close_notify is queued: half-close TCP once it is written (not
    /// before, or the alert is lost).
    shut_pending: bool,
    /// The connection failed (its alert queued): rustls is not asked
    /// again, every later read or write is the failure.
    failed: bool,
    /// Our close_notify is queued: the peer's bytes are dropped unread.
    close_sent: bool,
}

fn tls_failure(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    pub fn new(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        Ok(TlsStream {
            sock,
            session: Session::Rustls(Box::new(
                UnbufferedServerConnection::new(config).map_err(io::Error::other)?,
            )),
            resumed: false,
            captured: None,
            received: Vec::new(),
            plaintext: Vec::new(),
            unsent: Vec::new(),
            peer_closed: false,
            shut_pending: false,
            failed: false,
            close_sent: false,
        })
    }

    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn is_handshaking(&self) -> bool {
        match &self.session {
            Session::Rustls(tls) => tls.is_handshaking(),
            Session::Records(_) | Session::Gone => false,
        }
    }

    pub fn resumed(&self) -> bool {
        match &self.session {
            Session::Rustls(tls) => tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            Session::Records(_) | Session::Gone => self.resumed,
        }
    }

    /// Gives back the expanded keys not used since the last call (the
    /// worker's sweep calls it): an idle TLS 1.3 connection keeps raw
    /// keys only.
    pub fn rest(&mut self) {
        if let Session::Records(records) = &mut self.session {
            records.rest();
        }
    }

    pub fn wants_flush(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Reads plaintext: what an earlier read had no room for, else records
    /// from the socket. `Ok(0)` is the end of the stream (close_notify or
    /// TCP EOF); `InvalidData` a TLS failure (its alert sent, room
    /// permitting); `WouldBlock` nothing more for now.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.plaintext.is_empty() {
            return Ok(self.take_plaintext(buf));
        }
        if self.peer_closed {
            return Ok(0);
        }
        if self.close_sent {
            return self.drain_after_close();
        }
        tls_buffers::with(|shared, sealed| {
            // A record's start kept from before: read on after it in the
            // connection's own buffer (no copy in and out per read, which
            // a peer dribbling a large message could make quadratic).
            // Otherwise the thread's buffer, and only what is left stays.
            let read = if self.received.is_empty() {
                let read = self.read_records(shared, sealed, buf);
                self.received = shared.leftover();
                read
            } else {
                let mut own = Received::from_leftover(std::mem::take(&mut self.received));
                let read = self.read_records(&mut own, sealed, buf);
                self.received = own.into_kept();
                read
            };
            let sent = self.send(sealed.bytes());
            let n = read?;
            sent?;
            Ok(n)
        })
    }

    /// After our close_notify, what the peer sends is not given to rustls
    /// (an error there would make a second fatal alert, which rustls
    /// refuses): it is read and dropped until EOF.
    fn drain_after_close(&mut self) -> io::Result<usize> {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match self.sock.read(&mut sink) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(0);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // More may wait: the caller reads again (next turn at the latest).
        Err(io::ErrorKind::Interrupted.into())
    }

    fn read_records(
        &mut self,
        input: &mut Received,
        sealed: &mut Sealed,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            let stop = match self.session {
                Session::Records(_) => self.open_records(input, sealed, buf, &mut filled)?,
                _ => {
                    let stop = self.drive(input, sealed, buf, &mut filled, &mut Seal::Nothing)?;
                    // Before rustls sees another record (a key update it
                    // would answer itself): the rest is the record layer's.
                    self.hand_over()?;
                    if matches!(self.session, Session::Records(_)) {
                        continue;
                    }
                    stop
                }
            };
            if filled > 0 || self.peer_closed || stop == Stop::Closed {
                return Ok(filled);
            }
            if input.len() >= MAX_RECEIVED {
                return Err(tls_failure("TLS input past any record's size"));
            }
            match self.sock.read(input.spare(READ_SIZE)) {
                Ok(0) => {
                    // TCP EOF, with or without close_notify: the end either
                    // way (a later read says so again).
                    self.peer_closed = true;
                    return Ok(0);
                }
                Ok(n) => input.filled(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.plaintext.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), self.plaintext.get(..n)) {
            to.copy_from_slice(from);
        }
        self.plaintext.drain(..n);
        if self.plaintext.is_empty() {
            self.plaintext = Vec::new();
        }
        n
    }

    /// Seals up to one record's worth of `plain`: `WouldBlock` while
    /// earlier records wait for the socket (so what waits per connection
    /// stays one write's records) or the handshake is not done.
    pub fn write(&mut self, plain: &[u8]) -> io::Result<usize> {
        self.flush()?;
        if plain.is_empty() {
            return Ok(0);
        }
        let plain = plain.get(..tls_buffers::CHUNK).unwrap_or(plain);
        let accepted = self.seal(Seal::Data(plain))?;
        if accepted == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(accepted)
    }

    /// Queues a close_notify (when the handshake is done) and half-closes
    /// TCP once it is written.
    pub fn shutdown_write(&mut self) {
        let _ = self.seal(Seal::CloseNotify);
        self.close_sent = true;
        self.shut_pending = true;
        let _ = self.flush();
    }

    /// Writes the records waiting for the socket: `Ok` once none is left,
    /// `WouldBlock` while some are.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.unsent.is_empty() {
            match send_some(&self.sock, &self.unsent) {
                Ok(n) => {
                    self.unsent.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.unsent = Vec::new();
        if std::mem::take(&mut self.shut_pending) {
            let _ = self.sock.shutdown(Shutdown::Write);
        }
        Ok(())
    }

    /// Runs the connection over what was received so far with `seal` to
    /// do, and sends what that made. Returns the plaintext bytes sealed.
    fn seal(&mut self, seal: Seal<'_>) -> io::Result<usize> {
        if let Session::Records(_) = self.session {
            return self.seal_records(seal);
        }
        let todo = tls_buffers::with(|_, sealed| {
            let mut input = Received::from_leftover(std::mem::take(&mut self.received));
            let mut none = [0u8; 0];
            let mut filled = 0;
            let mut todo = seal;
            let driven = self.drive(&mut input, sealed, &mut none, &mut filled, &mut todo);
            self.received = input.into_kept();
            let sent = self.send(sealed.bytes());
            driven?;
            sent?;
            Ok::<_, io::Error>(todo)
        })?;
        // A drive that finished a TLS 1.3 handshake stops before sealing:
        // what it was given is sealed by the record layer.
        self.hand_over()?;
        match (seal, todo) {
            (_, Seal::Nothing) => Ok(match seal {
                Seal::Data(plain) => plain.len(),
                _ => 0,
            }),
            (_, todo) if matches!(self.session, Session::Records(_)) => self.seal_records(todo),
            // Not sealed yet: the handshake is not done.
            _ => Ok(0),
        }
    }

    /// Writes `sealed` after any records still waiting; what the socket
    /// does not take waits in `unsent`.
    fn send(&mut self, sealed: &[u8]) -> io::Result<()> {
        if !self.unsent.is_empty() {
            self.unsent.extend_from_slice(sealed);
            return self.flush_some();
        }
        let mut at = 0;
        while at < sealed.len() {
            match send_some(&self.sock, sealed.get(at..).unwrap_or_default()) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if let Some(rest) = sealed.get(at..).filter(|rest| !rest.is_empty()) {
            self.unsent = rest.to_vec();
        }
        Ok(())
    }

    /// [`Self::flush`], a full socket being no error.
    fn flush_some(&mut self) -> io::Result<()> {
        match self.flush() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}

/// One `send(2)`, without SIGPIPE; `Ok(0)` for a non-empty buffer is an
/// error (the peer is gone).
fn send_some(sock: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match socket2::SockRef::from(sock).send_with_flags(bytes, libc::MSG_NOSIGNAL) {
        Ok(0) if !bytes.is_empty() => Err(io::ErrorKind::WriteZero.into()),
        other => other,
    }
}

#[cfg(test)]
#[path = "hand_over_tests.rs"]
mod hand_over_tests;
