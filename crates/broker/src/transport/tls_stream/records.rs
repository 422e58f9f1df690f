//! A TLS 1.3 connection after its handshake: rustls hands its keys over
//! and [`RecordLayer`] seals and opens the records (see the parent
//! module).

use std::io;

use rustls::ProtocolVersion;

use super::drive::{take_into, Seal, Stop};
use super::{tls_failure, Session, TlsStream};
use crate::transport::tls_buffers::{self, Received, Sealed};
use crate::transport::tls_records::{alert, Fatal, Opened, RecordLayer};

impl TlsStream {
    /// Once rustls finished a TLS 1.3 handshake (and has nothing left to
    /// send), its keys go to a [`RecordLayer`] and rustls' connection is
    /// dropped. A hand-over rustls refuses ends the connection.
    pub(super) fn hand_over(&mut self) -> io::Result<()> {
        if !self.ready_to_hand_over() {
            return Ok(());
        }
        let Session::Rustls(tls) = std::mem::replace(&mut self.session, Session::Gone) else {
            return Ok(());
        };
        self.resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        // Dropped in its box at the end (wiped), the record layer keeping
        // copies.
        let captured = self.captured.take();
        let why = match tls.dangerous_into_kernel_connection() {
            Ok((secrets, kernel)) => match RecordLayer::new(secrets, kernel, captured.as_deref()) {
                Ok(records) => {
                    if !records.owns_secrets() {
                        // Works, at ~1 KB more for the connection's life.
                        tracing::debug!("TLS key updates left to rustls' key schedule");
                    }
                    self.session = Session::Records(records);
                    return Ok(());
                }
                Err(e) => e.why,
            },
            Err(_) => "rustls kept the TLS keys after the handshake",
        };
        tracing::warn!(why, "a TLS connection could not go on after its handshake");
        self.failed = true;
        Err(tls_failure(why))
    }

    /// A TLS 1.3 handshake is done and the connection is still good: its
    /// keys go to the record layer before rustls processes another record.
    pub(super) fn ready_to_hand_over(&self) -> bool {
        match &self.session {
            Session::Rustls(tls) => {
                !tls.is_handshaking()
                    && tls.protocol_version() == Some(ProtocolVersion::TLSv1_3)
                    && !self.failed
                    && !self.close_sent
            }
            Session::Records(_) | Session::Gone => false,
        }
    }

    /// Opens the whole records at the front of `input` (what is opened
    /// leaves it): application data fills `buf` from `filled`, the rest
    /// going to `self.plaintext`. A record that ends the connection has
    /// its alert sealed into `sealed`.
    pub(super) fn open_records(
        &mut self,
        input: &mut Received,
        sealed: &mut Sealed,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<Stop> {
        if self.failed {
            return Err(tls_failure("the TLS connection failed"));
        }
        let Session::Records(records) = &mut self.session else {
            return Err(tls_failure("no TLS record layer"));
        };
        loop {
            let unprocessed = input.unprocessed();
            match records.open(unprocessed) {
                Ok(Opened::Incomplete) => return Ok(Stop::NeedInput),
                Ok(Opened::Data { len, plain }) => {
                    let payload = unprocessed.get(plain).unwrap_or_default();
                    take_into(payload, buf, filled, &mut self.plaintext);
                    input.discard(len);
                }
                Ok(Opened::Nothing { len }) => input.discard(len),
                Ok(Opened::Closed { len }) => {
                    input.discard(len);
                    self.peer_closed = true;
                    return Ok(Stop::NeedInput);
                }
                Err(fatal) => {
                    // Sealing the alert can only fail on exhausted keys:
                    // then no alert, the connection ends all the same.
                    if let Some(description) = fatal.alert {
                        let _ = records.seal_alert(description, sealed);
                    }
                    self.failed = true;
                    return Err(tls_failure(fatal.why));
                }
            }
        }
    }

    /// [`TlsStream::seal`] once rustls has handed over: the records are
    /// sealed here and sent. Returns the plaintext bytes sealed.
    pub(super) fn seal_records(&mut self, seal: Seal<'_>) -> io::Result<usize> {
        if self.failed {
            return Err(tls_failure("the TLS connection failed"));
        }
        tls_buffers::with(|_, sealed| {
            let Session::Records(records) = &mut self.session else {
                return Err(tls_failure("no TLS record layer"));
            };
            let (done, accepted) = match seal {
                Seal::Nothing => (Ok(()), 0),
                Seal::Data(plain) => (records.seal(plain, sealed), plain.len()),
                Seal::CloseNotify => (records.seal_alert(alert::CLOSE_NOTIFY, sealed), 0),
            };
            if let Err(Fatal { why, .. }) = done {
                self.failed = true;
                return Err(tls_failure(why));
            }
            self.send(sealed.bytes())?;
            Ok(accepted)
        })
    }
}
