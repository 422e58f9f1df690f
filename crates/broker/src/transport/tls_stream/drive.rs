//! The rustls state machine's loop: records in, plaintext and records
//! out, until the connection needs more input (see the parent module).

use std::io;

use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};

use super::{tls_failure, Session, TlsStream};
use crate::transport::tls_buffers::{self, Received, Sealed};
use crate::transport::tls_secrets::take_captured;

/// Ciphertext of one record beyond its plaintext, with room to spare
/// (header 5, content type 1, tag 16; TLS 1.2: nonce 8, tag 16).
const RECORD_OVERHEAD: usize = 64;

/// What a [`TlsStream::drive`] seals once the handshake allows.
#[derive(Clone, Copy)]
pub(super) enum Seal<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// Where a drive stopped.
#[derive(PartialEq, Eq)]
pub(super) enum Stop {
    /// Everything given was processed; more ciphertext is needed.
    NeedInput,
    /// Both sides sent close_notify.
    Closed,
}

impl TlsStream {
    /// Processes `input` (what is processed leaves its front) until the
    /// connection needs more of it: decrypted bytes fill `buf` from
    /// `filled`, the rest going to `self.plaintext`; records to send are
    /// appended to `sealed`; `seal` is done once the handshake allows (and
    /// then set to [`Seal::Nothing`]).
    pub(super) fn drive(
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
        // While handshaking, rustls is given whole records one more at a
        // time: the call that finishes the handshake must not go on to a
        // record after it (a key update rustls would answer itself, its
        // answer queued where the hand-over cannot see it, its new key
        // handed over as if sent).
        let mut records_given = 1;
        loop {
            let handing_over = self.ready_to_hand_over();
            let Session::Rustls(tls) = &mut self.session else {
                return Err(tls_failure("the TLS session was handed over"));
            };
            let handshaking = tls.is_handshaking();
            let whole = input.len();
            let given = if handing_over {
                // A finished TLS 1.3 handshake: rustls is asked only for
                // what it has left to send, and given no record.
                0
            } else if handshaking {
                records_prefix(input.unprocessed(), records_given)
            } else {
                whole
            };
            let status =
                tls.process_tls_records(input.unprocessed().get_mut(..given).unwrap_or_default());
            // Secrets the key log took in that call are this connection's.
            if let Some(captured) = take_captured() {
                self.captured = Some(Box::new(captured));
            }
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
                // A handshake message may span records: one more is given
                // while there is one.
                ConnectionState::BlockedHandshake if given < whole => {
                    if discard == 0 {
                        records_given += 1;
                    }
                    None
                }
                ConnectionState::BlockedHandshake => Some(Stop::NeedInput),
                ConnectionState::WriteTraffic(_) if handing_over => Some(Stop::NeedInput),
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
            if discard > 0 {
                records_given = 1;
            }
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
        let Session::Rustls(tls) = &mut self.session else {
            return;
        };
        let status = tls.process_tls_records(input.unprocessed());
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let n = encode.encode(sealed.room(RECORD_OVERHEAD)).unwrap_or(0);
            sealed.commit(n);
        }
    }
}

/// The length of the first `records` whole TLS records of `input` (all
/// of it if fewer are whole).
fn records_prefix(input: &[u8], records: usize) -> usize {
    let mut at = 0;
    for _ in 0..records {
        let Some(&[_, _, _, hi, lo]) = input.get(at..at + 5) else {
            return input.len();
        };
        let end = at + 5 + usize::from(u16::from_be_bytes([hi, lo]));
        if end > input.len() {
            return input.len();
        }
        at = end;
    }
    at
}

/// Copies a decrypted record into `buf` from `filled`; what does not fit
/// (or would overtake bytes already waiting) goes to `rest`.
pub(super) fn take_into(payload: &[u8], buf: &mut [u8], filled: &mut usize, rest: &mut Vec<u8>) {
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
