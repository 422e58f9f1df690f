//! TLS 1.3 application records after the handshake, sealed and opened
//! here with *ring*'s AEAD: no I/O, bytes in and records out.
//!
//! Why not rustls to the end: an idle wss subscriber kept rustls' whole
//! connection (~3.2 KB: the handshake's deframer, the record layer's
//! boxed encrypter and decrypter, expanded AES keys of ~550 B each). Once
//! the handshake is done, rustls hands over the traffic keys and a
//! [`KernelConnection`] that derives the next keys on a key update (its
//! "kernel" API, made for kTLS); key updates use the traffic secrets
//! instead when the connection has them ([`super::tls_key_updates`]), so
//! that ~1 KB goes too. This layer keeps the raw keys (44 bytes a
//! direction) and expands them only while the connection is in use:
//! [`RecordLayer::rest`], called by the worker's sweep, drops an expanded
//! key not used since the sweep before.
//!
//! TLS 1.2 connections stay on rustls (browsers negotiate 1.3; the record
//! format and nonces of 1.2 are not repeated here). RFC 8446 §5.
//!
//! [`KernelConnection`]: rustls::kernel::KernelConnection

use std::ops::Range;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets};

use super::tls_buffers::Sealed;
use super::tls_key_updates::{NextKeys, RawKeys, Side};
use super::tls_secrets::Captured;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const KEY_UPDATE: u8 = 24;
const HEADER: usize = 5;
const TAG: usize = 16;
/// Largest plaintext of one record (RFC 8446 §5.1).
pub const MAX_PLAIN: usize = 1 << 14;
/// Key updates a peer may send with no application data between.
const MAX_KEY_UPDATES_IN_A_ROW: u32 = 32;
/// Largest ciphertext of one record the peer may send (§5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAIN + 256;

/// Alert descriptions this layer sends (RFC 8446 §6).
pub mod alert {
    pub const CLOSE_NOTIFY: u8 = 0;
    pub const USER_CANCELED: u8 = 90;
    pub const UNEXPECTED_MESSAGE: u8 = 10;
    pub const BAD_RECORD_MAC: u8 = 20;
    pub const RECORD_OVERFLOW: u8 = 22;
    pub const ILLEGAL_PARAMETER: u8 = 47;
    pub const DECODE_ERROR: u8 = 50;
    pub const INTERNAL_ERROR: u8 = 80;
}

/// What ends the connection: the alert to send back (none when the peer
/// sent its own), and why, for the log.
#[derive(Debug, PartialEq, Eq)]
pub struct Fatal {
    pub alert: Option<u8>,
    pub why: &'static str,
}

fn fatal(alert: u8, why: &'static str) -> Fatal {
    Fatal {
        alert: Some(alert),
        why,
    }
}

/// What [`RecordLayer::open`] found at the start of its input.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Less than one whole record: read more.
    Incomplete,
    /// Application data, decrypted in place at `plain` of the input; the
    /// record was `len` bytes.
    Data { len: usize, plain: Range<usize> },
    /// A record with nothing for the application (a key update).
    Nothing { len: usize },
    /// The peer's close_notify.
    Closed { len: usize },
}

/// One direction's keys: the raw key and IV (wiped when dropped), its
/// record count, and the expanded key while in use.
struct Direction {
    raw: RawKeys,
    seq: u64,
    expanded: Option<Box<LessSafeKey>>,
    /// Used since the last [`RecordLayer::rest`].
    used: bool,
}

impl Direction {
    fn new((seq, raw): (u64, RawKeys)) -> Direction {
        Direction {
            raw,
            seq,
            expanded: None,
            used: false,
        }
    }

    fn from_rustls((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Result<Direction, Fatal> {
        let raw = RawKeys::from_rustls(&secrets)
            .ok_or(fatal(alert::INTERNAL_ERROR, "traffic keys not usable"))?;
        Ok(Direction::new((seq, raw)))
    }

    /// The expanded key (made now if it was given back) and the next
    /// record's nonce: the IV XOR the record number (§5.3).
    fn next(&mut self) -> Result<(&LessSafeKey, Nonce), Fatal> {
        let mut nonce = self.raw.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(fatal(alert::INTERNAL_ERROR, "record numbers exhausted"))?;
        self.used = true;
        let key = match &mut self.expanded {
            Some(key) => key,
            slot => {
                let algorithm = self.raw.algorithm;
                let raw = self.raw.key.get(..algorithm.key_len()).unwrap_or_default();
                let unbound = UnboundKey::new(algorithm, raw)
                    .map_err(|_| fatal(alert::INTERNAL_ERROR, "a traffic key ring refused"))?;
                slot.insert(Box::new(LessSafeKey::new(unbound)))
            }
        };
        Ok((key, Nonce::assume_unique_for_key(nonce)))
    }

    /// Gives back the expanded key if it was not used since last time.
    fn rest(&mut self) {
        // No write at all for an idle connection holding nothing.
        if self.used {
            self.used = false;
        } else if self.expanded.is_some() {
            self.expanded = None;
        }
    }
}

/// A TLS 1.3 connection's records after its handshake.
pub struct RecordLayer {
    next_keys: NextKeys,
    tx: Direction,
    rx: Direction,
    /// Records one key may seal before a key update replaces it (the
    /// suite's confidentiality limit, which rustls would have kept).
    tx_limit: u64,
    /// The peer asked for our key update: it goes before our next record.
    tx_update_owed: bool,
    /// The peer's key updates since its last application data.
    key_updates_in_a_row: u32,
}

impl RecordLayer {
    /// `captured`: the traffic secrets the endpoint's key log took during
    /// this handshake ([`super::tls_secrets`]); kept, and rustls'
    /// `kernel` dropped, when they make the keys rustls handed over.
    pub fn new(
        secrets: ExtractedSecrets,
        kernel: KernelConnection<ServerConnectionData>,
        captured: Option<&Captured>,
    ) -> Result<RecordLayer, Fatal> {
        let tx_limit = kernel
            .negotiated_cipher_suite()
            .tls13()
            .map(|suite| suite.common.confidentiality_limit)
            .ok_or(fatal(alert::INTERNAL_ERROR, "not a TLS 1.3 connection"))?;
        let tx = Direction::from_rustls(secrets.tx)?;
        let rx = Direction::from_rustls(secrets.rx)?;
        let algorithm = tx.raw.algorithm;
        Ok(RecordLayer {
            next_keys: NextKeys::new(kernel, captured, algorithm, &tx.raw, &rx.raw),
            tx,
            rx,
            // A margin below the limit, as rustls keeps.
            tx_limit: tx_limit.saturating_sub(tx_limit / 16).max(1),
            tx_update_owed: false,
            key_updates_in_a_row: 0,
        })
    }

    /// Whether key updates derive from secrets kept here (rustls'
    /// connection dropped), rather than from rustls' key schedule.
    pub fn owns_secrets(&self) -> bool {
        self.next_keys.own()
    }

    /// Gives back the expanded keys not used since the last call (the
    /// worker's sweep calls it: an idle connection holds raw keys only).
    pub fn rest(&mut self) {
        self.tx.rest();
        self.rx.rest();
    }

    /// Seals `plain` as application data, in records of at most 16 KiB,
    /// after a key update when one is due.
    pub fn seal(&mut self, plain: &[u8], out: &mut Sealed) -> Result<(), Fatal> {
        if self.tx_update_owed || self.tx.seq >= self.tx_limit {
            self.update_tx(out)?;
        }
        for chunk in plain.chunks(MAX_PLAIN) {
            self.seal_record(APPLICATION_DATA, chunk, out)?;
        }
        Ok(())
    }

    /// Seals an alert: close_notify as a warning, anything else fatal.
    pub fn seal_alert(&mut self, description: u8, out: &mut Sealed) -> Result<(), Fatal> {
        let level = if description == alert::CLOSE_NOTIFY {
            1
        } else {
            2
        };
        self.seal_record(ALERT, &[level, description], out)
    }

    /// Our KeyUpdate (not asking for the peer's), sealed under the old
    /// key; later records use the new one (§4.6.3).
    fn update_tx(&mut self, out: &mut Sealed) -> Result<(), Fatal> {
        self.seal_record(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0], out)?;
        let next = self
            .next_keys
            .next(Side::Server)
            .ok_or(fatal(alert::INTERNAL_ERROR, "no next sending key"))?;
        self.tx = Direction::new(next);
        self.tx_update_owed = false;
        Ok(())
    }

    fn seal_record(&mut self, content: u8, plain: &[u8], out: &mut Sealed) -> Result<(), Fatal> {
        let inner = plain.len() + 1;
        let total = HEADER + inner + TAG;
        let length = u16::try_from(inner + TAG)
            .map_err(|_| fatal(alert::INTERNAL_ERROR, "a record past its size"))?;
        let [hi, lo] = length.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, hi, lo];
        let (key, nonce) = self.tx.next()?;
        let room = out.room(total);
        let (head, body) = room.split_at_mut(HEADER.min(room.len()));
        head.copy_from_slice(&header);
        let (text, tag_room) = body.split_at_mut(inner.min(body.len()));
        if let Some((last, front)) = text.split_last_mut() {
            front.copy_from_slice(plain);
            *last = content;
        }
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(header), text)
            .map_err(|_| fatal(alert::INTERNAL_ERROR, "sealing failed"))?;
        tag_room.copy_from_slice(tag.as_ref());
        out.commit(total);
        Ok(())
    }

    /// Opens the record at the start of `input`, decrypting it in place.
    pub fn open(&mut self, input: &mut [u8]) -> Result<Opened, Fatal> {
        let Some(&[content, _, _, hi, lo]) = input.get(..HEADER) else {
            return Ok(Opened::Incomplete);
        };
        // Every record after the handshake is sealed and looks like
        // application data from outside (§5.2); its version is ignored.
        if content != APPLICATION_DATA {
            return Err(fatal(alert::UNEXPECTED_MESSAGE, "a record not sealed"));
        }
        let body_len = usize::from(u16::from_be_bytes([hi, lo]));
        if body_len > MAX_CIPHERTEXT {
            return Err(fatal(alert::RECORD_OVERFLOW, "a record past 16 KiB + 256"));
        }
        if body_len < TAG + 1 {
            return Err(fatal(alert::DECODE_ERROR, "a record shorter than its tag"));
        }
        let len = HEADER + body_len;
        let Some(body) = input.get_mut(HEADER..len) else {
            return Ok(Opened::Incomplete);
        };
        let (key, nonce) = self.rx.next()?;
        let header = [content, 3, 3, hi, lo];
        let inner = key
            .open_in_place(nonce, Aad::from(header), body)
            .map_err(|_| fatal(alert::BAD_RECORD_MAC, "a record that does not open"))?;
        // Content, type and padding together: 16 KiB + 1 at most (§5.4).
        if inner.len() > MAX_PLAIN + 1 {
            return Err(fatal(
                alert::RECORD_OVERFLOW,
                "a record's plaintext past 16 KiB",
            ));
        }
        // The inner content type is the last byte that is not padding.
        let Some(at) = inner.iter().rposition(|&b| b != 0) else {
            return Err(fatal(alert::UNEXPECTED_MESSAGE, "a record of padding only"));
        };
        let plain = HEADER..HEADER + at;
        match inner.get(at).copied() {
            Some(APPLICATION_DATA) => {
                self.key_updates_in_a_row = 0;
                Ok(Opened::Data { len, plain })
            }
            // Every alert but these two is fatal, whatever its level (§6).
            Some(ALERT) => match inner.get(..at) {
                Some([_, alert::CLOSE_NOTIFY]) => Ok(Opened::Closed { len }),
                Some([_, alert::USER_CANCELED]) => Ok(Opened::Nothing { len }),
                Some([_, _]) => Err(Fatal {
                    alert: None,
                    why: "the peer sent a fatal alert",
                }),
                _ => Err(fatal(alert::DECODE_ERROR, "a malformed alert")),
            },
            Some(HANDSHAKE) => {
                let message = inner.get(..at).unwrap_or_default();
                self.on_handshake(message)?;
                Ok(Opened::Nothing { len })
            }
            _ => Err(fatal(
                alert::UNEXPECTED_MESSAGE,
                "an unexpected content type",
            )),
        }
    }

    /// After the handshake a client may send one handshake message: a
    /// KeyUpdate, alone in its record (§4.6.3, §5.1). Anything else —
    /// another message, one split across records — ends the connection.
    fn on_handshake(&mut self, message: &[u8]) -> Result<(), Fatal> {
        let request = match message {
            [KEY_UPDATE, 0, 0, 1, request] => *request,
            [KEY_UPDATE, ..] => return Err(fatal(alert::DECODE_ERROR, "a malformed key update")),
            _ => {
                return Err(fatal(
                    alert::UNEXPECTED_MESSAGE,
                    "a handshake message after the handshake",
                ))
            }
        };
        match request {
            0 => {}
            1 => self.tx_update_owed = true,
            _ => {
                return Err(fatal(
                    alert::ILLEGAL_PARAMETER,
                    "a key update request of neither kind",
                ))
            }
        }
        // Each costs a key derivation: a peer sending nothing else is
        // stopped, as rustls and BoringSSL do.
        self.key_updates_in_a_row += 1;
        if self.key_updates_in_a_row > MAX_KEY_UPDATES_IN_A_ROW {
            return Err(fatal(
                alert::UNEXPECTED_MESSAGE,
                "key updates without application data between",
            ));
        }
        let next = self
            .next_keys
            .next(Side::Client)
            .ok_or(fatal(alert::INTERNAL_ERROR, "no next receiving key"))?;
        self.rx = Direction::new(next);
        Ok(())
    }
}

#[cfg(test)]
#[path = "tls_records_tests.rs"]
mod tests;
