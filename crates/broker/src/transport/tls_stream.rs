//! A TLS server connection over a non-blocking socket, on rustls'
//! unbuffered API, holding no buffer while idle.
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

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};
use rustls::ServerConfig;

use super::tls_buffers::{self, Received, Sealed};

/// Ciphertext read from the socket per read: two full records.
const READ_SIZE: usize = 34 * 1024;

/// Ciphertext a peer may leave unprocessed: rustls refuses a record past
/// 16 KiB + 2 KiB and a handshake message past 64 KiB, so more means a bug,
/// not a peer; it is refused rather than buffered.
const MAX_RECEIVED: usize = 128 * 1024;

/// Ciphertext of one record beyond its plaintext, with room to spare
/// (header 5, content type 1, tag 16; TLS 1.2: nonce 8, tag 16).
const RECORD_OVERHEAD: usize = 64;

/// What a [`TlsStream::drive`] seals once the handshake allows.
#[derive(Clone, Copy)]
enum Seal<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// Where a drive stopped.
#[derive(PartialEq, Eq)]
enum Stop {
    /// Everything given was processed; more ciphertext is needed.
    NeedInput,
    /// Both sides sent close_notify.
    Closed,
}

pub struct TlsStream {
    sock: TcpStream,
    tls: UnbufferedServerConnection,
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
            tls: UnbufferedServerConnection::new(config).map_err(io::Error::other)?,
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
        self.tls.is_handshaking()
    }

    pub fn resumed(&self) -> bool {
        self.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
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
            let stop = self.drive(input, sealed, buf, &mut filled, &mut Seal::Nothing)?;
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
        tls_buffers::with(|_, sealed| {
            let mut input = Received::from_leftover(std::mem::take(&mut self.received));
            let mut none = [0u8; 0];
            let mut filled = 0;
            let mut todo = seal;
            let driven = self.drive(&mut input, sealed, &mut none, &mut filled, &mut todo);
            self.received = input.into_kept();
            let sent = self.send(sealed.bytes());
            driven?;
            sent?;
            // Sealed when the drive took it (the handshake was done).
            Ok(match (seal, todo) {
                (Seal::Data(plain), Seal::Nothing) => plain.len(),
                _ => 0,
            })
        })
    }

    /// Processes `input` (what is processed leaves its front) until the
    /// connection needs more of it: decrypted bytes fill `buf` from
    /// `filled`, the rest going to `self.plaintext`; records to send are
    /// appended to `sealed`; `seal` is done once the handshake allows (and
    /// then set to [`Seal::Nothing`]).
    fn drive(
        &mut self,
        input: &mut Received,
        sealed: &mut Sealed,
        buf: &mut [u8],
        filled: &mut usize,
        seal: &mut Seal<'_>,
    ) -> io::Result<Stop> {
        if self.failed {
            return Err(tls_failure("the TLS connection failed"));
        }
        loop {
            let status = self.tls.process_tls_records(input.unprocessed());
            let mut discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(e) => {
                    input.discard(discard);
                    self.queue_alert(input, sealed);
                    return Err(tls_failure(e));
                }
            };
            let stop = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let record = record.map_err(tls_failure)?;
                        // rustls asks for a record's own discard on top of
                        // the status's (0 until it decrypts in place).
                        discard += record.discard;
                        take_into(record.payload, buf, filled, &mut self.plaintext);
                    }
                    None
                }
                // Early data is never enabled (`max_early_data_size` 0).
                ConnectionState::ReadEarlyData(mut records) => {
                    while records.next_record().is_some() {}
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    let mut room = 2048;
                    loop {
                        match encode.encode(sealed.room(room)) {
                            Ok(n) => break sealed.commit(n),
                            Err(EncodeError::InsufficientSize(e)) => room = e.required_size,
                            Err(EncodeError::AlreadyEncoded) => break,
                        }
                    }
                    None
                }
                // The records go out after the drive, in order, with any
                // that follow: as good as transmitted now.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => Some(Stop::Closed),
                ConnectionState::BlockedHandshake => Some(Stop::NeedInput),
                ConnectionState::WriteTraffic(mut traffic) => match *seal {
                    Seal::Nothing => Some(Stop::NeedInput),
                    Seal::Data(plain) => {
                        *seal = Seal::Nothing;
                        let records = plain.len() / tls_buffers::CHUNK + 1;
                        let mut room = plain.len() + records * RECORD_OVERHEAD;
                        let n = loop {
                            match traffic.encrypt(plain, sealed.room(room)) {
                                Ok(n) => break n,
                                Err(EncryptError::InsufficientSize(e)) => room = e.required_size,
                                Err(e) => return Err(io::Error::other(e.to_string())),
                            }
                        };
                        sealed.commit(n);
                        // A key update rustls wanted went out ahead of the
                        // data, inside `encrypt`: nothing else to do.
                        Some(Stop::NeedInput)
                    }
                    Seal::CloseNotify => {
                        *seal = Seal::Nothing;
                        let n = traffic
                            .queue_close_notify(sealed.room(RECORD_OVERHEAD))
                            .unwrap_or(0);
                        sealed.commit(n);
                        None
                    }
                },
                _ => return Err(tls_failure("unexpected TLS connection state")),
            };
            input.discard(discard);
            if let Some(stop) = stop {
                return Ok(stop);
            }
        }
    }

    /// After a TLS failure: the first record rustls queued, its alert (or,
    /// if a key update reply was still pending, that reply: the alert is
    /// then lost). Asking again would process the input again and make a
    /// second fatal alert, which rustls refuses.
    fn queue_alert(&mut self, input: &mut Received, sealed: &mut Sealed) {
        self.failed = true;
        let status = self.tls.process_tls_records(input.unprocessed());
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let n = encode.encode(sealed.room(RECORD_OVERHEAD)).unwrap_or(0);
            sealed.commit(n);
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

/// Copies a decrypted record into `buf` from `filled`; what does not fit
/// (or would overtake bytes already waiting) goes to `rest`.
fn take_into(payload: &[u8], buf: &mut [u8], filled: &mut usize, rest: &mut Vec<u8>) {
    let mut payload = payload;
    if rest.is_empty() {
        let room = buf.len().saturating_sub(*filled);
        let n = room.min(payload.len());
        if let (Some(to), Some(from)) = (buf.get_mut(*filled..*filled + n), payload.get(..n)) {
            to.copy_from_slice(from);
            *filled += n;
            payload = payload.get(n..).unwrap_or_default();
        }
    }
    rest.extend_from_slice(payload);
}

/// One `send(2)`, without SIGPIPE; `Ok(0)` for a non-empty buffer is an
/// error (the peer is gone).
fn send_some(sock: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match socket2::SockRef::from(sock).send_with_flags(bytes, libc::MSG_NOSIGNAL) {
        Ok(0) if !bytes.is_empty() => Err(io::ErrorKind::WriteZero.into()),
        other => other,
    }
}
